"""benchmarks/large_scene.py: the knob search scores exactly what segment_scene's global-local does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("rasterio")

import rrsis
from rrsis.data.synthetic import vocabulary
from rrsis.scene import segment_scene
from rrsis.text import Tokenizer


def test_knob_search_matches_segment_scene(tmp_path, monkeypatch, benchmark_module):
    import rasterio

    ls = benchmark_module("large_scene")
    monkeypatch.setattr(ls, "GRID", {"gate_threshold": (0.3, 0.5), "gate_dilation": (1,),
                                     "local_weight": (0.5, 1.0), "local_rule": ("mean", "max")})
    tok = Tokenizer.from_words(vocabulary())
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", image_size=64, text_vocab_size=len(tok)).eval()
    model.tokenizer = tok
    options = {"tile": 64, "overlap": 0.25, "pixel_ratio": 2.0, "global_size": 64}
    best, rows, alone = ls.tune_fusion(model, tmp_path, 1, 256, 256, 0, options)
    assert len(rows) == 8 and all(r["n"] == 4 for r in rows)
    assert set(alone) == {"global", "tiles"} and all(0 <= v <= 1 for v in alone.values())
    assert max(rows, key=lambda r: r["mIoU"]) == {**best, **next(r for r in rows if all(r[k] == v for k, v in best.items()))}
    meta_dir = tmp_path / "tune"
    with rasterio.open(meta_dir / "tune0_labels.tif") as ds:
        labels = ds.read(1)
    import json

    meta = json.loads((meta_dir / "tune0.json").read_text())
    spread = set()
    for r in rows[::3]:  # three of the eight points, each through the real pipeline
        knobs = {k: r[k] for k in ls.GRID}
        res = segment_scene(model, meta_dir / meta["image"], [e["text"] for e in meta["expressions"]],
                            mode="global-local", return_mask=True, **options, **knobs)
        with rasterio.open(meta_dir / meta["image"]) as ds:
            valid = ds.dataset_mask() > 0
        ious = []
        for e, out in zip(meta["expressions"], res):
            gt, m = (labels == e["object"]) & valid, out.mask & valid
            ious.append((gt & m).sum() / max((gt | m).sum(), 1))
        assert np.mean(ious) == pytest.approx(r["mIoU"], abs=1e-6), knobs
        spread.add(round(r["mIoU"], 6))
    assert len(spread) > 1  # the knobs change the result, so the search has something to choose
    for mode in ("global", "tiles"):  # the passes alone, as segment_scene's own modes score them
        res = segment_scene(model, meta_dir / meta["image"], [e["text"] for e in meta["expressions"]],
                            mode=mode, return_mask=True, **options)
        ious = [((labels == e["object"]) & valid & out.mask).sum() / max(((labels == e["object"]) & valid
                | (out.mask & valid)).sum(), 1) for e, out in zip(meta["expressions"], res)]
        assert np.mean(ious) == pytest.approx(alone[mode], abs=1e-6), mode
