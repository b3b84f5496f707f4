"""rrsis.scene.evaluate_scene over several scenes: which feature is asked where, the record's form
(a one-scene record as 0.2.0 wrote it), and the errors before any computing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
shapely = pytest.importorskip("shapely")
pytest.importorskip("pyogrio")

from affine import Affine
from pyogrio.raw import write as write_vector
from rasterio.features import rasterize, shapes
from shapely.geometry import box

import rrsis
from rrsis.scene import SceneEvaluation, evaluate_scene

ASSET = Path(__file__).resolve().parents[1] / "assets" / "evaluate-scene" / "one-scene-0.2.0.json"
UTM = "EPSG:32633"
# Two 64 x 64 scenes of 0.5 m pixels side by side, west (x 400000-400032) and east (400032-400064),
# and one far from both that no label touches.
WEST, EAST = Affine(0.5, 0, 400000.0, 0, -0.5, 4600032.0), Affine(0.5, 0, 400032.0, 0, -0.5, 4600032.0)
FAR = Affine(0.5, 0, 500000.0, 0, -0.5, 4600032.0)


def _world(g, t=WEST):
    return shapely.affinity.affine_transform(g, [t.a, t.b, t.d, t.e, t.c, t.f])


# In the west scene's pixels: a tank inside it, a road running on into the east scene, and a field
# inside the east one.
FEATURES = [(box(5, 5, 25, 20), "the white tank"), (box(40, 30, 110, 44), "the gray road"),
            (box(80, 5, 100, 25), "the green field")]


def _labels(path, features):
    write_vector(str(path), np.array([shapely.to_wkb(_world(g)) for g, _ in features], dtype=object),
                 [np.array([t for _, t in features], dtype=object)], ["expression"], driver="GPKG", crs=UTM,
                 geometry_type="Polygon")
    return str(path)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evalmany")
    for k, (name, t) in enumerate((("west", WEST), ("east", EAST), ("far", FAR))):
        data = np.random.default_rng(k).integers(60, 120, (3, 64, 64)).astype(np.uint8)
        with rasterio.open(folder / f"{name}.tif", "w", driver="GTiff", height=64, width=64, count=3,
                           dtype="uint8", crs=UTM, transform=t) as ds:
            ds.write(data)
    return folder, _labels(folder / "labels.gpkg", FEATURES)


class Untouchable:  # any use of the model would fail differently
    arch = "untouchable"


def test_a_feature_counts_on_each_scene_it_overlaps_clipped_to_it(pair, tiny_model, tmp_path):
    folder, labels = pair
    ev = evaluate_scene(tiny_model, str(folder / "*.tif"), labels, text_field="expression", modes="naive",
                        threshold=0.2, keep_predictions=tmp_path)
    assert [s.id for s in ev.scenes] == ["east", "west"]  # sorted by id, as rrsis predict's regions; far: no label
    asked = {s.id: {e.text: e for e in s.modes[0].expressions} for s in ev.scenes}
    assert sorted(asked["west"]) == ["the gray road", "the white tank"]
    assert sorted(asked["east"]) == ["the gray road", "the green field"]
    assert asked["west"]["the gray road"].true_px == 24 * 14 and asked["east"]["the gray road"].true_px == 46 * 14
    assert asked["west"]["the white tank"].true_area == pytest.approx(20 * 15 * 0.25)
    for s in ev.scenes:  # each query against its own scene's mask, in DIR/MODE/<scene id>/
        for e in s.modes[0].expressions:
            assert os.path.dirname(e.files["mask"]) == str(tmp_path / "naive" / s.id) and e.scene == s.id
            with rasterio.open(e.files["mask"]) as ds:
                pred, t = ds.read(1) > 0, ds.transform
            truth = rasterize([(_world(g), 1) for g, x in FEATURES if x == e.text], out_shape=(64, 64),
                              transform=t).astype(bool)
            assert (e.intersection_px, e.union_px) == (int((pred & truth).sum()), int((pred | truth).sum()))
    rows = [e for s in ev.scenes for e in s.modes[0].expressions]
    assert ev.modes[0].expressions == rows and ev.modes[0].ran == "tiles"
    assert ev.modes[0].oiou == pytest.approx(sum(e.intersection_px for e in rows) / sum(e.union_px for e in rows))
    assert ev.modes[0].miou == pytest.approx(np.mean([e.iou for e in rows]))
    assert ev.skipped == {"no_text": 0, "no_area": 0, "outside_aoi": 0, "no_pixel": 0, "scenes": 1}
    # the record round-trips, each expression naming its scene; the per-scene table has a row per scene
    ev.write_json(tmp_path / "eval.json")
    d = json.loads((tmp_path / "eval.json").read_text(encoding="utf-8"))
    assert [s["id"] for s in d["scenes"]] == ["east", "west"] and d["modes"][0]["expressions"][0]["scene"] == "east"
    assert SceneEvaluation.read_json(tmp_path / "eval.json") == ev
    lines = ev.scene_table().splitlines()
    assert lines[0].split()[:3] == ["scene", "mode", "ran"] and [r.split()[:2] for r in lines[1:]] == [
        ["east", "naive"], ["west", "naive"]]
    assert len(ev.table().splitlines()) == 2 and ev.table().splitlines()[1].split()[-2] == "4"


def test_an_area_of_interest_skips_the_scenes_it_misses(pair, tiny_model):
    folder, labels = pair
    ev = evaluate_scene(tiny_model, str(folder / "*.tif"), labels, text_field="expression", modes="naive",
                        threshold=0.2, aoi=_world(box(0, 0, 30, 64)), aoi_crs=UTM)
    assert [s.id for s in ev.scenes] == ["west"] and [e.text for e in ev.modes[0].expressions] == ["the white tank"]
    # the road on the west scene (its part there lies east of the area) and both east expressions
    assert ev.skipped == {"no_text": 0, "no_area": 0, "outside_aoi": 3, "no_pixel": 0, "scenes": 2}
    assert ev.scenes[0].skipped["outside_aoi"] == 1


def test_a_scene_whose_targets_lie_on_nodata_is_left_out(pair, tiny_model, tmp_path):
    folder, _ = pair
    data = np.full((3, 64, 64), 90, np.uint8)
    data[:, 0:32, 0:32] = 0  # nodata under the ship's polygon
    with rasterio.open(tmp_path / "hazy.tif", "w", driver="GTiff", height=64, width=64, count=3, dtype="uint8",
                       crs=UTM, transform=FAR, nodata=0) as ds:
        ds.write(data)
    ship = shapely.affinity.affine_transform(box(4, 4, 20, 20), [FAR.a, 0, 0, FAR.e, FAR.c, FAR.f])
    labels = str(tmp_path / "l.gpkg")
    write_vector(labels, np.array([shapely.to_wkb(g) for g in (_world(FEATURES[0][0]), ship)], dtype=object),
                 [np.array([FEATURES[0][1], "the ship"], dtype=object)], ["expression"], driver="GPKG", crs=UTM,
                 geometry_type="Polygon")
    ev = evaluate_scene(tiny_model, [folder / "west.tif", tmp_path / "hazy.tif"], labels, text_field="expression",
                        modes="naive", threshold=0.2)
    assert [s.id for s in ev.scenes] == ["west"] and [e.text for e in ev.modes[0].expressions] == ["the white tank"]
    assert ev.skipped == {"no_text": 0, "no_area": 0, "outside_aoi": 0, "no_pixel": 1, "scenes": 1}


def test_a_record_of_0_2_0_reads_and_rewrites_unchanged(tmp_path):
    ev = SceneEvaluation.read_json(ASSET)
    assert ev.scenes is None and [m.mode for m in ev.modes] == ["tiles", "naive"]
    assert all(e.scene is None for m in ev.modes for e in m.expressions)
    ev.write_json(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == ASSET.read_bytes()
    assert [r.split()[:2] for r in ev.scene_table().splitlines()[1:]] == [["scene", "tiles"], ["scene", "naive"]]


def test_one_scene_gives_the_record_0_2_0_gave(tmp_path, monkeypatch):
    # HOW.md beside the asset: the guide's example, which wrote it with the code before this change.
    import torch

    from rrsis.data.synthetic import vocabulary
    from rrsis.data.synthetic.large import write_large_scene

    monkeypatch.chdir(tmp_path)
    own = write_large_scene("own", 64, seed=0, n_expressions=2)
    with rasterio.open("own/scene_labels.tif") as ds:
        objects, crs, t = ds.read(1), ds.crs, ds.transform
    feats = [{"type": "Feature", "geometry": g, "properties": {"expression": e["text"]}}
             for e in own["expressions"] for g, _ in shapes(objects, mask=objects == e["object"], transform=t)]
    with open("labels.geojson", "w") as fh:
        json.dump({"type": "FeatureCollection", "features": feats,
                   "crs": {"type": "name", "properties": {"name": crs.to_string()}}}, fh)
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny").eval()
    model.tokenizer = rrsis.Tokenizer.from_words(vocabulary())
    with pytest.warns(UserWarning, match="4 bands"):
        got = evaluate_scene(model, "own/scene.tif", "labels.geojson", text_field="expression", modes=["tiles"],
                             threshold=0.3).to_dict()
    want = json.loads(ASSET.read_text(encoding="utf-8"))
    assert got["options"].pop("pixel_ratio") == 1.0  # the number pixel_ratio auto was: recorded since 0.2.0
    from rrsis.scene.outputs import model_fingerprint
    assert got.pop("model_sha256") == model_fingerprint(model)  # the weights scored: recorded since 0.2.0
    for d in (got, want):
        d.update(scene=os.path.basename(d["scene"]), labels=os.path.basename(d["labels"]))
        for m in d["modes"]:
            m["seconds"] = 0.0
    assert got == want


def test_one_scene_takes_a_labels_template_too(pair, tiny_model, tmp_path):
    folder, _ = pair
    labels = _labels(tmp_path / "west.gpkg", FEATURES[:2])
    plain = evaluate_scene(tiny_model, folder / "west.tif", labels, text_field="expression", modes="naive",
                           threshold=0.2)
    again = evaluate_scene(tiny_model, folder / "west.tif", str(tmp_path / "{stem}.gpkg"), text_field="expression",
                           modes="naive", threshold=0.2)
    assert again.scenes is None and again.labels == str(tmp_path / "{stem}.gpkg")
    assert again.modes[0].expressions == plain.modes[0].expressions and len(plain.modes[0].expressions) == 2


def test_a_label_on_no_scene_is_an_error_naming_how_many(pair, tmp_path):
    folder, _ = pair
    labels = _labels(tmp_path / "l.gpkg", [*FEATURES, (box(200, 0, 210, 10), "the ship"),
                                           (box(0, 100, 10, 110), "the ship")])
    with pytest.raises(ValueError, match=r"2 feature\(s\) lie entirely outside every scene \(2 scenes\)"):
        evaluate_scene(Untouchable(), [folder / "west.tif", folder / "east.tif"], labels, text_field="expression")


@pytest.mark.parametrize(("scenes", "labels", "error", "match"), [
    ("nowhere/*.tif", "labels.gpkg", FileNotFoundError, r"nowhere/\*\.tif: the pattern matches no file"),
    ("*.tif", "per/{stem}.gpkg", FileNotFoundError,
     r"labels per/east\.gpkg \(for scene .*east\.tif, from the template per/\{stem\}\.gpkg\): file not found"),
    ("*.tif", "per/{name}.gpkg", ValueError, r"unknown field \{name\}.*\{stem\}.*\{id\}"),
    ("*.tif", "missing.gpkg", FileNotFoundError, r"labels missing\.gpkg: file not found"),
])
def test_clear_errors_before_any_computing(pair, monkeypatch, scenes, labels, error, match):
    monkeypatch.chdir(pair[0])
    with pytest.raises(error, match=match):
        evaluate_scene(Untouchable(), scenes, labels, text_field="expression")


def test_a_template_file_keeps_one_scenes_errors(pair, tmp_path):
    folder, _ = pair
    _labels(tmp_path / "west.gpkg", FEATURES[:1])
    _labels(tmp_path / "east.gpkg", FEATURES[:1])  # the west scene's tank: outside the east scene
    with pytest.raises(ValueError, match=r"east\.gpkg: 1 feature\(s\) lie entirely outside .*east\.tif"):
        evaluate_scene(Untouchable(), [folder / "west.tif", folder / "east.tif"], str(tmp_path / "{stem}.gpkg"),
                       text_field="expression")
