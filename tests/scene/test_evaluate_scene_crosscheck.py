"""evaluate_scene against the benchmark's own arithmetic, on generated scenes.

Two paths to one number: evaluate_scene writes each mode's mask GeoTIFF and counts it against
polygons (the labels raster's objects turned into vectors, as a user's GIS would hold them)
rasterised onto the mask's grid; here the same mode runs through ``segment_scene(...,
return_mask=True)`` and is counted against the labels raster itself (``np.isin(labels,
targets)``), as benchmarks/large_scene.py counts it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("shapely")
pytest.importorskip("pyogrio")

from affine import Affine
from rasterio.features import shapes

from rrsis.scene import evaluate_scene, segment_scene

N_EXPRESSIONS = 3  # per scene: the first ones with a target


def _features(meta):
    """GeoJSON features of the first expressions with a target, from the labels raster."""
    with rasterio.open(meta["labels_path"]) as ds:
        objects, transform, crs = ds.read(1), ds.transform, ds.crs
    chosen = [e for e in meta["expressions"] if e["targets"]][:N_EXPRESSIONS]
    feats = [{"type": "Feature", "geometry": g, "properties": {"expression": e["text"]}}
             for e in chosen for g, _ in shapes(objects, mask=np.isin(objects, e["targets"]), transform=transform)]
    return feats, chosen, crs


def _write(path, features, crs):
    with open(path, "w", encoding="utf-8") as fh:  # a crs member: the scenes' UTM zone, not WGS 84
        json.dump({"type": "FeatureCollection", "features": features,
                   "crs": {"type": "name", "properties": {"name": crs.to_string()}}}, fh)
    return str(path)


@pytest.fixture(scope="module")
def region(tmp_path_factory, benchmark_module):
    ls = benchmark_module("large_scene")
    folder = tmp_path_factory.mktemp("crosscheck")
    metas = ls.make_set(folder, [128], 2, ls.TUNE, 3, 64, 1)
    # The generator puts every scene at one place: the second moves 10 m east of the first, so that
    # one labels file holds both scenes' polygons apart.
    for key in ("path", "labels_path"):
        with rasterio.open(metas[1][key], "r+") as ds:
            ds.transform = ds.transform @ Affine.translation(128 + 20, 0)
    (folder / "labels").mkdir()
    everything, chosen = [], []
    for meta in metas:
        feats, ex, crs = _features(meta)
        _write(folder / "labels" / f"{meta['image'][:-4]}.geojson", feats, crs)
        everything += feats
        chosen.append(ex)
    return {"metas": metas, "chosen": chosen, "model": ls.random_model(64), "folder": folder,
            "one_file": _write(folder / "all.geojson", everything, crs)}


def _direct(model, meta, chosen, mode):
    """``{text: (intersection, union)}`` of the mode's in-memory masks against the labels raster."""
    with rasterio.open(meta["labels_path"]) as ds:
        objects = ds.read(1)
    texts = [e["text"] for e in chosen]
    kw = {"mode": "tiles", "overlap": 0.0} if mode == "naive" else {"mode": mode}
    results = segment_scene(model, meta["path"], texts, threshold=0.4, return_mask=True, **kw)
    out = {}
    for e, r in zip(chosen, results, strict=True):
        truth = np.isin(objects, e["targets"])
        out[e["text"]] = (int((r.mask & truth).sum()), int((r.mask | truth).sum()))
    return out


@pytest.fixture(scope="module")
def evaluated(region):
    return evaluate_scene(region["model"], [m["path"] for m in region["metas"]], region["one_file"],
                          text_field="expression", modes=["object"], threshold=0.4)


def test_per_expression_and_pooled_iou_match_the_labels_raster(region, evaluated):
    metas, chosen, model, ev = region["metas"], region["chosen"], region["model"], evaluated
    assert [m.mode for m in ev.modes] == ["object", "naive"]
    assert [s.id for s in ev.scenes] == ["s128_0", "s128_1"]
    assert ev.skipped == {"no_text": 0, "no_area": 0, "outside_aoi": 0, "no_pixel": 0, "scenes": 0}
    for k, mode in enumerate(("object", "naive")):
        inter = union = 0
        ious = []
        for meta, ex, sc in zip(metas, chosen, ev.scenes, strict=True):
            direct = _direct(model, meta, ex, mode)
            got = {e.text: e for e in sc.modes[k].expressions}
            assert sorted(got) == sorted(direct) and len(got) == N_EXPRESSIONS  # each asked on its own scene only
            for text, (i, u) in direct.items():
                assert (got[text].intersection_px, got[text].union_px) == (i, u), (mode, sc.id, text)
                assert got[text].iou == pytest.approx(i / u) and got[text].scene == sc.id
                inter, union = inter + i, union + u
                ious.append(i / u)
            assert sc.modes[k].oiou == pytest.approx(sum(i for i, _ in direct.values())
                                                     / sum(u for _, u in direct.values()))
        pooled = ev.modes[k]
        assert len(pooled.expressions) == 2 * N_EXPRESSIONS
        assert pooled.oiou == pytest.approx(inter / union) and pooled.miou == pytest.approx(np.mean(ious))
        assert pooled.precision_at_05 == pytest.approx(np.mean([v >= 0.5 for v in ious]))
    assert 0 < ev.modes[0].oiou < 1


def test_one_file_per_scene_by_template_gives_the_same_counts(region, evaluated):
    folder = region["folder"]
    per = evaluate_scene(region["model"], str(folder / "s128_?.tif"), str(folder / "labels" / "{stem}.geojson"),
                         text_field="expression", modes="naive", threshold=0.4)
    assert [s.labels for s in per.scenes] == [str(folder / "labels" / f"s128_{k}.geojson") for k in (0, 1)]
    strip = [[(s.id, e.text, e.intersection_px, e.union_px, e.true_px) for e in s.modes[-1].expressions]
             for ev in (evaluated, per) for s in ev.scenes]
    assert strip[:2] == strip[2:]
    assert (evaluated.modes[-1].oiou, evaluated.modes[-1].miou) == (per.modes[0].oiou, per.modes[0].miou)
