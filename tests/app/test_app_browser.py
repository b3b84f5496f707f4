"""``rrsis app`` end to end in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

The server is ``rrsis app`` in a subprocess on a tiny model saved to a temporary folder. The test
uploads an image, types an expression, submits, waits for the overlay and reads the area; then it
tries bad inputs and checks each gets a clear message while the app keeps serving. The page's
screenshot is written to ``$RRSIS_TEST_ARTEFACTS`` (default: pytest's temporary folder).

In CI (``CI=true``) a missing browser is a failure, not a skip: ``.ci/run`` installs it.
"""

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from _fixtures import REPO, find_chromium
from PIL import Image

import rrsis

ROOT = REPO
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MAX_PIXELS = 250_000
MAX_UPLOAD_MB = 1


def _unavailable(why: str):
    if IN_CI:
        pytest.fail(f"{why}: CI must run the browser test (.ci/run installs chromium)")
    pytest.skip(f"{why}; the browser test needs Debian's chromium (apt-get install chromium) and playwright")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory):
    path = Path(os.environ.get("RRSIS_TEST_ARTEFACTS") or tmp_path_factory.getbasetemp() / "artefacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def server(tiny_tokenizer, tmp_path_factory):
    """``rrsis app`` on a tiny model: ``(url, process, log path)``."""
    pytest.importorskip("gradio")
    folder = tmp_path_factory.mktemp("app-server")
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tiny_tokenizer)).eval()
    model.tokenizer = tiny_tokenizer
    model.save_pretrained(folder / "model", metrics={"oIoU": 0.5}, dataset="synthetic scenes")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    log = folder / "server.log"
    cmd = [sys.executable, "-c", "import sys; from rrsis.cli import main; sys.exit(main())",
           "app", "--model", str(folder / "model"), "--port", str(port), "--examples", "1",
           "--max-pixels", str(MAX_PIXELS), "--max-upload-mb", str(MAX_UPLOAD_MB)]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=folder)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 240
    while True:
        if proc.poll() is not None:
            pytest.fail(f"rrsis app exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.time() > deadline:
            proc.kill()
            pytest.fail(f"rrsis app did not answer within 240 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    yield url, proc, log
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def page(server, tmp_path_factory):
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    chromium = find_chromium()
    if chromium is None:
        _unavailable("no chromium executable found (looked at $RRSIS_CHROMIUM, /usr/bin/chromium, PATH)")
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(profile), executable_path=chromium, headless=True, args=["--headless", *FLAGS],
            viewport={"width": 1280, "height": 1000},
        )
        pg = ctx.new_page()
        pg.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)  # a shared 2-core CI machine can be slow; failures still fail
        pg.goto(server[0])
        pg.wait_for_selector("#segment")
        yield pg
        ctx.close()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from rrsis.app.examples import write_examples

    folder = tmp_path_factory.mktemp("uploads")
    (scene, texts), = write_examples(folder, 1, seed=3, size=192)
    (folder / "notes.txt").write_text("not an image")
    Image.new("RGB", (600, 600), (60, 90, 40)).save(folder / "huge.png")  # 360,000 px, a few KiB
    noise = np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "heavy.png")  # > 1 MiB on disk
    return {"scene": scene, "texts": texts, "text": folder / "notes.txt", "huge": folder / "huge.png",
            "heavy": folder / "heavy.png"}


def _upload(page, path):
    chooser = page.locator("#upload input[type=file]")
    if not chooser.count():  # a file is shown: clear it to get the chooser back
        page.locator("#upload button[aria-label='Clear']").click()
    chooser.set_input_files(str(path))


def _segment(page, text):
    page.fill("#expressions textarea", text)
    page.click("#segment")


def test_upload_type_submit_and_see_the_overlay(page, images, artefacts):
    from playwright.sync_api import expect

    _upload(page, images["scene"])
    expect(page.locator("#message")).to_contain_text("192×192 pixels")
    _segment(page, "the red building")
    overlay = page.locator("#overlays img").first
    expect(overlay).to_be_visible()
    width = overlay.evaluate("img => new Promise(done => img.complete ? done(img.naturalWidth) : "
                             "img.addEventListener('load', () => done(img.naturalWidth)))")
    assert width > 0
    cells = page.locator("#areas table tbody tr").first.locator("td")
    assert cells.nth(1).inner_text().strip() == "the red building"
    area = cells.nth(2).inner_text().strip()
    assert re.fullmatch(r"\d+", area), area
    assert 0 <= int(area) <= 192 * 192
    message = page.inner_text("#message")
    # the page's default, auto: 192 px is over two tiles of the tiny model's 64, so object
    assert re.search(r"on a 192×192 image, auto mode \(object\), threshold 0\.5: \d+\.\d\d s in all",
                     message), message
    link = page.locator("#downloads a").first
    expect(link).to_be_visible()
    href = link.get_attribute("href")
    assert href.endswith("/01_the-red-building_mask.png"), href
    with urllib.request.urlopen(href, timeout=30) as r:  # the download is the mask, and the area is its size
        mask = np.asarray(Image.open(io.BytesIO(r.read())))
    assert mask.shape == (192, 192) and set(np.unique(mask)) <= {0, 255}
    assert int((mask == 255).sum()) == int(area)
    card = page.inner_text("#card")
    assert "gl-msin-tiny" in card and "synthetic scenes" in card and "oIoU" in card
    shot = page.screenshot(path=str(artefacts / "app.png"), full_page=True)
    assert len(shot) > 10_000 and (artefacts / "app.png").is_file()
    print(f"screenshot: {artefacts / 'app.png'}")


def test_bad_inputs_show_a_message_and_the_app_keeps_serving(page, server, images):
    from playwright.sync_api import expect

    message = page.locator("#message")
    _upload(page, images["scene"])
    expect(message).to_contain_text("192×192 pixels")
    _segment(page, "  \n ")
    expect(message).to_contain_text("Cannot run this request: no expression")
    expect(page.locator("#overlays img")).to_have_count(0)

    _upload(page, images["text"])
    expect(message).to_contain_text("notes.txt is not an image the app can read")
    _segment(page, "the ship")
    expect(message).to_contain_text("Cannot run this request: notes.txt is not an image")

    _upload(page, images["huge"])
    expect(message).to_contain_text("too large: 600×600 = 360,000 pixels; the limit is 250,000")
    _segment(page, "the ship")
    expect(message).to_contain_text("Cannot run this request: the image is too large")

    # Over the byte limit: the server refuses the upload itself, and the page says so.
    _upload(page, images["heavy"])
    expect(page.get_by_text("exceed the maximum allowed size")).to_be_visible()

    _upload(page, images["scene"])
    expect(message).to_contain_text("192×192 pixels")
    _segment(page, "all planes\nthe gray building")
    expect(page.locator("#overlays img")).to_have_count(2)
    expect(message).to_contain_text("2 expressions on a 192×192 image")
    assert server[1].poll() is None


def test_an_example_scene_fills_the_form(page):
    from playwright.sync_api import expect

    clear = page.locator("#upload button[aria-label='Clear']")
    if clear.count():
        clear.click()
        # Let the clearing round trip finish (the preview empties) before the example fills the
        # form: under load its reply could otherwise land after the example's and blank the message.
        expect(page.locator("#preview img")).to_have_count(0)
    page.get_by_text("example-scene-1.png").click()
    expect(page.locator("#message")).to_contain_text("example-scene-1.png: 256×256 pixels")
    assert page.input_value("#expressions textarea").strip()
    expect(page.locator("#preview img")).to_be_visible()


def test_stopping_the_server_removes_its_workspace(server):
    _url, proc, log = server
    match = re.search(r"workspace (\S+) \(deleted on exit\)", log.read_text())
    assert match, log.read_text()
    workspace = Path(match.group(1))
    assert workspace.is_dir() and any((workspace / "uploads").iterdir())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert not workspace.exists()
    # Nothing written beside it either: the server's working directory holds what the test put there.
    assert sorted(p.name for p in log.parent.iterdir()) == ["model", "server.log"]
