"""The mosaic's CRS (rrsis/scene/mosaic_warp.py, ``mosaic_grid``) is the one holding the largest
VALID ground area of tiles: a tile that is mostly a nodata collar weighs what its data covers."""

from __future__ import annotations

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("shapely")
from rasterio.crs import CRS
from rasterio.transform import array_bounds, from_origin
from rasterio.warp import calculate_default_transform

from rrsis.scene.mosaic import _info, build_vrt
from rrsis.scene.mosaic_warp import valid_share

UTM33, UTM34 = "EPSG:32633", "EPSG:32634"
X0, Y0, PX = 500000.0, 4000000.0, 2.0


def write(path, data, crs, transform, nodata=None):
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs=crs, transform=transform, nodata=nodata) as ds:
        ds.write(data)
    return str(path)


def collared(n=100):
    """A north-up box holding a diamond of data (a rotated footprint), 80 % of it nodata (0)."""
    rows, cols = np.mgrid[:n, :n] + 0.5
    diamond = np.abs(rows - n / 2) + np.abs(cols - n / 2) <= n * np.sqrt(0.1)  # area 0.2 n²
    return np.where(diamond, 120, 0).astype(np.uint8)[None]


def tiles(folder, nodata):
    """Two 100² tiles of 2 m in zone 33 (box 2 x 40,000 m², 80 % nodata) and one full 60² tile of
    4 m in zone 34 (57,600 m²: less box area than zone 33's two, more valid area)."""
    data = collared()
    a = write(folder / "a.tif", data, UTM33, from_origin(X0, Y0, PX, PX), nodata)
    b = write(folder / "b.tif", data, UTM33, from_origin(X0 + 100 * PX, Y0, PX, PX), nodata)
    t34, _, _ = calculate_default_transform(UTM33, UTM34, 100, 100, *array_bounds(100, 100, from_origin(X0, Y0, PX, PX)),
                                            resolution=4.0)
    c = write(folder / "c.tif", np.full((1, 60, 60), 90, np.uint8), UTM34, t34, nodata)
    return a, b, c


def test_mostly_nodata_tiles_weigh_their_valid_area(tmp_path):
    a, b, c = tiles(tmp_path, nodata=0)
    assert valid_share(_info(a)) == pytest.approx((collared() > 0).mean(), abs=0.005)
    assert valid_share(_info(a)) == pytest.approx(0.2, abs=0.01) and valid_share(_info(c)) == 1.0
    with rasterio.open(build_vrt([a, b, c], tmp_path / "m.vrt")) as ds:
        assert ds.crs == CRS.from_user_input(UTM34)


def test_without_nodata_the_box_area_chooses_as_before(tmp_path):
    a, b, c = tiles(tmp_path, nodata=None)  # the zeros are data: every pixel valid
    assert valid_share(_info(a)) == 1.0
    with rasterio.open(build_vrt([a, b, c], tmp_path / "m.vrt")) as ds:
        assert ds.crs == CRS.from_user_input(UTM33)


def test_the_valid_share_is_read_from_a_reduced_mask(tmp_path):
    """A 1000² tile is measured from a 256² read of its mask, within a percent of its true share."""
    data = collared(1000)
    t = write(tmp_path / "t.tif", data, UTM33, from_origin(X0, Y0, 0.2, 0.2), nodata=0)
    assert valid_share(_info(t)) == pytest.approx((data > 0).mean(), abs=0.01)
