"""benchmarks/colour_choice.py scores the rule the object mode applies: at the shipped constants
its choice is what ``segment_scene`` keeps when it reads the colour, and its scores are the IoU
of that choice."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rasterio")

from rrsis.scene import segment_scene
from rrsis.scene.colour import COLOUR_AMONG, COLOUR_MARGIN, colour_cost
from rrsis.scene.reading import Reading, choose


def test_the_rows_score_the_shipped_rule(tmp_path, benchmark_module):
    ls = benchmark_module("large_scene")
    cc = benchmark_module("colour_choice")
    model = ls.random_model(64)
    (meta,) = ls.make_set(tmp_path, [192], 1, ls.TUNE, 5, 64, 1)
    cats = sorted({o["category"] for o in meta["objects"]})
    texts = [f"the {w} {c}" for c in cats[:2] for w in ("white", "red")] + [f"all gray {cats[0]}s"]
    meta["expressions"] = [{"text": t, "kind": "multi" if t.startswith("all") else "colour",
                            "targets": [meta["objects"][0]["id"]]} for t in texts]
    meta["expressions"].append({"text": f"the largest {cats[0]}", "kind": "extreme", "targets": []})
    records = cc.scene_records(model, meta)
    assert [r["text"] for r in records] == texts  # only the kinds and expressions naming a colour
    got = segment_scene(model, meta["path"], texts, mode="object", return_mask=True,
                        read="place,relation,extreme,colour")
    labels = None
    painted = 0
    for r, want in zip(records, got):
        cost = colour_cost(r["said"].colour, r["rgb"])
        kept = choose(Reading(r["said"].objects, colour=r["said"].colour), r["p"], np.zeros(len(r["p"])),
                      np.zeros(len(r["p"])), r["area"], colour_cost=cost)
        if labels is None:
            import rasterio

            with rasterio.open(meta["labels_path"]) as ds:
                labels = ds.read(1)
        truth = labels == meta["objects"][0]["id"]
        inter, union = (want.mask & truth).sum(), (want.mask | truth).sum()
        assert cc.pick(r, (COLOUR_AMONG, COLOUR_MARGIN)) == pytest.approx(inter / union if union else 0.0)
        assert want.mask.sum() == r["area"][kept].sum()
        painted += bool(want.mask.any())
        # The row without the colour: the surest components, as many as named.
        surest = choose(Reading(r["said"].objects), r["p"], np.zeros(len(r["p"])), np.zeros(len(r["p"])), r["area"])
        i0, a0 = r["inter"][surest].sum(), r["area"][surest].sum()
        assert cc.pick(r, None) == pytest.approx(i0 / (a0 + r["gt_area"] - i0))
    assert painted >= 2  # not a comparison of empty masks


def test_none_counts_an_empty_answer(benchmark_module):
    cc = benchmark_module("colour_choice")
    e = {"said": Reading(colour="white"), "kind": "none", "p": np.array([0.9, 0.8]),
         "rgb": np.array([[0.9, 0.9, 0.9], [0.5, 0.5, 0.5]]), "area": np.array([4.0, 4.0]),
         "inter": np.zeros(2), "gt_area": 0.0}
    assert cc.pick(e, (5, 10.0)) == 0.0  # something is kept: not "not here"
    assert cc.pick({**e, "p": np.zeros(0)}, (5, 10.0)) == 1.0
    assert cc.nearest_colour(e, 5) == pytest.approx(float(colour_cost("white", e["rgb"]).min()))
