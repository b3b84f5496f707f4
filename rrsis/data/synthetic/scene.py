"""Procedural aerial scenes: ground, roads, a coast, and objects with exact masks.

Every object's mask is rasterised once from its geometry with the pixel-centre rule of
:func:`rrsis.data.coco.polygon_to_mask`; the image is painted through the same masks, so image and
ground truth agree pixel for pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..coco import polygon_to_mask

__all__ = ["CATEGORIES", "COLOURS", "NIR_CATEGORIES", "NIR_STATES", "Category", "Scene", "SceneObject",
           "category", "render", "sample_scene"]

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 45, 40),
    "orange": (235, 135, 35),
    "yellow": (235, 215, 60),
    "green": (45, 150, 65),
    "blue": (45, 90, 205),
    "white": (242, 242, 238),
    "gray": (140, 140, 145),
    "black": (35, 35, 40),
}


@dataclass(frozen=True)
class Category:
    """An object category of the generator.

    Args:
        name, plural: the nouns the grammar uses.
        length: range of the longest side as a fraction of the scene side.
        aspect: range of short side / long side.
        colours: colour names it is drawn in.
        shape: ``"rect"``, ``"circle"``, ``"plane"`` or ``"ship"``.
        place: ``"land"``, ``"water"`` or ``"land+road"``.
        encoding: how the RRSIS-D writer stores its mask: ``"polygon"``, ``"rle"`` (compressed
            string) or ``"rle-list"`` (uncompressed counts).
    """

    name: str
    plural: str
    length: tuple[float, float]
    aspect: tuple[float, float]
    colours: tuple[str, ...]
    shape: str
    place: str = "land"
    encoding: str = "polygon"


CATEGORIES: dict[str, Category] = {
    c.name: c
    for c in (
        Category("building", "buildings", (0.14, 0.24), (0.55, 1.0),
                 ("red", "white", "gray", "blue"), "rect"),
        Category("storage tank", "storage tanks", (0.11, 0.18), (1.0, 1.0),
                 ("white", "gray", "orange", "green"), "circle", encoding="rle"),
        Category("plane", "planes", (0.20, 0.28), (1.0, 1.0),
                 ("white", "gray", "blue"), "plane"),
        Category("ship", "ships", (0.18, 0.27), (0.24, 0.3),
                 ("white", "red", "orange", "gray"), "ship", place="water"),
        Category("vehicle", "vehicles", (0.10, 0.13), (0.45, 0.55),
                 ("red", "blue", "white", "yellow", "black"), "rect", place="land+road",
                 encoding="rle-list"),
        Category("sports court", "sports courts", (0.18, 0.24), (0.55, 0.65),
                 ("green", "blue", "red"), "rect"),
    )
}

# Categories of near-infrared scenes only (``sample_scene(nir=True)``): each comes in two states
# painted alike in R, G, B and told apart by the near-infrared band alone.
NIR_CATEGORIES: dict[str, Category] = {
    c.name: c
    for c in (
        Category("plot", "plots", (0.20, 0.26), (0.6, 0.85), ("green",), "rect"),
        Category("pond", "ponds", (0.16, 0.22), (1.0, 1.0), ("blue",), "circle", encoding="rle"),
    )
}
# category -> its two states, the words the grammar uses for them
NIR_STATES: dict[str, tuple[str, str]] = {"plot": ("vegetated", "bare"), "pond": ("dry", "wet")}
def category(name: str) -> Category:
    """The :class:`Category` called ``name``, of :data:`CATEGORIES` or :data:`NIR_CATEGORIES`."""
    return CATEGORIES[name] if name in CATEGORIES else NIR_CATEGORIES[name]


# Unit airplane outline, nose at +x, length 1 (one wing side; mirrored below).
_PLANE_HALF = [(0.5, 0.0), (0.42, 0.07), (0.12, 0.07), (-0.04, 0.48), (-0.16, 0.48),
               (-0.08, 0.07), (-0.32, 0.07), (-0.42, 0.2), (-0.5, 0.2), (-0.46, 0.0)]


@dataclass
class SceneObject:
    """One object: geometry, colour and its exact mask.

    Args:
        index: position in the scene's object list.
        category: category name.
        colour: colour name.
        cx, cy: centre in pixels.
        length: longest side in pixels.
        width: shorter side in pixels (rectangles and ships; planes and tanks ignore it).
        angle: rotation in radians.
        radius: bounding-circle radius in pixels.
        mask: bool ``[S, S]``.
        state: for :data:`NIR_CATEGORIES`, one of its :data:`NIR_STATES` (``""`` otherwise).
    """

    index: int
    category: str
    colour: str
    cx: float
    cy: float
    length: float
    width: float
    angle: float
    radius: float
    mask: np.ndarray = field(repr=False)
    state: str = ""

    @property
    def area(self) -> int:
        return int(self.mask.sum())


@dataclass
class Scene:
    """A sampled scene before rendering.

    Args:
        size: side in pixels.
        objects: the objects.
        roads: ``(axis, centre, width)``, axis ``"h"`` (horizontal) or ``"v"``.
        water: bool ``[S, S]`` or ``None``.
        road_mask: bool ``[S, S]``.
        ground: base ground colour.
    """

    size: int
    objects: list[SceneObject]
    roads: list[tuple[str, float, float]]
    water: np.ndarray | None
    road_mask: np.ndarray
    ground: tuple[int, int, int]


def _outline(cat: Category, length: float, width: float) -> np.ndarray:
    if cat.shape == "plane":
        half = np.asarray(_PLANE_HALF)
        pts = np.concatenate([half, half[::-1][1:-1] * [1, -1]])
        return pts * length
    if cat.shape == "ship":
        w = width / 2
        return np.asarray([(length / 2, 0), (length * 0.25, -w), (-length / 2, -w),
                           (-length / 2, w), (length * 0.25, w)])
    lx, wy = length / 2, width / 2
    return np.asarray([(-lx, -wy), (lx, -wy), (lx, wy), (-lx, wy)])


def _object_shape(cat: Category, cx: float, cy: float, length: float, width: float,
                  angle: float) -> tuple[np.ndarray | None, float]:
    """An object's outline in scene pixels (``None`` for a circle) and its bounding radius."""
    if cat.shape == "circle":
        return None, length / 2
    pts = _outline(cat, length, width)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = pts @ rot.T + [cx, cy]
    return pts, float(np.hypot(*(pts - [cx, cy]).T).max())


def _object_mask(outline: np.ndarray | None, cx: float, cy: float, radius: float, size: int) -> np.ndarray:
    """Rasterise an outline from :func:`_object_shape` (or the circle of ``radius``)."""
    if outline is None:
        c = np.arange(size) + 0.5
        return (c[None, :] - cx) ** 2 + (c[:, None] - cy) ** 2 < radius * radius
    return polygon_to_mask(outline.reshape(-1), size, size)


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Binary dilation by a (2r+1)-square, without wrap-around at the borders."""
    out = mask.copy()
    for axis in (0, 1):
        grown = out.copy()
        for d in range(1, r + 1):
            grown |= _shift(out, d, axis) | _shift(out, -d, axis)
        out = grown
    return out


def _shift(mask: np.ndarray, d: int, axis: int) -> np.ndarray:
    """``mask`` moved by ``d`` pixels along ``axis``, filling with False."""
    out = np.zeros_like(mask)
    src = [slice(None)] * 2
    dst = [slice(None)] * 2
    src[axis] = slice(max(-d, 0), mask.shape[axis] - max(d, 0))
    dst[axis] = slice(max(d, 0), mask.shape[axis] - max(-d, 0))
    out[tuple(dst)] = mask[tuple(src)]
    return out


def _coast(rng: np.random.Generator, size: int) -> tuple[np.ndarray, bool]:
    """Water along one random edge with a wavy shoreline; also whether the shore runs
    horizontally."""
    depth = rng.uniform(0.26, 0.34) * size
    amp = rng.uniform(0.02, 0.05) * size
    phase, period = rng.uniform(0, 2 * np.pi), rng.uniform(0.6, 1.2) * size
    t = np.arange(size) + 0.5
    shore = depth + amp * np.sin(2 * np.pi * t / period + phase)
    inward = t[:, None] < shore[None, :]  # water for rows above the shoreline, per column
    edge = int(rng.integers(4))
    return np.rot90(inward, k=edge).copy(), edge % 2 == 0


def _counts(rng: np.random.Generator, n_objects: int, n_categories: int) -> list[int]:
    # At least two per category when possible: duplicates make the text necessary.
    base = 2 if n_objects >= 2 * n_categories else 1
    counts = [base] * n_categories
    for _ in range(n_objects - base * n_categories):
        counts[int(rng.integers(n_categories))] += 1
    return counts


def sample_scene(
    rng: np.random.Generator,
    size: int,
    *,
    min_objects: int = 3,
    max_objects: int = 7,
    object_scale: float = 1.0,
    min_object_frac: float = 0.10,
    water_prob: float = 0.35,
    road_probs: tuple[float, float, float] = (0.3, 0.5, 0.2),
    max_tries: int = 60,
    nir: bool = False,
) -> Scene:
    """Sample the layout and objects of one scene.

    Args:
        rng: the scene's random generator.
        size: scene side in pixels.
        min_objects, max_objects: object count range (objects that do not fit are dropped).
        object_scale: multiplies every category's size range.
        min_object_frac: lower bound of an object's longest side, as a fraction of ``size``.
        water_prob: chance of a coast (ships need one).
        road_probs: chances of 0, 1 and 2 roads.
        max_tries: placement attempts per object.
        nir: also place a pair of one :data:`NIR_CATEGORIES` category, first, one object in each
            of its two states (a vegetated and a bare plot, or a dry and a wet pond); with
            ``False`` the random stream, and so the scene, is that of rrsis without the option.
    """
    water, shore_horizontal = _coast(rng, size) if rng.random() < water_prob else (None, True)
    roads: list[tuple[str, float, float]] = []
    road_mask = np.zeros((size, size), dtype=bool)
    n_roads = int(rng.choice(3, p=np.asarray(road_probs) / sum(road_probs)))
    axes = ["h", "v"] if n_roads == 2 else [str(rng.choice(["h", "v"]))] * n_roads
    for axis in axes:
        centre, width = rng.uniform(0.3, 0.7) * size, max(0.065 * size, 3.0)
        roads.append((axis, float(centre), float(width)))
        line = np.abs(np.arange(size) + 0.5 - centre) < width / 2
        road_mask |= line[:, None] if axis == "h" else line[None, :]
    if water is not None:
        road_mask &= ~water
    land = ~road_mask & (~water if water is not None else True)
    # Keep land objects a few pixels off roads and the shore.
    blocked = _dilate(~land, max(round(0.02 * size), 1))
    allowed = {"land": ~blocked, "water": water if water is not None else None,
               "land+road": ~blocked | road_mask}

    names = [n for n, c in CATEGORIES.items() if allowed[c.place] is not None]
    n_objects = int(rng.integers(min_objects, max_objects + 1))
    n_cat = int(rng.choice([1, 2, 3], p=[0.15, 0.5, 0.35]))
    n_cat = min(n_cat, n_objects, len(names))
    chosen = [names[i] for i in rng.choice(len(names), size=n_cat, replace=False)]
    if water is not None and "ship" not in chosen and rng.random() < 0.7:
        chosen[-1] = "ship"
    plan = [name for name, k in zip(chosen, _counts(rng, n_objects, n_cat)) for _ in range(k)]
    states = [""] * len(plan)
    if nir:
        pair = list(NIR_STATES)[int(rng.integers(len(NIR_STATES)))]
        order = NIR_STATES[pair] if rng.random() < 0.5 else NIR_STATES[pair][::-1]
        plan, states = [pair, pair, *plan], [*order, *states]

    gap = 0.03 * size
    objects: list[SceneObject] = []
    for name, state in zip(plan, states):
        cat = category(name)
        region = allowed[cat.place]
        for _ in range(max_tries):
            frac = rng.uniform(*cat.length) * object_scale
            length = max(frac, min_object_frac) * size
            width = length * rng.uniform(*cat.aspect)
            if cat.place == "water":
                # Ships lie roughly along the shore so that they fit in the water.
                angle = (0.0 if shore_horizontal else np.pi / 2) + rng.normal(0, 0.25)
                angle += np.pi * int(rng.integers(2))
            else:
                angle = rng.uniform(0, np.pi if cat.shape == "rect" else 2 * np.pi)
            margin = length / 2 + 1
            cx, cy = rng.uniform(margin, size - margin, 2)
            # Spacing first: it needs only the bounding radius, not the rasterised mask.
            outline, radius = _object_shape(cat, cx, cy, length, width, angle)
            if any(np.hypot(cx - o.cx, cy - o.cy) < radius + o.radius + gap for o in objects):
                continue
            mask = _object_mask(outline, cx, cy, radius, size)
            if not mask.any() or (mask & ~region).any():
                continue
            colour = str(rng.choice(cat.colours))
            objects.append(SceneObject(len(objects), name, colour, float(cx), float(cy),
                                       float(length), float(width), float(angle), radius, mask, state))
            break
    ground = tuple(int(v) for v in np.asarray([158, 142, 104]) + rng.integers(-14, 15, 3))
    return Scene(size, objects, roads, water, road_mask, ground)  # type: ignore[arg-type]


def _smooth_noise(rng: np.random.Generator, size: int, cell: int, amp: float) -> np.ndarray:
    n = max(size // cell, 1) + 2
    coarse = rng.normal(0, 1, (n, n)).astype(np.float32)
    up = Image.fromarray(coarse).resize((size, size), Image.BILINEAR)
    return np.asarray(up, dtype=np.float32) * amp


def _local(obj: SceneObject, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates along (u) and across (v) the object's long axis."""
    c = np.arange(size) + 0.5
    dx, dy = c[None, :] - obj.cx, c[:, None] - obj.cy
    ca, sa = np.cos(obj.angle), np.sin(obj.angle)
    return dx * ca + dy * sa, -dx * sa + dy * ca


def render(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """Paint a scene.

    Args:
        scene: from :func:`sample_scene`.
        rng: random generator for textures.

    Returns:
        uint8 ``[S, S, 3]``.
    """
    s = scene.size
    img = np.empty((s, s, 3), dtype=np.float32)
    img[:] = scene.ground
    img += _smooth_noise(rng, s, 24, 10.0)[..., None]
    img += _smooth_noise(rng, s, 6, 4.0)[..., None] * [1.0, 1.2, 0.8]
    if scene.road_mask.any():
        img[scene.road_mask] = (100, 100, 104)
        for axis, centre, _ in scene.roads:
            c = np.arange(s) + 0.5
            line = np.abs(c - centre) < max(0.006 * s, 0.5)
            dash = (c // max(0.05 * s, 2)).astype(int) % 2 == 0
            stripe = line[:, None] & dash[None, :] if axis == "h" else dash[:, None] & line[None]
            img[stripe & scene.road_mask] = (225, 225, 215)
    if scene.water is not None:
        img[scene.water] = (38, 72, 118)
        img += (_smooth_noise(rng, s, 12, 5.0)[..., None] * scene.water[..., None])
    occupied = np.zeros((s, s), dtype=bool)
    for obj in scene.objects:
        occupied |= obj.mask
    shift = max(round(0.015 * s), 1)
    for obj in scene.objects:
        shadow = _shift(_shift(obj.mask, shift, 0), shift, 1) & ~occupied
        img[shadow] *= 0.6
    for obj in scene.objects:
        _paint(img, obj, s, rng)
    img += rng.normal(0, 3.0, img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _paint(img: np.ndarray, obj: SceneObject, s: int, rng: np.random.Generator) -> None:
    cat = category(obj.category)
    base = np.asarray(COLOURS[obj.colour], dtype=np.float32) + rng.integers(-8, 9, 3)
    m = obj.mask
    u, v = _local(obj, s)
    shade = np.ones((s, s), dtype=np.float32)
    if obj.category == "building":
        shade[v > 0] = 0.86  # two roof faces
    elif cat.shape == "circle":
        r = np.hypot(u, v)
        shade[r > 0.38 * obj.length] = 0.85  # rim
    elif obj.category == "ship":
        shade[np.abs(v) < 0.12 * obj.width] = 1.1
    elif obj.category == "vehicle":
        shade[(u > 0.12 * obj.length) & (u < 0.3 * obj.length)] = 0.55  # windscreen
    img[m] = base * shade[m][:, None]
    if obj.category == "sports court":
        inset = max(0.08 * obj.width, 1.0)
        t = max(0.02 * s, 0.6)
        on_line = (np.abs(np.abs(u) - (obj.length / 2 - inset)) < t) | (
            np.abs(np.abs(v) - (obj.width / 2 - inset)) < t) | (np.abs(u) < t)
        inner = (np.abs(u) <= obj.length / 2 - inset + t) & (np.abs(v) <= obj.width / 2 - inset + t)
        img[m & on_line & inner] = (245, 245, 245)
    elif obj.category == "plot":  # rows across the long axis, alike in every state
        img[m & ((np.floor(u / max(0.03 * s, 1.0)) % 2) == 0)] *= 0.8
