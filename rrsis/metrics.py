"""Referring-segmentation metrics: oIoU, mIoU and precision at IoU thresholds, streamed.

Per sample i with binary prediction P and ground truth G: I = |P ∩ G|, U = |P ∪ G|,
IoU = I / U. ``oIoU = ΣI / ΣU`` (favours large objects), ``mIoU`` = mean IoU, ``P@X`` = share of
samples with IoU >= X. When U = 0 (empty prediction on an empty target) IoU is ``empty_iou``:
0 as in RMSIN's ``test.py`` (the default), or 1 to count it as correct (gRefCOCO convention).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .data.transforms import resize_mask, to_hw

__all__ = ["DEFAULT_THRESHOLDS", "ReferringMetrics", "binarize", "format_metrics"]

DEFAULT_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def binarize(pred: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Turn predictions into a bool mask, resizing first when ``size`` differs.

    Args:
        pred: logits ``[B, 2, H, W]`` (argmax; resized bilinearly before it), one-channel logits
            ``[B, 1, H, W]`` (> 0), or a binary mask ``[B, H, W]`` (resized nearest).
        size: output ``(h, w)``; ``None`` keeps the prediction's size.

    Returns:
        bool ``[B, h, w]``.
    """
    if pred.dim() == 4:
        if pred.shape[1] not in (1, 2):
            raise ValueError(f"logits must have 1 or 2 channels, got shape {tuple(pred.shape)}")
        logits = pred.float()
        if size is not None and tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits.argmax(1).bool() if logits.shape[1] == 2 else logits[:, 0] > 0
    if pred.dim() != 3:
        raise ValueError(f"pred must be [B, H, W] or [B, C, H, W], got shape {tuple(pred.shape)}")
    mask = pred if pred.dtype == torch.bool else pred > 0.5
    return mask if size is None else resize_mask(mask, size)


class ReferringMetrics:
    """Accumulates per-sample intersection and union; :meth:`compute` gives the table's numbers.

    Args:
        resolution: ``"eval"`` compares at a fixed size, the ground truth resized nearest to it
            (the anchors' protocol: predictions and GT at 480×480); ``"native"`` resizes the
            prediction to each ground truth's own size.
        eval_size: the fixed size for ``"eval"``; ``None`` uses the prediction's size.
        empty_iou: IoU of a sample with U = 0 (both empty), in [0, 1]: 0.0 (RMSIN) or 1.0.
        thresholds: the P@X thresholds, compared with ``>=``.
    """

    def __init__(
        self,
        *,
        resolution: str = "eval",
        eval_size: int | Sequence[int] | None = None,
        empty_iou: float = 0.0,
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    ) -> None:
        if resolution not in ("eval", "native"):
            raise ValueError(f"resolution must be 'eval' or 'native', got {resolution!r}")
        self.resolution = resolution
        self.eval_size = None if eval_size is None else to_hw(eval_size)
        # An IoU: outside [0, 1] it would give scores above 100 % or below 0.
        if not 0.0 <= float(empty_iou) <= 1.0:
            raise ValueError(f"empty_iou must be in [0, 1] (0 as RMSIN, 1 as gRefCOCO), got {empty_iou!r}")
        self.empty_iou = float(empty_iou)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.reset()

    def reset(self) -> None:
        """Forget all samples."""
        self._inter: list[int] = []
        self._union: list[int] = []

    def update(self, pred: torch.Tensor, target: torch.Tensor | Sequence[Any]) -> None:
        """Add a batch.

        Args:
            pred: logits ``[B, 2, H, W]`` / ``[B, 1, H, W]`` or a binary mask ``[B, H, W]``.
            target: ground truth ``[B, H', W']`` (nonzero = foreground), or a list of B masks of
                different sizes (e.g. the datasets' ``native_mask``), tensors or arrays.
        """
        targets = [torch.as_tensor(np.asarray(t)) if not torch.is_tensor(t) else t for t in target]
        if len(targets) != pred.shape[0]:
            raise ValueError(f"{pred.shape[0]} predictions but {len(targets)} targets")
        if self.resolution == "eval":
            size = self.eval_size or tuple(pred.shape[-2:])
            p_all = binarize(pred, size)
            preds = list(p_all)
            targets = [resize_mask(t, size) for t in targets]
        else:
            preds = [binarize(p[None], tuple(t.shape[-2:]))[0] for p, t in zip(pred, targets)]
        for p, t in zip(preds, targets):
            g = t.to(p.device) != 0
            self._inter.append(int((p & g).sum()))
            self._union.append(int((p | g).sum()))

    def merge(self, other: ReferringMetrics) -> None:
        """Add another accumulator's samples (e.g. gathered from other processes)."""
        self._inter.extend(other._inter)
        self._union.extend(other._union)

    @property
    def intersections(self) -> np.ndarray:
        """Per-sample I, int64 ``[N]``."""
        return np.asarray(self._inter, dtype=np.int64)

    @property
    def unions(self) -> np.ndarray:
        """Per-sample U, int64 ``[N]``."""
        return np.asarray(self._union, dtype=np.int64)

    @property
    def ious(self) -> np.ndarray:
        """Per-sample IoU, float64 ``[N]`` (``empty_iou`` where U = 0)."""
        inter, union = self.intersections, self.unions
        out = np.full(inter.shape, self.empty_iou, dtype=np.float64)
        np.divide(inter, union, out=out, where=union > 0)
        return out

    def __len__(self) -> int:
        return len(self._inter)

    def compute(self) -> dict[str, float]:
        """``{"oIoU", "mIoU", "P@0.5", ..., "P@0.9", "n"}`` as fractions.

        Raises:
            ValueError: no sample was added (there is no score to report, and NaN would end up
                in JSON files and tables).
        """
        n = len(self)
        if n == 0:
            raise ValueError("no samples were scored: nothing to evaluate (an empty split, or every "
                             "sample skipped as malformed)")
        out: dict[str, float] = {}
        total_u = int(self.unions.sum())
        ious = self.ious
        out["oIoU"] = int(self.intersections.sum()) / total_u if total_u else self.empty_iou
        out["mIoU"] = float(ious.mean())
        out.update({_p_key(t): float((ious >= t).mean()) for t in self.thresholds})
        out["n"] = n
        return out


def _p_key(t: float) -> str:
    return f"P@{t:g}"


def format_metrics(
    results: Mapping[str, Any], title: str | None = None, percent: bool = True
) -> str:
    """Format :meth:`ReferringMetrics.compute` output as a text table.

    Args:
        results: one metrics dict (one row), or ``{row name: metrics dict}``.
        title: the name of a single row (e.g. ``"val"``).
        percent: show fractions as percentages.
    """
    if results and all(isinstance(v, Mapping) for v in results.values()):
        rows = dict(results)
    else:
        rows = {title or "": results}
    columns: list[str] = []
    for metrics in rows.values():
        columns += [k for k in metrics if k not in columns and k != "n"]
    if any("n" in m for m in rows.values()):
        columns.append("n")
    name_w = max([len(str(r)) for r in rows] + [0])

    def cell(key: str, value: Any) -> str:
        if value is None:
            return "-"
        if key == "n":
            return str(int(value))
        value = float(value)
        return "nan" if math.isnan(value) else f"{value * (100 if percent else 1):.2f}"

    table = [[cell(c, m.get(c)) for c in columns] for m in rows.values()]
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(columns)]
    lines = [" " * name_w + "  " + "  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    for name, row in zip(rows, table):
        lines.append(str(name).ljust(name_w) + "  " + "  ".join(v.rjust(w) for v, w in
                                                               zip(row, widths)))
    return "\n".join(line.rstrip() for line in lines)
