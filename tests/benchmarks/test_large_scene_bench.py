"""benchmarks/large_scene.py: its rows score exactly what segment_scene (and model.predict) give,
and its metrics follow the generalised referring-segmentation definitions."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rasterio")

from _fixtures import flood_fill

from rrsis.scene import SceneOptions, segment_scene


def test_scores_against_hand_computed_values(benchmark_module):
    ls = benchmark_module("large_scene")
    recs = [
        {"I": 3, "U": 4, "pred_empty": False, "target_empty": False},   # IoU 0.75
        {"I": 0, "U": 5, "pred_empty": True, "target_empty": False},    # missed target: IoU 0
        {"I": 0, "U": 0, "pred_empty": True, "target_empty": True},     # right "nothing": 1 in gIoU
        {"I": 0, "U": 2, "pred_empty": False, "target_empty": True},    # false alarm: 0
    ]
    s = ls.scores(recs)
    assert s["n"] == 4
    assert s["mIoU"] == pytest.approx(0.375)
    assert s["gIoU"] == pytest.approx((0.75 + 0 + 1 + 0) / 4)
    assert s["cIoU"] == pytest.approx(3 / 11)
    assert s["N-acc"] == pytest.approx(0.5) and s["T-acc"] == pytest.approx(0.5)
    only_none = ls.scores(recs[2:3])
    assert only_none["mIoU"] is None and only_none["T-acc"] is None and only_none["gIoU"] == 1.0


def test_rows_match_segment_scene(tmp_path, benchmark_module):
    import torch

    from rrsis.heads import SceneRanker
    from rrsis.hub.ranker import attach_ranker
    from rrsis.scene.components import n_features

    ls = benchmark_module("large_scene")
    model = ls.random_model(64)
    torch.manual_seed(0)
    ranker = SceneRanker(features=n_features(3), text_dim=model.text_encoder.hidden_size, tile=64,
                         candidate_threshold=0.45, dim=16, heads=2, layers=1).eval()
    torch.nn.init.normal_(ranker.score.weight, std=2.0)
    attach_ranker(model, ranker)  # the ranked rows too
    (meta,) = ls.make_set(tmp_path, [128], 1, ls.TUNE, 3, 64, 1)
    multi = next(e for e in meta["expressions"] if e["kind"] == "multi")  # "all ..." or "the N ..."
    meta["expressions"] = [*meta["expressions"][:2], multi]
    assert len(meta["expressions"]) == 3
    recs = list(ls.passes(model, meta, (0.25,), (1.0,), 4096))
    texts = [r["text"] for r in recs]
    d = SceneOptions()
    defaults = {k: getattr(d, k) for k in ls.GRID}
    cfg = {"overlap": 0.25, "gate": defaults, "native_ratio": 1.0, "defaults": defaults, "default_overlap": 0.25}
    expect = {
        "global": segment_scene(model, meta["path"], texts, mode="global", return_mask=True),
        "tiles": segment_scene(model, meta["path"], texts, mode="tiles", return_mask=True),
        "global-local (defaults)": segment_scene(model, meta["path"], texts, mode="global-local", return_mask=True),
        # 128 = 2 tiles of 64: non-overlapping tiles mode is the naive tiling
        "naive tiles": segment_scene(model, meta["path"], texts, mode="tiles", overlap=0.0, return_mask=True),
        "global-native": segment_scene(model, meta["path"], texts, mode="global", global_size=128, return_mask=True),
        "ranked": segment_scene(model, meta["path"], texts, mode="ranked", return_mask=True),
        "object": segment_scene(model, meta["path"], texts, mode="object", return_mask=True),
        "object (no relation)": segment_scene(model, meta["path"], texts, mode="object", read="place",
                                              return_mask=True),
        "object (no extreme)": segment_scene(model, meta["path"], texts, mode="object",
                                             read="place,relation", return_mask=True),
        "object (count)": segment_scene(model, meta["path"], texts, mode="object", read="none", return_mask=True),
        "object (one)": segment_scene(model, meta["path"], texts, mode="object", objects=1, read="none",
                                      return_mask=True),
    }
    candidates = segment_scene(model, meta["path"], texts, mode="tiles", threshold=0.45, return_mask=True)
    differ = objects = 0
    for i, r in enumerate(recs):
        rows = ls.row_masks(r, cfg)
        for name, res in expect.items():
            assert (rows[name] == res[i].mask).all(), (name, r["text"])
        assert (rows["global-local (tuned)"] == rows["global-local (defaults)"]).all()
        # the ranked mode and the oracle only ever select candidate pixels
        for name in ("ranked", "oracle selection (not a method)", "object", "object (count)", "object (one)"):
            assert not (rows[name] & ~candidates[i].mask).any()
        # object (one): the component of p > 0.5 of highest mean tiles probability; object: as
        # many of them as the expression names, every one for the multi-target expression here
        lab, n = flood_fill(r["p_tiles"][0.25] > 0.5)
        if n:
            means = [r["p_tiles"][0.25][lab == j].mean() for j in range(1, n + 1)]
            assert (rows["object (one)"] == (lab == 1 + int(np.argmax(means)))).all()
            objects += 1
        else:
            assert not rows["object (one)"].any()
        if r["kind"] == "multi":
            assert r["count"] != 1
            if r["count"] == "all":
                assert (rows["object (count)"] == (lab > 0)).all()
        else:
            assert r["count"] == 1 and (rows["object (count)"] == rows["object (one)"]).all()
        differ += int((rows["tiles"] != rows["global"]).any())
    assert differ  # the rows are not all one mask
    assert objects  # some expression's object row holds an object
    assert any(r["candidates"] for r in recs)
    # a tuning record per knob value, and the chosen knobs are among them
    per = [ls.tune_records(r) for r in recs]
    assert len(per[0]) == 1 + int(np.prod([len(v) for v in ls.GRID.values()])) + 1
    chosen, table = ls.tune(per, defaults, 0.25)
    assert chosen["overlap"] == 0.25 and chosen["native_ratio"] == 1.0
    assert table["grid_top"][0]["gIoU"] == max(r["gIoU"] for r in table["grid_top"])

