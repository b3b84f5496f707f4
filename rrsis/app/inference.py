"""The app's one way to compute results: :func:`run` (every prediction the page shows goes through it).

Today it calls ``model.predict`` on plain images (PNG, JPEG, non-georeferenced TIFF) in the
``global`` mode and writes a mask PNG and an overlay PNG per expression. Whole-scene inference
(GeoTIFF windows, ``tiles`` and ``global-local`` modes, mask GeoTIFF, GeoJSON, areas in m²) is a
separate API; when it lands, only this module changes: the page reads nothing but
:class:`Result` and :class:`InputError`.
"""

from __future__ import annotations

import os
import re
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import TiffImagePlugin

from ..engine.visualize import overlay, save_png
from ..models.base import load_image

__all__ = ["MODES", "InputError", "Result", "is_georeferenced", "run", "tiff_tags"]

# Offered by the page; the modes this implementation cannot run yet say so (InputError).
MODES = ("global", "tiles", "global-local")
_RUNNABLE_MODES = ("global",)

# TIFF tags that make a TIFF a GeoTIFF: ModelPixelScale, ModelTiepoint, ModelTransformation,
# GeoKeyDirectory.
_GEOTIFF_TAGS = (33550, 33922, 34264, 34735)

_SCENE_HINT = (
    'whole-scene inference (GeoTIFF, tiles, global-local, GeoJSON) needs pip install "rrsis[geo]" '
    "and is not wired into the app yet"
)


class InputError(ValueError):
    """A request the app cannot serve, with a message for the person who made it."""


@dataclass(frozen=True)
class Result:
    """What one expression produced.

    Args:
        text: the expression.
        overlay_png: the image with the mask filled and outlined.
        mask_png: the mask, 0/255, at the image's size.
        area_px: mask pixels.
        seconds: time this expression took (model and files).
        mask_tif: the mask as a GeoTIFF with the input's CRS and transform (georeferenced input).
        geojson: the mask's polygons (georeferenced input).
        area_m2: the mask's area in square metres (georeferenced input).
    """

    text: str
    overlay_png: Path
    mask_png: Path
    area_px: int
    seconds: float
    mask_tif: Path | None = None
    geojson: Path | None = None
    area_m2: float | None = None


def tiff_tags(path: str | os.PathLike) -> dict[int, object] | None:
    """The first image directory's tags of a TIFF (header only, any band count or bit depth), or
    None when ``path`` is not a TIFF."""
    try:
        with open(path, "rb") as fp:
            head = fp.read(8)
            if head[:4] not in TiffImagePlugin.PREFIXES:
                return None
            if head[2:4] in (b"+\x00", b"\x00+"):  # BigTIFF: a 16-byte header
                head += fp.read(8)
            ifd = TiffImagePlugin.ImageFileDirectory_v2(head)
            fp.seek(ifd.next)
            ifd.load(fp)
            return dict(ifd)
    except (OSError, ValueError, struct.error):
        return None


def is_georeferenced(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a TIFF carrying GeoTIFF georeferencing tags."""
    tags = tiff_tags(path)
    return tags is not None and any(t in tags for t in _GEOTIFF_TAGS)


def _slug(text: str, n: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:n].strip("-") or "expression"


def run(
    model,
    image_path: str | os.PathLike,
    texts: Sequence[str],
    *,
    mode: str = "global",
    threshold: float = 0.5,
    workdir: str | os.PathLike,
) -> list[Result]:
    """Segment what each expression names in one image; write its files into ``workdir``.

    Args:
        model: a loaded rrsis model (``predict``).
        image_path: the uploaded file.
        texts: one or more non-empty expressions.
        mode: one of :data:`MODES`.
        threshold: foreground-probability threshold, in (0, 1).
        workdir: an existing folder for this request's files.

    Returns:
        One :class:`Result` per expression, in order.

    Raises:
        InputError: a file, mode or expression this implementation cannot serve.
    """
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if is_georeferenced(image_path):
        raise InputError(f"this is a georeferenced GeoTIFF: {_SCENE_HINT}. Upload a PNG/JPEG "
                         "(or a plain TIFF) to use the global mode")
    if mode not in _RUNNABLE_MODES:
        raise InputError(f"mode {mode!r}: {_SCENE_HINT}; use the global mode")
    texts = [str(t) for t in texts]
    if not texts or any(not t.strip() for t in texts):
        raise InputError("every expression must be non-empty")
    try:
        image = load_image(image_path)
    except (ValueError, FileNotFoundError) as exc:
        raise InputError(str(exc).replace(f"image 0 ({image_path}): ", "")) from None
    workdir = Path(workdir)
    results = []
    for i, text in enumerate(texts, 1):
        t0 = time.perf_counter()
        mask = model.predict(image, text, threshold=threshold)[0]
        stem = workdir / f"{i:02d}_{_slug(text)}"
        mask_png = save_png(mask.astype(np.uint8) * 255, f"{stem}_mask.png")
        overlay_png = save_png(overlay(image, mask), f"{stem}_overlay.png")
        results.append(Result(text=text, overlay_png=overlay_png, mask_png=mask_png,
                              area_px=int(mask.sum()), seconds=time.perf_counter() - t0))
    return results
