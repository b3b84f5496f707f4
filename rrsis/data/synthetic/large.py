"""Large georeferenced synthetic scenes: a 4-band uint16 GeoTIFF, an object-id raster and
expressions that each name one object of the whole scene (including global ones: "the largest
building", "the tank in the north-east", "the easternmost plane").

The layout is sampled and rendered at ``render_size`` (at most the scene side) with the small-
scene generator and its grammar, then written window by window, upsampled (nearest) to the scene
side, so an 8192² or 20,000² scene never sits whole in memory. Bands: R, G, B and a NIR-like
band, as ``uint16 = 40 · uint8 + 300``; an optional nodata collar on the west edge.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..._atomic import atomic_open, atomic_path, json_text
from .grammar import candidates
from .scene import render, sample_scene

__all__ = ["LARGE_KINDS", "write_large_scene"]

# Expression kinds that name one object in a whole scene; the first three need the whole scene.
LARGE_KINDS = ("size", "extreme", "region", "colour", "relation", "category")
UTM_CRS = "EPSG:32633"


def _to16(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., i].astype(np.uint16) for i in range(3))
    nir = (g.astype(np.float32) * 0.8 + r * 0.2).astype(np.uint16)
    return np.stack([r, g, b, nir]) * 40 + 300


def write_large_scene(
    out_dir: str | os.PathLike,
    size: int,
    *,
    seed: int = 0,
    render_size: int | None = None,
    n_expressions: int = 4,
    min_objects: int = 6,
    max_objects: int = 10,
    gsd: float = 0.5,
    nodata_collar: float = 0.03,
    block: int = 1024,
    name: str = "scene",
) -> dict[str, Any]:
    """Write ``NAME.tif`` (4-band uint16, UTM 33N, ``gsd`` m pixels, nodata 0),
    ``NAME_labels.tif`` (uint16 object index + 1, 0 background) and ``NAME.json`` (expressions
    with their object, the settings).

    Args:
        out_dir: output folder.
        size: scene side in pixels.
        seed: random seed (same arguments → same files).
        render_size: side at which the layout is rendered (default ``min(size, 2048)``); the
            scene is its nearest-neighbour upsampling when larger.
        n_expressions: expressions naming exactly one object, global kinds first.
        min_objects, max_objects: objects in the scene (ones that do not fit are dropped).
        gsd: pixel size in metres.
        nodata_collar: width of a nodata strip on the west edge, as a fraction of ``size``.
        block: rows written at a time.
        name: file stem.

    Returns:
        the content of ``NAME.json``.
    """
    import rasterio
    from rasterio.transform import Affine
    from rasterio.windows import Window

    rs = int(render_size or min(size, 2048))
    if not 32 <= rs <= size:
        raise ValueError(f"render_size must be in [32, size], got {rs} for size {size}")
    rng = np.random.default_rng([seed, size, 17])
    scene = sample_scene(rng, rs, min_objects=min_objects, max_objects=max_objects, water_prob=0.25)
    image = render(scene, rng)
    labels = np.zeros((rs, rs), np.uint16)
    for o in scene.objects:
        labels[o.mask] = o.index + 1
    exprs = [e for e in candidates(scene, rng) if len(e.targets) == 1]
    order = {k: i for i, k in enumerate(LARGE_KINDS)}
    exprs = sorted((e for e in exprs if e.kind in order), key=lambda e: (order[e.kind], e.text))
    # One expression per object at most, global kinds preferred.
    chosen, used = [], set()
    for e in exprs:
        if e.targets[0] not in used and len(chosen) < n_expressions:
            chosen.append(e)
            used.add(e.targets[0])
    collar = round(nodata_collar * size)
    transform = Affine(gsd, 0.0, 400000.0, 0.0, -gsd, 4600000.0 + size * gsd)
    os.makedirs(out_dir, exist_ok=True)
    common = {"driver": "GTiff", "height": size, "width": size, "crs": UTM_CRS, "transform": transform,
                  "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
    img_path = os.path.join(out_dir, f"{name}.tif")
    lab_path = os.path.join(out_dir, f"{name}_labels.tif")
    cols = np.minimum((np.arange(size) * rs) // size, rs - 1)
    with atomic_path(img_path, keep_suffix=True) as img_tmp, atomic_path(lab_path, keep_suffix=True) as lab_tmp, \
            rasterio.Env(GDAL_CACHEMAX=64 * 2**20), \
            rasterio.open(img_tmp, "w", count=4, dtype="uint16", nodata=0, **common) as di, \
            rasterio.open(lab_tmp, "w", count=1, dtype="uint16", **common) as dl:
        for r0 in range(0, size, block):
            r1 = min(r0 + block, size)
            rows = np.minimum((np.arange(r0, r1) * rs) // size, rs - 1)
            data = _to16(image[rows][:, cols])
            lab = labels[rows][:, cols]
            if collar:
                data[:, :, :collar] = 0
                lab[:, :collar] = 0
            win = Window(0, r0, size, r1 - r0)
            di.write(data, window=win)
            dl.write(lab[None], window=win)
    meta = {
        "image": os.path.basename(img_path), "labels": os.path.basename(lab_path),
        "size": size, "render_size": rs, "seed": seed, "gsd_m": gsd, "crs": UTM_CRS,
        "nodata_collar_px": collar,
        "objects": [{"id": o.index + 1, "category": o.category, "colour": o.colour,
                     "area_px": int(o.area * (size / rs) ** 2)} for o in scene.objects],
        "expressions": [{"text": e.text, "object": e.targets[0] + 1, "kind": e.kind} for e in chosen],
    }
    with atomic_open(os.path.join(out_dir, f"{name}.json")) as fh:
        fh.write(json_text(meta, indent=2))
        fh.write("\n")
    return meta
