"""The value range a raster scene maps to [0, 1]: a value scaling (``scale``, with
:func:`rrsis.data.read_image`'s meaning) or a percentile stretch, each from a decimated read of the
scene's valid pixels (:data:`STATS_SIDE` pixels along its longer side). ``scene`` is a
:class:`~rrsis.scene.read.Scene` (this module is below it: the reader imports it)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..data.io import Scale

__all__ = ["DARK_BYTES", "STATS_SIDE", "DarkBytesWarning", "check_scale", "dark_bytes", "scale_range", "stats_shape",
           "stretch_range", "stretch_values"]

STATS_SIDE = 512
# 8-bit values all at most this, read as they are (no stretch), warn: the model sees black (1.2 %).
DARK_BYTES = 3


class DarkBytesWarning(UserWarning):
    """8-bit values read as they are all at or below :data:`DARK_BYTES`; its advice is a reader's
    (``scale=``, ``stretch=``): a caller with other ways out (``rrsis chips``) words its own."""


def scale_range(scene: Any, scale: Scale) -> list[tuple[float, float]]:
    """``scale`` with :func:`rrsis.data.read_image`'s meaning, as ``(low, high)`` per band;
    ``"max"``/``"minmax"`` statistics come from a decimated read of the valid pixels."""
    n = len(scene.bands)
    if isinstance(scale, str):
        if scale == "dtype":
            if np.dtype(scene.dtype).kind not in "ui":
                raise ValueError(f"{scene.name}: scale='dtype' needs integer data, got {scene.dtype}")
            return [(0.0, float(np.iinfo(scene.dtype).max))] * n
        if scale not in ("max", "minmax"):
            raise ValueError(f"unknown scale {scale!r}; use None, 'dtype', 'max', 'minmax' or a number")
        data, valid = scene._read_raw(None, stats_shape(scene), decimate=True)
        v = data[:, valid]
        v = v[np.isfinite(v)] if v.dtype.kind == "f" else v.ravel()
        lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)
        lo = 0.0 if scale == "max" else lo
        return [_bounded(scene, lo, hi, f"scale={scale!r}")] * n
    divisor = float(scale)
    if divisor <= 0:
        raise ValueError(f"scale divisor must be positive, got {scale!r}")
    return [(0.0, divisor)] * n


def stats_shape(scene: Any) -> tuple[int, int]:
    """The shape of the decimated read the statistics take: at most STATS_SIDE pixels a side."""
    f = min(1.0, STATS_SIDE / max(scene.height, scene.width))
    return max(1, round(scene.height * f)), max(1, round(scene.width * f))


def stretch_range(scene: Any, stretch: Any) -> list[tuple[float, float]] | None:
    """``stretch`` (``"auto"``, ``None`` or ``(low, high)`` percentiles) as ``(low, high)`` per band:
    8-bit as is, other integer types their type's range, float values in [0, 1] as they are (as
    :func:`rrsis.data.read_image` reads them), percentiles of the valid pixels band by band."""
    if stretch == "auto":
        stretch = None if scene.dtype == "uint8" else (2.0, 98.0)
    if stretch is None or stretch is False:
        if scene.dtype == "uint8":
            _warn_dark_bytes(scene)
            return [(0.0, 255.0)] * len(scene.bands)
        if np.dtype(scene.dtype).kind in "ui":
            info = np.iinfo(scene.dtype)
            return [(float(info.min), float(info.max))] * len(scene.bands)
        return [_unit_range(scene)] * len(scene.bands)
    lo, hi = percentiles(stretch)
    data, valid = scene._read_raw(None, stats_shape(scene), decimate=True)
    out = []
    for b in range(data.shape[0]):
        v = data[b][valid]
        v = v[np.isfinite(v)] if v.dtype.kind == "f" else v
        if v.size == 0:
            out.append((0.0, 1.0))
            continue
        a, z = np.percentile(v, [lo, hi])
        out.append(_bounded(scene, float(a), float(z), f"the {lo:g}-{hi:g} percentile stretch of band {scene.bands[b]}"))
    return out


F32_MAX = float(np.finfo(np.float32).max)


def _bounded(scene: Any, lo: float, hi: float, what: str) -> tuple[float, float]:
    """``(lo, hi)`` mapped to [0, 1], ``hi`` above ``lo`` (a constant band: 1 above, or one step
    where 1 is below float64's resolution); a ``ValueError`` when either lies beyond float32's range,
    in which the model computes (a fill value not declared nodata: 1e308 overflowed the arithmetic)."""
    if max(abs(lo), abs(hi)) > F32_MAX:
        raise ValueError(f"{scene.name}: {what} spans [{lo:.4g}, {hi:.4g}], beyond float32's range (±{F32_MAX:.3g}) "
                         f"in which rrsis computes: fill values not declared as nodata? Declare them as the raster's "
                         "nodata (gdal_edit.py -a_nodata VALUE) or rescale the data")
    return lo, hi if hi > lo else max(lo + 1.0, float(np.nextafter(lo, np.inf)))


def dark_bytes(scene: Any) -> tuple[int, int] | None:
    """The ``(min, max)`` of an 8-bit scene's values (a decimated read of its valid pixels) when they
    all lie at or below :data:`DARK_BYTES` (a 0/1 or class layer, black when read as it is); else ``None``."""
    if scene.dtype != "uint8":
        return None
    data, valid = scene._read_raw(None, stats_shape(scene), decimate=True)
    v = data[:, valid]
    return (int(v.min()), int(v.max())) if v.size and int(v.max()) <= DARK_BYTES else None


def _warn_dark_bytes(scene: Any) -> None:
    """Warn (:class:`DarkBytesWarning`) when 8-bit values read as they are all lie at or below
    :data:`DARK_BYTES`: the model sees a black image and finds nothing, silently otherwise."""
    if (span := dark_bytes(scene)) is not None:
        warnings.warn(f"{scene.name}: its 8-bit values span only {span[0]}-{span[1]} of 0-255, read as they "
                      "are: the model sees a black image. A 0/1 or class layer needs a value scaling, scale='max' "
                      "(--scale max), or a stretch, stretch=(2, 98) (--stretch 2,98)", DarkBytesWarning, stacklevel=4)


def _unit_range(scene: Any) -> tuple[float, float]:
    """Float data read as they are (no stretch): ``(0, 1)`` when the valid values of a decimated read
    lie in [0, 1] (reflectance), else a ``ValueError`` naming the stretch and the scale to give."""
    data, valid = scene._read_raw(None, stats_shape(scene), decimate=True)
    v = data[:, valid]
    v = v[np.isfinite(v)]
    if v.size and (v.min() < 0 or v.max() > 1):
        raise ValueError(f"{scene.name}: {scene.dtype} values span [{v.min():.4g}, {v.max():.4g}], beyond the [0, 1] "
                         "that stretch=None (--stretch none) reads as is: give a percentile stretch, stretch=(2, 98) "
                         "(--stretch 2,98), or a value scaling, scale='max', 'minmax' or a divisor (--scale max, "
                         "--scale 10000)")
    return 0.0, 1.0


def percentiles(stretch: Any) -> tuple[float, float]:
    """``(low, high)`` stretch percentiles, checked."""
    lo, hi = (float(v) for v in stretch)
    if not 0 <= lo < hi <= 100:
        raise ValueError(f"stretch percentiles must satisfy 0 <= low < high <= 100, got {stretch}")
    return lo, hi


def stretch_values(arr: np.ndarray, stretch: Any, nodata: np.ndarray | None = None,
                   name: str = "image") -> np.ndarray:
    """An in-memory image's ``[H, W, C]`` values stretched as a raster's are (:func:`stretch_range`
    then the reader's clip): band by band from the ``(low, high)`` percentiles of its valid,
    finite pixels to [0, 1], clipped; ``nodata`` (bool ``[H, W]``) and non-finite pixels 0."""
    lo, hi = percentiles(stretch)
    x = arr.astype(np.float64)
    valid = np.isfinite(x).all(axis=2) if x.dtype.kind == "f" else np.ones(x.shape[:2], bool)
    if nodata is not None:
        valid &= ~np.asarray(nodata, bool)
    if not valid.any():
        raise ValueError(f"{name}: every pixel is nodata (transparent, NaN or infinite)")
    out = np.zeros(x.shape, np.float32)
    for b in range(x.shape[2]):
        a, z = np.percentile(x[:, :, b][valid], [lo, hi])
        z = z if z > a else a + 1.0
        out[:, :, b] = np.clip(np.nan_to_num((x[:, :, b] - a) / (z - a), nan=0.0, posinf=0.0, neginf=0.0), 0, 1)
    out[~valid] = 0
    return out


def check_scale(scene: Any, scale: Scale) -> Any:
    """Refuse a divisor that leaves the pixels far above 1: before 0.2 a scene's ``scale`` was
    the tiled pass's pixel ratio (1–16), which as a divisor would feed the model nonsense."""
    if not isinstance(scale, (int, float)) or isinstance(scale, bool):
        return scene
    if scene.in_memory:
        top = float(np.max(scene._array)) if scene._array.size else 0.0  # already scaled
    else:
        data, valid = scene._read_raw(None, stats_shape(scene), decimate=True)
        v = data[:, valid]
        v = v[np.isfinite(v)] if v.dtype.kind == "f" else v
        top = float(v.max()) / float(scale) if v.size else 0.0
    if top > 4.0:
        scene.close()
        raise ValueError(f"{scene.name}: scale={scale!r} maps pixel values up to {top:.3g}; scale is value "
                         "scaling (as in model.predict: 'dtype', 'max', 'minmax' or a divisor near the "
                         "data's maximum), the scene pixels per model pixel are pixel_ratio (--pixel-ratio)")
    return scene
