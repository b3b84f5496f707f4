"""rrsis.scene.write_chips(bands=...): chips of the bands a model takes, in their order.

The references are the scene's pixels as written here (numpy), read back with rasterio and PIL
directly, and the scene reader ``rrsis predict`` uses (``open_scene``), which the chip writer
must agree with: what a model trains on is what it is later given.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
shapely = pytest.importorskip("shapely")
pytest.importorskip("pyogrio")

from affine import Affine
from PIL import Image
from pyogrio.raw import write
from shapely.geometry import box

from rrsis.data import build_dataset, read_image
from rrsis.data.bands import parse_bands
from rrsis.scene import open_scene, write_chips

UTM = "EPSG:32633"
T = Affine(0.5, 0, 400000.0, 0, -0.5, 4600064.0)
NAMES = ("blue", "green", "red", "nir")


def _scene(path, dtype, seed=0):
    """A 128² four-band scene (blue, green, red, nir: bands 1-4) of random values, no alpha."""
    top = 4000 if dtype == "uint16" else 250
    data = np.random.default_rng(seed).integers(1, top, (4, 128, 128)).astype(dtype)
    with rasterio.open(path, "w", driver="GTiff", height=128, width=128, count=4, dtype=dtype, crs=UTM,
                       transform=T, photometric="MINISBLACK") as ds:
        ds.write(data)
        ds.descriptions = NAMES
    return str(path), data


def _labels(path):
    """Two polygons far apart (columns, rows of the scene), each its own expression."""
    boxes = [box(10, 10, 30, 30), box(80, 70, 100, 100)]
    geoms = [shapely.affinity.affine_transform(b, [T.a, T.b, T.d, T.e, T.c, T.f]) for b in boxes]
    write(str(path), np.array([shapely.to_wkb(g) for g in geoms], dtype=object),
          [np.array(["the tank", "the roof"], dtype=object)], ["text"], driver="GPKG", crs=UTM,
          geometry_type="Polygon")
    return str(path)


@pytest.fixture
def ms(tmp_path):
    tif, data = _scene(tmp_path / "ms.tif", "uint16")
    return {"tif": tif, "data": data, "labels": _labels(tmp_path / "l.gpkg")}


def _meta(out):
    return json.loads((out / "chips.json").read_text())


def test_geotiff_chips_hold_the_chosen_bands_in_order(ms, tmp_path, tiny_tokenizer):
    out = tmp_path / "c"
    s = write_chips(ms["tif"], ms["labels"], out, size=64, val=0, test=0, bands="4,3,2")
    assert s.bands == (4, 3, 2) and s.image_format == "tif" and s.counts["train"] == 2
    # 16-bit chips keep their value scaling flag; three bands need no in_chans.
    assert any('"scale": "dtype"' in o for o in s.options) and not any("in_chans" in o for o in s.options)
    meta = _meta(out)
    assert (meta["bands"], meta["scene_band_count"]) == ([4, 3, 2], 4)
    assert meta["band_descriptions"] == ["nir", "red", "green"]
    for c in meta["chips"]:
        r0, c0, r1, c1 = c["window"]
        with rasterio.open(out / "images" / f"{c['id']}.tif") as ds:
            assert (ds.count, ds.dtypes[0], ds.descriptions) == (3, "uint16", ("nir", "red", "green"))
            np.testing.assert_array_equal(ds.read(), ms["data"][[3, 2, 1], r0:r1, c0:c1])
    # risbench reads three channels; the values it trains on are those rrsis predict's reader
    # takes from the scene with the same --bands and scale, at the chip's window.
    data = build_dataset("risbench", str(out), "train", size=64, tokenizer=tiny_tokenizer, scale="dtype")
    assert data[0]["pixel_values"].shape == (3, 64, 64)
    c = meta["chips"][0]
    with open_scene(ms["tif"], bands="4,3,2", scale="dtype") as scene:
        seen, valid = scene.read(tuple(c["window"]))
    assert valid.all()
    np.testing.assert_allclose(read_image(str(out / "images" / f"{c['id']}.tif"), scale="dtype"), seen,
                               rtol=0, atol=1e-6)


def test_four_chosen_bands_ask_for_in_chans_and_the_folder_gives_four(ms, tmp_path, tiny_tokenizer):
    s = write_chips(ms["tif"], ms["labels"], tmp_path / "c", size=64, val=0, test=0, bands=(4, 3, 2, 1))
    assert any("--model.in_chans 4" in o for o in s.options) and s.bands == (4, 3, 2, 1)
    c = _meta(tmp_path / "c")["chips"][1]
    r0, c0, r1, c1 = c["window"]
    chip = str(tmp_path / "c" / "images" / f"{c['id']}.tif")
    with rasterio.open(chip) as ds:
        np.testing.assert_array_equal(ds.read(), ms["data"][[3, 2, 1, 0], r0:r1, c0:c1])
    with open_scene(ms["tif"], bands="4,3,2,1", scale="dtype", channels=4) as scene:  # a 4-band model's read
        np.testing.assert_allclose(read_image(chip, scale="dtype", channels=4), scene.read((r0, c0, r1, c1))[0],
                                   rtol=0, atol=1e-6)
    data = build_dataset("risbench", str(tmp_path / "c"), "train", size=64, tokenizer=tiny_tokenizer,
                         scale="dtype", mean=[0.5] * 4, std=[0.25] * 4)
    assert data[0]["pixel_values"].shape == (4, 64, 64)
    # The chips carry the scene's band descriptions: a model trained on them records the names, by
    # which the scene is then read in the chips' order without bands=.
    assert data.band_names == ["nir", "red", "green", "blue"]
    with open_scene(ms["tif"], scale="dtype", channels=4, names=data.band_names) as scene:
        assert scene.bands == (4, 3, 2, 1)
    # Without bands every band is kept, and chips.json says so.
    s = write_chips(ms["tif"], ms["labels"], tmp_path / "all", size=64, val=0, test=0)
    assert s.bands == (1, 2, 3, 4) and _meta(tmp_path / "all")["band_descriptions"] == list(NAMES)


def test_three_uint8_bands_of_four_make_png_chips(tmp_path, tiny_tokenizer):
    tif, data = _scene(tmp_path / "rgbn.tif", "uint8", seed=1)
    out = tmp_path / "c"
    s = write_chips(tif, _labels(tmp_path / "l.gpkg"), out, size=64, val=0, test=0, bands=[3, 1, 2])
    assert s.image_format == "png" and s.options == [] and s.bands == (3, 1, 2)
    assert sorted(os.listdir(out / "images")) == [f"0000{i}{ext}" for i in (0, 1)
                                                  for ext in (".pgw", ".png", ".png.aux.xml")]  # placed in a GIS
    for c in _meta(out)["chips"]:
        r0, c0, r1, c1 = c["window"]
        with Image.open(out / "images" / f"{c['id']}.png") as im:
            np.testing.assert_array_equal(np.asarray(im), data[[2, 0, 1], r0:r1, c0:c1].transpose(1, 2, 0))
    assert build_dataset("risbench", str(out), "train", size=64, tokenizer=tiny_tokenizer)[0]["pixel_values"].shape \
        == (3, 64, 64)


def test_bad_band_lists_name_the_band_count_and_write_nothing(ms, tmp_path):
    before = sorted(os.listdir(tmp_path))
    out = tmp_path / "c"
    have = re.escape("ms.tif has 4 band(s), counted from 1")
    with pytest.raises(ValueError) as parsed:
        parse_bands("")  # predict's parser: its message, then the scene's band count
    for bands, message in (("", re.escape(f"{parsed.value}; ") + ".*" + have), ([], "at least one band.*" + have),
                           ("4,3,3", r"band\(s\) \[3\] named more than once.*" + have),
                           ("4,x,2", "expected band numbers counted from 1.*" + have),
                           ("0,1,2", "count from 1.*the first band is 1.*" + have)):
        with pytest.raises(ValueError, match=message):
            write_chips(ms["tif"], ms["labels"], out, size=64, bands=bands)
    # Out of range: the scene reader's message, word for word the one rrsis predict --bands gives.
    with pytest.raises(ValueError) as predicted:
        open_scene(ms["tif"], bands="4,3,9")
    assert "the raster has 4 band(s)" in str(predicted.value)
    with pytest.raises(ValueError) as chipped:
        write_chips(ms["tif"], ms["labels"], out, size=64, bands="4,3,9")
    assert str(chipped.value) == str(predicted.value)
    # A picture without georeference is refused for what it is, bands or not.
    Image.fromarray(ms["data"][:3].transpose(1, 2, 0).astype(np.uint8)).save(tmp_path / "plain.png")
    with pytest.raises(ValueError, match="chips need a georeferenced raster"):
        write_chips(tmp_path / "plain.png", ms["labels"], out, bands="3,2,1")
    assert sorted(os.listdir(tmp_path)) == [*before, "plain.png"]


def test_nodata_is_read_as_without_bands(tmp_path):
    data = np.random.default_rng(2).integers(1, 4000, (4, 128, 128)).astype(np.uint16)
    data[:, :, :64] = 0  # the scene's nodata value, in every band
    with rasterio.open(tmp_path / "nd.tif", "w", driver="GTiff", height=128, width=128, count=4, dtype="uint16",
                       crs=UTM, transform=T, nodata=0, photometric="MINISBLACK") as ds:
        ds.write(data)
    s = write_chips(tmp_path / "nd.tif", _labels(tmp_path / "l.gpkg"), tmp_path / "c", size=64, val=0, test=0,
                    bands="4,2")
    assert s.skipped["nodata"] == 1 and s.counts["train"] == 1 and s.bands == (4, 2)
    assert any("--model.in_chans 2" in o for o in s.options)
    c = _meta(tmp_path / "c")["chips"][0]
    r0, c0, r1, c1 = c["window"]
    with rasterio.open(tmp_path / "c" / "images" / f"{c['id']}.tif") as ds:
        assert ds.nodata is None  # nodata pixels are 0, as without bands
        np.testing.assert_array_equal(ds.read(), data[[3, 1], r0:r1, c0:c1])


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_chips_declare_the_scenes_red_green_and_blue_and_no_alpha(tmp_path, dtype):
    """The scene declares blue, green, red, nir by its descriptions: every-band chips declare
    the same colours (never GDAL's default R, G, B, alpha for four bytes), so an RGB model's
    reader takes their red, green, blue, as it takes the scene's."""
    tif, data = _scene(tmp_path / "bgrn.tif", dtype, seed=2)
    out = tmp_path / "c"
    s = write_chips(tif, _labels(tmp_path / "l.gpkg"), out, size=64, val=0, test=0)
    assert s.bands == (1, 2, 3, 4) and s.image_format == "tif"
    c = _meta(out)["chips"][0]
    r0, c0, r1, c1 = c["window"]
    chip = str(out / "images" / f"{c['id']}.tif")
    with rasterio.open(chip) as ds:
        assert [ci.name for ci in ds.colorinterp] == ["blue", "green", "red", "undefined"]
    scale = "dtype" if dtype == "uint16" else None
    np.testing.assert_allclose(read_image(chip, scale=scale),
                               read_image(tif, scale=scale)[r0:r1, c0:c1], rtol=0, atol=1e-6)
    want = data[[2, 1, 0], r0:r1, c0:c1].transpose(1, 2, 0) / (65535.0 if scale else 255.0)
    np.testing.assert_allclose(read_image(chip, scale=scale), want, rtol=0, atol=1e-6)
