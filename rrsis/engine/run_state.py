"""The trainer's checkpointing: its resumable state, and the run folder it owns.

A run folder holds one run. A new run refuses a folder that already holds files (a second
``rrsis train`` with the same recipe must not destroy the first run's log, checkpoints and best
model) unless it is told to continue it (``resume``) or to replace it (``overwrite``); pruning
deletes only checkpoints of the current run.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from .checkpoint import (
    CHECKPOINT_DIR,
    FORMAT,
    atomic_save,
    capture_rng,
    checkpoint_path,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    restore_rng,
)
from .distributed import all_gather_objects

__all__ = ["RUN_FILES", "CheckpointingMixin", "clear_run", "run_files"]

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


def _resume_plan(output_dir: Path, resume: Any, overwrite: bool) -> tuple[str, Any]:
    """``("fresh", None)``, ``("resume", path)`` or ``("error", (type name, message))``."""
    if resume and overwrite:
        return "error", ("ValueError", ("--resume and --overwrite contradict each other: continue "
                                        "the run or replace it, not both"))
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


class CheckpointingMixin:
    """State capture/restore, checkpoint writing with pruning, and the run-folder rules of
    :class:`~rrsis.engine.Trainer` (which provides the attributes used here)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs (collective: every rank must call it)."""
        rng = all_gather_objects(capture_rng(), self.info)
        return {
            "format": FORMAT,
            "version": 1,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "position": self.position,
            "sampler": {"seed": self.seed, "epoch": self.epoch, "start": self.position * self.batch_size},
            "rng": rng,
            "best": dict(self.best),
            # Losses since the last log line, so a resumed run logs the same averages.
            "pending_losses": all_gather_objects(list(self._pending_losses), self.info),
            "world_size": self.info.world_size,
            "batch_size": self.batch_size,
            "total_steps": self.total_steps,
            "tokenizer": {"vocab": [t for t, _ in sorted(self.tokenizer.vocab.items(), key=lambda kv: kv[1])],
                          "max_tokens": self.tokenizer.max_tokens},
            "config": json.loads(json.dumps(self.cfg, default=str)),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (the same recipe, world size and batch size)."""
        for key, mine in (("world_size", self.info.world_size), ("batch_size", self.batch_size),
                          ("total_steps", self.total_steps)):
            if state.get(key) != mine:
                raise ValueError(
                    f"checkpoint has {key}={state.get(key)} but this run has {mine}: resume with the "
                    "same recipe, batch size and number of processes"
                )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch, self.position = int(state["step"]), int(state["epoch"]), int(state["position"])
        self.best = dict(state.get("best") or {})
        pending = state.get("pending_losses") or [[]]
        mine = pending[self.info.rank] if len(pending) == self.info.world_size else []
        self._pending_losses = [float(v) for v in mine]
        rng = state["rng"]
        restore_rng(rng[self.info.rank] if len(rng) == self.info.world_size else rng[0])

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoints/step-N.pt`` atomically (rank 0) and prune this run's old ones."""
        state = self.state_dict()
        if not self.info.is_main:
            return None
        path = atomic_save(state, checkpoint_path(self.output_dir, self.step))
        if path not in self._owned_checkpoints:
            self._owned_checkpoints.append(path)
        prune_checkpoints(self.output_dir, int(self.cfg["train"]["keep_checkpoints"]),
                          owned=self._owned_checkpoints)
        return path

    def _open_run(self, resume: Any, overwrite: bool) -> bool:
        """Apply the run-folder rules, write ``config.json``, resume when asked; whether it did.

        Rank 0 decides and every rank follows its decision (errors are raised on every rank,
        so none waits forever in a collective call).
        """
        plan = _resume_plan(self.output_dir, resume, overwrite) if self.info.is_main else None
        plan = all_gather_objects(plan, self.info)[0]
        kind, detail = plan
        if kind == "error":
            exc_type = {"FileExistsError": FileExistsError, "FileNotFoundError": FileNotFoundError}.get(
                detail[0], ValueError)
            raise exc_type(detail[1])
        if self.info.is_main:
            if kind == "fresh-replace" or (kind == "fresh" and overwrite):
                clear_run(self.output_dir)
            self.output_dir.mkdir(parents=True, exist_ok=True)
            cfg_text = json.dumps(self.cfg, indent=2, default=str) + "\n"
            tmp = self.output_dir / ".config.json.tmp"
            tmp.write_text(cfg_text, encoding="utf-8")
            os.replace(tmp, self.output_dir / "config.json")
        if kind != "resume":
            return False
        path = Path(detail)
        state = load_checkpoint(path, map_location="cpu")
        self.load_state_dict(state)
        self.log.truncate_after(self.step)
        own = (self.output_dir / CHECKPOINT_DIR).resolve()
        if path.resolve().parent == own:
            # The run being continued: its earlier checkpoints are this run's too.
            self._owned_checkpoints = [p for s, p in list_checkpoints(self.output_dir) if s <= self.step]
        return True
