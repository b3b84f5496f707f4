"""rrsis.scene.labelled: a labels file read once and placed on many scenes gives what reading it
for each scene gave (the same features, pixels, counts and evaluation records), reprojecting once
per scene CRS and clipping only the features near each scene."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
shapely = pytest.importorskip("shapely")
pytest.importorskip("pyogrio")

from affine import Affine
from pyogrio.raw import write as write_vector
from rasterio.warp import transform as warp_points
from rasterio.warp import transform_geom
from shapely.geometry import Point, Polygon, box, mapping, shape

import rrsis.scene.evaluate as evaluate_module
from rrsis.scene import evaluate_scene
from rrsis.scene.aoi import AreaOfInterest
from rrsis.scene.evaluate_labels import read_truth
from rrsis.scene.labelled import place_labels, read_labels
from rrsis.scene.read import open_scene

UTM, MERC = "EPSG:32633", "EPSG:3857"
# Two 64 x 64 UTM scenes of 0.5 m pixels side by side (west, east), and two Web Mercator ones
# side by side over the same ground, their shared edge above the UTM scenes' own.
WEST, EAST = Affine(0.5, 0, 400000.0, 0, -0.5, 4600032.0), Affine(0.5, 0, 400032.0, 0, -0.5, 4600032.0)
(_PX,), (_PY,) = warp_points(UTM, MERC, [400032.0], [4600016.0])
MWEST, MEAST = Affine(0.5, 0, _PX - 32, 0, -0.5, _PY + 16), Affine(0.5, 0, _PX, 0, -0.5, _PY + 16)
# In the west scene's pixels: shapes inside one scene, and shapes straddling the scenes' edges;
# two spellings of one expression; one feature without text and one without area.
FEATURES = [(box(5, 5, 25, 20), "the white tank"), (box(40, 30, 110, 44), "the gray road"),
            (box(80, 5, 100, 25), "the green field"), (box(55, 40, 75, 60), "the  White Tank"),
            (Polygon([(20, 45), (50, 62), (10, 60)]), "the red building"), (box(0, 0, 10, 10), ""),
            (Point(30, 30), "the plane")]


def _wgs84(g):
    world = shapely.affinity.affine_transform(g, [WEST.a, WEST.b, WEST.d, WEST.e, WEST.c, WEST.f])
    return shape(transform_geom(UTM, "EPSG:4326", mapping(world)))


@pytest.fixture(scope="module")
def four(tmp_path_factory):
    folder = tmp_path_factory.mktemp("labelled")
    for k, (name, crs, t) in enumerate((("a-west", UTM, WEST), ("b-east", UTM, EAST), ("c-mwest", MERC, MWEST),
                                        ("d-meast", MERC, MEAST))):
        data = np.random.default_rng(k).integers(60, 120, (3, 64, 64)).astype(np.uint8)
        with rasterio.open(folder / f"{name}.tif", "w", driver="GTiff", height=64, width=64, count=3,
                           dtype="uint8", crs=crs, transform=t) as ds:
            ds.write(data)
    labels = str(folder / "labels.gpkg")  # in neither scene CRS: every scene reprojects
    write_vector(labels, np.array([shapely.to_wkb(_wgs84(g)) for g, _ in FEATURES], dtype=object),
                 [np.array([t for _, t in FEATURES], dtype=object)], ["expression"], driver="GPKG",
                 crs="EPSG:4326", geometry_type="Unknown")
    return folder, labels, sorted(str(p) for p in folder.glob("*.tif"))


def _skips():
    return dict.fromkeys(("no_text", "no_area", "outside"), 0)


def test_placing_once_gives_what_each_scenes_own_reading_gave(four, monkeypatch):
    _, labels, scenes = four
    reads, reprojections = [], []
    import rrsis.scene.labelled as labelled

    real_read, real_in_crs = labelled.read_labelled_features, AreaOfInterest.in_crs
    monkeypatch.setattr(labelled, "read_labelled_features", lambda *a: reads.append(a) or real_read(*a))
    monkeypatch.setattr(AreaOfInterest, "in_crs", lambda self, crs: reprojections.append(crs) or real_in_crs(self, crs))
    once = read_labels(labels, "expression", None)
    assert once.skipped == {"no_text": 1, "no_area": 1} and len(once.fids) == 5
    placed_features = set()
    for path in scenes:
        with open_scene(path, stretch=None) as sc:
            before, after = _skips(), _skips()
            old = place_labels(labels, "expression", None, sc, before)
            new = once.place(sc, after)
        assert before == after and after["outside"] + len(new) == 5
        assert [f[:3] for f in new] == [f[:3] for f in old]
        assert all(a[3].equals_exact(b[3], 0) for a, b in zip(old, new, strict=True))
        placed_features |= {f[0] for f in new}
        # against an independent placing: the feature's WGS 84 polygon reprojected to the scene
        # by GDAL without densifying (so up to a hundredth of a pixel apart), then to pixels
        with rasterio.open(path) as ds:
            inv, crs = ~ds.transform, ds.crs
        for fid, text, _key, pix in new:
            g, given = FEATURES[fid - 1]  # a GeoPackage counts its features from 1
            assert text == " ".join(given.split())
            ref = shape(transform_geom("EPSG:4326", crs, mapping(_wgs84(g))))
            ref = shapely.affinity.affine_transform(ref, [inv.a, inv.b, inv.d, inv.e, inv.c, inv.f])
            assert pix.symmetric_difference(ref.intersection(box(0, 0, 64, 64))).area < 1e-2, (path, text)
    assert placed_features == set(once.fids)  # every feature lands on some scene
    assert len(reads) == 1 + len(scenes)  # once, then once for each place_labels call
    # once per scene CRS for the features read once (5 x 2), and 5 for every place_labels call
    assert len(reprojections) == 5 * 2 + 5 * len(scenes)


def test_a_scene_far_from_every_feature_clips_none(four, tmp_path, monkeypatch):
    _, labels, _ = four
    far = tmp_path / "far.tif"
    with rasterio.open(far, "w", driver="GTiff", height=64, width=64, count=3, dtype="uint8", crs=UTM,
                       transform=Affine(0.5, 0, 500000.0, 0, -0.5, 4600032.0)) as ds:
        ds.write(np.zeros((3, 64, 64), np.uint8))
    once = read_labels(labels, "expression", None)
    clips = []
    real = shapely.affinity.affine_transform
    monkeypatch.setattr(shapely.affinity, "affine_transform", lambda *a: clips.append(1) or real(*a))
    with open_scene(str(far), stretch=None) as sc:
        skipped = _skips()
        assert once.place(sc, skipped) == [] and skipped == {"no_text": 1, "no_area": 1, "outside": 5}
    assert clips == []
    with open_scene(str(four[2][0]), stretch=None) as sc:  # the west scene clips only its features
        placed = once.place(sc, _skips())
    assert 0 < len(placed) == len(clips) < 5


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_a_file_without_crs_is_refused_naming_the_scenes(four, tmp_path):
    _, _, scenes = four
    bare = str(tmp_path / "bare.gpkg")
    write_vector(bare, np.array([shapely.to_wkb(box(0, 0, 1, 1))], dtype=object), [np.array(["x"], dtype=object)],
                 ["expression"], driver="GPKG", geometry_type="Polygon")
    once = read_labels(bare, "expression", None)
    with open_scene(scenes[0], stretch=None) as sc, pytest.raises(ValueError, match="no CRS.*EPSG:32633"):
        once.place(sc, _skips())


def _without_seconds(x):
    if isinstance(x, dict):
        return {k: _without_seconds(v) for k, v in x.items() if k != "seconds"}
    if isinstance(x, list):
        return [_without_seconds(v) for v in x]
    return x


def test_many_scene_records_match_reading_the_file_for_each_scene(four, tiny_model, monkeypatch):
    folder, labels, _ = four
    run = {"text_field": "expression", "modes": "naive", "threshold": 0.2}
    new = evaluate_scene(tiny_model, str(folder / "*.tif"), labels, **run)
    assert new.area_unit == "m²"  # scenes in several CRSs pool ground areas (geodesic where not metric)

    def per_scene(sources, files, text_field, layer, crs, area):  # the reading before: one per scene
        return [read_truth(s.uri, f, text_field, layer, crs, area) for s, f in zip(sources, files, strict=True)]

    monkeypatch.setattr(evaluate_module, "read_truths", per_scene)
    old = evaluate_scene(tiny_model, str(folder / "*.tif"), labels, **run)
    assert _without_seconds(dataclasses.asdict(new)) == _without_seconds(dataclasses.asdict(old))
    assert [s.id for s in new.scenes] == ["a-west", "b-east", "c-mwest", "d-meast"]
    assert new.skipped["no_text"] == 1 and new.skipped["no_area"] == 1  # once, not once per scene
    straddling = [e for s in new.scenes for e in s.modes[0].expressions if e.text == "the gray road"]
    assert len(straddling) == 4 and all(e.true_px > 0 for e in straddling)
