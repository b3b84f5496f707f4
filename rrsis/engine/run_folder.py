"""The run folder: what a training run writes there, and whether a run may start, continue or
replace the one already there.

A run folder holds one run. A new run refuses a folder that already holds files (a second
``rrsis train`` with the same recipe must not destroy the first run's log, checkpoints and best
model) unless it is told to continue it (``resume``) or to replace it (``overwrite``); pruning
deletes only checkpoints of the current run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from .checkpoint import CHECKPOINT_DIR, latest_checkpoint, list_checkpoints

__all__ = ["RUN_FILES", "clear_run", "resume_plan", "run_files"]

# What a run writes into its folder (``--overwrite`` removes these and nothing else).
RUN_FILES = ("config.json", "log.jsonl", "summary.json", "training.png", CHECKPOINT_DIR, "best",
             "final", "best.pt", "final.pt")


def run_files(output_dir: str | os.PathLike) -> list[str]:
    """Names of the entries of ``output_dir`` (empty when it does not exist)."""
    folder = Path(output_dir)
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def clear_run(output_dir: str | os.PathLike) -> None:
    """Remove a previous run's files from ``output_dir`` (other files are left alone)."""
    folder = Path(output_dir)
    for name in RUN_FILES:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def not_a_folder(output_dir: Path) -> str:
    """Why ``output_dir`` cannot be the run's folder: it, or a folder on the way to it, is a file
    (the system's "[Errno 17] File exists" named neither); ``""`` when nothing is in the way."""
    for path in (output_dir, *output_dir.parents):
        if path.exists() and not path.is_dir():
            what = "it" if path == output_dir else f"{path}, on the way to it,"
            return (f"train.output_dir {output_dir} cannot be the run's folder: {what} is a file, not a folder; "
                    "give another --train.output_dir or move the file")
        if path.is_dir():
            break
    return ""


def resume_plan(output_dir: Path, resume: Any, overwrite: bool) -> tuple[str, Any]:
    """What a run asked to ``resume``/``overwrite`` in ``output_dir`` does: ``("fresh", None)``,
    ``("fresh-replace", None)`` (clear the folder first), ``("resume", path)`` or
    ``("error", (type name, message))`` (plain values, so rank 0 can send its decision to every
    rank)."""
    if resume and overwrite:
        return "error", ("ValueError", ("--resume and --overwrite contradict each other: continue "
                                        "the run or replace it, not both"))
    blocked = not_a_folder(output_dir)
    if blocked:
        return "error", ("FileExistsError", blocked)
    present = run_files(output_dir)
    if not resume:
        if present and not overwrite:
            shown = ", ".join(present[:6]) + (" ..." if len(present) > 6 else "")
            return "error", ("FileExistsError", (
                f"{output_dir} already holds a run ({shown}): pass --resume auto to continue it, "
                "--overwrite to replace it, or another --train.output_dir for a new run"))
        return "fresh", None
    if str(resume) in ("auto", "auto-or-new"):
        path = latest_checkpoint(output_dir)
        if path is not None:
            return "resume", path
        broken = list_checkpoints(output_dir)
        where = output_dir / CHECKPOINT_DIR
        if broken:
            return "error", ("FileNotFoundError", (
                f"--resume {resume}: no usable checkpoint in {where}: {len(broken)} file(s) there "
                "but none loads (see the warnings); remove them, or pass --overwrite to start over"))
        if str(resume) == "auto":
            return "error", ("FileNotFoundError", (
                f"--resume auto: no usable checkpoint in {where}; pass --resume auto-or-new to start "
                "a new run when there is none"))
        return "fresh-replace", None  # auto-or-new: nothing to continue
    return "resume", Path(resume)
