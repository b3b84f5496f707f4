"""The near-infrared band of synthetic scenes: what tells a vegetated plot from a bare one and a
dry pond from a wet one when their R, G, B are alike (:data:`~.scene.NIR_STATES`)."""

from __future__ import annotations

import numpy as np

from .scene import Scene, _shift, _smooth_noise

__all__ = ["render_nir"]

# Near-infrared reflectance (0-255) of each surface: vegetation bright, water dark, a dry pond
# bed bright, bare soil and roofs in between (the shape of real spectra, not measured values).
_NIR = {
    "ground": 95.0, "road": 60.0, "water": 12.0,
    "building": 130.0, "storage tank": 150.0, "plane": 140.0, "ship": 110.0, "vehicle": 90.0,
    "sports court": 70.0, "vegetated": 215.0, "bare": 100.0, "dry": 180.0, "wet": 15.0,
}


def render_nir(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """The near-infrared band of a scene painted by :func:`~.scene.render`: each surface's reflectance
    (vegetation bright, water dark, a dry pond bed bright, soil and roofs in between), the same
    shadows, smooth variation and pixel noise.

    Args:
        scene: from :func:`~.scene.sample_scene` (``nir=True`` adds the plots and ponds).
        rng: random generator for textures (used after :func:`~.scene.render`'s draws).

    Returns:
        uint8 ``[S, S]``.
    """
    s = scene.size
    band = np.full((s, s), _NIR["ground"], dtype=np.float32) + _smooth_noise(rng, s, 24, 8.0)
    band[scene.road_mask] = _NIR["road"]
    if scene.water is not None:
        band[scene.water] = _NIR["water"]
    occupied = np.zeros((s, s), dtype=bool)
    for obj in scene.objects:
        occupied |= obj.mask
    shift = max(round(0.015 * s), 1)
    for obj in scene.objects:
        band[_shift(_shift(obj.mask, shift, 0), shift, 1) & ~occupied] *= 0.6
    for obj in scene.objects:
        level = _NIR[obj.state or obj.category] + float(rng.integers(-10, 11))
        band[obj.mask] = level
    band += rng.normal(0, 3.0, band.shape).astype(np.float32)
    return np.clip(np.rint(band), 0, 255).astype(np.uint8)
