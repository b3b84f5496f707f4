"""Tiles placed by ground control points or RPCs only: a VRT mosaic (rrsis/scene/mosaic.py,
``--mosaic``) warps them onto its grid (one whose GCPs GDAL cannot fit is refused, naming the
tile, before any model is loaded); a region of separate scenes (rrsis/scene/region) reads each
rectified, as the same tiles placed by their affine."""

import json
from pathlib import Path

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("shapely")
pytest.importorskip("pyogrio")
from _fixtures import RedPixels
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.rpc import RPC
from shapely.geometry import box, mapping

from rrsis.cli import main
from rrsis.scene import build_vrt, segment_scenes

UTM = "EPSG:32633"
N = 64  # tile side, 2 m pixels


def affine_of(i):
    return Affine(2.0, 0, 500000.0 + 2.0 * N * i, 0, -2.0, 4000000.0)


def write_tiles(folder, *, gcps):
    """Two side-by-side tiles with a red square each, placed by their affine or by five GCPs
    lying exactly on it."""
    paths = []
    for i in range(2):
        data = np.random.default_rng(i).integers(20, 120, (3, N, N)).astype(np.uint8)
        data[0, 10 + 8 * i:30 + 8 * i, 20:44] = 240
        t = affine_of(i)
        place = {"crs": UTM, "transform": t}
        if gcps:
            place = {"crs": UTM, "gcps": [GroundControlPoint(row=r, col=c, x=(t @ (c, r))[0], y=(t @ (c, r))[1])
                                          for r, c in ((0, 0), (0, N), (N, 0), (N, N), (N / 2, N / 2))]}
        path = folder / f"tile_{i}.tif"
        with rasterio.open(path, "w", driver="GTiff", height=N, width=N, count=3, dtype="uint8", **place) as ds:
            ds.write(data)
        paths.append(str(path))
    return paths


def test_a_mosaic_of_gcp_or_rpc_tiles_is_warped_onto_one_grid(tmp_path):
    paths = write_tiles(tmp_path, gcps=True)
    (tmp_path / "n").mkdir()
    north = write_tiles(tmp_path / "n", gcps=False)
    with rasterio.open(build_vrt(paths, tmp_path / "m.vrt")) as dg, rasterio.open(build_vrt(north, tmp_path / "n.vrt")) as dn:
        # The GCPs lie on the affine: the same grid, the same pixels (bilinear at the pixel centres).
        assert dg.crs == dn.crs and dg.transform.almost_equals(affine_of(0)) and dg.shape == dn.shape == (N, 2 * N)
        assert np.abs(dg.read().astype(int) - dn.read().astype(int))[:, 1:-1, 1:-1].max() <= 1
    assert sorted(p.name for p in (tmp_path / "m_warped").glob("tile_?.vrt")) == ["tile_0.vrt", "tile_1.vrt"]
    zero = [0.0] * 20
    one, row, col = list(zero), list(zero), list(zero)
    one[0], row[2], col[1] = 1.0, -1.0, 1.0
    rpc = RPC(height_off=0.0, height_scale=100.0, lat_off=45.0, lat_scale=0.032, long_off=15.0, long_scale=0.032,
              line_off=32.0, line_scale=32.0, samp_off=32.0, samp_scale=32.0, line_num_coeff=row,
              line_den_coeff=one, samp_num_coeff=col, samp_den_coeff=one, err_bias=0.0, err_rand=0.0)
    with rasterio.open(tmp_path / "rpc.tif", "w", driver="GTiff", height=N, width=N, count=3, dtype="uint8",
                       rpcs=rpc) as ds:
        ds.write(np.full((3, N, N), 7, np.uint8))
    # RPCs place a tile in EPSG:4326 (heights at 0 m), warped into the mosaic's CRS (UTM here).
    with rasterio.open(build_vrt([north[0], str(tmp_path / "rpc.tif")], tmp_path / "r.vrt", crs=UTM)) as ds:
        assert ds.crs == rasterio.crs.CRS.from_user_input(UTM) and (tmp_path / "r_warped" / "rpc.vrt").is_file()
        x, y = rasterio.warp.transform("EPSG:4326", UTM, [15.0], [45.0])  # the RPC tile's centre
        r, c = ds.index(x[0], y[0])
        assert (ds.read(1, window=((r - 2, r + 3), (c - 2, c + 3))) == 7).all()


def test_predict_mosaic_of_unplaceable_gcp_tiles_fails_before_the_model_loads(tmp_path, capsys):
    write_tiles(tmp_path, gcps=True)
    with rasterio.open(tmp_path / "tile_1.tif", "r+") as ds:  # two GCPs: no transform can be fitted
        ds.gcps = (list(ds.gcps[0])[:2], ds.gcps[1])
    # The model's folder does not exist: a refusal naming the tile shows the model was not loaded.
    argv = ["predict", "--model", str(tmp_path / "no-model"), "--image", str(tmp_path / "tile_*.tif"), "--mosaic",
            "--text", "the red building", "--out", str(tmp_path / "out" / "area"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "tile_1.tif: georeferenced by ground control points only, and 2 ground control point(s)" in err
    assert "a mosaic cannot place it" in err and "no-model" not in err
    assert not (tmp_path / "out" / "area_mosaic.vrt").exists()


def test_a_region_of_gcp_tiles_without_a_mosaic_reads_each_rectified(tiny_model, tmp_path):
    red = RedPixels(tiny_model)
    (tmp_path / "north").mkdir()
    (tmp_path / "gcp").mkdir()
    kw = {"mode": "tiles", "tile": 64, "geojson_crs": "native", "simplify": 0.0}
    runs = {}
    for kind in ("north", "gcp"):
        paths = write_tiles(tmp_path / kind, gcps=kind == "gcp")
        runs[kind] = segment_scenes(red, paths, "the red building", out=tmp_path / f"out_{kind}", **kw)
    a, g = runs["north"], runs["gcp"]
    assert g.done == a.done == ["tile_0", "tile_1"] and not g.failed and g.n_polygons == a.n_polygons == 2
    for i in range(2):
        name = f"tile_{i}/tile_{i}_mask.tif"
        with rasterio.open(tmp_path / "out_north" / name) as ma, rasterio.open(tmp_path / "out_gcp" / name) as mg:
            assert mg.crs == ma.crs and mg.transform.almost_equals(affine_of(i), precision=1e-6)
            assert ma.read(1)[10 + 8 * i:30 + 8 * i, 20:44].all()
            np.testing.assert_array_equal(mg.read(1), ma.read(1))
    # With an area over the first tile only: the second is outside, listed, done with no files.
    area = box(500010.0, 3999900.0, 500100.0, 3999990.0)
    s = segment_scenes(red, write_tiles(tmp_path / "gcp", gcps=True), "the red building",
                       out=tmp_path / "out_aoi", aoi=mapping(area), aoi_crs=UTM, **kw)
    assert s.done == ["tile_0"] and s.outside == ["tile_1"] and not s.failed
    record = json.loads(Path(tmp_path / "out_aoi" / "tile_1" / "done.json").read_text())
    assert record["outputs"] == [] and "rectified onto a north-up grid" in record["outside_aoi"]
    with rasterio.open(tmp_path / "out_aoi" / "tile_0" / "tile_0_mask.tif") as m:
        assert m.transform.almost_equals(affine_of(0) @ Affine.translation(5, 5), precision=1e-6)
        assert m.shape == (45, 45)
