"""``rrsis predict --mosaic`` over tiles in two UTM zones: one answer over the area, in the mosaic's
CRS, with the polygons where the objects are (rrsis/cli/predict.py, rrsis/scene/mosaic_warp.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("shapely")
from _fixtures import RedPixels
from rasterio.crs import CRS
from rasterio.transform import array_bounds, from_origin
from rasterio.warp import Resampling, calculate_default_transform, reproject
from shapely.geometry import box, shape

import rrsis.hub
from rrsis.cli import main

UTM33, UTM34 = "EPSG:32633", "EPSG:32634"
X0, Y0, PX, N = 500000.0, 4000000.0, 2.0, 64
# Two red squares (rows, cols of the area, 2 m pixels): one in each tile, the second reprojected.
SQUARES = [(10, 30, 12, 44), (30, 50, 84, 108)]


def write(path, data, crs, transform):
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=3,
                       dtype="uint8", crs=crs, transform=transform, nodata=0) as ds:
        ds.write(data)


def test_predict_mosaic_over_two_utm_zones(tiny_model, tmp_path, monkeypatch, capsys):
    area = np.random.default_rng(0).integers(20, 120, (3, N, 2 * N)).astype(np.uint8)
    for r0, r1, c0, c1 in SQUARES:
        area[0, r0:r1, c0:c1] = 240
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    # Tile a: the west half in zone 33 (a little wider: neighbouring tiles overlap).
    write(tiles / "a.tif", area[:, :, :N + 16], UTM33, from_origin(X0, Y0, PX, PX))
    # Tile b: the east half delivered in zone 34 (its own product grid, 2 m pixels).
    tb = from_origin(X0 + N * PX, Y0, PX, PX)
    t34, w, h = calculate_default_transform(UTM33, UTM34, N, N, *array_bounds(N, N, tb), resolution=PX)
    b = np.zeros((3, h, w), np.uint8)
    reproject(area[:, :, N:], b, src_transform=tb, src_crs=UTM33, dst_transform=t34, dst_crs=UTM34,
              resampling=Resampling.nearest, src_nodata=0, dst_nodata=0)
    write(tiles / "b.tif", b, UTM34, t34)
    monkeypatch.setattr(rrsis.hub, "from_pretrained", lambda *a, **k: RedPixels(tiny_model))
    out = tmp_path / "out" / "area"
    argv = ["predict", "--model", "red", "--image", str(tiles / "*.tif"), "--mosaic", "--text", "the red roofs",
            "--mode", "tiles", "--tile", "64", "--geojson-crs", "native", "--simplify", "0", "--out", str(out),
            "--quiet"]
    assert main(argv) == 0
    assert "area_mosaic.vrt" in capsys.readouterr().out
    with rasterio.open(f"{out}_mask.tif") as ds:
        assert ds.crs == CRS.from_user_input(UTM33)  # most of the area is in zone 33
        assert ds.transform.a == PX and ((ds.transform.c - X0) / PX).is_integer()
    polygons = [shape(f["geometry"]) for f in json.loads((tmp_path / "out" / "area.geojson").read_text())["features"]]
    assert len(polygons) == 2
    for r0, r1, c0, c1 in SQUARES:
        square = box(X0 + c0 * PX, Y0 - r1 * PX, X0 + c1 * PX, Y0 - r0 * PX)
        best = max(polygons, key=lambda p: p.intersection(square).area)
        # Tile b's square went to zone 34 and back by nearest neighbour: its edges move by up to a pixel.
        assert best.intersection(square).area / best.union(square).area > 0.8
    # --mosaic-crs: the same area in zone 34; without --mosaic it is refused.
    assert main([*argv[:-3], "--out", str(tmp_path / "z34" / "area"), "--mosaic-crs", UTM34, "--quiet"]) == 0
    with rasterio.open(tmp_path / "z34" / "area_mask.tif") as ds:
        assert ds.crs == CRS.from_user_input(UTM34)
    capsys.readouterr()
    assert main(["predict", "--model", "red", "--image", str(tiles / "a.tif"), "--text", "x", "--out",
                 str(tmp_path / "p"), "--mosaic-crs", UTM34]) == 2
    assert "--mosaic-crs is the CRS of --mosaic's grid" in capsys.readouterr().err
