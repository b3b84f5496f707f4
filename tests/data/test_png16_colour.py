"""A 16-bit RGB or RGBA PNG holds 16-bit values: PIL reads it as 8-bit (each value's high byte),
so the one image reader reads it through GDAL's PNG driver (the ``geo`` extra), or refuses it;
the header, the scene reader, ``rrsis predict`` and the app's note then see a 16-bit image."""

import sys

import numpy as np
import pytest
from PIL import Image

rasterio = pytest.importorskip("rasterio")

from rrsis.data import load_raster, read_image
from rrsis.data.headers import read_header
from rrsis.data.io import png16_colour
from rrsis.scene import open_scene


def _png16(path, planes):
    c, h, w = planes.shape
    with rasterio.open(path, "w", driver="PNG", width=w, height=h, count=c, dtype="uint16") as ds:
        ds.write(planes)
    return str(path)


@pytest.mark.parametrize("count", [3, 4])
def test_a_16_bit_colour_png_is_read_with_its_own_values(tmp_path, count):
    planes = np.random.default_rng(1).integers(0, 4000, (count, 24, 32)).astype(np.uint16)
    if count == 4:
        planes[3] = 65535  # opaque
    path = _png16(tmp_path / "rgb16.png", planes)
    with Image.open(path) as im:  # what PIL alone makes of it
        assert im.mode == ("RGB" if count == 3 else "RGBA") and np.asarray(im)[..., :3].max() <= 15
    assert png16_colour(path)
    raw = load_raster(path)
    assert raw.dtype == np.uint16
    np.testing.assert_array_equal(raw, np.moveaxis(planes, 0, 2))
    np.testing.assert_allclose(read_image(path, scale=4000), np.moveaxis(planes[:3], 0, 2) / 4000, rtol=1e-6)
    head = read_header(path)
    assert (head.dtype, head.bands, head.alpha) == ("uint16", count, count == 4)
    with pytest.raises(ValueError, match="uint16 image needs an explicit scale"):  # as a 16-bit grey PNG
        open_scene(path)
    with open_scene(path, scale="dtype") as sc:
        np.testing.assert_allclose(sc.read()[0], np.moveaxis(planes[:3], 0, 2) / 65535, rtol=1e-5)


def test_an_8_bit_or_grey_png_is_read_by_pil_as_before(tmp_path):
    rgb = np.random.default_rng(2).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb8.png")
    Image.fromarray(np.full((8, 8), 3999, np.uint16)).save(tmp_path / "grey16.png")
    assert not png16_colour(str(tmp_path / "rgb8.png")) and not png16_colour(str(tmp_path / "grey16.png"))
    np.testing.assert_array_equal(load_raster(tmp_path / "rgb8.png"), rgb)
    assert load_raster(tmp_path / "grey16.png").max() == 3999


def test_without_the_geo_extra_it_is_refused_saying_how(tmp_path, monkeypatch):
    path = _png16(tmp_path / "rgb16.png", np.full((3, 8, 8), 3999, np.uint16))
    monkeypatch.setitem(sys.modules, "rasterio", None)
    with pytest.raises(ValueError, match=r'16-bit RGB PNG.*8-bit.*pip install "rrsis\[geo\]".*16-bit TIFF'):
        read_image(path, scale="dtype")


def test_the_app_notes_its_16_bit_values(tmp_path):
    from rrsis.app.inference import value_type, values_note

    path = _png16(tmp_path / "rgb16.png", np.full((3, 8, 8), 3999, np.uint16))
    assert value_type(path) == "uint16"
    assert "rgb16.png holds uint16 values" in values_note(object(), path)
