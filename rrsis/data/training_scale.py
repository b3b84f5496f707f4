"""The scale at which a model saw its training images, from their headers alone.

A model learns objects at the size they have in its input. A dataset resizes every image to
``size`` (``data.image_size``), so an image of side ``s`` reaches the model at ``s / size`` image
pixels per model pixel; and when the images are georeferenced in a projected CRS in metres
(chips cut by ``rrsis chips``, a folder of GeoTIFFs), one model pixel covers ``pixel size × s /
size`` metres on the ground. ``rrsis train`` records both in the model
(``backbone.image_ratio``, ``backbone.gsd``), and whole-scene inference reads the scene at the
model's ground sampling distance (``SceneOptions.pixel_ratio="auto"``, :mod:`rrsis.scene.gsd`).

A value is recorded only when the images agree: every image within :data:`TOLERANCE` of the
median (and, for the GSD, every image georeferenced with square pixels in metres);
otherwise it is left unset with a logged note that says why.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Sequence
from typing import Any

from .headers import ImageHeader
from .transforms import Size, to_hw

__all__ = ["TOLERANCE", "ground_pixel_size", "training_scale"]

logger = logging.getLogger(__name__)

# Largest relative difference from the median at which images count as one scale (10 %).
TOLERANCE = 0.10


def ground_pixel_size(path: str | os.PathLike) -> float | None:
    """The side of a pixel of ``path`` on the ground in metres, from its georeference (a GeoTIFF's
    tags, a picture's world file and ``.aux.xml``), read by rasterio from the header (no pixel is
    decoded; the square root of a pixel's area); ``None`` when the file is not georeferenced in a
    projected CRS with a linear unit, its pixels are not square (within :data:`TOLERANCE`), or
    rasterio (the ``geo`` extra) is not installed."""
    try:
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
    except ImportError:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(os.fspath(path)) as ds:
                crs, t = ds.crs, ds.transform
    except (RasterioIOError, OSError, ValueError):
        return None
    if crs is None or t is None or t.is_identity or not crs.is_projected:
        return None
    units = crs.linear_units_factor if crs.linear_units_factor else None
    if units is None or not units[1] or units[1] <= 0:
        return None
    px, py = math.hypot(t.a, t.d) * units[1], math.hypot(t.b, t.e) * units[1]  # a pixel's two sides
    if not px or not py or abs(px - py) > TOLERANCE * max(px, py):
        return None
    return math.sqrt(abs(t.a * t.e - t.b * t.d)) * units[1]


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    return ordered[n // 2] if n % 2 else 0.5 * (ordered[n // 2 - 1] + ordered[n // 2])


def _agree(values: Sequence[float]) -> float | None:
    """The median of ``values`` when all lie within :data:`TOLERANCE` of it, else ``None``."""
    mid = _median(values)
    return mid if all(abs(v - mid) <= TOLERANCE * mid for v in values) else None


def training_scale(headers: Sequence[ImageHeader], size: Size, name: str = "dataset") -> dict[str, Any]:
    """``{"image_ratio": R, "gsd": G}`` of a dataset's images resized to ``size``: the median
    image pixels per model pixel and the median metres per model pixel, each ``None`` when not
    recorded (no images, images that disagree by more than :data:`TOLERANCE`, an image without a
    metric georeference; a note is logged where the images disagree).

    Args:
        headers: the images' headers (:class:`~rrsis.data.headers.ImageHeader`), one per image.
        size: the size the dataset resizes images to (``data.image_size``: an int or ``(h, w)``).
        name: what the logged notes call the images' dataset.
    """
    out: dict[str, Any] = {"image_ratio": None, "gsd": None}
    if not headers:
        return out
    sh, sw = to_hw(size)
    ratios = [math.sqrt(h.height / sh * h.width / sw) for h in headers]
    ratio = _agree(ratios)
    if ratio is None:
        logger.info("%s: the images reach the model at %.3g to %.3g image pixels per model pixel (more than %d %% "
                    "apart), so no training scale is recorded in the model", name, min(ratios), max(ratios),
                    round(TOLERANCE * 100))
        return out
    out["image_ratio"] = round(ratio, 6)
    gsds = []
    for h, r in zip(headers, ratios):
        px = ground_pixel_size(h.path)
        if px is None:  # one image without a metric georeference: no ground resolution to record
            return out
        gsds.append(px * r)
    gsd = _agree(gsds)
    if gsd is None:
        logger.info("%s: the images' ground sampling distance per model pixel ranges %.3g to %.3g m (more than "
                    "%d %% apart), so none is recorded in the model", name, min(gsds), max(gsds),
                    round(TOLERANCE * 100))
    else:
        out["gsd"] = round(gsd, 6)
    return out
