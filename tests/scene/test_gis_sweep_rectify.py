"""rrsis/scene/rectify.py: a raster placed by ground control points whose 4th band GDAL declares
alpha (its default for 4-band uint8 GeoTIFFs), read by a 4-band model: the band is data, as on a
north-up raster, not the warper's mask."""

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.enums import ColorInterp

from rrsis.scene import open_scene

H, W = 48, 64
NORTH_UP = Affine(2.0, 0, 500000.0, 0, -2.0, 4000000.0)


def _write(path, *, gcps):
    data = np.random.default_rng(4).integers(1, 255, (4, H, W)).astype(np.uint8)
    data[3, :, :W // 2] = 0  # a NIR-like band, dark in half the scene: as a mask it would hide it
    place = {"crs": "EPSG:32633"}
    if gcps:  # exact points of the north-up affine: the rectified grid is that grid
        place["gcps"] = [GroundControlPoint(row=r, col=c, x=(NORTH_UP @ (c, r))[0], y=(NORTH_UP @ (c, r))[1])
                         for r, c in [(0, 0), (0, W), (H, 0), (H, W), (H / 2, W / 2)]]
    else:
        place["transform"] = NORTH_UP
    with rasterio.open(path, "w", driver="GTiff", width=W, height=H, count=4, dtype="uint8", **place) as ds:
        ds.write(data)
    with rasterio.open(path) as ds:
        assert ds.colorinterp[3] == ColorInterp.alpha
    return str(path), data


@pytest.mark.parametrize("bands", [None, (1, 2, 3, 4)])
def test_a_declared_alpha_band_of_a_gcp_raster_is_data_for_a_four_band_model(tmp_path, bands):
    path, data = _write(tmp_path / "gcps.tif", gcps=True)
    sc = open_scene(path, channels=4, bands=bands)
    assert sc.rectified and (sc.height, sc.width) == (H, W)
    px, valid = sc.read()
    # Before: valid only where band 4 was above half its range, and band 4 replaced by 0/255.
    assert valid.all()
    assert np.array_equal(np.round(px * 255).astype(np.uint8), data.transpose(1, 2, 0))
    north_up, _ = _write(tmp_path / "north_up.tif", gcps=False)
    with pytest.warns(UserWarning, match="declared alpha: read as data"):
        ref = open_scene(north_up, channels=4).read()
    assert np.array_equal(px, ref[0]) and np.array_equal(valid, ref[1])


def test_for_an_rgb_model_the_alpha_band_of_a_gcp_raster_still_masks_as_on_a_north_up_one(tmp_path):
    path, _ = _write(tmp_path / "gcps.tif", gcps=True)
    px, valid = open_scene(path).read()
    north_up, _ = _write(tmp_path / "north_up.tif", gcps=False)
    ref_px, ref_valid = open_scene(north_up).read()
    assert np.array_equal(valid, ref_valid) and not valid[:, :W // 2].any() and valid.any()
    assert np.array_equal(px[valid], ref_px[valid])
