"""Writing a model as a directory (``save_pretrained``) and uploading it (``push_to_hub``).

A saved model is a directory (or Hub repo) holding:

- ``config.json``: ``{"architecture": <registry name>, "model_args": <constructor arguments>,
  "rrsis_version": ...}``; the registered entrypoint rebuilds the model from it;
- ``model.safetensors``: every persistent tensor of the state dict;
- ``vocab.txt`` + ``tokenizer_config.json`` when the model has a tokenizer (optional);
- ``README.md``: a model card.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from .._version import __version__
from .card import is_generated_card, model_card
from .report import alias_groups

__all__ = ["CONFIG_NAME", "TOKENIZER_CONFIG_NAME", "VOCAB_NAME", "WEIGHTS_NAME", "push_to_hub", "save_pretrained"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
VOCAB_NAME = "vocab.txt"
TOKENIZER_CONFIG_NAME = "tokenizer_config.json"
CARD_NAME = "README.md"
# Files a save owns: a re-save replaces or removes them; anything else in the directory is kept.
MANAGED_FILES = (CONFIG_NAME, WEIGHTS_NAME, VOCAB_NAME, TOKENIZER_CONFIG_NAME)


def save_pretrained(
    model: nn.Module,
    save_directory: PathLike,
    *,
    metrics: Mapping[str, Any] | None = None,
    dataset: str | None = None,
    repo_id: str | None = None,
) -> Path:
    """Write ``model`` as a loadable directory, atomically.

    Everything is written into a temporary sibling directory first and then moved into place,
    so a crash leaves either the previous directory or the new one, never a mix or a partial
    file. Files the save does not own (notes, logs, a hand-edited ``README.md``) are carried
    over into the new directory as hard links (copies across file systems).

    Args:
        model: an rrsis model (``arch``, ``config``, optional ``tokenizer``).
        save_directory: target directory; created or replaced.
        metrics: JSON-able ``name → value`` shown in the model card.
        dataset: training dataset name for the model card.
        repo_id: Hub repo the card's loading snippet should name.

    Returns:
        The directory path.
    """
    arch = getattr(model, "arch", "")
    config = getattr(model, "config", None)
    if not arch or not isinstance(config, Mapping):
        raise TypeError(f"save_pretrained needs an rrsis model with .arch and .config, got {type(model).__name__}")
    from .._registry import is_model

    if not is_model(arch):
        logger.warning(
            "architecture %r is not registered: from_pretrained can rebuild this directory only once an "
            "entrypoint of that name is registered (rrsis.register_model)", arch,
        )
    if metrics is not None:
        try:
            json.dumps(dict(metrics))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"metrics must be a JSON-able mapping: {exc}") from None
    target = Path(save_directory).expanduser()
    if target.is_symlink():
        target = Path(os.path.realpath(target))
    target = target.absolute()
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"save_pretrained: {target} exists and is not a directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkdtemp: its 0700 mode would become the saved directory's mode.
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.saving")
    tmp.mkdir()
    try:
        _write_contents(model, tmp, config=dict(config), metrics=metrics, dataset=dataset, repo_id=repo_id)
        if target.is_dir():
            _carry_over(target, tmp)
        _fsync_tree(tmp)
        _move_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("saved %s to %s", arch, target)
    return target


def _write_contents(
    model: nn.Module, directory: Path, *, config: dict[str, Any], metrics, dataset, repo_id
) -> None:
    payload = {"architecture": model.arch, "model_args": config, "rrsis_version": __version__}
    (directory / CONFIG_NAME).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    save_file(
        _tensors_for_saving(model), str(directory / WEIGHTS_NAME),
        metadata={"format": "pt", "architecture": model.arch, "rrsis_version": __version__},
    )
    if getattr(model, "tokenizer", None) is not None:
        model.tokenizer.save_pretrained(directory)
    card = model_card(model, metrics=metrics, dataset=dataset, repo_id=repo_id)
    (directory / CARD_NAME).write_text(card, encoding="utf-8")


def _tensors_for_saving(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with tied tensors stored once (safetensors refuses shared memory)."""
    state = model.state_dict()
    groups = alias_groups(state)
    out: dict[str, torch.Tensor] = {}
    storages: dict[tuple, str] = {}
    for key, t in state.items():
        if any(k in out for k in groups[key] if k != key):
            continue  # the same tensor under another name; loading refills this alias
        t = t.detach()
        sid = (t.device, t.untyped_storage().data_ptr()) if t.numel() else None
        if sid is not None and sid in storages:
            t = t.clone()  # overlapping view of a stored tensor, not the same tensor: store a copy
        elif sid is not None:
            storages[sid] = key
        out[key] = t.contiguous().cpu()
    return out


def _carry_over(old: Path, new: Path) -> None:
    for entry in old.iterdir():
        name = entry.name
        if name in MANAGED_FILES:
            continue
        if name == CARD_NAME:
            if _is_generated_card(entry):
                continue  # rrsis's own card: the new one replaces it
            (new / CARD_NAME).unlink()  # a hand-written card wins over the generated one
        elif (new / name).exists():
            continue
        dst = new / name
        if entry.is_symlink():
            os.symlink(os.readlink(entry), dst)
        elif entry.is_dir():
            shutil.copytree(entry, dst, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, dst)


def _is_generated_card(path: Path) -> bool:
    try:
        return is_generated_card(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return False


def _link_or_copy(src: PathLike, dst: PathLike) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _fsync_tree(directory: Path) -> None:
    # Data must be on disk before the rename that publishes it.
    if os.name != "posix":
        return
    for path in [*directory.rglob("*"), directory]:
        if path.is_symlink():
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _move_into_place(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.rename(tmp, target)
        return
    # A directory cannot atomically replace a non-empty one: move the old aside, the new in,
    # then delete the old. A crash in between leaves the complete old copy under `aside`.
    aside = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(target, aside)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def push_to_hub(
    model: nn.Module,
    repo_id: str,
    *,
    commit_message: str = "Upload rrsis model",
    private: bool | None = None,
    token: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    metrics: Mapping[str, Any] | None = None,
    dataset: str | None = None,
):
    """Upload ``model`` (the :func:`save_pretrained` files) to a Hub model repo in one commit.

    Args:
        model: the model to upload.
        repo_id: ``org/name``; created when it does not exist.
        commit_message: the commit's message.
        private: visibility of a newly created repo (``None``: the account's default).
        token: Hub token (default: the logged-in one).
        revision: branch to commit to (created when missing); default ``main``.
        create_pr: open a pull request instead of committing directly.
        metrics, dataset: model-card content, as in :func:`save_pretrained`.

    Returns:
        The ``huggingface_hub`` commit info (its ``commit_url`` names the commit).
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    repo_id = getattr(url, "repo_id", None) or repo_id
    if revision is not None and not create_pr:
        api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
    with tempfile.TemporaryDirectory(prefix="rrsis-push-") as tmp:
        folder = save_pretrained(model, Path(tmp) / "model", metrics=metrics, dataset=dataset, repo_id=repo_id)
        return api.upload_folder(
            repo_id=repo_id, folder_path=folder, repo_type="model", commit_message=commit_message,
            revision=revision, create_pr=create_pr,
        )
