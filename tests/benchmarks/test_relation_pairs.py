"""benchmarks/relation_pairs.py scores the rule the object mode applies: at the constants of
:mod:`rrsis.scene.rank`, its grid's choice is the target ``segment_scene`` keeps, and ``K = 1``
with ``λ → 0`` is the rule before (the surest anchor, the nearest target)."""

from __future__ import annotations

import numpy as np
import pytest
from _fixtures import named_alone

pytest.importorskip("rasterio")

from rrsis.scene import segment_scene
from rrsis.scene.rank import ANCHOR_CANDIDATES, ANCHOR_WEIGHT, SPREAD


def test_the_grid_scores_the_shipped_rule(tmp_path, benchmark_module):
    ls = benchmark_module("large_scene")
    rp = benchmark_module("relation_pairs")
    model = ls.random_model(64)
    (meta,) = ls.make_set(tmp_path, [192], 1, ls.TUNE, 5, 64, 1)
    objs = meta["objects"]
    texts, targets = [], []
    for anchor, words in named_alone(objs)[:2]:
        for other in [o for o in objs if o["category"] != anchor["category"]][:2]:
            texts += [f"the {other['category']} next to {words}", f"the {other['category']} south of {words}"]
            targets += [[other["id"]]] * 2
    assert len(texts) >= 4
    meta["expressions"] = [{"text": t, "kind": "relation" if "next" in t else "direction", "targets": ids}
                           for t, ids in zip(texts, targets)]
    records = rp.scene_records(model, meta)
    prepared = rp.prepare(records, max(rp.KS))
    # The grid scores the relation alone: the anchor's colour ("the white plane") is not read there.
    got = segment_scene(model, meta["path"], texts, mode="object", return_mask=True, read="place,relation,extreme")
    chosen = 0
    for r, e, want in zip(records, prepared, got):
        i = rp.choice(e, ANCHOR_CANDIDATES, ANCHOR_WEIGHT, SPREAD)
        painted = r["comps"].label_image() == (-1 if i is None else i + 1)
        np.testing.assert_array_equal(painted, want.mask)
        chosen += i is not None
    assert chosen >= 2  # not a comparison of empty masks
    # K = 1, λ → 0 against the former rule (related_to_anchor(candidates=1, spread=None)).
    from rrsis.scene.rank import object_scores, related_to_anchor
    from rrsis.scene.reading import Reading

    for r, e in zip(records, prepared):
        said = r["said"]
        related, _ = related_to_anchor(r["comps"], r["anchor"], said, near=r["near"], candidates=1, spread=None)
        kept = np.flatnonzero(object_scores(r["comps"], 1, Reading(1, said.place, relation=said.relation),
                                            related=related) > 0).tolist()
        i = rp.choice(e, 1, 0.0, 1e-9)
        assert kept == ([] if i is None else [i])
