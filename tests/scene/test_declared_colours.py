"""A raster's declared red, green and blue bands (GDAL colour interpretation or band
descriptions): read as R, G, B by an RGB model whatever their order, and where the object mode
measures colour, for a model of any band count (:func:`rrsis.data.bands.declared_rgb`,
:func:`~rrsis.data.bands.rgb_positions`, ``Scene.rgb``)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from rrsis.data.bands import rgb_positions
from rrsis.scene import open_scene, segment_scene
from rrsis.scene.colour import PROTOTYPES
from rrsis.scene.components import ComponentBuilder
from rrsis.scene.rank import object_scores
from rrsis.scene.reading import read_expression

rasterio = pytest.importorskip("rasterio")
from rasterio.enums import ColorInterp as CI

RGBN = [CI.red, CI.green, CI.blue, CI.undefined]


def _scene_rgb(seed: int = 3) -> np.ndarray:
    """``[H, W, 3]`` uint8 of coloured squares, as the colour tests' scenes."""
    rng = np.random.default_rng(seed)
    palette = np.array([PROTOTYPES[c] for c in ("white", "gray", "red", "green", "blue", "black")], np.uint8)
    image = np.kron(palette[rng.integers(len(palette), size=(8, 8))], np.ones((16, 16, 1), np.uint8))
    return np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)


def _write(path, planes: np.ndarray, colours=None, descriptions=None) -> str:
    """A GeoTIFF of ``planes [C, H, W]`` declaring ``colours`` (else grey, nothing declared)."""
    c, h, w = planes.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=c, dtype=planes.dtype,
                       crs="EPSG:32633", transform=rasterio.transform.from_origin(500000, 4000000, 1, 1),
                       photometric="MINISBLACK") as ds:
        ds.write(planes)
        if colours is not None:
            ds.colorinterp = colours
        for i, d in enumerate(descriptions or (), 1):
            ds.set_band_description(i, d)
    return str(path)


def test_rgb_positions():
    assert rgb_positions((1, 2, 3), None) == (0, 1, 2)
    assert rgb_positions((1, 2, 3, 4), None) is None
    assert rgb_positions((1,), None, grey=True) == (0, 1, 2)
    assert rgb_positions((1,), None) is None
    assert rgb_positions((3, 2, 1, 4), (1, 2, 3)) == (2, 1, 0)
    assert rgb_positions((4, 1, 2), (1, 2, 3)) is None  # blue not read: no colour
    assert rgb_positions((1, 2, 3, 4), (3, 2, 1)) == (2, 1, 0)


@pytest.mark.parametrize(("planes", "colours", "descriptions", "bands"), [
    ("bgr", [CI.blue, CI.green, CI.red], None, (3, 2, 1)),
    ("bgrn", [CI.blue, CI.green, CI.red, CI.undefined], None, (3, 2, 1)),
    ("nrgb", [CI.undefined, CI.red, CI.green, CI.blue], None, (2, 3, 4)),
    ("bgrn", None, ["Blue", "Green", "Red", "NIR"], (3, 2, 1)),
    ("rgbn", None, None, (1, 2, 3)),  # nothing declared: the first three, as before
])
def test_an_rgb_model_reads_the_declared_bands(tmp_path, planes, colours, descriptions, bands):
    rgb = _scene_rgb()
    source = {"r": rgb[..., 0], "g": rgb[..., 1], "b": rgb[..., 2], "n": rgb.mean(axis=2).astype(np.uint8)}
    path = _write(tmp_path / f"{planes}.tif", np.stack([source[k] for k in planes]), colours, descriptions)
    with open_scene(path) as sc:
        assert sc.bands == bands and sc.rgb == (0, 1, 2)
        img, _ = sc.read()
    want = np.stack([source[k] for k in planes], axis=2)[..., [b - 1 for b in bands]] / 255.0
    np.testing.assert_allclose(img, want, atol=1e-6)
    if planes == "bgr":
        np.testing.assert_allclose(img, rgb / 255.0, atol=1e-6)


def test_a_declared_bgr_scene_gives_the_rgb_scenes_answer(tiny_model, tmp_path):
    """The same pixels stored R, G, B and B, G, R (declared) give one mask and one reading: the
    model sees R, G, B and the colour is measured on red, green and blue in both."""
    rgb = _scene_rgb()
    a = _write(tmp_path / "rgb.tif", np.moveaxis(rgb, 2, 0), [CI.red, CI.green, CI.blue])
    b = _write(tmp_path / "bgrn.tif", np.concatenate([np.moveaxis(rgb[..., ::-1], 2, 0), rgb[None, ..., 0]]),
               [CI.blue, CI.green, CI.red, CI.undefined])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # declared bands: no "4 bands; an RGB model reads (1, 2, 3)"
        (rb,) = segment_scene(tiny_model, b, "the white tank", mode="object", threshold=0.3, return_mask=True)
    (ra,) = segment_scene(tiny_model, a, "the white tank", mode="object", threshold=0.3, return_mask=True)
    assert ra.reading == rb.reading == "1 object, white"
    assert ra.mask.any()
    np.testing.assert_array_equal(ra.mask, rb.mask)


def test_a_four_band_model_reads_colour_on_the_declared_bands(tiny_tokenizer, tmp_path):
    import torch

    import rrsis

    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tiny_tokenizer), in_chans=4,
                               mean=[0.4] * 4, std=[0.2] * 4).eval()
    model.tokenizer = tiny_tokenizer
    rgb = np.moveaxis(_scene_rgb(), 2, 0)
    planes = np.concatenate([rgb[::-1], rgb[:1]])  # B, G, R, NIR
    declared = _write(tmp_path / "bgrn.tif", planes, [CI.blue, CI.green, CI.red, CI.undefined])
    with open_scene(declared, channels=4) as sc:
        assert sc.bands == (1, 2, 3, 4) and sc.rgb == (2, 1, 0)
    (r,) = segment_scene(model, declared, "the white tank", mode="object", threshold=0.3, read="colour")
    assert r.reading == "1 object, white"
    # 16-bit, read with a value scaling: the colour is judged on the displayed (stretched) values.
    deep = _write(tmp_path / "bgrn16.tif", planes.astype(np.uint16) * 12, [CI.blue, CI.green, CI.red, CI.undefined])
    (d,) = segment_scene(model, deep, "the white tank", mode="object", threshold=0.3, read="colour", scale="dtype")
    assert d.reading == "1 object, white"
    # Bands chosen without the declared blue: no colour, and the reading says so.
    (s,) = segment_scene(model, declared, "the white tank", mode="object", threshold=0.3, read="colour",
                         bands="4,2,3,3")
    assert s.reading == "1 object, white (no colour: the scene's red, green and blue are not read)"


def test_object_scores_measure_the_colour_where_red_green_and_blue_lie():
    """Four bands stored B, G, R, NIR with ``rgb = (2, 1, 0)``: the colour is that of the named
    bands; without ``rgb`` (a four-band scene declaring none) it is not measured."""
    shape = (50, 60)
    boxes = [(5, 15, 5, 15, 0.95, (0.5, 0.5, 0.52)), (5, 15, 40, 50, 0.8, (0.93, 0.93, 0.9)),
             (30, 40, 5, 15, 0.9, (0.7, 0.2, 0.15))]
    prob = np.zeros(shape, np.float32)
    image = np.zeros((*shape, 4), np.float32)
    for y0, y1, x0, x1, p, (r, g, b) in boxes:
        prob[y0:y1, x0:x1] = p
        image[y0:y1, x0:x1] = (b, g, r, 0.6)
    builder = ComponentBuilder(shape[1], 4, 0.5)
    builder.add(0, prob, image)
    comps = builder.finish(shape[0])
    assert comps.rgb is None  # four bands, none declared
    assert np.flatnonzero(object_scores(comps, 1, read_expression("the red tank"))).tolist() == [0]
    comps.rgb = (2, 1, 0)
    for text, want in (("the white tank", 1), ("the red tank", 2), ("the gray tank", 0)):
        assert np.flatnonzero(object_scores(comps, 1, read_expression(text))).tolist() == [want], text


def test_the_overlay_of_a_four_band_scene_shows_its_declared_colours(tmp_path):
    """A B, G, R, NIR raster read for a four-band model: the quick-look picture is in true colour
    (its red, green and blue), not its first three bands."""
    from PIL import Image

    from rrsis.scene.write import write_overlay

    rgb = _scene_rgb()
    planes = np.concatenate([np.moveaxis(rgb[..., ::-1], 2, 0), rgb[None, ..., 1]])
    path = _write(tmp_path / "bgrn.tif", planes, [CI.blue, CI.green, CI.red, CI.undefined])
    with open_scene(path, channels=4) as sc:
        write_overlay(tmp_path / "o.png", sc, np.zeros((sc.height, sc.width), bool))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o.png").convert("RGB")), rgb)


def test_a_mosaic_keeps_its_tiles_declared_colours_and_refuses_two_orders(tmp_path):
    """Tiles that declare B, G, R by their descriptions only: the mosaic declares them by colour,
    so it is read as R, G, B as each tile is; a tile in another declared order is named."""
    from rrsis.scene.mosaic import build_vrt

    rgb = _scene_rgb()[:64, :64]
    bgr = np.moveaxis(rgb[..., ::-1], 2, 0)
    for i, name in enumerate("ab"):
        _write(tmp_path / f"{name}.tif", bgr[:, :, 32 * i:32 * (i + 1)], descriptions=["blue", "green", "red"])
        with rasterio.open(tmp_path / f"{name}.tif", "r+") as ds:  # side by side on one grid
            ds.transform = rasterio.transform.from_origin(500000 + 32 * i, 4000000, 1, 1)
    vrt = build_vrt([tmp_path / "a.tif", tmp_path / "b.tif"], tmp_path / "m.vrt")
    with open_scene(str(vrt)) as sc:
        assert sc.bands == (3, 2, 1)
        np.testing.assert_allclose(sc.read()[0], rgb / 255.0, atol=1e-6)
    _write(tmp_path / "c.tif", bgr[:, :, :32], [CI.red, CI.green, CI.blue])
    with rasterio.open(tmp_path / "c.tif", "r+") as ds:
        ds.transform = rasterio.transform.from_origin(500000 + 32, 4000000, 1, 1)
    with pytest.raises(ValueError, match=r"c\.tif has red, green, blue in bands \(1, 2, 3\), .*a\.tif in \(3, 2, 1\)"):
        build_vrt([tmp_path / "a.tif", tmp_path / "c.tif"], tmp_path / "m2.vrt")


def test_the_advice_for_an_undeclared_raster_declares_it(tmp_path, tiny_model):
    """The warning's ``rio edit-info --colorinterp`` line, run on a B, G, R, NIR file with the
    bands' own names, makes the scene reader take bands 3, 2, 1, with no warning."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    rgb = _scene_rgb()
    path = _write(tmp_path / "bgrn.tif", np.concatenate([np.moveaxis(rgb[..., ::-1], 2, 0), rgb[None, ..., 0]]))
    with pytest.warns(UserWarning, match=r"4 bands, none declared red, green or blue; an RGB model reads bands "
                      r"\(1, 2, 3\) .* rio edit-info --colorinterp red,green,blue,undefined FILE\)"):
        segment_scene(tiny_model, path, "the tank", mode="global")
    rio = shutil.which("rio", path=str(Path(sys.executable).parent)) or shutil.which("rio")
    if rio is None:
        pytest.skip("rasterio's rio command is not on the path")
    subprocess.run([rio, "edit-info", "--colorinterp", "blue,green,red,undefined", path], check=True)
    with open_scene(path) as sc:
        assert sc.bands == (3, 2, 1) and sc.declared == (3, 2, 1)
        np.testing.assert_allclose(sc.read()[0], rgb / 255.0, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        segment_scene(tiny_model, path, "the tank", mode="global")
