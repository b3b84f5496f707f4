"""``SceneOptions.pixel_ratio="auto"``: read a scene at the ground resolution the model was trained at.

Objects must reach the model at the size it learnt them. A model trained by ``rrsis train``
records its training images' ground sampling distance per model pixel (``backbone.gsd``, metres)
when they were georeferenced in metres, and their image pixels per model pixel
(``backbone.image_ratio``) in any case (:mod:`rrsis.data.training_scale`). With a recorded GSD
and a scene in a projected CRS in metres, ``pixel_ratio`` is the model's GSD over the scene's
pixel size (a 0.25 m scene for a model trained at 0.5 m per model pixel: 2); a scene coarser
than that is read at its own resolution (1) with a warning. Otherwise ``pixel_ratio`` is 1, as
before, with a hint when the model saw its training images resized.
"""

from __future__ import annotations

import logging
import math
import sys
import warnings
from typing import Any

__all__ = ["auto_is_one", "auto_pixel_ratio", "print_notes", "scene_pixel_size"]

logger = logging.getLogger(__name__)
_said: list[str] = []  # the last note: one per scene, not one per mode or expression


def scene_pixel_size(scene: Any) -> float | None:
    """The side of a scene pixel on the ground in metres (the square root of its area, rotated or
    not) when its CRS is projected with a linear unit; ``None`` otherwise."""
    crs, t = getattr(scene, "crs", None), getattr(scene, "transform", None)
    if crs is None or t is None or t.is_identity or not crs.is_projected:
        return None
    units = crs.linear_units_factor if crs.linear_units_factor else None
    if units is None or not units[1] or units[1] <= 0:
        return None
    size = math.sqrt(abs(t.a * t.e - t.b * t.d)) * units[1]  # a rotated grid's pixels have the same area
    return size if size > 0 else None


def _recorded(model: Any, key: str) -> float | None:
    value = ((getattr(model, "config", None) or {}).get("backbone") or {}).get(key)
    return None if value is None else float(value)


def auto_is_one(model: Any) -> bool:
    """Whether ``pixel_ratio="auto"`` is 1 on every scene for ``model``: it records no ground
    sampling distance (``backbone.gsd``), as every model saved before rrsis recorded one."""
    return _recorded(model, "gsd") is None


def _say(text: str, say: bool = True) -> None:
    if say and _said != [text]:
        _said[:] = [text]
        logger.info(text)


def auto_pixel_ratio(model: Any, scene: Any, *, say: bool = True) -> float:
    """``pixel_ratio`` for ``scene`` under ``model``: its recorded ground sampling distance
    (``backbone.gsd``) over the scene's pixel size (:func:`scene_pixel_size`), at least 1 (a
    coarser scene warns); 1.0 without either. The choice and its reason are logged (INFO, logger
    ``rrsis.scene.gsd``) once per scene; without a recorded GSD, a model whose training images
    were resized (``backbone.image_ratio`` other than 1) logs a hint to pass ``pixel_ratio``, and
    one whose images were not says nothing above DEBUG (1, as before the GSD was recorded)
    (``say=False``: nothing logged, and no warning, for a check that reads no pixel)."""
    name = getattr(scene, "name", "the scene")
    gsd, ratio = _recorded(model, "gsd"), _recorded(model, "image_ratio")
    size = None if scene is None else scene_pixel_size(scene)
    if gsd is None:
        why = "the model records no training ground resolution" if size is not None else \
            "the model records no training ground resolution and the scene has no metric pixel size" \
            if scene is not None else "no scene"
        hint = "" if ratio is None or abs(ratio - 1.0) < 1e-6 else (
            f"; this model saw its training images at {ratio:g} image pixels per model pixel: if your scene has "
            f"their ground resolution, pass --pixel-ratio {ratio:g} (pixel_ratio={ratio:g})") if ratio > 1 else (
            f"; this model saw its training images enlarged {1 / ratio:.3g}x ({ratio:g} image pixels per model "
            "pixel), and a scene is read at most at its own resolution (pixel_ratio >= 1), so a scene of their "
            f"ground resolution shows it objects {1 / ratio:.3g}x smaller than it learnt them; a model trained "
            "with data.image_size at its images' size reads such scenes as it learnt them")
        if hint:  # else nothing to tell: every model saved before the GSD was recorded reads at 1, as ever
            _say(f"{name}: pixel_ratio 1 ({why}){hint}", say)
        else:
            logger.debug("%s: pixel_ratio 1 (%s)", name, why)
        return 1.0
    if size is None:
        _say(f"{name}: pixel_ratio 1 (the scene has no pixel size in metres, a projected CRS with a linear unit; "
             f"the model was trained at {gsd:g} m per model pixel: pass pixel_ratio for the scene's resolution)", say)
        return 1.0
    exact = gsd / size
    if exact < 1.0 - 1e-6:
        if say:
            warnings.warn(f"{name}: the scene ({size:g} m pixels) is coarser than the model's training data ({gsd:g} m "
                          "per model pixel), so its objects look smaller than the model learnt them; it is read at its "
                          "own resolution (pixel_ratio 1)", UserWarning, stacklevel=4)
        _say(f"{name}: pixel_ratio 1 ({size:g} m scene, model trained at {gsd:g} m per model pixel: coarser)", say)
        return 1.0
    value = max(1.0, round(exact, 4))
    _say(f"{name}: {size:g} m scene, model trained at {gsd:g} m per model pixel: pixel_ratio {value:g}", say)
    return value


class _Printed(logging.Handler):
    """Each note on the current ``sys.stderr`` (a command's output), after ``prefix``."""

    def __init__(self, prefix: str) -> None:
        super().__init__(logging.INFO)
        self.prefix = prefix

    def emit(self, record: logging.LogRecord) -> None:
        print(f"{self.prefix}: note: {record.getMessage()}", file=sys.stderr)


def print_notes(prefix: str) -> None:
    """Print the pixel_ratio notes of this process on stderr (``rrsis predict``, ``rrsis evaluate
    --scene``), ``prefix`` first; once, however often it is called."""
    for h in list(logger.handlers):
        if isinstance(h, _Printed):
            logger.removeHandler(h)
    logger.addHandler(_Printed(prefix))
    logger.setLevel(logging.INFO)
    _said.clear()
