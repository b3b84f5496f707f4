"""Raster values read without a stretch: float reflectance in [0, 1] read as it is (``stretch=None``,
``--stretch none``), float values beyond refused in the caller's terms, and 8-bit values that all lie
in 0-1 (a 0/1 or class layer the model sees as black) warned about once per scene."""

import warnings

import numpy as np
import pytest

from rrsis.cli import main
from rrsis.scene import open_scene, segment_scene

rasterio = pytest.importorskip("rasterio")
from affine import Affine

CRS = "EPSG:32633"
T = Affine(1, 0, 500000, 0, -1, 4000000)


def write(path, data):
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[1], width=data.shape[2], count=data.shape[0],
                       dtype=data.dtype, crs=CRS, transform=T) as ds:
        ds.write(data)
    return str(path)


def bright_block(h=96, w=128):
    a = np.zeros((3, h, w), bool)
    a[:, 24:48, 32:64] = True
    return a


def test_float_reflectance_in_0_1_is_read_as_it_is_without_a_stretch(tmp_path):
    rng = np.random.default_rng(0)
    data = (rng.random((3, 40, 50)) * 0.6 + 0.2 * bright_block(40, 50)).astype(np.float32)
    with open_scene(write(tmp_path / "refl.tif", data), stretch=None) as sc:
        img = sc.read()[0]
    np.testing.assert_allclose(img, np.moveaxis(data, 0, -1), atol=1e-7)
    with open_scene(tmp_path / "refl.tif", scale=1) as sc:  # the same as a divisor of 1
        np.testing.assert_allclose(sc.read()[0], img, atol=1e-7)


def test_float_values_beyond_0_1_without_a_stretch_are_refused_in_the_callers_terms(tmp_path, saved_model, capsys):
    data = (np.random.default_rng(1).random((3, 40, 50)) * 3000).astype(np.float32)
    path = write(tmp_path / "dn.tif", data)
    with pytest.raises(ValueError) as err:
        open_scene(path, stretch=None)
    msg = str(err.value)
    assert "dn.tif" in msg and "float32" in msg and "stretch=(2, 98)" in msg and "scale='max'" in msg
    assert main(["predict", "--model", str(saved_model), "--image", path, "--text", "the building", "--quiet",
                 "--mode", "global", "--out", str(tmp_path / "o"), "--stretch", "none"]) == 2
    err = capsys.readouterr().err
    assert "--stretch 2,98" in err and "--scale max" in err and "\n" not in err.strip()
    with open_scene(path, stretch=(2, 98)) as sc:  # what the message offers works
        assert 0 <= sc.read()[0].min() and sc.read()[0].max() <= 1


def test_predict_stretch_none_on_float_reflectance_matches_scale_1(tmp_path, saved_model):
    data = (0.15 + 0.7 * bright_block()).astype(np.float32)
    path = write(tmp_path / "refl.tif", data)
    argv = ["predict", "--model", str(saved_model), "--image", path, "--text", "the building", "--quiet",
            "--mode", "global"]
    assert main([*argv, "--out", str(tmp_path / "none"), "--stretch", "none"]) == 0
    assert main([*argv, "--out", str(tmp_path / "one"), "--scale", "1"]) == 0
    with rasterio.open(tmp_path / "none_mask.tif") as a, rasterio.open(tmp_path / "one_mask.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())


def dark_warnings(record):
    return [str(w.message) for w in record if "the model sees a black image" in str(w.message)]


def test_a_0_1_byte_raster_warns_once_naming_the_file_and_the_way_out(tmp_path, tiny_model):
    path = write(tmp_path / "binary.tif", bright_block().astype(np.uint8))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        open_scene(path).close()
    (msg,) = dark_warnings(record)
    assert msg.startswith(f"{path}:") and "0-1" in msg and "scale='max' (--scale max)" in msg
    with warnings.catch_warnings(record=True) as record:  # a tiled pass: many windows, one warning
        warnings.simplefilter("always")
        segment_scene(tiny_model, path, "the building", mode="tiles", tile=64, overlap=0.0)
    assert len(dark_warnings(record)) == 1
    with warnings.catch_warnings(record=True) as record:  # the ways out say nothing
        warnings.simplefilter("always")
        for kw in ({"scale": "max"}, {"stretch": (2, 98)}):
            with open_scene(path, **kw) as sc:
                assert sc.read()[0].max() == 1.0
    assert dark_warnings(record) == []


@pytest.mark.parametrize("top", [40, 255])
def test_ordinary_byte_rasters_dark_ones_included_do_not_warn(tmp_path, top):
    data = np.random.default_rng(2).integers(0, top + 1, (3, 64, 64)).astype(np.uint8)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        open_scene(write(tmp_path / "ordinary.tif", data)).close()
    assert dark_warnings(record) == []


@pytest.mark.parametrize("extra", [[], ["--aoi", "500000,3999904,500128,3999996", "--aoi-crs", CRS]])  # --aoi reads the file again
def test_predict_prints_the_0_1_warning_once(tmp_path, saved_model, capsys, extra):
    path = write(tmp_path / "binary.tif", bright_block().astype(np.uint8))
    assert main(["predict", "--model", str(saved_model), "--image", path, "--text", "the building", "--quiet",
                 "--mode", "global", "--out", str(tmp_path / "o"), *extra]) == 0
    err = capsys.readouterr().err
    assert err.count("the model sees a black image") == 1 and "rrsis predict: warning: " in err
