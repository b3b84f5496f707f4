"""benchmarks/extreme_choice.py scores the rule the object mode applies: at ``EXTREME_AMONG`` its
choice is the component ``segment_scene`` keeps when it reads the extreme, and its other rows are
the reading without the extreme and the first (median) rule."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rasterio")

from rrsis.scene import segment_scene
from rrsis.scene.reading import EXTREME_AMONG, Reading, choose


def test_the_rows_score_the_shipped_rule(tmp_path, benchmark_module):
    ls = benchmark_module("large_scene")
    ec = benchmark_module("extreme_choice")
    model = ls.random_model(64)
    (meta,) = ls.make_set(tmp_path, [192], 1, ls.TUNE, 5, 64, 1)
    cats = sorted({o["category"] for o in meta["objects"]})
    texts = [f"the {w} {c}" for c in cats[:2] for w in ("largest", "northernmost")]
    meta["expressions"] = [{"text": t, "kind": "extreme", "targets": [meta["objects"][0]["id"]]} for t in texts]
    records = ec.scene_records(model, meta)
    assert [r["text"] for r in records] == texts
    prepared = ec.prepare(records)
    got = segment_scene(model, meta["path"], texts, mode="object", return_mask=True)  # the default reads it
    painted_any = 0
    for r, e, want in zip(records, prepared, got):
        kept = choose(e["said"], e["p"], e["x"], e["y"], e["area"])
        np.testing.assert_array_equal(r["comps"].label_image() == (kept[0] + 1 if len(kept) else -1), want.mask)
        painted_any += bool(want.mask.any())
        iou = float(e["iou"][kept[0]]) if len(kept) else 0.0
        assert ec.pick(e, EXTREME_AMONG) == iou
        # The other rows: the surest component, and the first rule.
        surest = int(np.argmax(e["p"])) if len(e["p"]) else None
        assert ec.pick(e, "surest") == (0.0 if surest is None else float(e["iou"][surest]))
        median = choose(e["said"], e["p"], e["x"], e["y"], e["area"], extreme_among=None)
        assert ec.pick(e, None) == (float(e["iou"][median[0]]) if len(median) else 0.0)
    assert painted_any >= 2  # not a comparison of empty masks


def test_a_share_counts_at_least_one_component(benchmark_module):
    ec = benchmark_module("extreme_choice")
    e = {"said": Reading(extreme=("area", 1)), "p": np.array([0.9, 0.8, 0.7]), "x": np.zeros(3),
         "y": np.zeros(3), "area": np.array([1.0, 5.0, 9.0]), "iou": np.array([0.1, 0.5, 0.9])}
    assert ec.pick(e, 0.1) == 0.1   # ceil(0.3) = 1: the surest alone
    assert ec.pick(e, 0.5) == 0.5   # two surest: the larger of them
    assert ec.pick(e, 3) == 0.9
    assert ec.pick({**e, "p": np.zeros(0)}, 3) == 0.0
