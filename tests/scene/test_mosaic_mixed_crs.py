"""``build_vrt`` over tiles of one 0.5 m UTM area delivered in mixed CRSs (rrsis/scene/mosaic_warp.py):
two left in UTM 33N, one reprojected to EPSG:4326, one to EPSG:3857, as ``calculate_default_transform``
makes them. The grid is the finest tile's pixel as a whole (not the smallest size per axis taken from
different tiles), a native tile's own size when within 1 % of it, and the native tiles are read as
they are."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("shapely")
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import Resampling, calculate_default_transform, reproject

from rrsis.scene.mosaic import build_vrt

UTM = "EPSG:32633"
N = 64


def tiles(d):
    rng = np.random.default_rng(0)
    out = []
    for i, (r, c) in enumerate([(0, 0), (0, N), (N, 0), (N, N)]):
        with rasterio.open(d / f"u{i}.tif", "w", driver="GTiff", width=N, height=N, count=3, dtype="uint8", nodata=0,
                           crs=UTM, transform=from_origin(400000 + c * 0.5, 4600000 - r * 0.5, 0.5, 0.5)) as ds:
            ds.write(rng.integers(1, 255, (3, N, N), dtype=np.uint8))
    for i, crs in ((0, None), (1, "EPSG:4326"), (2, None), (3, "EPSG:3857")):
        if crs is None:
            out.append(str(d / f"u{i}.tif"))
            continue
        with rasterio.open(d / f"u{i}.tif") as src:
            t, w, h = calculate_default_transform(src.crs, crs, src.width, src.height, *src.bounds)
            with rasterio.open(d / f"t{i}.tif", "w", **{**src.profile, "crs": crs, "transform": t, "width": w,
                                                        "height": h}) as dst:
                for b in src.indexes:
                    reproject(rasterio.band(src, b), rasterio.band(dst, b), resampling=Resampling.bilinear)
        out.append(str(d / f"t{i}.tif"))
    return out


def test_mixed_crs_tiles_keep_the_native_tiles_grid(tmp_path):
    u0, t1, u2, t3 = tiles(tmp_path)
    vrt = build_vrt([u0, t1, u2, t3], tmp_path / "m.vrt")
    with rasterio.open(vrt) as ds:
        assert ds.crs == CRS.from_user_input(UTM)
        assert ds.res == (0.5, 0.5)  # exactly the native tiles' own (was 0.4439 x 0.4990)
        assert ((ds.transform.c - 400000) / 0.5).is_integer() and ((4600000 - ds.transform.f) / 0.5).is_integer()
        # The native tiles are read as they are: their pixels, one for one.
        for u, (r, c) in ((u0, (0, 0)), (u2, (N, 0))):
            col, row = ~ds.transform @ (400000 + c * 0.5, 4600000 - r * 0.5)
            window = rasterio.windows.Window(round(col), round(row), N, N)
            with rasterio.open(u) as src:
                assert np.array_equal(ds.read(window=window), src.read())
    assert sorted(os.listdir(tmp_path / "m_warped")) == ["t1.vrt", "t3.vrt"]  # only the reprojected ones
    xml = Path(vrt).read_text()
    assert "u0.tif" in xml and "u2.tif" in xml


@pytest.mark.parametrize("which", ["4326", "3857"])
def test_a_square_tile_alone_makes_a_square_grid(tmp_path, which):
    """Without a native tile, the finest tile's pixel measured in the grid's CRS is made square
    (of the same ground area) when it was square in its own CRS: a 4326 tile's pixel, 0.44 x 0.59 m
    at 41.5° N, is not kept as a non-square grid."""
    _, t1, _, t3 = tiles(tmp_path)
    with rasterio.open(build_vrt([t1 if which == "4326" else t3], tmp_path / "m.vrt", crs=UTM)) as ds:
        assert ds.res[0] == ds.res[1]
        assert math.isclose(ds.res[0], 0.5, rel_tol=0.03)
        assert os.listdir(tmp_path / "m_warped")  # warped, not read as it is
