"""What a resumed run may change: nothing of what it trains.

A checkpoint holds the optimizer's and the schedule's state, the weights and the position in the
seeded order of one recipe; a resumed run goes on with that state, so a changed learning rate,
loss weight, image size, seed or step count would either have no effect (the optimizer state
wins) or train the rest of the run on another recipe, while the run's ``config.json`` said
otherwise. A resume therefore compares the whole recipe with the one the checkpoint recorded
and refuses any difference, except the keys of :data:`RESUME_MAY_CHANGE`: how the run is
watched, saved and where it runs, never what it trains. Those are applied and recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .recipe import DEFAULTS, merge, migrate_recipe

__all__ = ["RESUME_MAY_CHANGE", "data_digest", "path_record", "recipe_changes", "recipe_refusal"]

# Recipe keys a resumed run may set anew: logging, progress, checkpoint keeping, validation
# cadence and batch, the device and how fast (in how much memory) it runs there, the cost limits of the model, and
# the recipe's name and description. Everything else must be as the run started.
RESUME_MAY_CHANGE = (
    "description",
    "recipe",
    "data.num_workers",
    "model.max_activation_gib",
    "model.max_params",
    "train.checkpoint_every",
    "train.compile",
    "train.deterministic",
    "train.device",
    "train.eval_batch_size",
    "train.eval_every",
    "train.find_unused_parameters",
    "train.flush_denormal",
    "train.grad_checkpointing",
    "train.keep_checkpoints",
    "train.log_every",
    "train.output_dir",
    "train.progress",
    "train.threads",
)

# Paths: the same folder written another way ("data/x" and "./data/x") is no change.
_PATHS = ("data.root", "data.tokenizer", "model.init")


def _flat(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{name}."))  # an empty one adds nothing: the same as unset
        else:
            out[name] = value
    return out


def _normal(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A recipe as a checkpoint records it (JSON values), older placements moved, defaults filled."""
    plain = json.loads(json.dumps(dict(cfg), default=str))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = migrate_recipe(plain, "the checkpoint's recipe")
    return _flat(merge(DEFAULTS, plain))


def _same_path(a: Any, b: Any) -> bool:
    try:
        return isinstance(a, str) and isinstance(b, str) and os.path.samefile(a, b)
    except OSError:
        return False


def path_record(cfg: Mapping[str, Any]) -> dict[str, str]:
    """The recipe's paths (``data.root``, ``data.tokenizer``, ``model.init``) made absolute from
    the folder the run started in, as a checkpoint records them: a resume started from another
    folder compares the files, not the words typed."""
    flat = _flat(cfg)
    return {k: os.path.abspath(v) for k in _PATHS if isinstance(v := flat.get(k), str) and v}


def data_digest(dataset: Any, root: Any) -> str | None:
    """A fingerprint of a training set's files and expressions: each sample's image path relative
    to ``root``, its size in bytes, and its ``(id, expression)`` pairs. The same dataset copied or
    moved elsewhere has the same one, so a resume may name its new place. ``None`` for a dataset
    that does not list its samples as files (``entries`` with ``image_path``)."""
    entries = getattr(dataset, "entries", None)
    if not isinstance(root, str) or not root or not entries:
        return None
    h = hashlib.sha256()
    try:
        for entry in entries:
            path = os.fspath(entry.image_path)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            h.update(json.dumps([rel, os.path.getsize(path), [list(p) for p in entry.sentences]]).encode())
    except (AttributeError, TypeError, ValueError, OSError):
        return None
    return h.hexdigest()


def recipe_changes(saved: Mapping[str, Any], current: Mapping[str, Any], *,
                   saved_paths: Mapping[str, str] | None = None,
                   same_data: bool = False) -> list[tuple[str, Any, Any]]:
    """``(key, recorded value, this run's value)`` for each recipe key that differs (dotted, sorted),
    the keys of :data:`RESUME_MAY_CHANGE` left out; a key one side lacks counts as ``None``.
    A path is no change when it names the same file or folder (typed another way, or relative
    to another working folder: ``saved_paths``, :func:`path_record` of the run's start);
    ``data.root`` neither when ``same_data`` (:func:`data_digest` unchanged).

    Args:
        saved: the recipe a checkpoint recorded (its ``config``).
        current: this run's recipe.
        saved_paths: the checkpoint's :func:`path_record`, when it has one.
        same_data: whether this run's training set has the checkpoint's :func:`data_digest`.
    """
    a, b = _normal(saved), _normal(current)
    free = tuple(f"{k}." for k in RESUME_MAY_CHANGE)
    changes = []
    for key in sorted(set(a) | set(b)):
        if key in RESUME_MAY_CHANGE or key.startswith(free):
            continue
        old, new = a.get(key), b.get(key)
        if old == new or (key in _PATHS and (_same_path(old, new) or _same_path((saved_paths or {}).get(key), new))):
            continue
        if key == "data.root" and same_data:
            continue
        changes.append((key, old, new))
    return changes


def recipe_refusal(changes: list[tuple[str, Any, Any]], run: str | os.PathLike | None) -> str:
    """The refusal of a resume whose recipe differs: each key with both values, what may change
    instead, and how to start a new run from the run's weights (``model.init``).

    Args:
        changes: :func:`recipe_changes` output (not empty).
        run: the folder of the checkpoint's run (its ``final/`` or ``best/`` is named), or ``None``.
    """
    what = "; ".join(f"{k}={old!r} (now {new!r})" for k, old, new in changes)
    folders = [Path(run) / name for name in ("final", "best") if run is not None]
    found = [f for f in folders if (f / "config.json").is_file()]
    if found:
        init = f"--model.init {found[0]}"
    else:
        init = ("--model.init RUN/final (written when the run ends: resume it unchanged first, or use "
                "RUN/best once it exists)")
    return (f"cannot resume: the recipe differs from the one the run started with: {what}. A resumed run "
            "continues its own optimizer, schedule and data order, so it keeps its recipe and data; only how "
            "it is logged, checkpointed and validated, its device, threads and workers may change (the "
            "train guide lists the keys). To train on with the new values, start a new run from this run's "
            f"weights: {init} with another --train.output_dir")
