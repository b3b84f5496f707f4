"""rrsis.scene.evaluate_scene: whole-scene modes scored on a labelled scene.

The reference is independent of the scorer: each expression's polygons rasterised here in the
scene's own CRS and transform (``rasterio.features.rasterize``), against the mask GeoTIFF that
``segment_scene`` wrote for the mode, read whole with rasterio and counted with numpy.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
shapely = pytest.importorskip("shapely")
pyogrio = pytest.importorskip("pyogrio")

from affine import Affine
from pyogrio.raw import write as write_vector
from rasterio.features import rasterize
from rasterio.warp import transform_geom
from shapely.geometry import Point, box, mapping, shape

import rrsis
from rrsis.scene import SceneEvaluation, evaluate_scene, segment_scene
from rrsis.scene import evaluate as evaluate_module

UTM = "EPSG:32633"
T = Affine(0.5, 0, 400000.0, 0, -0.5, 4600128.0)  # 0.5 m pixels: 0.25 m² each
H, W = 96, 128
# (pixel geometry, expression): two spellings of one expression (its target: both polygons), a
# feature without text and one without area (both skipped and counted).
FEATURES = [(box(20, 10, 50, 30), "the red building"), (box(90, 60, 110, 80), "the white tank"),
            (box(5, 70, 25, 90), "The  red building"), (box(0, 0, 128, 60), "the gray road"),
            (Point(3, 3), "the ship"), (box(40, 40, 60, 50), "")]


def _world(g):
    return shapely.affinity.affine_transform(g, [T.a, T.b, T.d, T.e, T.c, T.f])


def _labels(path, features, crs=UTM, field="expression"):
    geoms = [_world(g) if crs == UTM else shape(transform_geom(UTM, crs, mapping(_world(g)))) for g, _ in features]
    driver = "GeoJSON" if str(path).endswith(".geojson") else "GPKG"
    write_vector(str(path), np.array([shapely.to_wkb(g) for g in geoms], dtype=object),
                 [np.array([t for _, t in features], dtype=object)], [field], driver=driver,
                 crs=None if driver == "GeoJSON" else crs, geometry_type="Unknown")
    return str(path)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evalscene")
    data = np.random.default_rng(0).integers(60, 120, (3, H, W)).astype(np.uint8)
    data[0, 10:30, 20:50] = 250
    with rasterio.open(folder / "scene.tif", "w", driver="GTiff", height=H, width=W, count=3, dtype="uint8",
                       crs=UTM, transform=T) as ds:
        ds.write(data)
    return {"tif": str(folder / "scene.tif"), "gpkg": _labels(folder / "labels.gpkg", FEATURES), "folder": folder}


@pytest.fixture(scope="module")
def evaluated(scene, tiny_model, tmp_path_factory):
    keep = tmp_path_factory.mktemp("keep")
    ev = evaluate_scene(tiny_model, scene["tif"], scene["gpkg"], text_field="expression", modes=("tiles", "auto"),
                        threshold=0.2, keep_predictions=keep)
    return ev, keep


def _truth(features):
    """bool masks of each expression (case and spaces ignored) on the scene's grid."""
    out = {}
    for key in {" ".join(t.split()).casefold() for _, t in features if t}:
        geoms = [_world(g) for g, t in features if t and " ".join(t.split()).casefold() == key and g.area > 0]
        if geoms:
            out[key] = rasterize([(g, 1) for g in geoms], out_shape=(H, W), transform=T, fill=0,
                                 dtype="uint8").astype(bool)
    return out


def _counts(mask_path, truth):
    with rasterio.open(mask_path) as ds:
        pred, valid = ds.read(1) > 0, ds.read_masks(1) > 0
    pred, truth = pred & valid, truth & valid
    return int((pred & truth).sum()), int((pred | truth).sum()), int(pred.sum()), int(truth.sum())


def test_each_iou_matches_an_independent_count(evaluated):
    ev, keep = evaluated
    assert [m.mode for m in ev.modes] == ["tiles", "auto", "naive"]  # naive always beside them
    assert [m.ran for m in ev.modes] == ["tiles", "global", "tiles"]
    assert ev.skipped == {"no_text": 1, "no_area": 1, "outside_aoi": 0, "no_pixel": 0}
    assert ev.area_unit == "m²" and ev.model == "gl-msin-tiny"
    truth = _truth(FEATURES)
    assert len(truth) == 3
    for m in ev.modes:
        assert sorted(e.text.casefold() for e in m.expressions) == sorted(truth)
        ious, inter, union = [], 0, 0
        for e in m.expressions:
            assert os.path.dirname(e.files["mask"]) == os.path.join(str(keep), m.mode)
            i, u, p, g = _counts(e.files["mask"], truth[e.text.casefold()])
            assert (e.intersection_px, e.union_px, e.predicted_px, e.true_px) == (i, u, p, g)
            assert e.iou == pytest.approx(i / u) and e.true_area == pytest.approx(g * 0.25)
            assert e.predicted_area == pytest.approx(p * 0.25)
            ious.append(i / u)
            inter, union = inter + i, union + u
        assert m.miou == pytest.approx(np.mean(ious)) and m.oiou == pytest.approx(inter / union)
        assert m.precision_at_05 == pytest.approx(np.mean([v >= 0.5 for v in ious]))
    red = next(e for e in ev.modes[0].expressions if e.text == "the red building")
    assert red.features == 2 and red.true_px == 30 * 20 + 20 * 20
    assert any(m.precision_at_05 > 0 for m in ev.modes) and any(m.miou < 0.5 for m in ev.modes)


def test_naive_is_each_tile_predicted_alone(evaluated, scene, tiny_model):
    # 64-pixel tiles on 96 x 128: columns 0 and 64, rows 0 and 32 (the last flush with the edge).
    # Rows 0-32 and 64-96 are covered by one tile each: there naive must be model.predict of that
    # tile alone; rows 32-64, where the two rows of tiles overlap, are blended as the tiles mode blends.
    ev, _ = evaluated
    with rasterio.open(scene["tif"]) as ds:
        image = ds.read().transpose(1, 2, 0)
    naive = next(m for m in ev.modes if m.mode == "naive")
    for e in naive.expressions:
        with rasterio.open(e.files["mask"]) as ds:
            mask = ds.read(1) > 0
        crops = [(y, x) for y in (0, 32) for x in (0, 64)]
        alone = tiny_model.predict([np.ascontiguousarray(image[y:y + 64, x:x + 64]) for y, x in crops],
                                   [e.text] * 4, threshold=0.2)
        for (y, x), m in zip(crops, alone, strict=True):
            rows = slice(0, 32) if y == 0 else slice(32, 64)  # the tile's rows no other tile covers
            np.testing.assert_array_equal(mask[y:y + 64, x:x + 64][rows], m[rows])


def test_json_round_trips(evaluated, tmp_path):
    ev, _ = evaluated
    path = tmp_path / "eval.json"
    ev.write_json(path)
    assert SceneEvaluation.read_json(path) == ev
    d = json.loads(path.read_text(encoding="utf-8"))
    assert d["rrsis_version"] == rrsis.__version__ and d["options"]["threshold"] == 0.2
    assert [m["oiou"] for m in d["modes"]] == [m.oiou for m in ev.modes]
    assert not list(tmp_path.glob(".*"))  # nothing half-written left beside it


def test_labels_in_another_crs_give_the_same_numbers(evaluated, scene, tiny_model, tmp_path, monkeypatch):
    ev, _ = evaluated
    other = _labels(tmp_path / "labels.geojson", FEATURES, crs="EPSG:4326")  # RFC 7946: no crs member
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    os.makedirs(tmp_path / "tmp")
    tiny_model.save_pretrained(tmp_path / "model")  # a saved directory is loaded
    again = evaluate_scene(str(tmp_path / "model"), scene["tif"], other, text_field="expression", modes="naive",
                           threshold=0.2)
    assert [m.mode for m in again.modes] == ["naive"] and again.model == str(tmp_path / "model")
    strip = [[(e.text, e.intersection_px, e.union_px, e.true_px) for e in m.expressions] for m in (again.modes[0],)]
    assert strip == [[(e.text, e.intersection_px, e.union_px, e.true_px) for e in ev.modes[2].expressions]]
    assert os.listdir(tmp_path / "tmp") == []  # the predictions' temporary folder is removed


def test_aoi_restricts_the_count(scene, tiny_model, tmp_path, monkeypatch):
    monkeypatch.setattr(evaluate_module, "_STRIP_PIXELS", 60 * 7 + 5)  # strips of 7 rows, the last one short
    # Within columns 10-70, rows 0-50, its south-west corner cut off: part of the red building's
    # north polygon, part of the road; the white tank (rows 60-80, columns 90-110) not at all.
    area = shapely.Polygon([(10, 0), (70, 0), (70, 50), (35.7, 50), (10, 13.3)])
    ev = evaluate_scene(tiny_model, scene["tif"], scene["gpkg"], text_field="expression", modes="naive",
                        threshold=0.2, aoi=_world(area), aoi_crs=UTM, keep_predictions=tmp_path)
    assert ev.skipped["outside_aoi"] == 1
    assert sorted(e.text for e in ev.modes[0].expressions) == ["the gray road", "the red building"]
    inside = rasterize([(_world(area), 1)], out_shape=(H, W), transform=T).astype(bool)[0:50, 10:70]
    assert 0 < inside.sum() < 50 * 60
    for e in ev.modes[0].expressions:
        with rasterio.open(e.files["mask"]) as ds:  # the outputs cover the area's window
            assert ds.shape == (50, 60) and ds.transform == T @ Affine.translation(10, 0)
            pred = ds.read(1) > 0
        truth = _truth(FEATURES)[e.text.casefold()][0:50, 10:70] & inside  # outside the area nothing counts
        pred &= inside
        assert (e.intersection_px, e.union_px, e.predicted_px, e.true_px) == (
            int((pred & truth).sum()), int((pred | truth).sum()), int(pred.sum()), int(truth.sum()))
    road = next(e for e in ev.modes[0].expressions if e.text == "the gray road")
    red = next(e for e in ev.modes[0].expressions if e.text == "the red building")
    assert road.true_px == int(inside.sum()) and 0 < red.true_px < 30 * 20
    assert red.features == 1  # its south polygon lies outside the area


@pytest.mark.parametrize(("features", "kwargs", "match"), [
    ([(box(1, 1, 9, 9), ""), (Point(4, 4), "the ship")], {}, r"no expression found.*no_text 1, no_area 1"),
    (FEATURES, {"text_field": "text"}, r"no field 'text'; its fields: expression"),
    ([*FEATURES, (box(200, 200, 220, 220), "the blue ship")], {}, r"1 feature\(s\) lie entirely outside"),
    (FEATURES, {"modes": ("tile", "auto")}, r"mode 'tile'.*did you mean 'tiles'"),
    (FEATURES, {"pixel_ratios": 2}, r"pixel_ratios=.*did you mean 'pixel_ratio'"),
])
def test_clear_errors_before_any_computing(scene, tmp_path, features, kwargs, match):
    labels = _labels(tmp_path / "l.gpkg", features)
    kwargs = {"text_field": "expression", **kwargs}

    class Untouchable:  # any use of the model would fail differently
        arch = "untouchable"

    with pytest.raises(ValueError, match=match):
        evaluate_scene(Untouchable(), scene["tif"], labels, **kwargs)


def test_missing_geo_extra_names_the_install(scene, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyogrio", None)
    with pytest.raises(ImportError, match=r'pip install "rrsis\[geo\]"'):
        evaluate_scene(object(), scene["tif"], scene["gpkg"])


def test_seconds_leave_the_writing_out_and_no_kept_files_score_the_same(evaluated, scene, tiny_model, monkeypatch):
    # Each overlay written takes 1 s more: the writing of 3 expressions then takes over 3 s, which
    # SceneResult.write_seconds counts and the mode's seconds (the time to its answer) leave out.
    from rrsis.scene import api

    real, results = api.write_overlay, []

    def slow_overlay(*args, **kwargs):
        time.sleep(1.0)
        return real(*args, **kwargs)

    def recorded(*args, **kwargs):
        results.extend(segment_scene(*args, **kwargs))
        return results[-len(args[2]):]

    monkeypatch.setattr(api, "write_overlay", slow_overlay)
    monkeypatch.setattr(evaluate_module, "segment_scene", recorded)
    ev = evaluate_scene(tiny_model, scene["tif"], scene["gpkg"], text_field="expression", modes="naive",
                        threshold=0.2)
    assert len(results) == 3 and all(1.0 <= r.write_seconds <= r.seconds for r in results)
    assert ev.modes[0].seconds < 3.0
    assert segment_scene(tiny_model, scene["tif"], "the white tank", mode="global")[0].write_seconds == 0.0  # no file
    # Without keep_predictions: the scores of the kept run, and no files named.
    kept = next(m for m in evaluated[0].modes if m.mode == "naive")
    assert [dataclasses.replace(e, files={}) for e in kept.expressions] == ev.modes[0].expressions
    assert (ev.modes[0].miou, ev.modes[0].oiou) == (kept.miou, kept.oiou)


def test_existing_predictions_are_refused_naming_what_evaluate_takes(evaluated, scene):
    class Untouchable:  # the refusal comes before any use of the model
        arch = "untouchable"

    with pytest.raises(FileExistsError) as info:
        evaluate_scene(Untouchable(), scene["tif"], scene["gpkg"], text_field="expression", modes=("tiles", "auto"),
                       keep_predictions=evaluated[1])
    named, advice = str(info.value).split(" already exist(s): ")
    assert named.startswith(os.path.join(str(evaluated[1]), "tiles", "scene_1"))
    assert advice == ("pass overwrite=True (rrsis evaluate --overwrite) to replace, or choose another "
                      "keep_predictions folder (--keep-predictions)")
