"""What :func:`~rrsis.scene.evaluate.evaluate_scene` measured: per expression, per mode, per scene.

One scene's record is the one ``rrsis`` 0.2.0 wrote: a many-scene evaluation adds two members
(``scenes``, the per-scene breakdown, and each expression's ``scene``) that a one-scene record
does not hold, so a one-scene JSON file keeps its exact form and an older file reads as before.
The pooled scores count every (scene, expression) query once: mIoU is their mean IoU, oIoU
their summed intersection over their summed union, P@0.5 the share with IoU >= 0.5.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from .._atomic import atomic_open, json_text
from .._version import __version__
from .region.sources import scene_id

__all__ = ["ExpressionScore", "ModeScore", "SceneEvaluation", "SceneScore", "pool", "score"]


@dataclass(frozen=True)
class ExpressionScore:
    """One expression under one mode.

    Attributes:
        text: the expression (its first spelling in the labels file).
        iou: ``intersection_px / union_px``.
        intersection_px, union_px, predicted_px, true_px: pixel counts on the mask's grid.
        predicted_area, true_area: the same areas in the scene's area unit
            (:attr:`SceneScore.area_unit`; one scene: :attr:`SceneEvaluation.area_unit`).
        features: the labelled features whose union is the target (with an area of interest: those
            with a part inside it).
        files: with ``keep_predictions``, the files ``segment_scene`` wrote for it (else empty).
        scene: in a many-scene evaluation, the id of the scene asked (:attr:`SceneScore.id`);
            ``None`` for one scene.
    """

    text: str
    iou: float
    intersection_px: int
    union_px: int
    predicted_px: int
    true_px: int
    predicted_area: float
    true_area: float
    features: int
    files: dict[str, str] = field(default_factory=dict)
    scene: str | None = None


@dataclass(frozen=True)
class ModeScore:
    """One mode over every expression (of one scene, or pooled over the scenes).

    Attributes:
        mode: the mode asked for (``auto``, ``naive``, ...).
        ran: what ran (``auto`` resolved; ``naive``: ``tiles``); pooled over scenes where
            ``auto`` resolved differently, the modes that ran joined by ``+``.
        miou: mean IoU over the expressions.
        oiou: cumulative intersection over cumulative union.
        precision_at_05: share of expressions with IoU >= 0.5.
        seconds: the time the mode took to answer: the wall time of its ``segment_scene`` calls
            (every expression) less their writing of the files (the mask, polygons and overlay;
            :attr:`~rrsis.scene.api.SceneResult.write_seconds`): reading, the model and the
            mode's choosing (records of rrsis 0.2.0 counted the writing too).
        expressions: one :class:`ExpressionScore` per expression (pooled: per scene and expression).
    """

    mode: str
    ran: str
    miou: float
    oiou: float
    precision_at_05: float
    seconds: float
    expressions: list[ExpressionScore]


@dataclass(frozen=True)
class SceneScore:
    """One scene of a many-scene evaluation.

    Attributes:
        id: the scene's id (its file name without extension, as ``rrsis predict`` names a
            region's folders).
        scene: its path or URL.
        labels: the vector file its truth was read from.
        area_unit: ``"m²"``: the planar pixel area where the CRS keeps it, else each piece
            measured on the ellipsoid, as ``rrsis predict`` measures (``"px"`` in older records).
        modes: one :class:`ModeScore` per mode over this scene's expressions.
        skipped: as :attr:`SceneEvaluation.skipped`, on this scene.
        pixel_ratio: the scene pixels per model pixel the scene was read at (``pixel_ratio="auto"``
            resolved on it); ``None`` in records written before it.
    """

    id: str
    scene: str
    labels: str
    area_unit: str
    modes: list[ModeScore]
    skipped: dict[str, int]
    pixel_ratio: float | None = None


@dataclass(frozen=True)
class SceneEvaluation:
    """What :func:`~rrsis.scene.evaluate.evaluate_scene` measured; :meth:`write_json` /
    :meth:`read_json` round-trip it.

    Attributes:
        scene, labels: the files scored (many scenes: the scenes and the labels as given).
        text_field, layer: where the expressions were read.
        model: the model (its path or Hub id when given as one, else its architecture).
        area_unit: ``"m²"``, in any CRS (an EPSG:4326 or Web Mercator scene's areas measured on
            the ellipsoid, as ``rrsis predict`` gives them); records written before it may hold
            ``"px"`` (areas in scene pixels) or ``"mixed"`` (each scene's in :attr:`scenes`).
        modes: one :class:`ModeScore` per mode, in the order run (many scenes: pooled).
        options: the options every mode ran with (threshold, pixel_ratio, aoi, ...); with
            ``pixel_ratio="auto"``, the number it was on the scenes when they all agree (else
            ``"auto"``, and each scene's number in :attr:`scenes`).
        skipped: features or expressions left out, by reason: ``no_text``, ``no_area`` (no
            polygonal geometry), ``outside_aoi`` (expressions whose target lies outside the area
            of interest), ``no_pixel`` (expressions whose target covers no valid pixel centre);
            many scenes: summed over them, and ``scenes``: scenes with no expression to ask.
        scenes: many scenes: one :class:`SceneScore` per scene asked; ``None`` for one scene.
        rrsis_version: the version that measured it.
        model_sha256: the weights scored (:func:`~rrsis.scene.outputs.model_fingerprint`, as the
            outputs of ``rrsis predict`` record it); ``None`` in records written before it.
    """

    scene: str
    labels: str
    text_field: str
    layer: str | None
    model: str
    area_unit: str
    modes: list[ModeScore]
    options: dict[str, Any]
    skipped: dict[str, int]
    rrsis_version: str = __version__
    scenes: list[SceneScore] | None = None
    model_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-able data; a one-scene record has the members 0.2.0 wrote, no more."""
        d = dataclasses.asdict(self)
        if d["scenes"] is None:
            del d["scenes"]
        if d["model_sha256"] is None:  # records written before it
            del d["model_sha256"]
        for mode in [*d["modes"], *(m for s in d.get("scenes") or [] for m in s["modes"])]:
            for e in mode["expressions"]:
                if e["scene"] is None:
                    del e["scene"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SceneEvaluation:
        scenes = d.get("scenes")
        if scenes is not None:
            scenes = [SceneScore(**{**s, "modes": _modes(s["modes"])}) for s in scenes]
        return cls(**{**d, "modes": _modes(d["modes"]), "scenes": scenes})

    def write_json(self, path: str | os.PathLike) -> None:
        """Write the record atomically (complete or not at all)."""
        with atomic_open(path) as fh:
            fh.write(json_text(self.to_dict(), indent=1, allow_nan=False))
            fh.write("\n")

    @classmethod
    def read_json(cls, path: str | os.PathLike) -> SceneEvaluation:
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))

    def table(self) -> str:
        """One row per mode: mIoU, oIoU, P@0.5 (percent), expressions and seconds (pooled over
        the scenes)."""
        return _table([("mode", "ran"), *((m.mode, m.ran) for m in self.modes)], self.modes)

    def scene_table(self) -> str:
        """One row per scene and mode, as :meth:`table`'s (one scene: its rows, named by its id)."""
        scenes = self.scenes if self.scenes is not None else [
            SceneScore(scene_id(self.scene), self.scene, self.labels, self.area_unit, self.modes, self.skipped)]
        modes = [m for s in scenes for m in s.modes]
        return _table([("scene", "mode", "ran"), *((s.id, m.mode, m.ran) for s in scenes for m in s.modes)], modes)


def _modes(items: list[dict[str, Any]]) -> list[ModeScore]:
    return [ModeScore(**{**m, "expressions": [ExpressionScore(**e) for e in m["expressions"]]}) for m in items]


def _table(names: list[tuple[str, ...]], modes: list[ModeScore]) -> str:
    k = len(names[0])
    rows = [(*names[0], "mIoU", "oIoU", "P@0.5", "expressions", "seconds")]
    rows += [(*n, f"{100 * m.miou:.2f}", f"{100 * m.oiou:.2f}", f"{100 * m.precision_at_05:.2f}",
              str(len(m.expressions)), f"{m.seconds:.1f}") for n, m in zip(names[1:], modes, strict=True)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i < k else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in rows)


def score(mode: str, ran: str, seconds: float, rows: list[ExpressionScore]) -> ModeScore:
    """The :class:`ModeScore` of ``rows``: their mean IoU, summed intersection over summed union,
    and share with IoU >= 0.5."""
    n = len(rows)
    union = sum(r.union_px for r in rows)
    return ModeScore(mode=mode, ran=ran, miou=sum(r.iou for r in rows) / n if n else 0.0,
                     oiou=sum(r.intersection_px for r in rows) / union if union else 0.0,
                     precision_at_05=sum(r.iou >= 0.5 for r in rows) / n if n else 0.0, seconds=seconds,
                     expressions=rows)


def pool(scenes: list[SceneScore]) -> list[ModeScore]:
    """Each mode scored over every scene's expressions (the scenes' modes are in one order)."""
    out = []
    for k, first in enumerate(scenes[0].modes):
        per = [s.modes[k] for s in scenes]
        ran = list(dict.fromkeys(m.ran for m in per))
        out.append(score(first.mode, "+".join(ran), sum(m.seconds for m in per),
                         [e for m in per for e in m.expressions]))
    return out
