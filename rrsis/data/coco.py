"""COCO segmentations (polygons, RLE) to binary masks and back, with or without pycocotools.

The numpy path needs nothing beyond numpy. Its polygon rule is "a pixel belongs to the polygon
when its centre lies inside (even-odd)". That rule agrees with pycocotools exactly on polygons whose
vertices sit on pixel corners and whose edges are axis-aligned, which is what
:func:`mask_to_polygons` writes. On oblique edges the two can disagree on boundary pixels, because
pycocotools snaps vertices to a 1/5-pixel grid first. ``PIL.ImageDraw`` is not used: its
fill-and-outline rule disagrees with pycocotools on far more boundary pixels than the centre rule.
So backend ``"auto"`` without pycocotools (the optional ``coco`` extra) logs a warning, once, the first
time it rasterises polygons: RRSIS-D's published numbers were computed on pycocotools' masks.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .coco_checks import (
    MAX_MASK_SIDE,
    check_coordinates,
    check_segmentation,
    checked_parts,
    checked_rle,
    rle_counts_from_string,
)

__all__ = [
    "MAX_MASK_SIDE",
    "check_segmentation",
    "decode_segmentation",
    "have_pycocotools",
    "mask_to_polygons",
    "polygon_to_mask",
    "resolve_backend",
    "rle_counts_from_string",
    "rle_counts_to_string",
    "rle_decode",
    "rle_encode",
    "warn_polygon_fallback",
]

logger = logging.getLogger(__name__)
_BACKENDS = ("auto", "numpy", "pycocotools")
_fallback_warned = False

Segmentation = list[list[float]] | dict[str, Any] | list[dict[str, Any]]


def have_pycocotools() -> bool:
    """Whether ``pycocotools`` (the optional ``coco`` extra) can be imported."""
    try:
        import pycocotools.mask  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str) -> str:
    """The decoder ``backend`` stands for: ``"pycocotools"`` or ``"numpy"`` (``"auto"``:
    pycocotools when installed, else numpy)."""
    if backend not in _BACKENDS:
        raise ValueError(f"unknown COCO backend {backend!r}; use 'auto', 'numpy' or 'pycocotools'")
    if backend == "auto":
        return "pycocotools" if have_pycocotools() else "numpy"
    return backend


def warn_polygon_fallback() -> None:
    """Log, once per process, that COCO polygons are rasterised without pycocotools (backend
    ``"auto"`` with the ``coco`` extra missing), so their masks differ from the official ones."""
    global _fallback_warned
    if _fallback_warned:
        return
    _fallback_warned = True
    logger.warning(
        "pycocotools is not installed: COCO polygon masks are rasterised by rrsis' numpy rule, whose "
        "boundary pixels differ from pycocotools' (the masks of RRSIS-D's published numbers), so scores "
        "are not comparable with published ones; pip install \"rrsis[coco]\" for those "
        "(coco_backend='numpy' chooses this rule without the warning)")


# --------------------------------------------------------------------------------------------
# RLE
# --------------------------------------------------------------------------------------------


def rle_counts_to_string(counts: Sequence[int]) -> str:
    """Encode run lengths as the compressed COCO RLE string (inverse of :func:`rle_counts_from_string`).

    Args:
        counts: run lengths, starting with the run of zeros.
    """
    out = []
    for i, run in enumerate(counts):
        value = int(run) - (int(counts[i - 2]) if i > 2 else 0)
        while True:
            group = value & 0x1F
            value >>= 5
            # Stop once the remaining bits are pure sign extension of this group's top bit.
            more = value != (-1 if group & 0x10 else 0)
            out.append(chr(48 + (group | (0x20 if more else 0))))
            if not more:
                break
    return "".join(out)


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """Decode one COCO RLE (compressed string or uncompressed list) to a mask.

    Args:
        rle: ``{"size": [h, w], "counts": str | bytes | list[int]}``; runs are column-major and
            start with zeros.

    Returns:
        bool array ``[h, w]``.
    """
    (h, w), runs = checked_rle(rle)
    values = (np.arange(len(runs)) % 2).astype(bool)
    flat = np.repeat(values, runs)
    return flat.reshape(w, h).T.copy()


def rle_encode(mask: np.ndarray, compressed: bool = True) -> dict[str, Any]:
    """Encode a mask as COCO RLE.

    Args:
        mask: ``[h, w]``, nonzero = foreground.
        compressed: write ``counts`` as the compressed string (else a list of run lengths).
    """
    mask = np.asarray(mask).astype(bool)
    h, w = mask.shape
    flat = mask.flatten(order="F")
    if flat.size == 0:
        runs: list[int] = [0]
    else:
        edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        bounds = np.concatenate([[0], edges, [flat.size]])
        runs = np.diff(bounds).tolist()
        if flat[0]:
            runs = [0] + runs
    counts: str | list[int] = rle_counts_to_string(runs) if compressed else runs
    return {"size": [h, w], "counts": counts}


# --------------------------------------------------------------------------------------------
# Polygons
# --------------------------------------------------------------------------------------------


def polygon_to_mask(polygon: Sequence[float], height: int, width: int) -> np.ndarray:
    """Rasterise one polygon: pixels whose centre is inside (even-odd rule).

    Args:
        polygon: flat ``[x0, y0, x1, y1, ...]`` in pixel units, (0, 0) the top-left image corner.
        height, width: output size.

    Returns:
        bool array ``[height, width]``.
    """
    coords = np.asarray(polygon, dtype=np.float64).reshape(-1)
    if coords.size % 2:
        raise ValueError(f"polygon has an odd number of coordinates ({coords.size})")
    check_coordinates(coords, height, width)
    mask = np.zeros((height, width), dtype=bool)
    if coords.size < 6 or height == 0 or width == 0:
        return mask
    x0, y0 = coords[0::2], coords[1::2]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    r_lo = max(int(np.floor(y0.min() - 0.5)), 0)
    r_hi = min(int(np.ceil(y0.max() - 0.5)) + 1, height)
    if r_lo >= r_hi:
        return mask
    yc = np.arange(r_lo, r_hi, dtype=np.float64)[:, None] + 0.5  # [R, 1]
    crosses = (y0 <= yc) != (y1 <= yc)  # [R, E]
    with np.errstate(divide="ignore", invalid="ignore"):
        xs = x0 + (yc - y0) * (x1 - x0) / (y1 - y0)
    xs = np.where(crosses, xs, np.inf)
    xs.sort(axis=1)
    n_pairs = int(crosses.sum(axis=1).max()) // 2
    if n_pairs == 0:
        return mask
    starts = xs[:, 0 : 2 * n_pairs : 2]
    ends = xs[:, 1 : 2 * n_pairs : 2]
    # Pixel c is inside a span [a, b) when its centre c + 0.5 is; ceil(v - 0.5) is the first such c.
    valid = np.isfinite(ends)
    c0 = np.clip(np.ceil(np.where(valid, starts, 0) - 0.5), 0, width).astype(np.int64)
    c1 = np.clip(np.ceil(np.where(valid, ends, 0) - 0.5), 0, width).astype(np.int64)
    diff = np.zeros((r_hi - r_lo, width + 1), dtype=np.int32)
    rows = np.broadcast_to(np.arange(r_hi - r_lo)[:, None], c0.shape)
    keep = valid & (c1 > c0)
    np.add.at(diff, (rows[keep], c0[keep]), 1)
    np.add.at(diff, (rows[keep], c1[keep]), -1)
    mask[r_lo:r_hi] = np.cumsum(diff[:, :width], axis=1) > 0
    return mask


_RIGHT_TURN_ORDER = {
    # heading -> candidate headings, preferring right turn, then straight, then left (screen
    # coordinates, y down); turning right keeps diagonal-only neighbours in separate loops.
    (1, 0): ((0, 1), (1, 0), (0, -1)),
    (0, 1): ((-1, 0), (0, 1), (1, 0)),
    (-1, 0): ((0, -1), (-1, 0), (0, 1)),
    (0, -1): ((1, 0), (0, -1), (-1, 0)),
}


def mask_to_polygons(mask: np.ndarray) -> list[list[float]] | None:
    """Trace a mask's outline along pixel edges into COCO polygons that rasterise back exactly.

    Args:
        mask: ``[h, w]``, nonzero = foreground.

    Returns:
        one flat ``[x0, y0, ...]`` polygon per 4-connected part, or ``None`` when the mask has a
        hole (COCO polygon lists are unioned, so holes need RLE). An empty mask gives ``[]``.
    """
    m = np.pad(np.asarray(mask).astype(bool), 1)
    edges: dict[tuple, list[tuple]] = {}

    def add(cond: np.ndarray, start: tuple, heading: tuple) -> None:
        rr, cc = np.nonzero(cond)
        for r, c in zip(rr.tolist(), cc.tolist()):
            s = (c + start[0], r + start[1])
            edges.setdefault(s, []).append(heading)

    inner = m[1:-1, 1:-1]
    # Walk with the foreground on the right (y down): top edges go +x, right edges +y, ...
    add(inner & ~m[:-2, 1:-1], (0, 0), (1, 0))
    add(inner & ~m[1:-1, 2:], (1, 0), (0, 1))
    add(inner & ~m[2:, 1:-1], (1, 1), (-1, 0))
    add(inner & ~m[1:-1, :-2], (0, 1), (0, -1))
    polygons: list[list[float]] = []
    for start in sorted(edges):
        while edges[start]:
            heading = edges[start].pop(0)
            loop = [start]
            v = (start[0] + heading[0], start[1] + heading[1])
            while v != start:
                options = edges[v]
                turn = next(h for h in _RIGHT_TURN_ORDER[heading] if h in options)
                options.remove(turn)
                if turn != heading:
                    loop.append(v)
                heading = turn
                v = (v[0] + heading[0], v[1] + heading[1])
            pts = np.asarray(loop, dtype=np.float64)
            x, y = pts[:, 0], pts[:, 1]
            if np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) < 0:
                return None  # a hole: traced with the opposite orientation
            polygons.append(pts.reshape(-1).tolist())
    return polygons


# --------------------------------------------------------------------------------------------
# Any COCO segmentation
# --------------------------------------------------------------------------------------------


def decode_segmentation(
    segmentation: Segmentation, height: int, width: int, backend: str = "auto"
) -> np.ndarray:
    """Decode a COCO ``segmentation`` (polygon list, RLE dict, or list of RLE dicts) to a mask.

    Args:
        segmentation: as stored in ``instances.json``; parts are unioned.
        height, width: the image size; an RLE of another size raises ``ValueError``.
        backend: ``"auto"`` (pycocotools when installed; without it, polygons log a warning once:
            see :func:`warn_polygon_fallback`), ``"pycocotools"`` or ``"numpy"``.

    Returns:
        bool array ``[height, width]``.
    """
    use = resolve_backend(backend)
    polys, rles = checked_parts(segmentation, height, width)
    if use == "pycocotools":
        return _decode_pycocotools(polys, rles, height, width)
    if polys and backend == "auto":
        warn_polygon_fallback()
    out = np.zeros((height, width), dtype=bool)
    for poly in polys:
        out |= polygon_to_mask(poly, height, width)
    for rle in rles:
        out |= rle_decode(rle)
    return out


def _decode_pycocotools(polys: list, rles: list, height: int, width: int) -> np.ndarray:
    from pycocotools import mask as cocomask

    with warnings.catch_warnings():
        # pycocotools 2.0.x warns about numpy 2's copy keyword on every decode.
        warnings.simplefilter("ignore", DeprecationWarning)
        return _decode_pycocotools_quiet(cocomask, polys, rles, height, width)


def _decode_pycocotools_quiet(cocomask, polys: list, rles: list, height: int,
                              width: int) -> np.ndarray:
    out = np.zeros((height, width), dtype=bool)
    if polys:
        out |= cocomask.decode(cocomask.merge(cocomask.frPyObjects(polys, height, width))) > 0
    for rle in rles:
        counts = rle["counts"]
        if isinstance(counts, list):
            rle = cocomask.frPyObjects(rle, height, width)
        elif isinstance(counts, str):
            rle = {"size": rle["size"], "counts": counts.encode("ascii")}
        out |= cocomask.decode(rle) > 0
    return out
