"""Where one object lies from another: the geometry of "next to the white plane" and "north of
the road" over a whole scene's components.

Mode ``object`` reads a relation from the expression (:mod:`rrsis.scene.reading`:
``Reading.relation``; ``"relation"`` in ``SceneOptions.read``, as by default). The words after
it name another object, the *anchor*; the object mode runs the tiles a second time with those words and cuts that pass into
components. :func:`relate` says, for every component of the expression's own pass, whether it
stands in the relation to an anchor and how far it lies from it. The anchor's words often light
several look-alikes ("the white plane" marks grey planes too), so
:func:`rrsis.scene.rank.related_to_anchor` lets each of the anchor's surest few be it and keeps
the pair of anchor and target the two passes are surest of, the nearer first, and
:func:`rrsis.scene.reading.choose` keeps the targets of that anchor:

- **near** ("next to", "beside", "close to", "near"): every component may be it; with a plural
  ("all ships near the port") the ones within ``near`` scene pixels of the anchor (one model
  tile: what the model sees at once).
- **a direction** ("north of", "on the left side of", "above"): a component lies north of the
  anchor when its centre is north of the anchor's centre line under it (the anchor's pixels
  whose east–west position falls within the component's own span), so a component beside a
  long road is judged against the stretch of road below it. Where no part of the anchor lies
  under or over it, its centre must lie within 45° of north as seen from the anchor's nearest
  pixel. Directions are the map's for a georeferenced scene, the pixel grid's otherwise; "left"
  and "right" are west and east, "above" and "below" north and south.

A component mostly covering the anchor (half its pixels or more) is the anchor itself, found
again by the expression's own pass ("the vehicle next to the plane" also marks the plane), and
is never chosen. Distances are between pixel centres, in scene pixels, less one (0 where the
two touch); an anchor of more than ``max_runs`` pixel runs is thinned evenly. Nothing is
learned.
"""

from __future__ import annotations

import math

import numpy as np

from .components import Components

__all__ = ["DIRECTIONS", "map_frame", "relate"]

_S = math.sqrt(0.5)
DIRECTIONS = {"north": (0.0, -1.0), "south": (0.0, 1.0), "east": (1.0, 0.0), "west": (-1.0, 0.0),
              "north-east": (_S, -_S), "north-west": (-_S, -_S), "south-east": (_S, _S), "south-west": (-_S, _S)}
"""Each direction as a unit vector ``(east, south)``."""


def map_frame(transform=None):
    """``(row, col) -> (east, south)`` in pixel units: the map's directions for an affine
    ``transform`` (north-up, south-up or turned grids alike), the pixel grid's without one."""
    if transform is None or transform.is_identity:
        return lambda row, col: (np.asarray(col, np.float64), np.asarray(row, np.float64))
    a, b, d, e = transform.a, transform.b, transform.d, transform.e
    scale = math.sqrt(abs(a * e - b * d)) or 1.0
    return lambda row, col: ((a * np.asarray(col) + b * np.asarray(row)) / scale,
                             -(d * np.asarray(col) + e * np.asarray(row)) / scale)


def _runs(comps: Components, which: np.ndarray | None = None, max_runs: int | None = None):
    """The runs (of the components ``which``; evenly thinned to at most ``max_runs``) as
    ``(component, row, first column, last column)``."""
    runs = np.arange(len(comps.row)) if which is None else np.flatnonzero(np.isin(comps.comp, which))
    if max_runs is not None and len(runs) > max_runs:
        runs = runs[np.linspace(0, len(runs) - 1, max_runs).round().astype(np.int64)]
    return comps.comp[runs], comps.row[runs].astype(np.float64), comps.c0[runs].astype(np.float64), \
        comps.c1[runs].astype(np.float64) - 1


def _overlap(targets: Components, anchors: Components, kept: np.ndarray) -> np.ndarray:
    """``[n_targets]`` pixels each target component shares with the kept anchor components."""
    out = np.zeros(len(targets), np.float64)
    runs = np.flatnonzero(np.isin(anchors.comp, kept))
    for r, a0, a1 in zip(anchors.row[runs], anchors.c0[runs], anchors.c1[runs]):
        lo, hi = np.searchsorted(targets.row, [r, r + 1])
        if hi > lo:
            shared = np.minimum(targets.c1[lo:hi], a1) - np.maximum(targets.c0[lo:hi], a0)
            np.add.at(out, targets.comp[lo:hi], np.maximum(shared, 0))
    return out


def relate(targets: Components, anchors: Components, kept: np.ndarray, relation: str, *,
           every: bool = False, near: float = 96.0, transform=None,
           max_runs: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Which of ``targets`` stand in ``relation`` to the anchor, and how far each lies from it.

    Args:
        targets: the components of the expression's own pass.
        anchors: the components of the anchor's pass; ``kept``: the indices of the anchor's.
        relation: ``"near"`` or a key of :data:`DIRECTIONS`.
        every: the expression names every such object ("all ships near the port"): ``near``
            then keeps only those within ``near`` scene pixels.
        near: scene pixels within which a plural "near" keeps components.
        transform: the scene's affine transform, so that directions are the map's.
        max_runs: the anchor's pixel runs are thinned evenly to at most this many.

    Returns:
        ``(allowed [n] bool, gap [n] float)``: whether each target may be chosen, and the
        distance between its pixel centres and the anchor's, less one, in scene pixels (0
        where they touch or overlap).
    """
    n = len(targets)
    kept = np.asarray(kept, np.int64)
    if relation != "near" and relation not in DIRECTIONS:
        raise ValueError(f"relation {relation!r}: expected 'near' or one of {', '.join(DIRECTIONS)}")
    if n == 0 or len(kept) == 0:
        return np.zeros(n, bool), np.full(n, np.inf)
    _, ar, a0, a1 = _runs(anchors, kept, max_runs)
    tc, tr, t0, t1 = _runs(targets)
    # Run to run: rows apart, and the gap between their column ranges.
    d = np.empty(len(tr))
    for i in range(0, len(tr), 1024):
        j = slice(i, i + 1024)
        dx = np.maximum(np.maximum(a0[None] - t1[j, None], t0[j, None] - a1[None]), 0.0)
        d[j] = np.sqrt(dx**2 + (tr[j, None] - ar[None]) ** 2).min(axis=1)
    gap = np.full(n, np.inf)
    np.minimum.at(gap, tc, d)
    gap = np.maximum(gap - 1.0, 0.0)
    itself = _overlap(targets, anchors, kept) >= 0.5 * targets.area
    if relation == "near":
        return ~itself & ((gap <= near) if every else True), gap
    return _beyond(targets, (ar, a0, a1), (tc, tr, t0, t1), DIRECTIONS[relation], transform) & ~itself, gap


def _beyond(targets: Components, anchor_runs, target_runs, direction, transform) -> np.ndarray:
    """Whether each target's centre lies beyond the anchor in ``direction`` (module rules)."""
    n = len(targets)
    frame = map_frame(transform)
    ue, us = direction

    def axes(row, col):  # along the direction, and across it
        e, s = frame(row + 0.5, col + 0.5)
        return e * ue + s * us, e * us - s * ue

    ar, a0, a1 = anchor_runs
    tc, tr, t0, t1 = target_runs
    l0, c0 = axes(ar, a0)  # each anchor run as a segment from its first to its last pixel
    l1, c1 = axes(ar, a1)
    length = a1 - a0 + 1
    _, x0 = axes(tr, t0)
    _, x1 = axes(tr, t1)
    lo, hi = np.full(n, np.inf), np.full(n, -np.inf)
    np.minimum.at(lo, tc, np.minimum(x0, x1))
    np.maximum.at(hi, tc, np.maximum(x0, x1))
    lo, hi = lo - 0.5, hi + 0.5
    s = targets.stats
    c_along, c_across = axes(s[:, 1] / s[:, 0], s[:, 2] / s[:, 0])
    dc = c1 - c0
    flat = np.abs(dc) < 1e-9
    safe = np.where(flat, 1.0, dc)
    ends_l, ends_c = np.concatenate([l0, l1]), np.concatenate([c0, c1])
    out = np.zeros(n, bool)
    for i in range(0, n, 256):
        j = slice(i, i + 256)
        # The part of each anchor run whose across position falls within the target's span.
        ta = (lo[j, None] - c0[None]) / safe[None]
        tb = (hi[j, None] - c0[None]) / safe[None]
        t_lo = np.clip(np.minimum(ta, tb), 0.0, 1.0)
        t_hi = np.clip(np.maximum(ta, tb), 0.0, 1.0)
        inside = (c0[None] >= lo[j, None]) & (c0[None] <= hi[j, None])
        frac = np.where(flat[None], inside.astype(np.float64), np.maximum(t_hi - t_lo, 0.0))
        t_mid = np.where(flat[None], 0.5, (t_lo + t_hi) / 2)
        w = frac * length[None]
        along = l0[None] + t_mid * (l1 - l0)[None]
        has = w.sum(axis=1) > 0
        line = (w * along).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-12)
        # Nothing of the anchor across from it: within 45° of the direction, seen from the
        # nearest end of an anchor run.
        k = np.argmin((c_along[j, None] - ends_l[None]) ** 2 + (c_across[j, None] - ends_c[None]) ** 2, axis=1)
        du, dv = c_along[j] - ends_l[k], c_across[j] - ends_c[k]
        out[j] = np.where(has, c_along[j] > line, du > np.abs(dv))
    return out
