"""The trainer's evaluation hooks: validation, the best and final models, log records, the plot."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from .checkpoint import atomic_save
from .distributed import all_gather_objects
from .evaluation import evaluate
from .logs import plot_history

__all__ = ["EvaluationHooksMixin"]

logger = logging.getLogger(__name__)


class EvaluationHooksMixin:
    """Validation and outputs of :class:`~rrsis.engine.Trainer` (which provides the attributes)."""

    def _save_model_dir(self, directory: Path, metrics: dict[str, Any] | None) -> Path:
        try:
            from ..hub import save_pretrained
        except ImportError:  # hub not available: a plain state file instead
            path = directory.with_suffix(".pt")
            atomic_save({"model": self.model.state_dict(), "metrics": metrics or {},
                         "config": getattr(self.model, "config", {})}, path)
            return path
        dataset = self.cfg["data"].get("dataset") if self.cfg["data"].get("root") else None
        clean = {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float))}
        return save_pretrained(self.model, directory, metrics=clean or None, dataset=dataset)

    def _plot(self) -> None:
        if not self.info.is_main:
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            plot_history(self.log.records(), self.output_dir / "training.png",
                         title=str(self.cfg.get("recipe") or ""))
        for w in caught:
            logger.warning("%s", w.message)

    def _record(self, record: dict[str, Any]) -> None:
        if self.run_name:
            record = {"run": self.run_name, **record}
        self.log.log(record)

    def validate(self) -> dict[str, Any] | None:
        """Score the validation set (all ranks take part); ``None`` without one."""
        if self.val_dataset is None:
            return None
        tc = self.cfg["train"]
        metrics = evaluate(
            self.net, self.val_dataset, batch_size=int(tc["eval_batch_size"] or self.batch_size),
            device=self.device, amp=tc["amp"], num_workers=int(self.cfg["data"]["num_workers"]),
            info=self.info, progress=bool(tc["progress"]), desc="validate",
        )
        self._record({"type": "val", "step": self.step, "epoch": self.epoch, **metrics})
        better = not self.best or metrics["oIoU"] > self.best.get("oIoU", -1.0)
        if better and self.info.is_main:
            self.best = {"step": self.step, "epoch": self.epoch, **metrics}
            self._save_model_dir(self.output_dir / "best", metrics)
        if self.info.distributed:
            self.best = all_gather_objects(self.best, self.info)[0]
        return metrics
