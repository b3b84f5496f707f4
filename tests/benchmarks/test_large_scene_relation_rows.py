"""benchmarks/large_scene.py's object rows score exactly what segment_scene gives for
expressions with a relation (by default, and with ``read="place"``), and its true-anchor row
uses the labelled object."""

from __future__ import annotations

import numpy as np
import pytest
from _fixtures import named_alone

pytest.importorskip("rasterio")

from rrsis.scene import segment_scene
from rrsis.scene.reading import read_expression


def test_relation_rows_match_segment_scene(tmp_path, benchmark_module):
    ls = benchmark_module("large_scene")
    model = ls.random_model(64)
    (meta,) = ls.make_set(tmp_path, [128], 1, ls.TUNE, 3, 64, 1)
    objs = meta["objects"]
    anchor, anchor_words = named_alone(objs)[0]
    other = next(o for o in objs if o["category"] != anchor["category"])
    texts = [f"the {other['category']} next to {anchor_words}", f"the {other['category']} north of {anchor_words}"]
    meta["expressions"] = [{"text": t, "kind": k, "targets": [other["id"]]} for t, k in zip(texts, ("relation", "direction"))]
    recs = list(ls.passes(model, meta, (0.25,), (), 4096))
    defaults = {"gate_threshold": 0.4, "gate_dilation": 1, "local_weight": 0.75, "local_rule": "max"}
    cfg = {"overlap": 0.25, "gate": defaults, "native_ratio": None, "defaults": defaults, "default_overlap": 0.25}
    got = segment_scene(model, meta["path"], texts, mode="object", return_mask=True)
    plain = segment_scene(model, meta["path"], texts, mode="object", read="place", return_mask=True)
    assert [r.reading for r in got] == [f'1 object, near "{anchor_words}"', f'1 object, north of "{anchor_words}"']
    for r, want, base in zip(recs, got, plain):
        assert r["reading"].relation == read_expression(r["text"]).relation
        rows = ls.row_masks(r, cfg)
        assert (rows["object"] == want.mask).all(), r["text"]
        assert (rows["object (no relation)"] == base.mask).all()
        # "beside" / "above" read to the same relation, over the same anchor words
        assert (rows["object (paraphrased)"] == want.mask).all()
    # The true anchor: the labelled pixels of the one object the anchor's words name.
    import rasterio

    with rasterio.open(meta["labels_path"]) as ds:
        labels = ds.read(1)
    truth = ls.anchor_truth(meta, labels, read_expression(texts[0]))
    np.testing.assert_array_equal(truth, labels == anchor["id"])
    assert ls.anchor_truth(meta, labels, read_expression("the ship in the north")) is None
