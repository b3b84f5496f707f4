"""The generated documentation pages follow their sources, the site builds strictly, and the
built pages render in a real browser.

- API reference: every name of ``rrsis.__all__`` has an entry (in the generated page and, after
  the build, as an anchor of the HTML).
- Benchmarks: a changed results file (in a temporary copy) changes its page and its plot.
- Model zoo: a model registered here appears in the page, its parameters counted.
- ``mkdocs build --strict`` passes; headless Chromium (Debian's, driven by Playwright, as
  tests/app/test_app_browser.py does) renders the home page and a guide.
"""

from __future__ import annotations

import importlib.util
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _fixtures import REPO, find_chromium

import rrsis

ROOT = REPO
sys.path.insert(0, str(ROOT))
from tools import docs_pages

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _need(module: str, why: str) -> None:
    if importlib.util.find_spec(module) is None:
        if IN_CI:
            pytest.fail(f"{module} is missing: CI installs the dev extra, which includes it ({why})")
        pytest.skip(f"{module} is not installed ({why}; pip install -e '.[docs]')")


# ---------------------------------------------------------------------------- API reference


def test_every_public_name_has_an_api_entry():
    page = docs_pages.api_pages()["api/index.md"]
    entries = docs_pages.api_entries()
    assert set(entries) == set(rrsis.__all__) - {"__version__"}
    for name, path in entries.items():
        assert f"::: {path}\n" in page, f"rrsis.{name} has no API entry"
        module, _, attr = path.rpartition(".")
        # the documented path is where the public name really comes from
        assert getattr(__import__(module, fromlist=[attr]), attr) is getattr(rrsis, name)


def test_a_new_public_name_gets_an_entry(monkeypatch):
    monkeypatch.setattr(rrsis, "__all__", [*rrsis.__all__, "list_models_extra"])
    monkeypatch.setitem(rrsis._LAZY, "list_models_extra", "factory")
    page = docs_pages.api_pages()["api/index.md"]
    assert "## Other public names" in page and "::: rrsis.factory.list_models_extra" in page


# ---------------------------------------------------------------------------- benchmarks


@pytest.fixture
def results(tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(docs_pages.RESULTS, copy)
    return copy


def test_benchmark_page_follows_its_results_file(results):
    before = docs_pages.benchmark_pages(results)
    demo = json.loads((results / "demo-cpu.json").read_text())
    assert "| 0 | 0.6664 |" in before["benchmarks/demo-cpu.md"]
    demo["runs"][0]["mIoU"] = 0.1234
    (results / "demo-cpu.json").write_text(json.dumps(demo))
    after = docs_pages.benchmark_pages(results)
    assert "| 0 | 0.1234 |" in after["benchmarks/demo-cpu.md"]
    assert "| 0 | 0.6664 |" not in after["benchmarks/demo-cpu.md"]
    assert after["benchmarks/ablation-cpu.md"] == before["benchmarks/ablation-cpu.md"]


def test_benchmark_plot_follows_its_results_file(results):
    before = docs_pages.benchmark_pages(results)
    ablation = json.loads((results / "ablation-cpu.json").read_text())
    ablation["table"]["lavt-tiny"]["mIoU"]["mean"] = 0.9
    (results / "ablation-cpu.json").write_text(json.dumps(ablation))
    after = docs_pages.benchmark_pages(results)
    assert after["benchmarks/ablation-cpu-miou.png"].startswith(b"\x89PNG")
    assert after["benchmarks/ablation-cpu-miou.png"] != before["benchmarks/ablation-cpu-miou.png"]
    assert "| lavt-tiny | 4.24 M | 90.0 ± 4.0 |" in after["benchmarks/ablation-cpu.md"]


def test_time_to_train_follows_the_measured_throughput(results):
    gpu = json.loads((results / "nvidia-h100-80gb-hbm3.json").read_text())
    gpu["train"]["triton"]["images_per_s"] = docs_pages.EPOCHS * docs_pages.RRSISD_TRAIN / (3600 * 2.0)
    (results / "nvidia-h100-80gb-hbm3.json").write_text(json.dumps(gpu))
    page = docs_pages.benchmark_pages(results)["time-to-train.md"]
    # 40 epochs × 12,181 samples at that rate: exactly 2.0 h of training
    assert "| triton | bf16-autocast | 8 | 67.7 | 2.0 h |" in page


def test_a_new_results_file_gets_a_page(results):
    (results / "new-bench.json").write_text(json.dumps({"device": "cpu", "seconds": 1.5}))
    pages = docs_pages.benchmark_pages(results)
    assert "| seconds | `1.5` |" in pages["benchmarks/new-bench.md"]
    assert "(new-bench.md)" in pages["benchmarks/index.md"]


# ---------------------------------------------------------------------------- model zoo


@pytest.fixture
def tiny_registered():
    # The registry has no unregister: the test undoes its own entries.
    from rrsis import registry as _registry
    from rrsis.registry import PretrainedCfg

    name = "docs-test-tiny"

    def entry(config=None, **overrides):
        return rrsis.create_model("lavt-tiny", config=config, **overrides)

    rrsis.register_model(name)(entry)
    rrsis.register_pretrained(f"{name}.none", PretrainedCfg(license="CC0-docs-test", notes="a test tag"))
    try:
        yield name
    finally:
        _registry._model_entrypoints.pop(name, None)
        _registry._pretrained.pop(f"{name}.none", None)


def test_zoo_page_follows_the_registry(tiny_registered, tmp_path):
    figures = tmp_path / "zoo.json"
    figures.write_text(json.dumps({"lavt-tiny": {"params": 1, "gflops_480": 5.0}}))
    page = docs_pages.zoo_page(figures)["models.md"]
    n = sum(p.numel() for p in rrsis.create_model("lavt-tiny").parameters())
    # not in the figures file: parameters counted (on the meta device), GFLOPs unknown
    assert f"| `{tiny_registered}` | {n / 1e6:.2f} M | – | `{tiny_registered}.none` |" in page
    assert "| `lavt-tiny` | 0.00 M | 5.0 |" in page  # from the file when it has them
    assert "CC0-docs-test" in page


def test_committed_zoo_figures_cover_every_model():
    figures = json.loads(docs_pages.ZOO_FIGURES.read_text())
    missing = sorted(set(rrsis.list_models()) - set(figures))
    assert not missing, f"{missing}: run python tools/zoo_figures.py {' '.join(missing)}"


# ---------------------------------------------------------------------------- the built site


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    _need("mkdocs", "the docs build")
    _need("mkdocstrings_handlers.python", "the API reference")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr[-4000:]}"
    return out


def test_the_command_line_page_holds_every_commands_options():
    from rrsis.cli import build_parser

    page = docs_pages.cli_page()
    commands = build_parser().get_default("_commands")
    assert set(commands) >= {"predict", "train", "evaluate", "chips", "app", "synth", "demo", "convert", "models"}
    for name, sub in commands.items():
        assert f"## rrsis {name}\n" in page, name
        for action in sub._actions:
            for flag in action.option_strings:
                assert flag in page, f"rrsis {name} {flag}"


def test_site_has_every_page_and_api_anchor(site):
    for page in ("index.html", "cli/index.html", "models/index.html", "time-to-train/index.html", "history/index.html",
                 "benchmarks/demo-cpu/index.html", "guides/geotiff/index.html", "changelog/index.html"):
        assert (site / page).is_file(), page
    html = (site / "api" / "index.html").read_text()
    for name, path in docs_pages.api_entries().items():
        assert f'id="{path}"' in html, f"rrsis.{name} ({path}) has no entry in the built API page"
    assert (site / "benchmarks" / "ablation-cpu-miou.png").read_bytes().startswith(b"\x89PNG")


def _url(page: str) -> str:
    """The folder URL mkdocs gives a page (use_directory_urls): guides/x.md → guides/x/."""
    page = page[: -len(".md")]
    return "" if page == "index" else (page[: -len("index")] if page.endswith("/index") else page + "/")


def test_links_to_repository_files_lead_to_the_generated_pages(site):
    from tools import docs_links

    docs, checked, generated_pages = ROOT / "docs", 0, set(docs_pages.generated_pages())
    for source in sorted(docs.rglob("*.md")):
        page = source.relative_to(docs).as_posix()
        if page in generated_pages:
            continue  # a placeholder the build replaces (time-to-train.md)
        html = (site / _url(page) / "index.html").read_text()
        stale = re.findall(r'href="((?!https?:|mailto:)[^"]*(?:benchmarks/results/|\.md|\.py)(?:#[^"]*)?)"', html)
        assert not stale, f"{page} links into the repository, not the site: {stale}"
        here = posixpath.dirname(f"docs/{page}")
        for _, _, target in docs_links.links(source.read_text()):
            path, _, anchor = target.partition("#")
            if not docs_links.is_local(target) or not path:
                continue
            repo_path = posixpath.normpath(posixpath.join(here, path))
            generated = docs_links.site_page(repo_path, anchor)
            if generated is None:
                continue
            href = posixpath.relpath(_url(generated) or ".", _url(page) or ".") + "/"
            if anchor and f"{repo_path}#{anchor}" not in docs_links.PAGES:
                href += f"#{anchor}"
            assert f'href="{href}"' in html, f"{page}: {target} should lead to {href}"
            checked += 1
    assert checked, "no link names a generated page's repository file"
    # the placeholder of a generated page is replaced by that page
    article = (site / "time-to-train" / "index.html").read_text().split("<article")[1].split("</article>")[0]
    assert "**Formula.**" in docs_pages.time_to_train() and "<strong>Formula.</strong>" in article
    assert "placeholder" not in article


def test_home_page_and_a_guide_render_in_chromium(site, tmp_path):
    _need("playwright", "the screenshot test")
    chromium = find_chromium()
    if chromium is None:
        if IN_CI:
            pytest.fail("no chromium: CI must run the screenshot test (.ci/run installs it)")
        pytest.skip("Debian's chromium is not installed")
    from PIL import Image
    from playwright.sync_api import sync_playwright

    flags = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    artefacts = Path(os.environ.get("RRSIS_TEST_ARTEFACTS") or tmp_path)
    artefacts.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=flags, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            for rel, heading, shot in (("index.html", "rrsis", "docs-home.png"),
                                       ("guides/geotiff/index.html", "Segment a GeoTIFF", "docs-guide.png")):
                page.goto((site / rel).as_uri())
                page.wait_for_load_state("load")
                assert heading in page.locator("h1").first.inner_text()
                # the theme's stylesheet applied: the header bar is laid out, not raw HTML
                header = page.locator("header.md-header").bounding_box()
                assert header is not None and header["width"] >= 1000 and 30 <= header["height"] <= 120
                if rel == "index.html":
                    ok = page.evaluate("() => { const i = document.querySelector('img[src$=\"figure.png\"]');"
                                       " return i !== null && i.complete && i.naturalWidth > 100; }")
                    assert ok, "the home page's figure did not load"
                else:
                    assert page.locator("pre code").count() >= 4
                page.screenshot(path=str(artefacts / shot))
                pixels = Image.open(artefacts / shot).convert("RGB")
                assert pixels.size == (1200, 900)
                colours = pixels.resize((60, 45)).getcolors(60 * 45)
                assert colours is not None and len(colours) > 20, "the screenshot is (nearly) blank"
        finally:
            browser.close()


# ---------------------------------------------------------------------------- README


def test_readme_is_short_and_its_links_resolve():
    import re

    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [link for link in links if "://" not in link]
    assert local, "the README links into the docs"
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, f"README links to missing files: {missing}"
    for line in (".[dev]", "rrsis demo", "python -m pytest"):  # the set-up .ci/run repeats
        assert line in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -e ".[dev]"' in ci and "python -m pytest" in ci and "mkdocs build --strict" in ci
