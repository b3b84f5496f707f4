"""benchmarks/evaluate_labels.py: the smoke run writes its table, both ways placing the same features."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("rasterio")
pytest.importorskip("shapely")
pytest.importorskip("pyogrio")


def test_smoke_run_writes_a_row_per_size(tmp_path, benchmark_module):
    bench = benchmark_module("evaluate_labels")
    out = tmp_path / "labels"
    assert bench.main(["--smoke", "--work", str(tmp_path / "w"), "--out", str(out)]) == 0
    data = json.loads(out.with_suffix(".json").read_text())
    (row,) = data["rows"]
    assert (row["features"], row["scenes"], row["crs"], row["extrapolated"]) == (20, 4, 2, False)
    assert 0 < row["placed"] and row["before_s"] > 0 and row["after_s"] > 0  # run in full: the placings agreed
    assert data["meta"]["gdal"] and "| 20 | 4 |" in out.with_suffix(".md").read_text()


def test_the_grid_has_two_crss_and_every_label_is_a_rectangle_on_it(tmp_path, benchmark_module):
    import pyogrio
    import rasterio
    import shapely

    bench = benchmark_module("evaluate_labels")
    tiles = bench.make_scenes(tmp_path, 9)  # 3 x 3: the last column in the next UTM zone
    assert [c for _, c in tiles].count("EPSG:32634") == 3
    with rasterio.open(tiles[0][0]) as first, rasterio.open(tiles[8][0]) as last:
        assert (first.width, first.res, first.crs.to_string()) == (64, (10.0, 10.0), "EPSG:32633")
        assert last.crs.to_string() == "EPSG:32634"
    labels = bench.make_labels(tmp_path / "l.gpkg", 50, 9)
    meta, _, geoms, values = pyogrio.raw.read(labels, columns=["text"])
    shapes = shapely.from_wkb(geoms)
    assert len(shapes) == 50 and meta["crs"] == "EPSG:32633" and all(values[0])
    x0, y0 = bench.ORIGIN
    grid = shapely.box(x0, y0 - 3 * 640, x0 + 3 * 640, y0)  # 3 x 3 tiles of 640 m
    assert all(grid.contains(g) and g.area == shapely.envelope(g).area for g in shapes)
