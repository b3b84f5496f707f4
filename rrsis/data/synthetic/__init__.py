"""Synthetic aerial scenes with referring expressions, written in the real datasets' formats.

``generate()`` samples scenes (textured ground, roads, a coast; buildings, storage tanks,
planes, ships, vehicles, sports courts of several colours, sizes and orientations), describes
targets with a small template grammar (category, colour, size, position, relations, counts,
optionally no-target), and writes the RRSIS-D (REFER) and/or RefSegRS layouts so that the real
loaders read them. Same arguments and seed → byte-identical files.

Most targets are chosen to have a same-category distractor in their scene (the reported
``non_unique_target_share``, at least 60 % by default), so the text is needed to find them.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from typing import Any

import numpy as np

from ..._atomic import atomic_open, json_text
from ..._config import check_workers
from .grammar import KIND_WEIGHTS, Expression, candidates, sample_expressions, vocabulary
from .nir import render_nir
from .scene import (
    CATEGORIES,
    COLOURS,
    NIR_CATEGORIES,
    NIR_STATES,
    Scene,
    SceneObject,
    render,
    sample_scene,
)
from .writers import GeneratedScene, RefSegRSWriter, RRSISDWriter

__all__ = [
    "CATEGORIES",
    "COLOURS",
    "KIND_WEIGHTS",
    "NIR_CATEGORIES",
    "NIR_STATES",
    "Expression",
    "GeneratedScene",
    "Scene",
    "SceneObject",
    "assign_splits",
    "candidates",
    "generate",
    "generate_scene",
    "render",
    "render_nir",
    "sample_expressions",
    "sample_scene",
    "vocabulary",
]

LAYOUTS = ("rrsisd", "refsegrs", "both")
SPLITS = ("train", "val", "test")


def assign_splits(n_scenes: int, fractions: Sequence[float], seed: int) -> list[str]:
    """Split of each scene: counts follow ``fractions`` (largest remainders), order is random.

    Args:
        n_scenes: number of scenes.
        fractions: train/val/test shares (normalised; zero means none).
        seed: the generation seed.
    """
    frac = np.asarray(fractions, dtype=np.float64)
    if frac.shape != (3,) or (frac < 0).any() or frac.sum() <= 0:
        raise ValueError(f"splits must be three non-negative shares, got {tuple(fractions)}")
    frac = frac / frac.sum()
    raw = frac * n_scenes
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: n_scenes - counts.sum()]:
        counts[i] += 1
    # Every split with a share gets a scene when there are enough scenes.
    for i in np.flatnonzero((frac > 0) & (counts == 0)):
        donor = int(np.argmax(counts))
        if counts[donor] > 1:
            counts[donor] -= 1
            counts[i] += 1
    labels = [s for s, c in zip(SPLITS, counts) for _ in range(c)]
    order = np.random.default_rng([seed, 2**31 - 1]).permutation(n_scenes)
    return [labels[int(j)] for j in order]


def generate_scene(
    index: int,
    seed: int,
    size: int = 256,
    split: str = "train",
    expressions_per_scene: int = 4,
    *,
    no_target_frac: float = 0.0,
    prefer_non_unique: float = 0.85,
    kind_weights: Mapping[str, float] | None = None,
    nir: bool = False,
    **scene_kwargs: Any,
) -> GeneratedScene:
    """Sample, render and describe scene ``index`` (independent of how many scenes are made).

    Args:
        index: scene number.
        seed: generation seed.
        size: side in pixels.
        split: its split label.
        expressions_per_scene: expressions to draw.
        no_target_frac, prefer_non_unique, kind_weights: see :func:`sample_expressions`.
        nir: add a near-infrared band (image ``[S, S, 4]``), a vegetated and a bare plot or a
            dry and a wet pond, and the ``nir`` expressions that need the band.
        **scene_kwargs: :func:`sample_scene` options (object counts and sizes, ...).
    """
    rng = np.random.default_rng([seed, index])
    scene = sample_scene(rng, size, nir=nir, **scene_kwargs)
    image = render(scene, rng)
    if nir:
        image = np.concatenate([image, render_nir(scene, rng)[..., None]], axis=2)
    exprs = sample_expressions(scene, rng, expressions_per_scene, no_target_frac=no_target_frac,
                               prefer_non_unique=prefer_non_unique, kind_weights=kind_weights)
    return GeneratedScene(index, split, scene, image, exprs)


def _scene_job(job: tuple[int, str], seed: int, size: int, expressions_per_scene: int,
               **kwargs: Any) -> GeneratedScene:
    return generate_scene(job[0], seed, size, job[1], expressions_per_scene, **kwargs)


def _scenes(make, jobs: list[tuple[int, str]], executor: Executor | None, workers: int) -> Iterator[GeneratedScene]:
    """The generated scenes in index order, made here, in ``executor`` or in ``workers`` processes."""
    if executor is None and workers == 1:
        yield from map(make, jobs)
        return
    own = None
    if executor is None:
        # Fresh interpreters (not forks of this one, which may hold torch's thread pools).
        own = executor = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))
    try:
        # Chunks of up to 16 scenes: few round trips, and the writer here keeps pace with them.
        yield from executor.map(make, jobs, chunksize=max(1, min(16, len(jobs) // 16)))
    finally:
        if own is not None:
            own.shutdown(cancel_futures=True)


def generate(
    out_dir: str,
    n_scenes: int,
    seed: int = 0,
    size: int = 256,
    layout: str = "both",
    splits: Sequence[float] = (0.8, 0.1, 0.1),
    expressions_per_scene: int = 4,
    *,
    no_target_frac: float = 0.0,
    min_objects: int = 3,
    max_objects: int = 7,
    object_scale: float = 1.0,
    min_object_frac: float = 0.10,
    prefer_non_unique: float = 0.85,
    kind_weights: Mapping[str, float] | None = None,
    image_format: str = "png",
    nir: bool = False,
    progress: bool = False,
    workers: int = 1,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Generate a synthetic RRSIS dataset and write it to disk.

    Writes ``out_dir/rrsisd`` (REFER layout) and/or ``out_dir/refsegrs`` (RefSegRS layout),
    and ``out_dir/stats.json``.

    Args:
        out_dir: output folder (created).
        n_scenes: number of scenes (images); splits are by scene.
        seed: random seed; the same arguments give byte-identical output.
        size: scene side in pixels.
        layout: ``"rrsisd"``, ``"refsegrs"`` or ``"both"``.
        splits: train/val/test shares of the scenes.
        expressions_per_scene: expressions drawn per scene (fewer if the scene allows fewer).
        no_target_frac: chance of a no-target expression (empty mask); 0 for training sets.
        min_objects, max_objects: objects per scene (ones that do not fit are dropped).
        object_scale: multiplies all object sizes.
        min_object_frac: smallest allowed object length as a fraction of ``size``.
        prefer_non_unique: chance of preferring a target with a same-category distractor.
        kind_weights: relative weights of expression kinds (see ``KIND_WEIGHTS``).
        image_format: RRSIS-D image encoding, ``"png"`` (lossless) or ``"jpg"``; 4-band
            (``nir``) images are uncompressed TIFFs whatever it says.
        nir: add a near-infrared band to every image (R, G, B, NIR; read them with
            ``bands=(1, 2, 3, 4)`` or a model built with ``in_chans=4``), a vegetated and a bare
            plot or a dry and a wet pond to every scene, and ``nir`` expressions that need the
            band ("the vegetated plot", "the dry pond"). ``False`` writes the same bytes as
            rrsis without the option.
        progress: show a progress bar.
        workers: processes that sample and render scenes (the files are written here, in
            scene order, so the output does not depend on it); 1 makes everything here.
        executor: a ``concurrent.futures`` executor to make the scenes in instead (its
            processes are reused by the caller afterwards); overrides ``workers``.

    Returns:
        the statistics also written to ``stats.json``, including
        ``non_unique_target_share``: the share of expressions whose target is not the only
        object of its category in its scene (no-target expressions count as unique).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if n_scenes < 1:
        raise ValueError(f"n_scenes must be at least 1, got {n_scenes}")
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    if not 1 <= min_objects <= max_objects:
        raise ValueError(f"need 1 <= min_objects <= max_objects, got {min_objects}, {max_objects}")
    if image_format not in ("png", "jpg"):
        raise ValueError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
    check_workers("workers", workers, low=1)
    os.makedirs(out_dir, exist_ok=True)
    layouts = ["rrsisd", "refsegrs"] if layout == "both" else [layout]
    writers = [
        RRSISDWriter(os.path.join(out_dir, name), image_format) if name == "rrsisd"
        else RefSegRSWriter(os.path.join(out_dir, name))
        for name in layouts
    ]
    labels = assign_splits(n_scenes, splits, seed)
    kinds: Counter = Counter()
    per_split = {s: {"scenes": 0, "expressions": 0} for s in SPLITS}
    n_expr = n_non_unique = n_multi = n_empty = n_objects = 0
    make = partial(
        _scene_job, seed=seed, size=size, expressions_per_scene=expressions_per_scene,
        no_target_frac=no_target_frac, prefer_non_unique=prefer_non_unique,
        kind_weights=dict(kind_weights) if kind_weights is not None else None,
        min_objects=min_objects, max_objects=max_objects, object_scale=object_scale,
        min_object_frac=min_object_frac, **({"nir": True} if nir else {}),
    )
    made = _scenes(make, [(i, labels[i]) for i in range(n_scenes)], executor, workers)
    scenes: Iterable[GeneratedScene] = made
    if progress:
        from tqdm import tqdm

        scenes = tqdm(made, desc="synth", unit="scene", total=n_scenes)
    try:
        for gs in scenes:
            for w in writers:
                w.add(gs)
            n_objects += len(gs.scene.objects)
            per_split[gs.split]["scenes"] += 1
            per_split[gs.split]["expressions"] += len(gs.expressions)
            for e in gs.expressions:
                kinds[e.kind] += 1
                n_expr += 1
                n_non_unique += e.non_unique
                n_multi += len(e.targets) > 1
                n_empty += not e.targets
    finally:
        made.close()  # a failure here stops the workers' pending scenes too
    for w in writers:
        w.close()
    stats = {
        "seed": seed,
        "size": size,
        "n_scenes": n_scenes,
        "n_objects": n_objects,
        "n_expressions": n_expr,
        "non_unique_target_share": round(n_non_unique / max(n_expr, 1), 4),
        "multi_target": n_multi,
        "no_target": n_empty,
        "kinds": dict(sorted(kinds.items())),
        "splits": per_split,
        "layouts": layouts,
        "config": {
            "layout": layout, "splits": [float(v) for v in splits],
            "expressions_per_scene": expressions_per_scene, "no_target_frac": no_target_frac,
            "min_objects": min_objects, "max_objects": max_objects,
            "object_scale": object_scale, "min_object_frac": min_object_frac,
            "prefer_non_unique": prefer_non_unique, "image_format": image_format,
            "kind_weights": dict(KIND_WEIGHTS, **(kind_weights or {})),
            **({"nir": True} if nir else {}),
        },
        "vocabulary_size": len(vocabulary(nir=nir)),
    }
    with atomic_open(os.path.join(out_dir, "stats.json")) as f:
        f.write(json_text(stats, indent=2, sort_keys=True))
        f.write("\n")
    return stats
