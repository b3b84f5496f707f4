"""The component modes of whole scenes: tiles at training scale propose, one scene-level choice.

Mode ``object`` keeps the components the tiles are surest of, as many as the expression names,
where it says and the extreme it names (:func:`object_strips`, :mod:`rrsis.scene.reading`; nothing
learned; ``auto``'s choice for large scenes); mode ``ranked`` lets a learned ranker choose, as
described here.

Tiles see objects at the scale the model was trained on, so they find them, but no tile knows
which one "the largest tank" or "the pond in the north-west" is, and a tile without the named
object still marks its look-alikes. The ranked mode keeps the tiled pass (:mod:`rrsis.scene.infer`,
mode ``tiles``) as the proposal and adds one decision over the whole scene:

1. the tiled pass's foreground (``p > candidate_threshold``) is cut into connected components,
   strip by strip (:mod:`rrsis.scene.components`);
2. each component is described where it lies in the scene, how large it is (at training scale
   and against the scene's other components), its bounding box, the tiled pass's probability and
   its bands' mean and spread (:data:`~rrsis.scene.components.FEATURE_NAMES`);
3. a :class:`~rrsis.heads.SceneRanker` (a small set transformer: components attend to each other, so "largest"
   and "northernmost" can be compared, and to the expression's word features from the model's own
   text encoder) scores every component; the mask is the components scoring above the
   threshold, and a component's score is its probability in the output.

The ranker is a second stage beside the model, trained on large scenes with scene-level
expressions (:func:`rrsis.scene.rank_train.train_ranker`); ``save_pretrained`` writes it as
``scene_ranker.json`` + ``scene_ranker.safetensors`` in the model's folder and
``from_pretrained`` attaches it as ``model.scene_ranker`` (:mod:`rrsis.hub.ranker`). It is not a
submodule of the model: the model's state dict (and its parity with official checkpoints) is
unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import torch

from .colour import colour_cost, component_colours, display_range
from .components import ComponentBuilder, Components, n_features
from .infer import SceneOptions, predict_strips
from .read import Scene
from .reading import EVERY, EXTREME_AMONG, Reading, choose, read_expression
from .relation import relate

__all__ = ["ANCHOR_CANDIDATES", "ANCHOR_WEIGHT", "SPREAD", "anchor_units", "candidate_area", "colour_costs", "component_places",
           "component_scores", "described", "object_scores",
           "object_strips", "ranked_strips", "related_to_anchor", "scene_components"]


def scene_components(scene: Scene, model, text, opt: SceneOptions, threshold: float,
                     progress_factory=None, bands: bool = True, inside=None, counts: dict | None = None) -> Components:
    """The tiled pass over ``scene`` (``opt`` with mode ``tiles``) as connected components of
    ``p > threshold``, with the scene's pixels under them (``bands=False``: without, so the
    scene is not read a second time at full resolution). ``inside(row0, (h, w))``, when given,
    is the bool mask of the pixels that may belong to a component (an area of interest's). ``counts``
    as :func:`~rrsis.scene.infer.predict_strips`'s (tiles skipped)."""
    builder = None
    for r0, p, _ in predict_strips(scene, model, text, replace(opt, mode="tiles"), progress_factory, counts):
        if inside is not None:
            p = np.where(inside(r0, p.shape), p, 0.0).astype(np.float32)
        image = scene.read((r0, 0, r0 + p.shape[0], scene.width))[0] if bands else \
            np.zeros((*p.shape, 0), np.float32)
        if builder is None:
            builder = ComponentBuilder(scene.width, image.shape[2], threshold)
        builder.add(r0, p, image)
    comps = builder.finish(scene.height)
    comps.rgb = getattr(scene, "rgb", comps.rgb) if bands else None
    comps.rgb_range = display_range(scene, comps.rgb) if comps.rgb is not None and len(comps) else None
    return comps


@torch.no_grad()
def component_scores(ranker, components: Components, text, pixel_ratio: float = 1.0) -> np.ndarray:
    """Probability that the expression names each component (``text``: its
    :class:`~rrsis.models.outputs.TextFeatures`, batch of one; ``pixel_ratio``: scene pixels per
    model pixel of the tiled pass, so that sizes are read at the model's training scale)."""
    if components.bands != ranker.bands or n_features(components.bands) != ranker.feature_mean.numel():
        raise ValueError(f"this scene ranker was trained on {ranker.bands}-band scenes, the scene has "
                         f"{components.bands} bands")
    if len(components) == 0:
        return np.zeros(0, np.float32)
    was = ranker.training
    ranker.eval()
    try:
        f = torch.from_numpy(components.features(ranker.tile * pixel_ratio))[None]
        present = torch.ones(f.shape[:2], dtype=torch.bool)
        logits = ranker(f, present, text.words[:1].float().cpu(), text.mask[:1].float().cpu())
    finally:
        ranker.train(was)
    return torch.sigmoid(logits[0]).numpy().astype(np.float32)


def ranked_strips(scene: Scene, model, text, opt: SceneOptions,
                  progress_factory=None, inside=None, counts: dict | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """:func:`~rrsis.scene.infer.predict_strips` for mode ``ranked``: strips whose probability
    is each component's score from ``model.scene_ranker`` (0 elsewhere); ``inside`` as in
    :func:`scene_components` (the ranker chooses among the components inside the area)."""
    ranker = getattr(model, "scene_ranker", None)
    if ranker is None:
        raise ValueError("mode 'ranked' needs a scene ranker (model.scene_ranker); see rrsis.scene.rank")
    comps = scene_components(scene, model, text, opt, ranker.candidate_threshold, progress_factory,
                             inside=inside, counts=counts)
    yield from _component_strips(scene, comps, component_scores(ranker, comps, text, opt.pixel_ratio), opt)


def component_places(components: Components, transform=None) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``: each component's centre as a fraction of the scene, eastwards and southwards.
    With an affine ``transform`` (a georeferenced scene) the directions are the map's, whether
    the pixel grid is north-up, south-up or turned; without, the pixel grid's."""
    if len(components) == 0:
        return np.zeros(0), np.zeros(0)
    s = components.stats
    cy, cx = s[:, 1] / s[:, 0] + 0.5, s[:, 2] / s[:, 0] + 0.5
    h, w = components.height, components.width
    if transform is None or transform.is_identity:
        return cx / w, cy / h
    a, b, c, d, e, f = (transform.a, transform.b, transform.c, transform.d, transform.e, transform.f)
    mx, my = a * cx + b * cy + c, d * cx + e * cy + f
    corners_x = [a * i + b * j + c for i, j in ((0, 0), (w, 0), (0, h), (w, h))]
    corners_y = [d * i + e * j + f for i, j in ((0, 0), (w, 0), (0, h), (w, h))]
    span_x, span_y = max(corners_x) - min(corners_x), max(corners_y) - min(corners_y)
    return (mx - min(corners_x)) / span_x, (max(corners_y) - my) / span_y


def object_scores(components: Components, objects: int | str = 1, reading: Reading | None = None,
                  transform=None, related: tuple[np.ndarray, np.ndarray] | None = None,
                  extreme_among: int | None = EXTREME_AMONG) -> np.ndarray:
    """Mode ``object``'s choice: the kept components score their mean tiles probability, every
    other 0. Without ``reading``, the ``objects`` of highest mean probability (fewer when the
    scene has fewer components; ties broken by component order; ``"all"``: every one); with
    it, :func:`rrsis.scene.reading.choose` applies the expression's place and extreme
    (``transform``: the scene's, so that north is the map's; ``extreme_among``: as ``choose``'s)
    and, with ``related`` (:func:`rrsis.scene.relation.relate`), its relation to another object;
    its colour when the components were built with three bands (:mod:`rrsis.scene.colour`)."""
    scores = np.zeros(len(components), np.float32)
    if len(components):
        mean_p = components.mean_probability
        x, y = component_places(components, transform)
        kept = choose(reading or Reading(), mean_p, x, y, components.area, objects, related, extreme_among,
                      colour_costs(components, reading))
        scores[kept] = mean_p[kept]
    return scores


def candidate_area(model, opt: SceneOptions) -> float:
    """The smallest component, in scene pixels, mode ``object`` takes for an object: one cell of the
    model's patch grid (``patch_size`` model pixels a side, 4 for every registered model) at the
    tiled pass's ``pixel_ratio`` (:meth:`~rrsis.scene.components.Components.without_specks`; the
    anchor's pass too). Below it a component is the threshold's speck, not an object the model
    resolved: a one-pixel "roof" was kept for being the whitest (``benchmarks/colour_depth.py``'s
    passes: colour expressions unchanged, "all ..." +0.3 / +1.8 / +4.1 mIoU on tuning / held-out /
    hazy scenes)."""
    patch = ((getattr(model, "config", None) or {}).get("backbone") or {}).get("patch_size", 4)
    return float(patch * opt.pixel_ratio) ** 2


def colour_costs(components: Components, reading: Reading | None) -> np.ndarray | None:
    """Each component's distance to ``reading.colour`` (:func:`rrsis.scene.colour.colour_cost`),
    or ``None`` without a colour or without three bands to measure it on."""
    rgb = None if reading is None or reading.colour is None else component_colours(components)
    return None if rgb is None else colour_cost(reading.colour, rgb)


def object_strips(scene: Scene, model, text, opt: SceneOptions, threshold: float = 0.5,
                  progress_factory=None, inside=None, reading: Reading | None = None,
                  anchor=None, report: dict | None = None, counts: dict | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """:func:`~rrsis.scene.infer.predict_strips` for mode ``object``: the tiled pass cut into
    components of ``p > threshold``, and the ones the tiles are surest of kept (a component's
    mean probability is its probability in the output; 0 elsewhere): ``opt.objects`` of them (a
    whole number or ``"all"``; resolve ``"auto"`` first with
    :func:`rrsis.scene.reading.objects_named`), chosen by the expression's ``reading``
    (:func:`rrsis.scene.reading.read_expression`: its place and extreme) when given. Nothing is
    learned: over hundreds of tiles the most confident components are a far better answer than
    every tile's look-alikes (README, "Whole scenes"). ``inside`` as in
    :func:`scene_components`: the choice is made among the components inside an area of
    interest, not over its whole rectangular window.

    With ``reading.relation`` and ``anchor`` (the relation's other object: its words encoded,
    :class:`~rrsis.models.outputs.TextFeatures`), a second tiled pass finds the anchor, read as
    its own words say (:func:`rrsis.scene.reading.read_expression`: count and place), and the
    components in the relation to it are chosen (:mod:`rrsis.scene.relation`): anchor and target
    together, the surest pair and the nearer first (:func:`related_to_anchor`). When that pass
    finds no anchor, the relation is not applied.
    ``report``, a dict, receives ``"anchors"``: how many anchor components were kept; ``counts`` the
    tiles skipped (:func:`scene_components`)."""
    if opt.objects == "auto":
        raise ValueError("object_strips needs opt.objects resolved: a whole number or 'all' "
                         "(rrsis.scene.reading.objects_named reads it from the expression)")
    coloured = reading is not None and reading.colour is not None
    cell = candidate_area(model, opt)  # smaller components are specks of the threshold, no candidates
    comps = scene_components(scene, model, text, opt, threshold, progress_factory, bands=coloured,
                             inside=inside, counts=counts).without_specks(cell)
    transform = getattr(scene, "transform", None)
    related = None
    if reading is not None and reading.relation is not None and anchor is not None:
        colour = "colour" in opt.read and read_expression(reading.relation[1]).colour is not None
        found = scene_components(scene, model, anchor, opt, threshold, progress_factory, bands=colour,
                                 counts=counts).without_specks(cell)
        related, kept = related_to_anchor(comps, found, reading, near=opt.tile * opt.pixel_ratio,
                                          place="place" in opt.read, transform=transform, colour=colour)
        if report is not None:
            report["anchors"] = kept
    if report is not None and coloured:
        report["colour"] = comps.rgb is not None  # the scene's red, green and blue are read
    scores = object_scores(comps, opt.objects, reading, transform, related)
    yield from _component_strips(scene, comps, scores, opt)


def described(reading: Reading, report: dict) -> str:
    """``reading`` in words (:meth:`~rrsis.scene.reading.Reading.describe`), with what
    :func:`object_strips` could not apply (its ``report``)."""
    return reading.describe() + (" (not found: the relation was not applied)" if report.get("anchors") == 0 else "") \
        + (" (no colour: the scene's red, green and blue are not read)" if report.get("colour") is False else "")


# The joint choice of a relation's anchor and target (:func:`related_to_anchor`), chosen on a
# tuning set of generated scenes (docs/history.md, 2026-12-07): the anchor's words often light
# several look-alikes (the tiles' colour is weak), and the right one is among its surest few.
ANCHOR_CANDIDATES = 8
"""How many of the anchor's surest components may be the anchor."""
ANCHOR_WEIGHT = 2.0
"""The weight of the anchor's log mean probability against the target's."""
SPREAD = 8.0
"""Model tiles of distance that cost as much as a factor e of the target's mean probability."""


def anchor_units(found: Components, words: str, *, place: bool = True, transform=None,
                 candidates: int = ANCHOR_CANDIDATES, colour: bool = True) -> list[np.ndarray]:
    """The components of ``found`` (the anchor's own tiled pass) that may be the anchor its
    ``words`` name, each candidate as an array of component indices, the surest first: when the
    words name one object, each of the ``candidates`` surest components there alone (when
    ``colour`` and ``found`` has three bands, those of the colour the words name, taken as
    :func:`rrsis.scene.reading.choose` takes it among the ``candidates`` surest); otherwise (or with ``candidates=1``) one candidate, the components the words keep
    (count, place when ``place``, colour when ``colour``); ``[]`` when none is kept."""
    said = read_expression(words)
    said = Reading(said.objects, said.place if place else None, colour=said.colour if colour else None)
    if said.objects == 1 and candidates > 1:
        x, y = component_places(found, transform)
        kept = choose(Reading(candidates, said.place, colour=said.colour), found.mean_probability, x, y,
                      found.area, colour_cost=colour_costs(found, said))
        return [np.array([a]) for a in kept]
    kept = np.flatnonzero(object_scores(found, said.objects, said, transform) > 0)
    return [kept] if len(kept) else []


def related_to_anchor(components: Components, found: Components, reading: Reading, *, near: float,
                      place: bool = True, transform=None, candidates: int = ANCHOR_CANDIDATES, colour: bool = True,
                      anchor_weight: float = ANCHOR_WEIGHT,
                      spread: float | None = SPREAD) -> tuple[tuple[np.ndarray, np.ndarray] | None, int]:
    """``(related, kept)``: the anchor of ``reading.relation`` among ``found`` (the components of
    its own tiled pass) and the relation of ``components`` to it, for :func:`object_scores`;
    ``(None, 0)`` when no anchor is found. ``near``: scene pixels of one model tile.

    The anchor is kept as its words read (count, and place when ``place``). When they name one
    object, each of the ``candidates`` surest components there may be it, and anchor and target
    are chosen together: a target ``t`` related to a candidate ``a`` costs ``−log p_t −
    anchor_weight · log p_a + gap(t, a) / (spread · near)`` (``p``: mean probability of its
    own pass; ``gap``: :func:`rrsis.scene.relation.relate`'s), and the candidate of the cheapest
    pair is the anchor. ``related`` is then ``(allowed, cost)`` of every component against that
    anchor (its ``anchor_weight`` term left out), cheapest first for
    :func:`rrsis.scene.reading.choose`. ``candidates=1, spread=None`` is the surest anchor and
    the nearest component (``related = (allowed, gap)``). ``kept``: how many anchor components
    are kept."""
    how, words = reading.relation
    units = anchor_units(found, words, place=place, transform=transform, candidates=candidates, colour=colour)
    if not units:
        return None, 0
    every = reading.objects == EVERY
    log_p = np.log(np.maximum(components.mean_probability.astype(np.float64), 1e-6))
    best = None
    for unit in units:
        allowed, gap = relate(components, found, unit, how, every=every, near=near, transform=transform)
        cost = gap if spread is None else gap / (spread * near) - log_p
        if best is None and not allowed.any():
            best = (np.inf, allowed, cost, len(unit))  # no target for the surest: kept unless another has one
        if allowed.any():
            p_a = float(np.mean(found.mean_probability[unit]))
            total = float(cost[allowed].min()) - anchor_weight * np.log(max(p_a, 1e-6))
            if best is None or total < best[0]:
                best = (total, allowed, cost, len(unit))
    return (best[1], best[2]), best[3]


def _component_strips(scene: Scene, comps: Components, scores: np.ndarray, opt: SceneOptions):
    for r0 in range(0, scene.height, opt.strip_rows):
        r1 = min(r0 + opt.strip_rows, scene.height)
        valid = scene.read_valid((r0, 0, r1, scene.width))
        p = np.where(valid, comps.paint(r0, r1, scores), 0.0).astype(np.float32)
        yield r0, p, valid
