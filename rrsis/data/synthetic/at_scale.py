"""Large georeferenced scenes whose objects are drawn at the pixel sizes of the small training
scenes, with expressions that only the whole scene answers.

The small generator (:mod:`rrsis.data.synthetic.scene`) sizes objects as fractions of its scene
side; here the same fractions apply to ``train_size`` (the side of the scenes a model was trained
on, 96 for ``rrsis demo``), so a ``train_size`` tile of a large scene shows each object at the
scale the model learned. Objects are painted by the small generator's painter, one
``train_size`` crop at a time (so its size-relative details, such as court lines, match too).

Expression kinds (each checked against every object of the scene):

- ``colour``: "the red building": the only one of its category in that colour (one object per
  category is given a colour of its own, the least likely one of the palette);
- ``region``: "the plane in the north-west": the only one of its category in that ninth of the
  scene, none of the others near its borders;
- ``extreme``: "the largest storage tank" (area ≥ 1.35 × the next), "the northernmost ship"
  (half a training tile ahead of the next);
- ``relation``: "the vehicle next to the white plane": the only one of its category within half a
  training tile of a uniquely named object, every other one at least 1.5 tiles away;
- ``direction``: "the vehicle north of the white plane": the only one of its category within
  three training tiles of a uniquely named object whose centre lies within 45° of that
  direction from the object's centre (clear of it, and within 1.5 tiles), with at least one more
  of its category within 1.5 tiles elsewhere, so that the direction decides (drawn last, so
  the other kinds' expressions are those of earlier versions);
- ``multi``: "all ships", "all white buildings" (two or more targets);
- ``none``: an expression naming nothing in the scene (a colour or a category absent), empty
  ground truth.

Files: ``NAME.tif`` (RGB uint8, UTM 33N), ``NAME_labels.tif`` (uint16 object id, 0 background),
``NAME.json`` (objects, expressions with their target ids, settings). Settings are a strict
:class:`LargeSceneSettings`, so that tuning and held-out sets can be drawn with other densities
and palettes, not only other seeds.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..._atomic import atomic_open, atomic_path, json_text
from ..._config import ConfigError, check_keys
from .grammar import COUNT_WORDS, EXTREMES, REGIONS, _in_region, _region_of
from .scene import (
    CATEGORIES,
    COLOURS,
    SceneObject,
    _dilate,
    _object_mask,
    _object_shape,
    _paint,
    _shift,
    _smooth_noise,
)

__all__ = ["SCALE_KINDS", "LargeSceneSettings", "make_scene_at_scale", "write_scene_at_scale"]

SCALE_KINDS = ("colour", "region", "extreme", "relation", "multi", "none", "direction")
# "north of": within 45° of the direction from the other object's centre, (east, south) unit steps.
_DIRECTION_WORDS = {"north": (0, -1), "south": (0, 1), "east": (1, 0), "west": (-1, 0)}
UTM_CRS = "EPSG:32633"
_SIZE_RATIO = 1.35


@dataclass(frozen=True)
class LargeSceneSettings:
    """Generation settings of a large scene at training scale.

    Args:
        size: scene side in pixels.
        train_size: side of the training scenes whose object sizes are copied.
        density: objects per ``train_size``² of scene (before objects that do not fit are dropped).
        palette: colour → relative weight of drawing it (colours not named: 1.0); the held-out
            set of a benchmark uses another palette than its tuning set.
        object_scale: multiplies object sizes (1.0: exactly the training sizes).
        rare_categories: categories drawn only 2-4 times, so that regions and extremes can name
            one object.
        roads: roads across the scene.
        water_prob: chance of a coast along one edge (ships need one).
        per_kind: expressions of each kind (fewer when the scene offers fewer).
        gsd: pixel size in metres.
    """

    size: int = 1024
    train_size: int = 96
    density: float = 0.35
    palette: Mapping[str, float] = field(default_factory=dict)
    object_scale: float = 1.0
    rare_categories: int = 3
    roads: int = 3
    water_prob: float = 0.6
    per_kind: int = 2
    gsd: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or not isinstance(self.train_size, int) or self.train_size < 32 \
                or self.size < 2 * self.train_size:
            raise ConfigError(f"size must be an integer >= 2 * train_size and train_size an integer >= 32, "
                              f"got size={self.size!r}, train_size={self.train_size!r}")
        if not 0 < self.density <= 2:
            raise ConfigError(f"density must be in (0, 2] objects per train_size², got {self.density!r}")
        check_keys(self.palette, COLOURS, "palette")
        if any(not (isinstance(w, (int, float)) and w > 0) for w in self.palette.values()):
            raise ConfigError(f"palette weights must be positive numbers, got {dict(self.palette)!r}")
        if not 0.5 <= self.object_scale <= 2.0:
            raise ConfigError(f"object_scale must be in [0.5, 2], got {self.object_scale!r}")
        for name in ("rare_categories", "roads", "per_kind"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0 or v > 12:
                raise ConfigError(f"{name} must be an integer in [0, 12], got {v!r}")
        if not 0 <= self.water_prob <= 1 or not self.gsd > 0:
            raise ConfigError(f"water_prob must be in [0, 1] and gsd > 0, got {self.water_prob!r}, {self.gsd!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LargeSceneSettings:
        """Settings from JSON-able data; an unknown key is an error naming the closest one."""
        check_keys(data, [f.name for f in dataclasses.fields(cls)], "LargeSceneSettings")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "palette": dict(self.palette)}


@dataclass
class _Obj:
    id: int
    category: str
    colour: str
    cx: float
    cy: float
    radius: float
    area: int = 0


def _colour(rng: np.random.Generator, options: tuple[str, ...], palette: Mapping[str, float]) -> str:
    w = np.asarray([float(palette.get(c, 1.0)) for c in options])
    return options[int(rng.choice(len(options), p=w / w.sum()))]


def make_scene_at_scale(settings: LargeSceneSettings, seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Sample, paint and describe one scene.

    Args:
        settings: the generation settings.
        seed: random seed (same settings and seed → same scene).

    Returns:
        ``(image uint8 [S, S, 3], labels uint16 [S, S] (object id, 0 background), meta)`` where
        ``meta`` holds ``objects`` and ``expressions`` (``text``, ``kind``, ``targets``: ids).
    """
    st = settings
    s, t = st.size, st.train_size
    rng = np.random.default_rng([seed, s, 25])
    pad = t  # a train_size crop around any object stays inside the padded canvas
    full = s + 2 * pad
    water = np.zeros((full, full), bool)
    if rng.random() < st.water_prob:
        depth = rng.uniform(0.14, 0.22) * s
        amp, period, phase = rng.uniform(0.01, 0.03) * s, rng.uniform(0.4, 0.9) * s, rng.uniform(0, 2 * np.pi)
        c = np.arange(s) + 0.5
        shore = depth + amp * np.sin(2 * np.pi * c / period + phase)
        inner = np.rot90(c[:, None] < shore[None, :], k=int(rng.integers(4)))
        water[pad:pad + s, pad:pad + s] = inner
    road = np.zeros((full, full), bool)
    roads = []
    width = max(0.065 * t, 3.0)
    for _ in range(st.roads):
        axis, centre = str(rng.choice(["h", "v"])), float(rng.uniform(0.1, 0.9) * s)
        line = np.abs(np.arange(full) - pad + 0.5 - centre) < width / 2
        road |= line[:, None] if axis == "h" else line[None, :]
        roads.append((axis, centre))
    road &= ~water
    inside = np.zeros((full, full), bool)
    inside[pad:pad + s, pad:pad + s] = True
    land = inside & ~road & ~water
    blocked = _dilate(~land, max(round(0.02 * t), 1))
    allowed = {"land": ~blocked, "water": water & inside, "land+road": (~blocked | road) & inside}

    names = [n for n, c in CATEGORIES.items() if c.place != "water" or water.any()]
    n_total = max(round(st.density * s * s / (t * t)), len(names))
    rare = set(rng.choice(names, size=min(st.rare_categories, len(names)), replace=False).tolist())
    counts = {n: int(rng.integers(2, 5)) for n in names if n in rare}
    common = [n for n in names if n not in rare]
    left = max(n_total - sum(counts.values()), 2 * len(common))
    for n, k in zip(common, rng.multinomial(left, np.ones(len(common)) / len(common)) if common else []):
        counts[n] = max(int(k), 2)
    plan = [n for n in names for _ in range(counts.get(n, 0))]
    plan = [plan[i] for i in rng.permutation(len(plan))]

    labels = np.zeros((full, full), np.uint16)
    objects: list[_Obj] = []
    masks: dict[int, tuple[int, int, np.ndarray]] = {}
    shapes: dict[int, tuple[float, float, float]] = {}
    gap = 0.03 * t
    for name in plan:
        cat = CATEGORIES[name]
        region = allowed[cat.place]
        for _ in range(40):
            length = max(rng.uniform(*cat.length) * st.object_scale, 0.10) * t
            wid = length * rng.uniform(*cat.aspect)
            if cat.place == "water":
                angle = rng.uniform(0, 2 * np.pi)
            else:
                angle = rng.uniform(0, np.pi if cat.shape == "rect" else 2 * np.pi)
            margin = length / 2 + 1
            cx, cy = rng.uniform(margin, s - margin, 2)
            x0, y0 = int(np.floor(cx)) + pad - t // 2, int(np.floor(cy)) + pad - t // 2
            lcx, lcy = cx + pad - x0, cy + pad - y0
            outline, radius = _object_shape(cat, lcx, lcy, length, wid, angle)
            if any(np.hypot(cx - o.cx, cy - o.cy) < radius + o.radius + gap for o in objects):
                continue
            mask = _object_mask(outline, lcx, lcy, radius, t)
            if not mask.any() or (mask & ~region[y0:y0 + t, x0:x0 + t]).any():
                continue
            o = _Obj(len(objects) + 1, name, _colour(rng, cat.colours, st.palette), float(cx), float(cy),
                     float(radius), int(mask.sum()))
            objects.append(o)
            masks[o.id] = (y0, x0, mask)
            shapes[o.id] = (length, wid, angle)
            labels[y0:y0 + t, x0:x0 + t][mask] = o.id
            break
    # One object per category in a colour of its own (the palette's least likely one), so
    # colour expressions have a unique target whatever the palette.
    by_cat: dict[str, list[_Obj]] = {}
    for o in objects:
        by_cat.setdefault(o.category, []).append(o)
    for name, objs in by_cat.items():
        opts = CATEGORIES[name].colours
        if len(objs) < 2:
            continue
        w = [float(st.palette.get(c, 1.0)) for c in opts]
        own = opts[int(np.argmin(np.asarray(w) + rng.uniform(0, 1e-6, len(w))))]
        rest = tuple(c for c in opts if c != own)
        for o in objs:
            if o.colour == own:
                o.colour = _colour(rng, rest, st.palette)
        objs[int(rng.integers(len(objs)))].colour = own

    image = _paint_scene(rng, st, full, pad, water, road, roads, labels, objects, masks, shapes)
    labels = labels[pad:pad + s, pad:pad + s]
    exprs = _expressions(rng, st, objects, by_cat)
    meta = {
        "size": s, "seed": seed, "settings": st.to_dict(), "crs": UTM_CRS,
        "objects": [{"id": o.id, "category": o.category, "colour": o.colour, "cx": round(o.cx, 2),
                     "cy": round(o.cy, 2), "area_px": o.area} for o in objects],
        "expressions": exprs,
    }
    return image, np.ascontiguousarray(labels), meta


def _paint_scene(rng, st, full, pad, water, road, roads, labels, objects, masks, shapes) -> np.ndarray:
    t, s = st.train_size, st.size
    ground = np.asarray([158, 142, 104]) + rng.integers(-14, 15, 3)
    img = np.empty((full, full, 3), np.float32)
    img[:] = ground
    img += _smooth_noise(rng, full, 24, 10.0)[..., None]
    img += _smooth_noise(rng, full, 6, 4.0)[..., None] * [1.0, 1.2, 0.8]
    img[road] = (100, 100, 104)
    c = np.arange(full) - pad + 0.5
    dash = (c // max(0.05 * t, 2)).astype(int) % 2 == 0
    for axis, centre in roads:
        line = np.abs(c - centre) < max(0.006 * t, 0.5)
        stripe = line[:, None] & dash[None, :] if axis == "h" else dash[:, None] & line[None]
        img[stripe & road] = (225, 225, 215)
    if water.any():
        img[water] = (38, 72, 118)
        img += _smooth_noise(rng, full, 12, 5.0)[..., None] * water[..., None]
    occupied = labels > 0
    shift = max(round(0.015 * t), 1)
    for o in objects:
        y0, x0, m = masks[o.id]
        shadow = _shift(_shift(np.pad(m, shift), shift, 0), shift, 1)
        ys, xs = slice(y0 - shift, y0 + t + shift), slice(x0 - shift, x0 + t + shift)
        img[ys, xs][shadow & ~occupied[ys, xs]] *= 0.6
    for o in objects:
        y0, x0, m = masks[o.id]
        length, wid, angle = shapes[o.id]
        local = SceneObject(0, o.category, o.colour, o.cx + pad - x0, o.cy + pad - y0, length, wid, angle,
                            o.radius, m)
        # The small generator's painter on a train_size crop: the same look at the same scale.
        _paint(img[y0:y0 + t, x0:x0 + t], local, t, rng)
    img += rng.normal(0, 3.0, img.shape).astype(np.float32)
    out = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out[pad:pad + s, pad:pad + s])


def _expressions(rng, st, objects: list[_Obj], by_cat: dict[str, list[_Obj]]) -> list[dict[str, Any]]:
    s, t = st.size, st.train_size
    pool: dict[str, list[tuple[str, list[int]]]] = {k: [] for k in SCALE_KINDS}
    names = {}  # object id -> a phrase naming it alone in the scene
    for cat, objs in by_cat.items():
        c = CATEGORIES[cat]
        for o in objs:
            if len(objs) == 1:
                names[o.id] = f"the {c.name}"
            elif sum(p.colour == o.colour for p in objs) == 1:
                names[o.id] = f"the {o.colour} {c.name}"
                pool["colour"].append((names[o.id], [o.id]))
        if len(objs) >= 2:
            pool["multi"].append((f"all {c.plural}" if len(objs) not in COUNT_WORDS or rng.random() < 0.5
                                  else f"the {COUNT_WORDS[len(objs)]} {c.plural}", [o.id for o in objs]))
        for colour in sorted({o.colour for o in objs}):
            sel = [o.id for o in objs if o.colour == colour]
            if len(sel) >= 2:
                pool["multi"].append((f"all {colour} {c.plural}", sel))
        for colour in c.colours:
            if all(o.colour != colour for o in objs):
                pool["none"].append((f"the {colour} {c.name}", []))
        if len(objs) >= 2:
            by_area = sorted(objs, key=lambda o: o.area)
            if by_area[-1].area >= _SIZE_RATIO * by_area[-2].area:
                pool["extreme"].append((f"the largest {c.name}", [by_area[-1].id]))
            if by_area[1].area >= _SIZE_RATIO * by_area[0].area:
                pool["extreme"].append((f"the smallest {c.name}", [by_area[0].id]))
            for word, (axis, sign) in EXTREMES.items():
                ranked = sorted(objs, key=lambda o: sign * (o.cy if axis == "y" else o.cx))
                a, b = ((o.cy if axis == "y" else o.cx) for o in ranked[:2])
                if abs(a - b) >= 0.5 * t:
                    pool["extreme"].append((f"the {word} {c.name}", [ranked[0].id]))
        for cell, phrases in REGIONS.items():
            inside = [o for o in objs if _region_of(o, s) == cell]
            maybe = [o for o in objs if _in_region(o, cell, s, 0.04 * s)]
            if len(inside) == 1 and maybe == inside:
                pool["region"].append((f"the {c.name} {phrases[int(rng.integers(2))]}", [inside[0].id]))
    for cat in sorted(set(CATEGORIES) - set(by_cat)):
        pool["none"].append((f"the {CATEGORIES[cat].name}", []))
    for ref in objects:
        phrase = names.get(ref.id)
        if phrase is None:
            continue
        for cat, objs in by_cat.items():
            if cat == ref.category:
                continue
            gaps = [np.hypot(o.cx - ref.cx, o.cy - ref.cy) - o.radius - ref.radius for o in objs]
            near = [o for o, g in zip(objs, gaps) if g <= 0.5 * t]
            if len(near) == 1 and all(g >= 1.5 * t for o, g in zip(objs, gaps) if o is not near[0]):
                pool["relation"].append((f"the {CATEGORIES[cat].name} next to {phrase}", [near[0].id]))
            close = [o for o, g in zip(objs, gaps) if g <= 1.5 * t]
            around = [o for o, g in zip(objs, gaps) if g <= 3 * t]
            for word, (ux, uy) in _DIRECTION_WORDS.items():
                def along(o, ref=ref, ux=ux, uy=uy):
                    return (o.cx - ref.cx) * ux + (o.cy - ref.cy) * uy

                def across(o, ref=ref, ux=ux, uy=uy):
                    return abs((o.cx - ref.cx) * uy - (o.cy - ref.cy) * ux)

                there = [o for o in around if along(o) > across(o)]
                # One clearly there and close; another close one elsewhere, so the direction
                # decides; none of the category within three tiles there.
                if (len(there) == 1 and there[0] in close and along(there[0]) >= ref.radius + there[0].radius
                        and len(close) >= 2):
                    pool["direction"].append((f"the {CATEGORIES[cat].name} {word} of {phrase}", [there[0].id]))
    out, seen = [], set()
    for kind in SCALE_KINDS:
        options = [e for e in pool[kind] if e[0] not in seen]
        for i in rng.permutation(len(options))[: st.per_kind]:
            text, targets = options[int(i)]
            seen.add(text)
            out.append({"text": text, "kind": kind, "targets": sorted(targets)})
    return out


def write_scene_at_scale(out_dir: str | os.PathLike, settings: LargeSceneSettings, *, seed: int = 0,
                         name: str = "scene") -> dict[str, Any]:
    """Write ``NAME.tif`` (RGB uint8 GeoTIFF, UTM 33N, ``settings.gsd`` m pixels),
    ``NAME_labels.tif`` (uint16 object id, 0 background) and ``NAME.json``; returns the JSON's
    content (``image`` and ``labels`` are file names relative to ``out_dir``).

    Args:
        out_dir: output folder.
        settings: generation settings.
        seed: random seed.
        name: file stem.
    """
    import rasterio
    from rasterio.transform import Affine

    image, labels, meta = make_scene_at_scale(settings, seed)
    s, gsd = settings.size, settings.gsd
    transform = Affine(gsd, 0.0, 400000.0, 0.0, -gsd, 4600000.0 + s * gsd)
    common = {"driver": "GTiff", "height": s, "width": s, "crs": UTM_CRS, "transform": transform,
              "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
    os.makedirs(out_dir, exist_ok=True)
    meta = {"image": f"{name}.tif", "labels": f"{name}_labels.tif", **meta}
    with atomic_path(os.path.join(out_dir, meta["image"]), keep_suffix=True) as tmp, \
            rasterio.open(tmp, "w", count=3, dtype="uint8", photometric="RGB", **common) as ds:
        ds.write(image.transpose(2, 0, 1))
    with atomic_path(os.path.join(out_dir, meta["labels"]), keep_suffix=True) as tmp, \
            rasterio.open(tmp, "w", count=1, dtype="uint16", **common) as ds:
        ds.write(labels[None])
    with atomic_open(os.path.join(out_dir, f"{name}.json")) as fh:
        fh.write(json_text(meta, indent=2))
        fh.write("\n")
    return meta
