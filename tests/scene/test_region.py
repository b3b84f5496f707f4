"""rrsis/scene/region: scene lists, sharding, per-polygon mean probability, resumable regions and
the merged GeoPackage against the per-scene GeoJSON it is made of."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
pyogrio = pytest.importorskip("pyogrio")
from _fixtures import flood_fill, merged_against_scenes, write_small_geotiff
from test_scene import tiny  # noqa: F401  (the sharpened tiny model fixture)

import rrsis
from rrsis.scene import open_scene
from rrsis.scene.region import (
    RECORD,
    SceneSource,
    read_record,
    resolve_scenes,
    segment_scenes,
    shard,
)
from rrsis.scene.region import run as region_run
from rrsis.scene.write import PolygonCollector


def _stac_item(item_id, assets):
    return {"type": "Feature", "stac_version": "1.0.0", "id": item_id, "properties": {"datetime": "2024-01-01T00:00:00Z"},
            "geometry": None, "links": [], "assets": assets}


def test_scene_lists_from_paths_globs_and_list_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for p in ["a/x.tif", "b/x.tif", "a/y 1.tif", "b/z.tif"]:
        (tmp_path / p).write_bytes(b"")
    lst = tmp_path / "a" / "scenes.lst"
    lst.write_text("# the western tiles\n\ny 1.tif\n../b/z.tif\nhttps://example.org/cog/t9.tif?sig=1\n")
    got = resolve_scenes([str(tmp_path / "*" / "x.tif"), f"@{lst}", str(tmp_path / "b" / "z.tif")])
    ids = [s.id for s in got]
    # Two x.tif: both ids carry a hash of their path; z.tif listed twice is one scene; URLs are kept.
    assert ids == sorted(ids) and len(ids) == 5 and Counter(i.split("-")[0] for i in ids)["x"] == 2
    assert {"y_1", "z", "t9"} <= set(ids)
    assert {s.uri for s in got if s.id == "z"} == {str(tmp_path / "b" / "z.tif")}
    assert {s.uri for s in got if s.id == "t9"} == {"https://example.org/cog/t9.tif?sig=1"}
    # The ids do not depend on the order of the list.
    again = resolve_scenes([f"@{lst}", str(tmp_path / "b" / "x.tif"), str(tmp_path / "a" / "x.tif")])
    assert [s.id for s in again] == ids
    txt = tmp_path / "one.txt"
    txt.write_text("a/x.tif\n")
    assert [s.uri for s in resolve_scenes(str(txt))] == [str(tmp_path / "a" / "x.tif")]
    with pytest.raises(FileNotFoundError, match="matches no file"):
        resolve_scenes(str(tmp_path / "*.jp2"))
    with pytest.raises(FileNotFoundError, match="nope.tif: file not found"):
        resolve_scenes([str(tmp_path / "a" / "x.tif"), str(tmp_path / "nope.tif")])
    notes = tmp_path / "notes.txt"  # a .txt given as one image: named as the list it is read as
    notes.write_text("# a\n\nhello\n")
    with pytest.raises(FileNotFoundError, match=r"notes\.txt is read as a list of scenes \(one path or URL a "
                       r"line\); line 3, 'hello' \(.*hello\): file not found"):
        resolve_scenes(str(notes))
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ValueError, match="no paths in it"):
        resolve_scenes(str(tmp_path / "empty.txt"))


def test_stac_item_and_item_collection_pick_the_data_asset(tmp_path):
    pytest.importorskip("pystac")
    item = _stac_item("S2A_T33_0001", {"visual": {"href": "tiles/v.tif", "roles": ["data"]},
                                       "thumb": {"href": "t.png", "roles": ["thumbnail"]}})
    (tmp_path / "item.json").write_text(json.dumps(item))
    (got,) = resolve_scenes(str(tmp_path / "item.json"))
    assert got == SceneSource("S2A_T33_0001", str(tmp_path / "tiles" / "v.tif"))
    (got,) = resolve_scenes(str(tmp_path / "item.json"), asset="thumb")
    assert got.uri == str(tmp_path / "t.png")
    two = _stac_item("b", {"red": {"href": "https://x.org/r.tif", "roles": ["data"]},
                           "nir": {"href": "https://x.org/n.tif", "roles": ["data"]}})
    (tmp_path / "items.json").write_text(json.dumps({"type": "FeatureCollection", "features": [item, two]}))
    with pytest.raises(ValueError, match=r"assets nir, red have the role 'data'.*--asset"):
        resolve_scenes(str(tmp_path / "items.json"))
    with pytest.raises(KeyError, match="has no asset 'nir'; its assets: thumb, visual"):
        resolve_scenes(str(tmp_path / "items.json"), asset="nir")
    (tmp_path / "coll.json").write_text(json.dumps({"type": "Collection", "id": "c"}))
    with pytest.raises(ValueError, match="item collection"):
        resolve_scenes(str(tmp_path / "coll.json"))


def test_shard_deals_the_sorted_ids_round_robin():
    scenes = [SceneSource(f"s{i:02d}", f"/d/{i}.tif") for i in (7, 3, 11, 0, 5)]
    parts = [shard(scenes[::-1] if r else scenes, r, 2) for r in range(2)]
    assert [s.id for s in parts[0]] == ["s00", "s05", "s11"] and [s.id for s in parts[1]] == ["s03", "s07"]
    assert [s.id for s in shard(scenes, 0, 1)] == sorted(s.id for s in scenes)


def test_settings_compare_equal_however_they_are_given():
    from rrsis.data.io import MAX_PIXELS
    from rrsis.scene import SceneOptions

    cli = {"mode": "auto", "threshold": 0.5, "bands": None, "scale": None, "stretch": "auto", "probabilities": False,
           "geojson_crs": "EPSG:4326", "simplify": 0.5, "crs": None, "max_pixels": MAX_PIXELS, "tile": None,
           "overlap": 0.25, "pixel_ratio": "auto", "global_size": None, "batch_size": 4}  # rrsis predict's defaults
    assert region_run._settings(["a"], cli) == region_run._settings(["a"], {})
    assert region_run._settings(["a"], {"tile": 64, "bands": "4,3,2"}) == region_run._settings(
        ["a"], {"options": SceneOptions(tile=64), "bands": (4, 3, 2)})
    for other in ({"tile": 96}, {"threshold": 0.4}, {"bands": "1,2,3"}, {"mode": "tiles"}):
        assert region_run._settings(["a"], other) != region_run._settings(["a"], {})
    assert region_run._settings(["a", "b"], {}) != region_run._settings(["b", "a"], {})


def test_mean_probability_per_polygon_matches_connected_components(tmp_path):
    write_small_geotiff(tmp_path / "s.tif", height=40, width=50)
    rng = np.random.default_rng(3)
    p = rng.random((40, 50)).astype(np.float32)
    for _ in range(2):  # smooth it so that objects span several strips
        p = (p + np.roll(p, 1, 0) + np.roll(p, 1, 1) + np.roll(p, -1, 0)) / 4
    mask = p > np.quantile(p, 0.6)
    labels, n = flood_fill(mask, connectivity=4)
    want = sorted((int((labels == k).sum()), round(float(p[labels == k].mean()), 5)) for k in range(1, n + 1))
    with open_scene(tmp_path / "s.tif") as sc:
        col = PolygonCollector(sc, simplify=0)
        for r0 in range(0, 40, 7):  # strips: pieces cut at strip edges are joined again
            col.add(r0, mask[r0:r0 + 7], p[r0:r0 + 7])
        feats = col.features("native")["features"]
    got = sorted((f["properties"]["area_px"], round(f["properties"]["mean_probability"], 5)) for f in feats)
    assert n > 5 and got == want
    with open_scene(tmp_path / "s.tif") as sc:  # without probabilities: no such property
        col = PolygonCollector(sc)
        col.add(0, mask)
        assert "mean_probability" not in col.features()["features"][0]["properties"]


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_region_resumes_after_a_kill_and_merges_the_union(tiny, tmp_path, monkeypatch):  # noqa: F811
    for i, count in enumerate([4, 3, 3]):  # one 4-band scene: the first three bands by default
        write_small_geotiff(tmp_path / f"t{i}.tif", count=count, seed=i, x0=440720.0 + 60 * i)
    out = tmp_path / "region"
    real = region_run.segment_scene
    calls = []

    def killed_after_files(model, uri, *args, **kwargs):
        results = real(model, uri, *args, **kwargs)
        calls.append(Path(uri).name)
        if len(calls) == 2:  # its files are written, its record is not: as kill -9 here would leave it
            raise KeyboardInterrupt
        return results

    monkeypatch.setattr(region_run, "segment_scene", killed_after_files)
    kw = {"mode": "global", "threshold": 0.5}
    with pytest.raises(KeyboardInterrupt):
        segment_scenes(tiny, str(tmp_path / "t*.tif"), "the red building", out=out, **kw)
    assert calls == ["t0.tif", "t1.tif"] and read_record(out / "t0") and read_record(out / "t1") is None
    assert (out / "t1" / "t1_mask.tif").is_file() and not (out / "merged.gpkg").exists()
    stale = out / "t1" / f".t1_mask.tif.{_dead_pid()}-0123abcd.tmp.tif"  # a write killed midway
    stale.write_bytes(b"II*\0partial")
    first = (out / "t0" / RECORD).read_bytes()
    monkeypatch.setattr(region_run, "segment_scene", real)

    s = segment_scenes(tiny, str(tmp_path / "t*.tif"), "the red building", out=out, **kw)
    assert (s.done, s.skipped, s.failed, s.total) == (["t1", "t2"], ["t0"], {}, 3)
    assert (out / "t0" / RECORD).read_bytes() == first  # done once, not redone
    assert not stale.exists() and not [p for p in out.rglob("*") if ".tmp" in p.name]
    got, want = merged_against_scenes(out, s.merged)
    assert s.merged == str(out / "merged.gpkg") and sum(want.values()) == s.n_polygons > 0 and got == want
    assert {k[0] for k in got} == {"t0", "t1", "t2"} and all(0.5 < k[4] <= 1 for k in got)

    again = segment_scenes(tiny, [str(tmp_path / f"t{i}.tif") for i in range(3)], ["the red building"],
                           out=out, **kw)
    assert (again.done, again.skipped) == ([], ["t0", "t1", "t2"])
    # Another threshold on the same folder: refused before any computing, unless overwrite.
    with pytest.raises(ValueError, match=r"region/t0: done with other expressions or settings.*overwrite"):
        segment_scenes(tiny, str(tmp_path / "t*.tif"), "the red building", out=out, mode="global", threshold=0.6)
    os.remove(out / "t2" / "t2_overlay.png")  # a listed file gone: not done any more
    again = segment_scenes(tiny, str(tmp_path / "t*.tif"), "the red building", out=out, **kw)
    assert again.done == ["t2"] and (out / "t2" / "t2_overlay.png").is_file()


def test_region_bad_input_is_named_before_any_computing(tiny, tmp_path, monkeypatch):  # noqa: F811
    write_small_geotiff(tmp_path / "a.tif")
    kw = {"out": tmp_path / "r"}
    with pytest.raises(TypeError, match="unknown keyword 'treshold'; did you mean 'threshold'"):
        segment_scenes(tiny, str(tmp_path / "a.tif"), "a", treshold=0.4, **kw)
    with pytest.raises(TypeError, match="unknown keyword 'return_mask'"):
        segment_scenes(tiny, str(tmp_path / "a.tif"), "a", return_mask=True, **kw)
    with pytest.raises(ValueError, match=r"end it in \.gpkg .* or \.parquet"):
        segment_scenes(tiny, str(tmp_path / "a.tif"), "a", merged=tmp_path / "m.shp", **kw)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as when it is not installed
    with pytest.raises(ImportError, match=r"GeoParquet needs pyarrow: pip install \"rrsis\[parquet\]\""):
        segment_scenes(tiny, str(tmp_path / "a.tif"), "a", merged=tmp_path / "m.parquet", **kw)
    with pytest.raises(ValueError, match="is empty"):
        segment_scenes(tiny, str(tmp_path / "a.tif"), " ", **kw)
    with pytest.raises(TypeError, match="segment_scene takes one scene.*segment_scenes"):
        rrsis.segment_scene(tiny, [str(tmp_path / "a.tif")], "a", out=tmp_path / "r")
    monkeypatch.setitem(sys.modules, "pyogrio", None)
    with pytest.raises(ImportError, match=r'GeoPackage needs pyogrio: pip install "rrsis\[geo\]"'):
        segment_scenes(tiny, str(tmp_path / "a.tif"), "a", **kw)
    (tmp_path / "item.json").write_text(json.dumps(_stac_item("i", {"d": {"href": "a.tif", "roles": ["data"]}})))
    monkeypatch.setitem(sys.modules, "pystac", None)
    with pytest.raises(ImportError, match=r'STAC items needs pystac: pip install "rrsis\[geo\]"'):
        resolve_scenes(str(tmp_path / "item.json"))
    assert not (tmp_path / "r").exists()


def test_region_reads_gdal_paths_from_a_list_and_reports_failed_scenes(tiny, tmp_path):  # noqa: F811
    with rasterio.MemoryFile(ext=".tif") as mem:
        with mem.open(driver="GTiff", height=32, width=48, count=3, dtype="uint8", crs="EPSG:32611",
                      transform=rasterio.Affine(0.5, 0, 440720.0, 0, -0.5, 3751320.0)) as ds:
            ds.write(np.full((3, 32, 48), 90, np.uint8))
        (tmp_path / "bad.tif").write_bytes(b"not a raster")
        lst = tmp_path / "l.txt"
        lst.write_text(f"{mem.name}\nbad.tif\n")
        with pytest.warns(UserWarning, match=r"scene bad .*cannot read raster"):
            s = segment_scenes(tiny, f"@{lst}", "the ship", out=tmp_path / "r", mode="global")
    vsi = Path(mem.name).stem
    assert s.done == [vsi] and list(s.failed) == ["bad"] and "cannot read raster" in s.failed["bad"]
    # Merged from the scenes done: the failed one is missing from it (and listed in region.json).
    assert s.merged == str(tmp_path / "r" / "merged.gpkg") and set(pyogrio.raw.read(s.merged)[3][0]) <= {vsi}
    region = json.loads((tmp_path / "r" / "region.json").read_text())
    assert {e["id"]: e["status"] for e in region["scenes"]} == {"bad": "failed", vsi: "done"}
    assert read_record(tmp_path / "r" / vsi)["source"] == mem.name


def test_merged_file_brings_several_crs_to_wgs84(tmp_path):
    from rasterio.warp import transform_geom
    from shapely import from_wkb
    from shapely.geometry import shape
    from shapely.geometry.polygon import orient

    from rrsis.scene.region import write_merged

    square = {"type": "Polygon", "coordinates": [[(440720, 3751320), (440730, 3751320), (440730, 3751310),
                                                  (440720, 3751310), (440720, 3751320)]]}
    row = {"geometry": square, "scene": "a", "expression": "the ship", "area_px": 400, "area_m2": 100.0,
           "mean_probability": 0.8}
    parts = [("urn:ogc:def:crs:EPSG::32611", [row]), ("EPSG:32612", [{**row, "scene": "b", "area_m2": None}])]
    assert write_merged(tmp_path / "m.gpkg", parts) == 2
    meta, _, geoms, fields = pyogrio.raw.read(tmp_path / "m.gpkg")
    assert meta["crs"] == "EPSG:4326" and list(fields[0]) == ["a", "b"] and np.isnan(fields[3][1])
    for wkb, crs in zip(geoms, ["EPSG:32611", "EPSG:32612"]):  # to 7 decimals, exterior counter-clockwise
        want = orient(shape(transform_geom(crs, "EPSG:4326", square)))
        assert from_wkb(wkb).geoms[0].equals_exact(want, 1e-7)
    assert write_merged(tmp_path / "one.gpkg", parts[:1]) == 1  # one CRS: kept
    assert pyogrio.read_info(tmp_path / "one.gpkg")["crs"] == "EPSG:32611"
    assert write_merged(tmp_path / "none.gpkg", []) == 0 and pyogrio.read_info(tmp_path / "none.gpkg")["features"] == 0


def test_merged_geoparquet(tmp_path):
    pa = pytest.importorskip("pyarrow.parquet")  # GeoParquet: only where pyarrow is installed
    from rrsis.scene.region import write_merged

    square = {"type": "Polygon", "coordinates": [[(0, 0), (1, 0), (1, 1), (0, 0)]]}
    parts = [("EPSG:4326", [{"geometry": square, "scene": s, "expression": "x", "area_px": 1, "area_m2": 1.0,
                             "mean_probability": 0.9} for s in "ab"])]
    assert write_merged(tmp_path / "m.parquet", parts) == 2
    table = pa.read_table(tmp_path / "m.parquet")
    assert json.loads(table.schema.metadata[b"geo"])["primary_column"] == "geometry"
    assert table.column("scene").to_pylist() == ["a", "b"]


def test_region_of_no_readable_scene_leaves_no_empty_folder(tiny, tmp_path):  # noqa: F811
    (tmp_path / "bad.tif").write_bytes(b"not a raster")
    with pytest.warns(UserWarning, match=r"scene (bad|none) .*cannot read raster"):
        s = segment_scenes(tiny, [str(tmp_path / "bad.tif"), "/vsimem/none.tif"], "the ship",
                           out=tmp_path / "r", mode="global")
    assert sorted(s.failed) == ["bad", "none"] and not s.done
    assert not (tmp_path / "r").exists()  # made by this call, nothing in it: removed
    (tmp_path / "r").mkdir()
    with pytest.warns(UserWarning, match=r"scene bad"):
        segment_scenes(tiny, str(tmp_path / "bad.tif"), "the ship", out=tmp_path / "r", mode="global")
    assert (tmp_path / "r").is_dir()  # the user's own folder stays
