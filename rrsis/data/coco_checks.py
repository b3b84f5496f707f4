"""Checking COCO segmentations before they are rasterised: what an ``instances.json`` may hold.

A malformed or hostile annotation (a NaN or 1e308 coordinate, a run length of 10**10, a
4-number "polygon") is refused here with a message naming the problem, so the rasteriser is
never handed values that would overflow, allocate without bound, or silently drop a target.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["MAX_MASK_SIDE", "check_coordinates", "check_segmentation", "checked_parts", "checked_rle",
           "rle_counts_from_string"]

# The largest side an annotation's mask may have (RLE ``size``, or an image whose polygons are
# rasterised); larger sizes are refused before anything is allocated.
MAX_MASK_SIDE = 1 << 16


def rle_counts_from_string(s: str | bytes) -> list[int]:
    """Decode the compressed COCO RLE string into run lengths.

    Each run is a variable-length integer stored in 5-bit groups, least significant first, as
    characters offset by 48; bit 0x20 continues the number and bit 0x10 of the last group is the
    sign. From the fourth run on, the stored value is the difference to the run two places back.

    Args:
        s: the ``counts`` string (``str`` as in JSON files, ``bytes`` as pycocotools returns it).
    """
    data = s.encode("ascii") if isinstance(s, str) else bytes(s)
    counts: list[int] = []
    pos = 0
    while pos < len(data):
        value, shift = 0, 0
        while True:
            if pos >= len(data):
                raise ValueError("truncated compressed RLE string")
            c = data[pos] - 48
            if c < 0 or c > 63:
                raise ValueError(f"invalid character {chr(data[pos])!r} in compressed RLE")
            pos += 1
            value |= (c & 0x1F) << shift
            shift += 5
            if not c & 0x20:
                if c & 0x10:
                    value -= 1 << shift
                break
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def _rle_size(rle: Any) -> tuple[int, int]:
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError("an RLE must be a dict with 'size' and 'counts'")
    size = rle["size"]
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in size)):
        raise ValueError(f"an RLE 'size' must be [height, width] (two integers), got {size!r}")
    h, w = size
    if not (0 <= h <= MAX_MASK_SIDE and 0 <= w <= MAX_MASK_SIDE):
        raise ValueError(f"RLE size {[h, w]} is out of range: each side must be 0..{MAX_MASK_SIDE} "
                         "(rrsis.data.coco.MAX_MASK_SIDE)")
    return h, w


def checked_rle(rle: Any) -> tuple[tuple[int, int], np.ndarray]:
    """An RLE's ``(h, w)`` and run lengths, checked so that decoding cannot overflow or allocate
    more than its ``h·w`` pixels."""
    h, w = _rle_size(rle)
    counts = rle["counts"]
    if isinstance(counts, (str, bytes)):
        counts = rle_counts_from_string(counts)
    elif not isinstance(counts, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in counts):
        raise ValueError("RLE 'counts' must be a compressed string or a list of integers")
    if len(counts) > h * w + 1:
        raise ValueError(f"RLE has {len(counts)} runs, more than its {h}x{w} pixels allow")
    # Checked as Python integers: a count of 10**10 or 10**30 must not overflow first.
    if any(c < 0 for c in counts):
        raise ValueError("RLE has negative run lengths")
    total = sum(counts)
    if total != h * w:
        raise ValueError(f"RLE runs cover {total} pixels, but its size is {h}x{w}")
    return (h, w), np.asarray(counts, dtype=np.int64)


def check_coordinates(coords: np.ndarray, height: int, width: int) -> None:
    """Refuse coordinates no annotation of a ``height`` × ``width`` image has: not finite, or
    farther outside the image than its own size (the plausible range is ``[-w, 2w]`` for x and
    ``[-h, 2h]`` for y; the rasteriser clips to the image)."""
    if not (0 <= height <= MAX_MASK_SIDE and 0 <= width <= MAX_MASK_SIDE):
        raise ValueError(f"mask size {height}x{width} is out of range: each side must be 0..{MAX_MASK_SIDE}")
    if not np.isfinite(coords).all():
        raise ValueError("polygon has a coordinate that is not finite (NaN or infinity)")
    if coords.size:
        x, y = coords[0::2], coords[1::2]
        if x.min() < -width or x.max() > 2 * width or y.min() < -height or y.max() > 2 * height:
            raise ValueError(
                f"polygon coordinates reach x {x.min():g}..{x.max():g}, y {y.min():g}..{y.max():g}, far "
                f"outside the {width}x{height} image (allowed: x -{width}..{2 * width}, "
                f"y -{height}..{2 * height}); is the annotation for another image?")


def check_segmentation(segmentation: Any, height: int, width: int) -> None:
    """Check a COCO ``segmentation`` for an image of ``height`` × ``width`` without rasterising it.

    Everything :func:`decode_segmentation` would fail on, or would be sent to huge memory by,
    raises here: a wrong type, a polygon of fewer than 3 points, an odd coordinate count, a
    coordinate that is not a finite number near the image, an RLE of another size, negative or
    overflowing run lengths. Datasets call it for every annotation at construction.

    Raises:
        ValueError: what is wrong with which part.
    """
    checked_parts(segmentation, height, width)


def checked_parts(segmentation: Any, height: int, width: int) -> tuple[list, list]:
    """The checked polygons and RLEs of a segmentation."""
    if isinstance(segmentation, dict):
        parts: list[Any] = [segmentation]
    elif isinstance(segmentation, (list, tuple)):
        parts = list(segmentation)
    else:
        # Malformed annotation data is a ValueError like every other bad-input case here.
        raise ValueError(
            f"segmentation must be a list or a dict, not {type(segmentation).__name__}"
        )
    rles = [p for p in parts if isinstance(p, dict)]
    polys = [p for p in parts if not isinstance(p, dict)]
    for rle in rles:
        size = list(_rle_size(rle))
        if size != [height, width]:
            raise ValueError(f"RLE size {size} does not match the image size {[height, width]}")
        checked_rle(rle)
    for i, poly in enumerate(polys):
        if not isinstance(poly, (list, tuple)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in poly
        ):
            raise ValueError(f"polygon {i} must be a flat list of numbers [x0, y0, x1, y1, ...], "
                             f"got {str(poly)[:60]}")
        if len(poly) % 2:
            raise ValueError(f"polygon {i} has an odd number of coordinates ({len(poly)})")
        if len(poly) < 6:
            # pycocotools would read a 4-number list as a box; dropping it would leave an empty
            # ground truth without a word.
            raise ValueError(f"polygon {i} has {len(poly) // 2} point(s); a polygon needs at least 3 "
                             "(6 numbers). Fix the annotation, or store a box as a 4-point polygon")
        check_coordinates(np.asarray(poly, dtype=np.float64), height, width)
    return polys, rles
