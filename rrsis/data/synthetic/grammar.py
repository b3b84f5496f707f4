"""Referring expressions for synthetic scenes: a small template grammar and a target sampler.

Every candidate expression is checked against the whole scene: it must select exactly its target
set, with margins so that a human would agree (no object near a region border, no near-ties in
size or position). Kinds: category, colour, size, extreme position, region, relation (to the
road, the water or another object) and counts (multi-target); plus no-target expressions; and in
near-infrared scenes ``nir``: a state that only the near-infrared band shows ("the vegetated
plot", "the dry pond").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .scene import CATEGORIES, COLOURS, NIR_CATEGORIES, NIR_STATES, Scene, SceneObject, category

__all__ = ["KIND_WEIGHTS", "Expression", "candidates", "sample_expressions", "vocabulary"]

COUNT_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven"}
SIZE_WORDS = ("largest", "smallest")
# Extreme word -> (axis, sign): the target has the smallest sign * coordinate.
EXTREMES = {
    "northernmost": ("y", 1),
    "southernmost": ("y", -1),
    "westernmost": ("x", 1),
    "easternmost": ("x", -1),
}
REGIONS = {
    (0, 0): ("in the north-west", "at the top left"),
    (0, 1): ("in the north", "at the top"),
    (0, 2): ("in the north-east", "at the top right"),
    (1, 0): ("in the west", "on the left"),
    (1, 1): ("in the center", "in the middle"),
    (1, 2): ("in the east", "on the right"),
    (2, 0): ("in the south-west", "at the bottom left"),
    (2, 1): ("in the south", "at the bottom"),
    (2, 2): ("in the south-east", "at the bottom right"),
}
# Relation -> unit direction from the reference object to the target (y down).
DIRECTIONS = {"left of": (-1, 0), "right of": (1, 0), "north of": (0, -1), "south of": (0, 1)}
NEAR = "next to"
TEMPLATE_WORDS = ("the", "all", "road", "water")

KIND_WEIGHTS = {
    "category": 1.0,
    "colour": 1.5,
    "size": 1.0,
    "extreme": 1.0,
    "region": 1.0,
    "relation": 1.0,
    "absent": 1.0,
}

# Margins, as fractions of the scene side.
_REGION_MARGIN = 0.04
_EXTREME_GAP = 0.10
_SIZE_RATIO = 1.35
_NEAR, _FAR = 0.07, 0.18
_ALONG_MIN = 0.08


@dataclass(frozen=True)
class Expression:
    """A referring expression and what it selects.

    Args:
        text: the expression.
        targets: indices of the selected objects (empty: no target).
        kind: grammar rule that produced it.
        category: the category it names.
        non_unique: the scene holds an object of that category outside ``targets``, so the
            category noun alone does not give the mask.
    """

    text: str
    targets: tuple[int, ...]
    kind: str
    category: str
    non_unique: bool


def _np(cat: str, objs: list[SceneObject], colour: str = "") -> str:
    """Noun phrase for one object or a group: "the red building", "the three red buildings"."""
    c = category(cat)
    adj = f"{colour} " if colour else ""
    if len(objs) == 1:
        return f"the {adj}{c.name}"
    if len(objs) in COUNT_WORDS:
        return f"the {COUNT_WORDS[len(objs)]} {adj}{c.plural}"
    return f"all {adj}{c.plural}"  # no count word in the vocabulary


def _cell(v: float, size: int) -> tuple[int, float]:
    """Third (0, 1, 2) of a coordinate and its distance to the nearest interior border."""
    third = size / 3
    idx = min(int(v // third), 2)
    return idx, min(abs(v - third), abs(v - 2 * third))


def _region_of(o: SceneObject, size: int) -> tuple[int, int] | None:
    (r, dr), (c, dc) = _cell(o.cy, size), _cell(o.cx, size)
    if min(dr, dc) < _REGION_MARGIN * size:
        return None
    return r, c


def _in_region(o: SceneObject, cell: tuple[int, int], size: int, slack: float) -> bool:
    """Could ``o`` be read as lying in ``cell`` (edge cells: the whole third)?"""
    third = size / 3
    r, c = cell
    row_ok = (r * third - slack) <= o.cy <= ((r + 1) * third + slack)
    col_ok = (c * third - slack) <= o.cx <= ((c + 1) * third + slack)
    if (r, c) == (1, 1) or (r != 1 and c != 1):
        return row_ok and col_ok  # centre and corners: the cell itself
    return row_ok if c == 1 else col_ok  # "in the north" claims the whole top third


def _gap(a: SceneObject, b: SceneObject) -> float:
    return float(np.hypot(a.cx - b.cx, a.cy - b.cy) - a.radius - b.radius)


def _outline_points(mask: np.ndarray) -> np.ndarray:
    """``[N, 2]`` (x, y) of the mask pixels that touch the background (4-neighbourhood)."""
    p = np.pad(mask, 1)
    inner = p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    ys, xs = np.nonzero(mask & ~inner)
    return np.stack([xs, ys], axis=1).astype(np.float64)


def _mask_gap(mask: np.ndarray, region: np.ndarray, region_outline: np.ndarray) -> float:
    """Edge-to-edge distance in pixels between an object mask and a region."""
    if (mask & region).any():
        return 0.0
    if region_outline.size == 0:
        return float("inf")
    pts = _outline_points(mask)
    d = np.hypot(pts[:, None, 0] - region_outline[None, :, 0],
                 pts[:, None, 1] - region_outline[None, :, 1])
    return float(d.min())


def _direction(target: SceneObject, ref: SceneObject, rel: str, size: int) -> int:
    """+1 the relation holds clearly, -1 it clearly does not, 0 in between."""
    ux, uy = DIRECTIONS[rel]
    dx, dy = target.cx - ref.cx, target.cy - ref.cy
    along, across = dx * ux + dy * uy, abs(dx * uy - dy * ux)
    if along >= _ALONG_MIN * size and along >= across:
        return 1
    if along <= 0.02 * size or across >= 1.5 * along:
        return -1
    return 0


def _select(objs: list[SceneObject], votes: list[int]) -> list[SceneObject] | None:
    """Objects voted +1, or ``None`` if any vote is undecided (0) or none is +1."""
    if 0 in votes or 1 not in votes:
        return None
    return [o for o, v in zip(objs, votes) if v == 1]


def candidates(scene: Scene, rng: np.random.Generator) -> list[Expression]:
    """All expressions the grammar can say about ``scene`` (one wording each).

    Args:
        scene: the scene.
        rng: picks among equivalent wordings.
    """
    size = scene.size
    by_cat: dict[str, list[SceneObject]] = {}
    for o in scene.objects:
        by_cat.setdefault(o.category, []).append(o)
    out: dict[str, Expression] = {}
    clashes: set[str] = set()

    def add(text: str, sel: list[SceneObject], kind: str, cat: str) -> None:
        targets = tuple(sorted(o.index for o in sel))
        others = any(o.index not in targets for o in by_cat.get(cat, []))
        if text in out and out[text].targets != targets:
            clashes.add(text)  # two readings of one text: drop it
        out.setdefault(text, Expression(text, targets, kind, cat, bool(targets) and others))

    def pick(options):
        return options[int(rng.integers(len(options)))]

    refs = {}
    for o in scene.objects:
        same = by_cat[o.category]
        if len(same) == 1:
            refs[o.index] = _np(o.category, [o])
        elif sum(p.colour == o.colour for p in same) == 1:
            refs[o.index] = _np(o.category, [o], o.colour)

    for cat, objs in by_cat.items():
        c = category(cat)
        for state in NIR_STATES.get(cat, ()):
            sel = [o for o in objs if o.state == state]
            if sel:
                add(_np(cat, sel, state), sel, "nir", cat)
        if len(objs) == 1:
            add(f"the {c.name}", objs, "category", cat)
        else:
            options = [f"all {c.plural}"]
            if len(objs) in COUNT_WORDS:
                n = COUNT_WORDS[len(objs)]
                options += [f"all {n} {c.plural}", f"the {n} {c.plural}"]
            add(pick(options), objs, "category", cat)
        for colour in sorted({o.colour for o in objs}):
            sel = [o for o in objs if o.colour == colour]
            text = _np(cat, sel, colour) if len(sel) == 1 else pick(
                [_np(cat, sel, colour), f"all {colour} {c.plural}"])
            add(text, sel, "colour", cat)
        absent = [col for col in c.colours if col not in {o.colour for o in objs}]
        if absent:
            add(_np(cat, objs[:1], pick(absent)), [], "absent", cat)
        if len(objs) >= 2:
            by_area = sorted(objs, key=lambda o: o.area)
            if by_area[-1].area >= _SIZE_RATIO * by_area[-2].area:
                add(f"the largest {c.name}", by_area[-1:], "size", cat)
            if by_area[1].area >= _SIZE_RATIO * by_area[0].area:
                add(f"the smallest {c.name}", by_area[:1], "size", cat)
            for word, (axis, sign) in EXTREMES.items():
                ranked = sorted(objs, key=lambda o: sign * (o.cy if axis == "y" else o.cx))
                a, b = ((o.cy if axis == "y" else o.cx) for o in ranked[:2])
                if abs(a - b) >= _EXTREME_GAP * size:
                    add(f"the {word} {c.name}", ranked[:1], "extreme", cat)
        slack = _REGION_MARGIN * size
        for cell, phrases in REGIONS.items():
            inside = [o for o in objs if _region_of(o, size) == cell]
            maybe = [o for o in objs if _in_region(o, cell, size, slack)]
            if len(inside) == 1 and maybe == inside:
                add(f"the {c.name} {pick(phrases)}", inside, "region", cat)
            elif not maybe:
                add(f"the {c.name} {pick(phrases)}", [], "absent", cat)
        _relations(scene, cat, objs, refs, add)
    for cat in sorted(set(CATEGORIES) - set(by_cat)):
        add(f"the {cat}", [], "absent", cat)
    return [e for t, e in out.items() if t not in clashes]


def _relations(scene: Scene, cat: str, objs: list[SceneObject], refs: Mapping[int, str],
               add) -> None:
    size = scene.size
    near, far = _NEAR * size, _FAR * size

    def nearness(gap: float) -> int:
        return 1 if gap <= near else -1 if gap >= far else 0

    def phrase(sel: list[SceneObject], rel: str, ref: str) -> str:
        return f"{_np(cat, sel)} {rel} {ref}"

    if len(scene.roads) == 1:
        axis, centre, _ = scene.roads[0]
        outline = _outline_points(scene.road_mask)
        on_road = [o for o in objs if (o.mask & scene.road_mask).any()]
        off = [o for o in objs if o not in on_road]
        sel = _select(off, [nearness(_mask_gap(o.mask, scene.road_mask, outline)) for o in off])
        if sel and not on_road:
            add(phrase(sel, NEAR, "the road"), sel, "relation", cat)
        rels = ("north of", "south of") if axis == "h" else ("left of", "right of")
        for rel, sign in zip(rels, (-1, 1)):
            coord = [(o.cy if axis == "h" else o.cx) for o in off]
            sel = [o for o, v in zip(off, coord) if sign * (v - centre) > 0]
            if sel and not on_road:
                add(phrase(sel, rel, "the road"), sel, "relation", cat)
    if scene.water is not None and category(cat).place != "water":
        outline = _outline_points(scene.water)
        sel = _select(objs, [nearness(_mask_gap(o.mask, scene.water, outline)) for o in objs])
        if sel:
            add(phrase(sel, NEAR, "the water"), sel, "relation", cat)
    for ref_obj in scene.objects:
        ref = refs.get(ref_obj.index)
        if ref is None or ref_obj.category == cat:
            continue
        for rel in DIRECTIONS:
            sel = _select(objs, [_direction(o, ref_obj, rel, size) for o in objs])
            if sel:
                add(phrase(sel, rel, ref), sel, "relation", cat)
        sel = _select(objs, [nearness(_gap(o, ref_obj)) for o in objs])
        if sel:
            add(phrase(sel, NEAR, ref), sel, "relation", cat)


def sample_expressions(
    scene: Scene,
    rng: np.random.Generator,
    n: int,
    *,
    no_target_frac: float = 0.0,
    prefer_non_unique: float = 0.85,
    kind_weights: Mapping[str, float] | None = None,
) -> list[Expression]:
    """Choose ``n`` distinct expressions for a scene.

    Targets with a same-category distractor are preferred, so that the category noun alone is
    rarely enough; new target sets are preferred over ones already described.

    Args:
        scene: the scene.
        rng: the scene's generator.
        n: how many (fewer if the grammar has fewer).
        no_target_frac: chance that an expression is a no-target one.
        prefer_non_unique: chance of drawing from the non-unique-target pool when it is not
            empty.
        kind_weights: relative weight of each kind (default :data:`KIND_WEIGHTS`).
    """
    weights = dict(KIND_WEIGHTS, **(kind_weights or {}))
    pool = candidates(scene, rng)
    chosen: list[Expression] = []
    used_targets: set[tuple[int, ...]] = set()
    for _ in range(n):
        left = [e for e in pool if e not in chosen]
        negative = [e for e in left if not e.targets]
        positive = [e for e in left if e.targets]
        hard = [e for e in positive if e.non_unique]
        easy = [e for e in positive if not e.non_unique]
        if negative and (rng.random() < no_target_frac or not positive):
            options = negative
        elif hard and (not easy or rng.random() < prefer_non_unique):
            options = hard
        else:
            options = easy
        if not options:
            break
        fresh = [e for e in options if e.targets not in used_targets]
        options = fresh or options
        kinds = sorted({e.kind for e in options})
        w = np.asarray([weights.get(k, 1.0) for k in kinds], dtype=np.float64)
        if w.sum() <= 0:
            w = np.ones_like(w)
        kind = kinds[int(rng.choice(len(kinds), p=w / w.sum()))]
        of_kind = [e for e in options if e.kind == kind]
        expr = of_kind[int(rng.integers(len(of_kind)))]
        chosen.append(expr)
        used_targets.add(expr.targets)
    return chosen


def vocabulary(split_punctuation: bool = True, nir: bool = False) -> list[str]:
    """Every word the grammar can emit, sorted.

    Args:
        split_punctuation: split "north-west" into "north", "-", "west" as BERT's basic
            tokenizer does (what a WordPiece vocabulary needs); otherwise whitespace words.
        nir: add the words of near-infrared scenes (plots, ponds and their states).
    """
    phrases = [*TEMPLATE_WORDS, *COLOURS, *SIZE_WORDS, *EXTREMES, *DIRECTIONS, NEAR,
               *COUNT_WORDS.values()]
    phrases += [p for pair in REGIONS.values() for p in pair]
    phrases += [w for c in CATEGORIES.values() for w in (c.name, c.plural)]
    if nir:
        phrases += [w for c in NIR_CATEGORIES.values() for w in (c.name, c.plural)]
        phrases += [w for pair in NIR_STATES.values() for w in pair]
    words = set()
    for phrase in phrases:
        for w in phrase.split():
            words.update(re.findall(r"\w+|[^\w\s]", w) if split_punctuation else [w])
    return sorted(words)
