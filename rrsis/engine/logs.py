"""Run records: a JSONL log (one object per logged step or validation) and its plot."""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["JsonlLogger", "have_matplotlib", "plot_history", "read_jsonl"]

logger = logging.getLogger(__name__)


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a JSONL log; a torn last line (a killed writer) is ignored."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def _clean(v: Any) -> Any:
    # JSON has no NaN/Infinity; write null so every reader accepts the line.
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


class JsonlLogger:
    """Appends one JSON object per line to ``path``, flushed at once (so ``tail -f`` works).

    Args:
        path: the ``.jsonl`` file.
        enabled: ``False`` on non-zero ranks: every call is a no-op.
    """

    def __init__(self, path: str | os.PathLike, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def truncate_after(self, step: int) -> None:
        """Drop records of steps after ``step``: a resumed run re-does them, and the log
        should read like the uninterrupted run's."""
        if not self.enabled or not self.path.is_file():
            return
        kept = [r for r in read_jsonl(self.path) if int(r.get("step", 0)) <= step]
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in kept)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def log(self, record: dict[str, Any]) -> None:
        """Append ``record``."""
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(_clean(record)) + "\n")

    def records(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path)


def have_matplotlib() -> bool:
    """Whether matplotlib (a base dependency; missing only from a broken install) imports."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot_history(
    records: Iterable[dict[str, Any]],
    out_path: str | os.PathLike,
    title: str = "",
    metrics: tuple[str, ...] = ("oIoU", "mIoU"),
) -> Path | None:
    """Plot the training loss and the validation metrics of a JSONL log to a PNG.

    Several runs can share one figure: records with a ``run`` field are drawn as separate
    lines (the demo plots GL-MSIN and its shuffled-text control together).

    Args:
        records: log records (``type`` ``"train"`` with ``loss``; ``"val"`` with metrics).
        out_path: the PNG to write.
        title: figure title.
        metrics: validation metrics to draw.

    Returns:
        The path, or ``None`` when matplotlib is missing (a warning says how to get it).
    """
    if not have_matplotlib():
        warnings.warn("matplotlib is not installed: no training plot (it is a dependency of rrsis: pip install matplotlib)",
                      stacklevel=2)
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display needed; must precede pyplot's import
    import matplotlib.pyplot as plt

    runs: dict[str, dict[str, list]] = {}
    for r in records:
        run = runs.setdefault(str(r.get("run", "")), {"train": [], "val": []})
        if r.get("type") in run:
            run[r["type"]].append(r)
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    styles = ("-", "--", ":", "-.")
    # One colour per run, one line style per metric, so two runs read apart at a glance.
    for i, (name, run) in enumerate(runs.items()):
        colour = f"C{i % 10}"
        label = f"{name} " if name else ""
        tr = [r for r in run["train"] if r.get("loss") is not None]
        if tr:
            ax_loss.plot([r["step"] for r in tr], [r["loss"] for r in tr], color=colour,
                         label=f"{label}loss")
        for j, m in enumerate(metrics):
            va = [r for r in run["val"] if r.get(m) is not None]
            if va:
                ax_val.plot([r["step"] for r in va], [r[m] for r in va], marker="o", color=colour,
                            linestyle=styles[j % len(styles)], label=f"{label}{m}")
    ax_loss.set_xlabel("optimizer step")
    ax_loss.set_ylabel("training loss")
    ax_loss.set_yscale("log")
    ax_val.set_xlabel("optimizer step")
    ax_val.set_ylabel("validation")
    ax_val.set_ylim(0, 1)
    for ax in (ax_loss, ax_val):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.stem}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out_path)
    return out_path
