"""``rrsis app`` without a browser (rrsis/app/, rrsis/cli/app.py): the inference adapter, the
limits, a request's response, the workspace, the model-card panel and the command line."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rrsis.app import DEFAULT_MODEL, InputError, Limits, resolve_model, run
from rrsis.app.card import read_card, summarise
from rrsis.app.examples import write_examples
from rrsis.app.inference import is_georeferenced
from rrsis.app.limits import check_upload, parse_expressions
from rrsis.app.session import Workspace, respond
from rrsis.cli import main
from rrsis.pictures import overlay


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model


@pytest.fixture(scope="module")
def model_dir(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("app-model") / "tiny"
    model.save_pretrained(path, metrics={"oIoU": 0.61, "mIoU": 0.58, "P@0.5": 0.5}, dataset="synthetic-scenes")
    return path


@pytest.fixture()
def workspace():
    with Workspace() as ws:
        yield ws


def png(path, h=48, w=72, seed=0, mode="RGB"):
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).convert(mode).save(path)
    return path


def geotiff(path, h=32, w=32):
    """A TIFF with GeoTIFF tags (pixel scale and tie point), written by PIL."""
    arr = np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, tiffinfo={33550: (0.5, 0.5, 0.0), 33922: (0.0, 0.0, 0.0, 500000.0, 4.6e6, 0.0)})
    return path


# ---------------------------------------------------------------- the adapter
def test_adapter_writes_the_mask_and_overlay_of_model_predict(model, tmp_path):
    image_path = png(tmp_path / "scene.png")
    texts = ["the red building", "all storage tanks"]
    # A threshold at the median probability, so the masks have structure to compare.
    pix, sizes = model.preprocess(image_path)
    tok = model.tokenizer(texts[:1])
    with torch.no_grad():
        logits = model(pix, tok["input_ids"], tok["attention_mask"]).logits
    thr = float(np.median(model.postprocess(logits, sizes, output="probability")[0]))
    results = run(model, image_path, texts, mode="global", threshold=thr, workdir=tmp_path)
    image = np.asarray(Image.open(image_path).convert("RGB"))
    assert [r.text for r in results] == texts
    for r, text in zip(results, texts):
        # Equal by construction: the app runs segment_scene, whose global mode goes through the
        # model's own preprocess/postprocess, as predict does (tests/scene/test_scene.py checks the kinds).
        expected = model.predict([image], [text], threshold=thr)[0]
        assert 0 < expected.sum() < expected.size, "the test needs a mask with structure"
        mask = np.asarray(Image.open(r.mask_png))
        np.testing.assert_array_equal(mask, expected.astype(np.uint8) * 255)
        np.testing.assert_array_equal(np.asarray(Image.open(r.overlay_png)), overlay(image, expected))
        assert r.area_px == int(expected.sum())
        assert r.mask_png.parent == tmp_path and r.seconds >= 0
        assert r.mask_tif is None and r.geojson is None and r.area_m2 is None
    assert results[0].mask_png != results[1].mask_png


def test_download_names_keep_the_letters_of_every_script(model, tmp_path):
    """Unicode letters and digits stay (lower-cased), whatever the script; what a file name may not
    hold on Windows, macOS or Linux, and spaces, become one "-"; names stay short."""
    import warnings

    texts = ["thé búilding", "最大的储罐 2", "السفينة البيضاء", "το πλοίο", "Größtes Gebäude",
             'a/b\\c:d*e?f"g<h>i|j', "?!", "x" * 60]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # words the tiny vocabulary lacks: not the point here
        results = run(model, png(tmp_path / "scene.png"), texts, mode="global", workdir=tmp_path)
    names = [r.mask_png.name for r in results]
    assert names == ["01_thé-búilding_mask.png", "02_最大的储罐-2_mask.png", "03_السفينة-البيضاء_mask.png",
                     "04_το-πλοίο_mask.png", "05_größtes-gebäude_mask.png", "06_a-b-c-d-e-f-g-h-i-j_mask.png",
                     "07_expression_mask.png", f"08_{'x' * 40}_mask.png"]
    assert all(r.mask_png.is_file() for r in results)
    decomposed = run(model, png(tmp_path / "scene.png"), ["the\u0301 ship"], mode="global", workdir=tmp_path / "d")
    assert decomposed[0].mask_png.name == "01_thé-ship_mask.png"  # an accent as a combining mark: composed


def test_adapter_threshold_changes_the_area(model, tmp_path):
    image_path = png(tmp_path / "scene.png")
    low, high = (run(model, image_path, ["the plane"], threshold=t, workdir=tmp_path)[0] for t in (0.05, 0.95))
    assert low.area_px > high.area_px  # this random model: everything at 0.05, nothing at 0.95


def test_adapter_modes_and_what_it_refuses(model, tmp_path):
    tif = geotiff(tmp_path / "scene.tif")
    plain = tmp_path / "plain.tif"
    Image.open(png(tmp_path / "p.png")).save(plain)
    assert is_georeferenced(tif) and not is_georeferenced(plain)
    assert len(run(model, plain, ["the ship"], workdir=tmp_path)) == 1  # a plain TIFF is an image
    for mode in ("tiles", "global-local"):
        (tmp_path / mode).mkdir()
        (r,) = run(model, plain, ["the ship"], mode=mode, workdir=tmp_path / mode)
        assert np.asarray(Image.open(r.mask_png)).shape == (48, 72)
        assert r.area_px == int((np.asarray(Image.open(r.mask_png)) > 0).sum())
    with pytest.raises(InputError, match="unknown mode 'patch'"):
        run(model, plain, ["the ship"], mode="patch", workdir=tmp_path)
    with pytest.raises(InputError, match="expression 1 is empty"):
        run(model, plain, ["the ship", " "], workdir=tmp_path)
    with pytest.raises(InputError, match="no expression"):
        run(model, plain, [], workdir=tmp_path)
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(InputError, match="cannot read"):
        run(model, tmp_path / "notes.png", ["the ship"], workdir=tmp_path)


def test_adapter_without_the_geo_extra_names_it(model, tmp_path, monkeypatch):
    tif = geotiff(tmp_path / "scene.tif")
    for name in [m for m in sys.modules if m == "rasterio" or m.startswith("rasterio.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "rasterio", None)  # import rasterio -> ImportError
    with pytest.raises(InputError, match=r'GeoTIFF.*pip install "rrsis\[geo\]"'):
        run(model, tif, ["the ship"], workdir=tmp_path)


# ---------------------------------------------------------------- limits
def test_parse_expressions_one_per_line_within_limits():
    limits = Limits(max_expressions=2, max_expression_chars=10)
    assert parse_expressions("  a tank \n\n the ship\n", limits) == ["a tank", "the ship"]
    for text, message in [("", "no expression"), (" \n \n", "no expression"), (None, "no expression"),
                          ("a\nb\nc", "3 expressions; the limit is 2"),
                          ("ok\nthe very long one", "expression 2 is 17 characters long; the limit is 10")]:
        with pytest.raises(InputError, match=message):
            parse_expressions(text, limits)


def test_check_upload_reads_only_the_header_and_names_each_limit(tmp_path):
    small = png(tmp_path / "small.png", 20, 30)
    assert check_upload(small, Limits()) == (30, 20)
    big = tmp_path / "big.png"
    Image.new("RGB", (3000, 2000)).save(big)  # 6 M pixels in a few KiB
    with pytest.raises(InputError, match="too large: 3000×2000 = 6,000,000 pixels; the limit is 1,000,000"):
        check_upload(big, Limits(max_pixels=1_000_000))
    with pytest.raises(InputError, match=r"the file is 0\.0 MiB; the limit is 0\.0 MiB"):
        check_upload(big, Limits(max_upload_mb=1e-6))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InputError, match="notes.txt is not an image the app can read"):
        check_upload(text, Limits())
    with pytest.raises(InputError, match="no image"):
        check_upload(None, Limits())
    with pytest.raises(InputError, match="gone from the server"):
        check_upload(tmp_path / "missing.png", Limits())
    with pytest.raises(ValueError, match="concurrency must be positive"):
        Limits(concurrency=0)


# ---------------------------------------------------------------- a request
def test_respond_success_lists_areas_files_and_time(model, workspace, tmp_path):
    image = png(tmp_path / "scene.png", 40, 50)
    r = respond(model, workspace, Limits(), str(image), "the red building\nthe ship", "global", 0.5)
    assert r.ok and len(r.gallery) == 2 and len(r.files) == 2
    masks = [np.asarray(Image.open(f)) > 0 for f in r.files]
    rows = [ln.split("|") for ln in r.table.splitlines()[2:]]
    assert [int(row[3]) for row in rows] == [int(m.sum()) for m in masks]
    assert [row[2].strip() for row in rows] == ["the red building", "the ship"]
    assert "on a 50×40 image" in r.message and r.message.endswith("s in all")
    assert all(Path(f).is_relative_to(workspace.root) for f in r.files)


@pytest.mark.parametrize("upload, text, message", [
    ("good", "   \n", "no expression"),
    ("text", "the ship", "notes.txt is not an image"),
    ("big", "the ship", "too large"),
    (None, "the ship", "no image"),
])
def test_respond_turns_bad_input_into_a_message(model, workspace, tmp_path, upload, text, message):
    files = {"good": png(tmp_path / "good.png"), "geo": geotiff(tmp_path / "scene.tif"), None: None}
    files["text"] = tmp_path / "notes.txt"
    files["text"].write_text("hello")
    files["big"] = tmp_path / "big.png"
    Image.new("RGB", (800, 700)).save(files["big"])
    r = respond(model, workspace, Limits(max_pixels=500_000), files[upload], text, "global", 0.5)
    assert not r.ok and message in r.message and r.message.startswith("**Cannot run this request:**")
    assert r.gallery == [] and r.files == [] and r.table == ""


def test_respond_survives_a_failing_model(model, workspace, tmp_path):
    class Broken(torch.nn.Module):
        image_size, size_divisor = 64, 32

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.tokenizer = model.tokenizer

        def encode_text(self, *a, **k):
            raise RuntimeError("out of memory")

    r = respond(Broken(), workspace, Limits(), str(png(tmp_path / "a.png")), "the ship", "global", 0.5)
    assert not r.ok and "RuntimeError: out of memory" in r.message and "still running" in r.message


def test_workspace_keeps_recent_request_folders_and_is_removed():
    ws = Workspace(keep=3)
    dirs = [ws.request_dir() for _ in range(5)]
    assert [d.exists() for d in dirs] == [False, False, True, True, True]
    ws.close()
    assert not ws.root.exists()


# ---------------------------------------------------------------- model card and examples
def test_card_panel_reads_name_size_data_and_metrics(model, model_dir):
    card = summarise(model, model_dir)
    assert card.name == "gl-msin-tiny"
    assert card.parameters == sum(p.numel() for p in model.parameters())
    assert card.training_data == "synthetic-scenes"
    assert card.metrics == {"oIoU": "0.61", "mIoU": "0.58", "P@0.5": "0.5"}
    assert "visual backbone" in card.facts and "parameters" not in card.facts
    text = card.markdown()
    assert f"{card.parameters:,}" in text and "| oIoU | 0.61 |" in text and "synthetic-scenes" in text
    assert "| P&#64;0.5 | 0.5 |" in text and "P@" not in text  # not rendered as a mail link


def test_card_panel_without_a_card(model, tmp_path):
    card = summarise(model, tmp_path)
    assert card.metrics == {} and card.training_data is None
    assert "not recorded in the model card" in card.markdown()
    facts, metrics, dataset = read_card("---\ndatasets:\n- refsegrs\n---\n# x\n")
    assert dataset == "refsegrs" and facts == {} and metrics == {}


def test_example_scenes_are_generated_images_with_expressions(tmp_path):
    examples = write_examples(tmp_path, 2, size=64)
    assert len(examples) == 2
    for path, texts in examples:
        assert Image.open(path).size == (64, 64) and all(t.strip() for t in texts.splitlines())


# ---------------------------------------------------------------- command line
def test_default_model_is_the_demo_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no demo model at .*rrsis-demo/gl-msin/final.*rrsis demo"):
        resolve_model(None)
    (tmp_path / DEFAULT_MODEL).mkdir(parents=True)
    (tmp_path / DEFAULT_MODEL / "config.json").write_text("{}")
    assert resolve_model(None) == str(DEFAULT_MODEL)
    assert resolve_model("org/repo") == "org/repo"


def test_cli_says_how_to_install_gradio(model_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio → ImportError
    assert main(["app", "--model", str(model_dir)]) == 2
    assert 'pip install "rrsis[app]"' in capsys.readouterr().err


def test_cli_without_a_model_says_where_it_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["app"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / DEFAULT_MODEL) in err and "rrsis demo" in err


def test_cli_binds_loopback_by_default():
    from rrsis.cli import build_parser

    args = build_parser().parse_args(["app"])
    assert (args.host, args.port, args.model) == ("127.0.0.1", 7860, None)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["app", "--port", "x"])


def test_a_geotiff_pil_cannot_decode_gets_gis_outputs(model, workspace, tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    path = tmp_path / "scene.tif"
    transform = from_origin(500000, 4.6e6, 0.5, 0.5)
    with rasterio.open(path, "w", driver="GTiff", width=64, height=48, count=4, dtype="uint16",
                       crs="EPSG:32631", transform=transform) as ds:
        ds.write(np.random.default_rng(0).integers(0, 4000, (4, 48, 64)).astype(np.uint16))
    with pytest.raises(OSError):
        Image.open(path)  # 4 bands of 16 bits: PIL reads no pixels, only the header's tags
    assert check_upload(path, Limits()) == (64, 48) and is_georeferenced(path)
    (res,) = run(model, path, ["the ship"], threshold=0.3, workdir=tmp_path)
    assert res.mask_png is None and res.geojson.exists() and res.overlay_png.exists()
    with rasterio.open(res.mask_tif) as ds:
        assert (ds.crs.to_epsg(), ds.transform, ds.shape) == (32631, transform, (48, 64))
        area = int((ds.read(1) > 0).sum())
    assert res.area_px == area and res.area_m2 == pytest.approx(area * 0.25)
    r = respond(model, workspace, Limits(), str(path), "the ship", "global", 0.3)
    assert r.ok and any(f.endswith(".geojson") for f in r.files) and "area (m²)" in r.table
