"""Resumable training state: checkpoint files, RNG capture, finding the latest good checkpoint."""

from __future__ import annotations

import logging
import os
import random
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._atomic import atomic_open, write_error
from .._torch_load import load_failure, weights_only_load
from .resume_rule import recipe_changes, recipe_refusal

__all__ = [
    "CHECKPOINT_DIR",
    "atomic_save",
    "capture_rng",
    "checkpoint_path",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "model_from_checkpoint",
    "prune_checkpoints",
    "restore_rng",
    "resume_mismatch",
]

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
FORMAT = "rrsis-train-state"
_NAME = re.compile(r"^step-(\d+)\.pt$")


def resume_mismatch(state: dict[str, Any], cfg: dict[str, Any], vocab: list[str], max_tokens: int,
                    run: str | os.PathLike | None = None, data_digest: str | None = None) -> str | None:
    """Why a checkpoint cannot continue this run, or ``None``: another recipe (any key but those
    :data:`~rrsis.engine.resume_rule.RESUME_MAY_CHANGE` lists), or another tokenizer (a
    whole-word vocabulary is built from the training expressions, so an edited training split
    changes it).

    Args:
        state: a training checkpoint (its ``config`` and ``tokenizer``).
        cfg: this run's recipe.
        vocab: this run's tokens in id order.
        max_tokens: this run's tokenizer length.
        run: the folder of the checkpoint's run, named in the advice.
        data_digest: this run's training set's fingerprint
            (:func:`~rrsis.engine.resume_rule.data_digest`): the same data in another folder
            is no change.
    """
    saved = state.get("config")
    if isinstance(saved, dict):
        paths = state.get("paths") if isinstance(state.get("paths"), dict) else None
        same = data_digest is not None and state.get("data_digest") == data_digest
        changes = recipe_changes(saved, cfg, saved_paths=paths, same_data=same)
        if changes:
            return recipe_refusal(changes, run)
    again = ("; resume with the recipe and data the run started with, or start a new run (--overwrite or "
             "another --train.output_dir)")
    tok = state.get("tokenizer") or {}
    if tok.get("vocab") is not None and list(tok["vocab"]) != list(vocab):
        return (f"cannot resume: the checkpoint's tokenizer has {len(tok['vocab'])} tokens and this run's "
                f"{len(vocab)}, not the same (a vocabulary built from the training expressions changes when "
                f"the training split does){again}")
    if tok.get("max_tokens") not in (None, max_tokens):
        return f"cannot resume: the checkpoint's tokenizer holds {tok['max_tokens']} tokens and this run's {max_tokens}{again}"
    return None


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through the package's atomic write (:func:`rrsis._atomic.atomic_open`).

    A crash at any moment leaves either the old file or the complete new one under ``path``
    (a failed save removes its temporary ``.*.tmp`` file; loaders ignore such names anyway).

    Args:
        obj: what to save.
        path: destination file.
    """
    try:
        with atomic_open(path, "wb") as fh:
            torch.save(obj, fh)
    except (OSError, RuntimeError) as exc:
        raise _write_error(exc, Path(path)) from None
    return Path(path)


def _write_error(exc: BaseException, path: Path) -> OSError:
    """The error of a failed checkpoint write, naming the file and the cause. ``torch.save``
    reports a full disk as ``[enforce fail at inline_container.cc] unexpected pos``; the
    ``OSError`` behind it (ENOSPC, EDQUOT, EIO...) is in its context."""
    return write_error(exc, path, "checkpoint", advice=(
        "The previous checkpoints are intact; free space (or set train.keep_checkpoints lower) and "
        "continue with --resume auto"))


def capture_rng() -> dict[str, Any]:
    """Python, NumPy, torch (and CUDA) generator states, as plain values and tensors so the
    checkpoint loads with ``weights_only=True``."""
    py = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss),
                  float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            logger.warning("checkpoint holds %d CUDA RNG states but %d devices are visible; "
                           "CUDA generators are not restored", len(cuda), torch.cuda.device_count())


def checkpoint_path(output_dir: str | os.PathLike, step: int) -> Path:
    """``output_dir/checkpoints/step-00000123.pt``."""
    return Path(output_dir) / CHECKPOINT_DIR / f"step-{step:08d}.pt"


def list_checkpoints(output_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(step, path)`` of the run's checkpoints, newest first (temporary files excluded)."""
    folder = Path(output_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), folder / n) for n in os.listdir(folder) if (m := _NAME.match(n))]
    return sorted(found, reverse=True)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a training checkpoint (``weights_only`` loading) and check its format.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable, or not an rrsis training checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = weights_only_load(path, map_location=map_location)
    except Exception as exc:  # noqa: BLE001  (torch raises many types for truncated/corrupt files)
        raise ValueError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {load_failure(exc)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(
            f"{path}: not an rrsis training checkpoint (RUN/checkpoints/step-N.pt of rrsis train); a model "
            "directory loads with rrsis.from_pretrained, an official .pth converts with `rrsis convert`"
        )
    return state


def model_from_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu", **load: Any) -> Any:
    """The model of a training checkpoint (``RUN/checkpoints/step-N.pt``), for evaluation or
    prediction, e.g. of a run killed before ``final/``.

    A checkpoint holds the weights, the optimizer state and the recipe, but not what the model
    recorded from its training data (value scaling, colours, band names); those and the model's
    architecture are read from the run's ``best/`` (or ``final/``) folder, which the same run
    wrote from the same model, and the checkpoint's weights replace its own.

    Args:
        path: the checkpoint file.
        map_location: the device of the model.
        **load: :func:`rrsis.from_pretrained` options (``max_params``, ...).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a training checkpoint, or its run has no model folder (the message
            says how to write one), or the folder's model is not the checkpoint's.
    """
    from ..hub import from_pretrained

    path = Path(path)
    state = load_checkpoint(path)
    run = path.parent.parent if path.parent.name == CHECKPOINT_DIR else path.parent
    folders = [run / name for name in ("best", "final") if (run / name / "config.json").is_file()]
    if not folders:
        raise ValueError(
            f"{path}: a training checkpoint holds the weights but not the model's recorded settings, which "
            f"rrsis reads from its run's best/ or final/ folder, and {run} has neither; run the command that "
            "started the run again with --resume auto: it goes on from the last checkpoint and writes them")
    model = from_pretrained(folders[0], map_location=map_location, **load)
    saved = (state.get("tokenizer") or {}).get("vocab")
    if saved is not None and model.tokenizer is not None:
        mine = [t for t, _ in sorted(model.tokenizer.vocab.items(), key=lambda kv: kv[1])]
        if list(saved) != mine:
            raise ValueError(f"{path}: its tokenizer is not the one of {folders[0]} ({len(saved)} and {len(mine)} "
                             "tokens): the folder is not of the run that wrote the checkpoint")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"{path}: its weights do not fit the model of {folders[0]} ({first}): the folder is not "
                         "of the run that wrote the checkpoint") from None
    logger.info("%s: the weights of step %s, in the model of %s", path, state.get("step"), folders[0])
    return model.eval()


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The newest checkpoint of ``output_dir`` that loads; unreadable ones are skipped with a
    warning (writes are atomic, so this only happens after outside damage)."""
    for _, path in list_checkpoints(output_dir):
        try:
            load_checkpoint(path)
        except ValueError as exc:
            logger.warning("skipping %s", exc)
            continue
        return path
    return None


def prune_checkpoints(
    output_dir: str | os.PathLike, keep: int, owned: Iterable[str | os.PathLike] | None = None
) -> None:
    """Delete all but the newest ``keep`` checkpoints (``keep <= 0`` keeps every one).

    Args:
        output_dir: the run folder.
        keep: how many to keep.
        owned: only these files are candidates (the trainer passes the checkpoints of its own
            run, so files it did not write are never deleted); ``None``: every checkpoint.
    """
    if keep <= 0:
        return
    found = list_checkpoints(output_dir)
    if owned is not None:
        mine = {Path(p).resolve() for p in owned}
        found = [(s, p) for s, p in found if p.resolve() in mine]
    for _, path in found[keep:]:
        try:
            path.unlink()
        except OSError as exc:
            logger.warning("could not delete old checkpoint %s: %s", path, exc)
