"""What ``rrsis app`` tells its user: the warnings ``rrsis predict`` prints shown on the page, the
library's messages in the page's words (the upload's own name, the page's fields), and a 16-bit PNG
read as a 16-bit GeoTIFF is."""

import shutil
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rrsis.app import Limits
from rrsis.app.inference import STRETCH, value_type
from rrsis.app.session import Workspace, respond
from rrsis.app.wording import collected_warnings, page_words
from rrsis.scene import segment_scene
from rrsis.scene.read import open_scene

TEXT = "the largest building"


@pytest.fixture()
def workspace():
    with Workspace() as ws:
        yield ws


def uploaded(ws: Workspace, path: Path) -> str:
    """``path`` as the server stores an upload: inside the workspace, in a folder of its own."""
    folder = ws.uploads / "5af00ef53bf6af93dd75"
    folder.mkdir(exist_ok=True)
    return shutil.copy(path, folder / path.name)


def png16(path: Path, seed=0, h=40, w=56) -> np.ndarray:
    values = np.random.default_rng(seed).integers(0, 12000, (h, w), dtype=np.uint16)
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I;16")
    return values


# ------------------------------------------------------------------ warnings on the page
def notes(message: str) -> list[str]:
    return [part[len("Note: "):] for part in message.split("\n\n") if part.startswith("Note: ")]


def test_an_expression_the_vocabulary_does_not_know_is_noted_on_every_request(tiny_model, workspace, tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    for _ in range(2):  # a warning shown once per place in the code would miss the second request
        r = respond(tiny_model, workspace, Limits(), uploaded(workspace, tmp_path / "a.png"),
                    f"{TEXT}\nzzzz qqqq", "global", 0.5)
        assert r.ok
        assert notes(r.message) == [("expression 2: no word of 'zzzz qqqq' is in the model's vocabulary (every "
                                    "token is [UNK]): the model reads no expression")]
    ok = respond(tiny_model, workspace, Limits(), uploaded(workspace, tmp_path / "a.png"), TEXT, "global", 0.5)
    assert ok.ok and notes(ok.message) == []


def test_words_the_vocabulary_does_not_know_are_noted_once_per_expression(tiny_model, workspace, tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    r = respond(tiny_model, workspace, Limits(), uploaded(workspace, tmp_path / "a.png"),
                f"{TEXT}\nthe smalest 最小的 building\nthe smalest tank", "global", 0.5)
    assert r.ok
    said = notes(r.message)
    assert [n.split(":")[0] for n in said] == ["expression 2", "expression 3"]
    assert "words not in the model's vocabulary: 'smalest', '最小的'; the model does not read them" in said[0]
    assert "words not in the model's vocabulary: 'smalest'; the model does not read them" in said[1]


def test_the_bands_an_undeclared_raster_is_read_with_are_noted_by_its_name(tiny_model, workspace, tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from affine import Affine

    path = tmp_path / "four.tif"
    with rasterio.open(path, "w", driver="GTiff", height=48, width=64, count=4, dtype="uint16",
                       crs="EPSG:32611", transform=Affine(2.0, 0, 440720.0, 0, -2.0, 3751320.0)) as ds:
        ds.write(np.random.default_rng(1).integers(0, 10000, (4, 48, 64), dtype=np.uint16))
    r = respond(tiny_model, workspace, Limits(), uploaded(workspace, path), TEXT, "global", 0.5)
    assert r.ok, r.message
    values, bands = notes(r.message)
    assert values == "four.tif holds uint16 values: stretched 2–98 % band by band (the model records no pixel scale)"
    assert bands.startswith("four.tif: 4 bands, none declared red, green or blue; an RGB model reads bands (1, 2, 3) "
                            "(the Bands field chooses others, e.g. 4,3,2")
    assert str(workspace.root) not in r.message and "bands=" not in r.message and "\n" not in bands


def test_warnings_are_collected_per_thread():
    got = {}

    def request(name):
        with collected_warnings() as caught:
            time.sleep(0.05)  # both threads inside at once
            warnings.warn(f"about {name}", UserWarning, stacklevel=1)
            time.sleep(0.05)
        got[name] = caught

    threads = [threading.Thread(target=request, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == {"a": ["about a"], "b": ["about b"]}
    with pytest.warns(UserWarning, match="outside"):  # outside a request: shown as before
        warnings.warn("outside", UserWarning, stacklevel=1)


# ------------------------------------------------------------------ the page's words
def test_messages_name_the_upload_and_the_pages_fields(tmp_path):
    root = tmp_path / "rrsis-app-x"
    msg = (f"{root}/uploads/5af0/nocrs.tif: the raster has a transform but no CRS, so its outputs cannot be "
           "placed on a map; give its CRS with crs= (rrsis predict --crs, e.g. EPSG:32633) for a mask GeoTIFF "
           "and GeoJSON, or crs='none' (--crs none) for PNG outputs without georeference")
    assert page_words(msg, root) == (
        "nocrs.tif: the raster has a transform but no CRS, so its outputs cannot be placed on a map; give its "
        "CRS in the CRS field (e.g. EPSG:32633) for a mask GeoTIFF and GeoJSON, or none in the CRS field for "
        "PNG outputs without georeference")
    assert page_words("text 0: cut", root) == "expression 1: cut"
    # Both ways the band rule words a band list of the wrong length.
    for said in ("a.tif: bands=(1, 2, 3) names 3 band(s) but the model takes 4 (in_chans=4)",
                 "a.tif: bands (1, 2, 3) names 3 band(s) but the model takes 4"):
        assert page_words(said, root).startswith("a.tif: the Bands field (1,2,3) names 3 band(s) but the model takes 4")



def test_a_band_count_refusal_and_the_band_names_note_name_the_bands_field(tmp_path):
    """The library's refusal of a raster of more bands than the model reads, and its note on a raster
    described with other names than the model's, name bands= / --bands: the page names its field."""
    from rrsis.data.band_names import unnamed_read_note
    from rrsis.data.bands import band_count_problem

    root = tmp_path / "rrsis-app-x"
    refusal = page_words(band_count_problem(f"{root}/uploads/5af0/six.tif", "raster", 6, 4), root)
    assert refusal.startswith("six.tif: the raster has 6 band(s) but the model takes 4")
    assert refusal.endswith("give the Bands field 4 band numbers counted from 1, the model's bands in the order it "
                            "was trained on, e.g. 1,2,3,4")
    note = page_words(unnamed_read_note(["B02", "B03", "B04", "B05"], ["B04", "B03", "B02", "B08"], [False] * 4, 4,
                                        f"{root}/uploads/5af0/four.tif"), root)
    assert note.startswith("four.tif: the model reads bands described B04, B03, B02, B08")
    assert note.endswith("choose them in the Bands field in the model's order")
    assert "bands=" not in refusal + note and "--bands" not in refusal + note


def test_a_geotiff_without_a_crs_is_refused_by_its_name_and_the_crs_field(tiny_model, workspace, tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from affine import Affine

    path = tmp_path / "nocrs.tif"
    with rasterio.open(path, "w", driver="GTiff", height=32, width=40, count=3, dtype="uint8",
                       transform=Affine(2.0, 0, 440720.0, 0, -2.0, 3751320.0)) as ds:
        ds.write(np.zeros((3, 32, 40), np.uint8))
    r = respond(tiny_model, workspace, Limits(), uploaded(workspace, path), TEXT, "global", 0.5)
    assert not r.ok
    assert r.message.startswith("**Cannot run this request:** nocrs.tif: the raster has a transform but no CRS")
    assert "in the CRS field (e.g. EPSG:32633)" in r.message
    assert str(workspace.root) not in r.message and "crs=" not in r.message and "--crs" not in r.message


# ------------------------------------------------------------------ a 16-bit PNG
def test_a_16_bit_png_is_stretched_as_a_16_bit_raster_is(tiny_model, workspace, tmp_path):
    values = png16(tmp_path / "grey16.png")
    assert value_type(tmp_path / "grey16.png") == "uint16"
    lo, hi = np.percentile(values.astype(np.float64), STRETCH)
    want = np.clip((values - lo) / (hi - lo), 0, 1)
    got, valid = open_scene(str(tmp_path / "grey16.png"), stretch=STRETCH).read()
    assert valid.all()
    np.testing.assert_allclose(got[:, :, 0], want, atol=1e-6)
    try:  # the same values in a TIFF, read through GDAL with the raster stretch ("auto")
        import rasterio

        with rasterio.open(tmp_path / "grey16.tif", "w", driver="GTiff", height=40, width=56, count=1,
                           dtype="uint16") as ds:
            ds.write(values[None])
        raster, _ = open_scene(str(tmp_path / "grey16.tif")).read()
        np.testing.assert_allclose(got, raster, atol=1e-6)
    except ImportError:
        pass
    with pytest.raises(ValueError, match="needs an explicit scale"):  # read_image's rule without a stretch
        open_scene(str(tmp_path / "grey16.png"))

    r = respond(tiny_model, workspace, Limits(), uploaded(workspace, tmp_path / "grey16.png"), TEXT, "global", 0.5)
    assert r.ok, r.message
    assert notes(r.message) == [("grey16.png holds uint16 values: stretched 2–98 % band by band (the model "
                                "records no pixel scale)")]


def test_a_16_bit_rgb_png_is_noted_and_stretched_as_a_16_bit_image(tiny_model, workspace, tmp_path):
    """PIL reads a 16-bit RGB PNG as 8-bit (high bytes): the app reads its own values, with the note."""
    rasterio = pytest.importorskip("rasterio")
    values = np.random.default_rng(3).integers(0, 4000, (3, 40, 56)).astype(np.uint16)
    with rasterio.open(tmp_path / "rgb16.png", "w", driver="PNG", height=40, width=56, count=3, dtype="uint16") as ds:
        ds.write(values)
    got, _ = open_scene(str(tmp_path / "rgb16.png"), stretch=STRETCH).read()
    lo, hi = np.percentile(values[0].astype(np.float64), STRETCH)
    np.testing.assert_allclose(got[:, :, 0], np.clip((values[0] - lo) / (hi - lo), 0, 1), atol=1e-6)
    r = respond(tiny_model, workspace, Limits(), uploaded(workspace, tmp_path / "rgb16.png"), TEXT, "global", 0.5)
    assert r.ok, r.message
    assert notes(r.message) == [("rgb16.png holds uint16 values: stretched 2–98 % band by band (the model "
                                "records no pixel scale)")]


def test_a_16_bit_png_is_read_with_the_models_recorded_scale(tiny_model, workspace, tmp_path, monkeypatch):
    png16(tmp_path / "grey16.png")
    monkeypatch.setitem(tiny_model._config["backbone"], "scale", "dtype")  # as rrsis train records it
    assert tiny_model.pixel_scale == "dtype"
    r = respond(tiny_model, workspace, Limits(), uploaded(workspace, tmp_path / "grey16.png"), TEXT, "global", 0.3)
    assert r.ok, r.message
    (want,) = segment_scene(tiny_model, str(tmp_path / "grey16.png"), TEXT, mode="global", threshold=0.3,
                            scale="dtype", return_mask=True)
    (mask,) = [f for f in r.files if f.endswith("_mask.png")]
    np.testing.assert_array_equal(np.asarray(Image.open(mask)) > 0, want.mask)
    assert notes(r.message) == [("grey16.png holds uint16 values: read with the model's recorded pixel scale "
                                "('dtype', its training images')")]
