"""The relation's anchor and target chosen together (:func:`rrsis.scene.rank.related_to_anchor`):
each of the anchor's surest components may be the anchor, and the pair both passes are surest
of, the nearer first, wins. Checked on constructed scenes where the surest anchor is the wrong
one, and against a brute-force reference of the pair cost on random blobs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _fixtures import flood_fill

from rrsis.scene.components import ComponentBuilder
from rrsis.scene.rank import (
    ANCHOR_CANDIDATES,
    ANCHOR_WEIGHT,
    SPREAD,
    object_scores,
    related_to_anchor,
)
from rrsis.scene.reading import Reading, read_expression


def _pass(shape, boxes):
    """Components of a pass whose probability is ``p`` inside each ``(y0, y1, x0, x1, p)``, in
    that order (the boxes apart, so each is one component, numbered top to bottom, left to right)."""
    prob = np.zeros(shape, np.float32)
    for y0, y1, x0, x1, p in boxes:
        prob[y0:y1, x0:x1] = p
    b = ComponentBuilder(shape[1], 0, 0.5)
    b.add(0, prob, np.zeros((*shape, 0), np.float32))
    return b.finish(shape[0])


def _chosen(targets, anchors, text, **kw):
    reading = read_expression(text)
    related, kept = related_to_anchor(targets, anchors, reading, near=32.0, **kw)
    scores = object_scores(targets, reading.objects, Reading(reading.objects, relation=reading.relation),
                           related=related)
    return np.flatnonzero(scores > 0).tolist(), kept


def test_a_surer_pair_beats_the_surest_anchor():
    # Two planes 30 tiles apart: the surest (0.9) has an unsure vehicle beside it, the other
    # (0.85) a sure one.
    shape = (40, 1000)
    anchors = _pass(shape, [(10, 20, 20, 30, 0.9), (10, 20, 950, 960, 0.85)])
    targets = _pass(shape, [(10, 20, 34, 40, 0.55), (10, 20, 964, 970, 0.99)])
    assert targets.mean_probability.round(2).tolist() == [0.55, 0.99]
    # Pair costs: -log 0.55 + 3/256 - 2 log 0.9 = 0.82 against -log 0.99 + 3/256 - 2 log 0.85 = 0.35.
    assert _chosen(targets, anchors, "the vehicle next to the white plane") == ([1], 1)
    # The surest anchor and the nearest target: the rule before.
    assert _chosen(targets, anchors, "the vehicle next to the white plane", candidates=1, spread=None) == ([0], 1)
    # A much surer anchor outweighs the target's certainty.
    anchors = _pass(shape, [(10, 20, 20, 30, 0.99), (10, 20, 950, 960, 0.55)])
    assert _chosen(targets, anchors, "the vehicle next to the white plane") == ([0], 1)
    # Distance costs little (SPREAD model tiles for a factor e): the sure vehicle 2 tiles from
    # the surest plane still wins over the unsure one beside it.
    targets = _pass(shape, [(10, 20, 34, 40, 0.55), (10, 20, 94, 100, 0.99)])
    assert _chosen(targets, anchors, "the vehicle next to the white plane") == ([1], 1)


def test_a_direction_the_surest_anchor_cannot_satisfy():
    # Nothing lies north of the surest building: the other one, with a tank north of it, is the anchor.
    shape = (120, 120)
    anchors = _pass(shape, [(5, 15, 10, 20, 0.95), (80, 90, 80, 90, 0.7)])
    targets = _pass(shape, [(30, 40, 10, 20, 0.9), (60, 70, 80, 90, 0.8)])
    assert _chosen(targets, anchors, "the tank north of the red building") == ([1], 1)
    assert _chosen(targets, anchors, "the tank north of the red building", candidates=1, spread=None) == ([], 1)
    assert _chosen(targets, anchors, "the tank south of the red building") == ([0], 1)


def test_an_anchor_of_several_objects_is_kept_whole():
    shape = (40, 200)
    anchors = _pass(shape, [(10, 20, 20, 30, 0.9), (10, 20, 90, 100, 0.6), (10, 20, 150, 160, 0.85)])
    targets = _pass(shape, [(10, 20, 104, 110, 0.99)])
    reading = read_expression("the ship next to the two planes")
    related, kept = related_to_anchor(targets, anchors, reading, near=32.0)
    assert kept == 2  # the two surest, together, as before
    assert related[0].tolist() == [True]


def _brute_force(labels_t, p_t, labels_a, p_a, near):
    """The pair rule from pixels: every target against each of the anchor's surest components."""
    n_a = labels_a.max()
    order = sorted(range(1, n_a + 1), key=lambda a: -p_a[a])[:ANCHOR_CANDIDATES]
    best = None
    for a in order:
        qa = np.argwhere(labels_a == a).astype(float)
        for t in range(1, labels_t.max() + 1):
            pts = np.argwhere(labels_t == t).astype(float)
            if (labels_a[labels_t == t] == a).sum() >= 0.5 * len(pts):
                continue  # the anchor itself
            gap = max(np.sqrt(((pts[:, None] - qa[None]) ** 2).sum(-1)).min() - 1.0, 0.0)
            cost = gap / (SPREAD * near) - math.log(p_t[t]) - ANCHOR_WEIGHT * math.log(p_a[a])
            if best is None or cost < best[0] - 1e-9:
                best = (cost, t)
    return best[1]


@pytest.mark.parametrize("seed", range(4))
def test_near_pairs_against_a_brute_force_reference(seed):
    rng = np.random.default_rng(seed)
    shape, near = (48, 64), 16.0

    def blobs(n):
        mask = np.zeros(shape, bool)
        yy, xx = np.indices(shape)
        for _ in range(n):
            cy, cx, r = rng.integers(0, shape[0]), rng.integers(0, shape[1]), rng.integers(1, 4)
            mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        labels, n = flood_fill(mask)
        p = {k: float(rng.uniform(0.55, 0.99)) for k in range(1, n + 1)}
        prob = np.zeros(shape, np.float32)
        for k, v in p.items():
            prob[labels == k] = v
        b = ComponentBuilder(shape[1], 0, 0.5)
        b.add(0, prob, np.zeros((*shape, 0), np.float32))
        comps = b.finish(shape[0])
        image = comps.label_image()
        index = {int(np.bincount(labels[image == c + 1]).argmax()): c for c in range(len(comps))}
        return labels, p, comps, index

    lt, pt, targets, it = blobs(12)
    la, pa, anchors, _ = blobs(10)
    reading = read_expression("the car next to the plane")
    related, _ = related_to_anchor(targets, anchors, reading, near=near)
    scores = object_scores(targets, 1, Reading(1, relation=reading.relation), related=related)
    assert np.flatnonzero(scores > 0).tolist() == [it[_brute_force(lt, pt, la, pa, near)]]
