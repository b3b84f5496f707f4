"""Run records: a JSONL log, one object per logged step or validation (the plot of it is
:func:`rrsis.pictures.plot_history`)."""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from .._atomic import atomic_append, atomic_open, disk_errors, json_text

__all__ = ["JsonlLogger", "read_jsonl"]

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
    """Appends one JSON object per line to ``path``, written at once (so ``tail -f`` works), each
    line whole or not at all: a full disk leaves the log as it was before the line and raises an
    ``OSError`` naming the file and the space.

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
        with atomic_open(self.path) as fh:
            fh.writelines(json_text(r) + "\n" for r in kept)

    def log(self, record: dict[str, Any]) -> None:
        """Append ``record``."""
        if not self.enabled:
            return
        line = (json_text(_clean(record)) + "\n").encode("utf-8")
        with disk_errors(self.path, "the log", needed=len(line), advice=(
                "The log holds every record before this one and the run's checkpoints are intact; "
                "free space and continue with --resume auto")):
            atomic_append(self.path, line)

    def records(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path)
