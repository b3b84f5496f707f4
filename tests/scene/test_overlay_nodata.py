"""``write_overlay`` (rrsis/scene/write.py): the scene's nodata pixels are transparent in the overlay
PNG (RGBA), not opaque black; a scene without nodata keeps an RGB PNG. Real rasters: a nodata=0
border, NaN rows in a float raster, an alpha band; and an area of interest's outside (the mask
GeoTIFF's nodata) joining the scene's own nodata."""

from __future__ import annotations

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
from PIL import Image
from rasterio.transform import from_origin

from rrsis.scene import open_scene
from rrsis.scene.write import write_overlay

SIZE = 48
TRANSFORM = from_origin(500000.0, 4000000.0, 1.0, 1.0)
BORDER = np.zeros((SIZE, SIZE), bool)
BORDER[:6], BORDER[:, :4] = True, True  # the collar of a scene: nodata
NAN_ROWS = np.zeros((SIZE, SIZE), bool)
NAN_ROWS[10:13], NAN_ROWS[40] = True, True


def write(path, data, **kw):
    with rasterio.open(path, "w", driver="GTiff", width=SIZE, height=SIZE, count=data.shape[0], dtype=data.dtype,
                       crs="EPSG:32633", transform=TRANSFORM, **kw) as ds:
        ds.write(data)
    return str(path)


def raster(tmp_path, kind):
    """``(path, nodata [H, W] bool)`` of a raster of kind ``kind``."""
    rng = np.random.default_rng(1)
    rgb = rng.integers(1, 255, (3, SIZE, SIZE), dtype=np.uint8)
    if kind == "nodata border":
        rgb[:, BORDER] = 0
        return write(tmp_path / "a.tif", rgb, nodata=0), BORDER
    if kind == "NaN rows":
        data = rgb.astype(np.float32) * 3.5
        data[:, NAN_ROWS] = np.nan
        return write(tmp_path / "a.tif", data, nodata=float("nan")), NAN_ROWS
    if kind == "alpha band":
        alpha = np.where(BORDER, 0, 255).astype(np.uint8)[None]
        return write(tmp_path / "a.tif", np.concatenate([rgb, alpha]), photometric="RGB", alpha="YES"), BORDER
    return write(tmp_path / "a.tif", rgb), np.zeros((SIZE, SIZE), bool)


@pytest.mark.parametrize("kind", ["nodata border", "NaN rows", "alpha band", "no nodata"])
@pytest.mark.parametrize("mask_as", ["array", "GeoTIFF"])
def test_the_scenes_nodata_is_transparent_in_the_overlay(tmp_path, kind, mask_as):
    path, nodata = raster(tmp_path, kind)
    mask = np.zeros((SIZE, SIZE), bool)
    mask[20:30, 20:30] = True
    source = mask if mask_as == "array" else write(tmp_path / "m.tif", (mask * 255).astype(np.uint8)[None])
    write_overlay(tmp_path / "o.png", open_scene(path), source)
    with Image.open(tmp_path / "o.png") as im:
        mode, picture = im.mode, np.asarray(im)
    if kind == "no nodata":
        assert mode == "RGB" and picture.shape == (SIZE, SIZE, 3)
        return
    assert mode == "RGBA"
    np.testing.assert_array_equal(picture[..., 3] == 0, nodata)  # transparent exactly there
    assert (picture[..., 3][~nodata] == 255).all()


def test_an_areas_outside_and_the_scenes_nodata_are_both_transparent(tmp_path):
    path, nodata = raster(tmp_path, "nodata border")
    outside = np.zeros((SIZE, SIZE), bool)
    outside[:, 36:] = True  # the mask GeoTIFF's nodata: outside the area of interest
    with rasterio.open(tmp_path / "m.tif", "w", driver="GTiff", width=SIZE, height=SIZE, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=TRANSFORM) as ds:
        ds.write(np.zeros((1, SIZE, SIZE), np.uint8))
        ds.write_mask(np.where(outside, 0, 255).astype(np.uint8))
    write_overlay(tmp_path / "o.png", open_scene(path), str(tmp_path / "m.tif"), nodata_transparent=True)
    alpha = np.asarray(Image.open(tmp_path / "o.png"))[..., 3]
    np.testing.assert_array_equal(alpha == 0, nodata | outside)
