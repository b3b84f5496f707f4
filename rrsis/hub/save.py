"""Writing a model as a directory (``save_pretrained``) and uploading it (``push_to_hub``).

A saved model is a directory (or Hub repo) holding:

- ``config.json``: ``{"architecture": <registry name>, "model_args": <constructor arguments>,
  "torch_dtype": <the parameters' dtype, e.g. "bfloat16">, "rrsis_version": ...}``; the
  registered entrypoint rebuilds the model from it;
- ``model.safetensors``: every persistent tensor of the state dict;
- ``vocab.txt`` + ``tokenizer_config.json`` when the model has a tokenizer (optional);
- ``README.md``: a model card.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import re
import shutil
import socket
import stat
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from .._atomic import _fsync_dir, disk_errors, json_text, pid_alive
from .._version import __version__
from .card import check_evaluation, is_generated_card, model_card
from .dtypes import parameter_dtype
from .local import CONFIG_NAME, TOKENIZER_CONFIG_NAME, VOCAB_NAME
from .origin import carried_origin
from .plugin_record import plugin_modules
from .ranker import RANKER_CONFIG_NAME, RANKER_WEIGHTS_NAME, write_ranker
from .report import alias_groups
from .save_check import refuse_save_kwargs, saveable_model

__all__ = ["CONFIG_NAME", "TOKENIZER_CONFIG_NAME", "VOCAB_NAME", "WEIGHTS_NAME", "recover_interrupted_save",
           "save_pretrained"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
# Files a save owns: a re-save replaces or removes them; anything else in the directory is kept.
MANAGED_FILES = (CONFIG_NAME, WEIGHTS_NAME, VOCAB_NAME, TOKENIZER_CONFIG_NAME, RANKER_CONFIG_NAME, RANKER_WEIGHTS_NAME)


def save_pretrained(
    model: nn.Module,
    save_directory: PathLike,
    *,
    metrics: Mapping[str, Any] | None = None,
    dataset: str | None = None,
    repo_id: str | None = None,
    origin: str | None = None,
    evaluation: Mapping[str, Any] | None = None,
    training: Mapping[str, str] | None = None,
    **unsupported: Any,
) -> Path:
    """Write ``model`` as a loadable directory, atomically.

    Everything is written into a temporary sibling directory and fsynced first. A new target is
    then created by one ``rename``; an existing one is replaced by one atomic exchange of the
    two directories (Linux ``renameat2(RENAME_EXCHANGE)``), after which the old copy is
    deleted. So at every instant ``save_directory`` is either the complete old model or the
    complete new one. Where the exchange is not supported (other systems, some file systems)
    the old directory is renamed aside to ``.NAME.old-*`` first: a crash between the two renames
    leaves no target for a moment, and the next save or load of that path restores the old
    copy (and a leftover ``.old-*`` next to a complete target is deleted). The directory keeps
    its permission bits (and its owner and group where the process may set them). Files the
    save does not own (notes, logs, a hand-edited ``README.md``) are carried over into the new
    directory as hard links (copies across file systems).

    Args:
        model: an rrsis model (``arch``, ``config``, optional ``tokenizer``), or ``torch.compile``
            of one (the module it wraps is saved); its state dict must be the one its config builds.
        save_directory: target directory; created or replaced.
        metrics: JSON-able ``name → value`` shown in the model card.
        dataset: training dataset name for the model card.
        repo_id: Hub repo the card's loading snippet should name.
        origin: markdown for the card saying where the weights come from and under which terms
            (``rrsis convert`` writes the official checkpoint's).
        evaluation: where ``metrics`` were measured, for the card's text and ``model-index``:
            ``split``, ``step``, ``total_steps``, ``image_size`` (the size images and masks were
            resized to), ``chosen_by`` (the metric that chose these weights on that split); any
            may be left out.
        training: ``label → markdown`` facts of the run that trained the weights, listed in the
            card's "Training" section (``rrsis train`` writes its recipe there).
        **unsupported: transformers' ``max_shard_size`` / ``safe_serialization=False`` /
            ``push_to_hub`` ... are refused with a ``TypeError`` saying why (rrsis writes one
            ``model.safetensors``; ``safe_serialization=True`` is accepted, as it is what happens).

    Returns:
        The directory path.
    """
    refuse_save_kwargs(unsupported)
    model = saveable_model(model)  # torch.compile's wrapper unwrapped; refused unless its config rebuilds it
    origin = carried_origin(model) if origin is None else origin  # a loaded card's Source section
    arch, config = model.arch, model.config
    if metrics is not None:
        try:
            json.dumps(dict(metrics))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"metrics must be a JSON-able mapping: {exc}") from None
    evaluation = check_evaluation(evaluation)
    if not str(save_directory).strip():
        # Path("") is the current folder, which a save would replace.
        raise ValueError("save_pretrained: the target directory is empty; name the folder to write")
    target = Path(save_directory).expanduser()
    if target.is_symlink():
        target = Path(os.path.realpath(target))
    target = target.absolute()
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"save_pretrained: {target} exists and is not a directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_interrupted_save(target)
    # Not tempfile.mkdtemp: its 0700 mode would become the saved directory's mode.
    tmp = target.with_name(f".{target.name}.{_owner_tag()}-{uuid.uuid4().hex[:8]}.saving")
    # A full disk (safetensors' own error included) is one OSError naming the folder and the space.
    needed = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    with disk_errors(target, "the model folder", needed=needed, advice=f"{target} is as it was before (or absent)"):
        tmp.mkdir()
        try:
            if target.is_dir():
                _copy_mode_and_owner(target, tmp)
            _write_contents(model, tmp, config=dict(config), metrics=metrics, dataset=dataset, repo_id=repo_id,
                            origin=origin, evaluation=evaluation, training=training)
            if target.is_dir():
                _carry_over(target, tmp)
            _fsync_tree(tmp)
            _move_into_place(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    logger.info("saved %s to %s", arch, target)
    if getattr(model, "tokenizer", None) is None:
        logger.warning("%s has no tokenizer, so %s has no %s: model.predict, rrsis predict and rrsis evaluate "
                       "will need one. Set model.tokenizer = rrsis.Tokenizer('vocab.txt') (the vocabulary the "
                       "text encoder was trained with) and save again, or copy %s (and %s) into %s",
                       arch, target, VOCAB_NAME, VOCAB_NAME, TOKENIZER_CONFIG_NAME, target)
    return target


def _write_contents(
    model: nn.Module, directory: Path, *, config: dict[str, Any], metrics, dataset, repo_id, origin=None,
    evaluation=None, training=None,
) -> None:
    payload = {"architecture": model.arch, "model_args": config, "torch_dtype": parameter_dtype(model),
               "rrsis_version": __version__}
    plugins = plugin_modules(model.arch, config)  # the modules outside rrsis that registered its parts
    if plugins:
        payload["plugins"] = plugins
    (directory / CONFIG_NAME).write_text(json_text(payload, indent=2) + "\n", encoding="utf-8")
    save_file(
        _tensors_for_saving(model), str(directory / WEIGHTS_NAME),
        metadata={"format": "pt", "architecture": model.arch, "rrsis_version": __version__},
    )
    # safetensors creates its file 0600; give it the mode every other file got (umask applied).
    os.chmod(directory / WEIGHTS_NAME, stat.S_IMODE(os.stat(directory / CONFIG_NAME).st_mode))
    if getattr(model, "tokenizer", None) is not None:
        model.tokenizer.save_pretrained(directory)
    if getattr(model, "scene_ranker", None) is not None:
        write_ranker(model.scene_ranker, directory)
    card = model_card(model, metrics=metrics, dataset=dataset, repo_id=repo_id, origin=origin, evaluation=evaluation,
                      training=training)
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


def _copy_mode_and_owner(src: Path, dst: Path) -> None:
    st = os.stat(src)
    os.chmod(dst, stat.S_IMODE(st.st_mode))
    if hasattr(os, "chown") and (st.st_uid, st.st_gid) != (os.stat(dst).st_uid, os.stat(dst).st_gid):
        try:
            os.chown(dst, st.st_uid, st.st_gid)
        except OSError:  # only the owner's group, or root, may be set; keep what we can
            try:
                os.chown(dst, -1, st.st_gid)
            except OSError:
                pass


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2`` with ``RENAME_EXCHANGE``); ``False``
    where the system or the file system does not support it."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _move_into_place(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.rename(tmp, target)
        _fsync_dir(target.parent)
        return
    aside = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    if _exchange(tmp, target):
        # `tmp` now holds the old copy; named `.old-*` so a crash while deleting it is cleaned up.
        os.rename(tmp, aside)
        _fsync_dir(target.parent)
        shutil.rmtree(aside, ignore_errors=True)
        return
    # No atomic exchange here: move the old aside, the new in, then delete the old. A crash in
    # between leaves the complete old copy under `aside`; recover_interrupted_save restores it.
    os.rename(target, aside)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(aside, target)
        raise
    _fsync_dir(target.parent)
    shutil.rmtree(aside, ignore_errors=True)


# A stale half-written save: named by an owner on this machine whose process is gone, or (named
# by an rrsis before 0.2, or by another machine) untouched for this long.
STALE_SAVE_SECONDS = 24 * 3600


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", socket.gethostname())[:32].strip("-") or "host"


def _owner_tag() -> str:
    """``host-pid`` of this process, written into the name of a save's temporary folder."""
    return f"{_host()}-{os.getpid()}"



def _stale_saving(path: Path, name: str) -> bool:
    """Whether ``.NAME.<owner>-<id>.saving`` is left by a save that can no longer finish."""
    parts = path.name[len(name) + 2: -len(".saving")].rsplit("-", 2)  # host, pid, id
    if len(parts) == 3 and parts[0] == _host() and parts[1].isdigit():
        pid = parts[1]
        return int(pid) != os.getpid() and not pid_alive(int(pid))
    try:
        return time.time() - path.stat().st_mtime > STALE_SAVE_SECONDS
    except OSError:
        return False


def recover_interrupted_save(directory: PathLike) -> None:
    """Finish what an interrupted :func:`save_pretrained` of ``directory`` left.

    When ``directory`` is missing and an old copy ``.NAME.old-*`` lies beside it, the newest such
    copy is renamed back into place; any other ``.old-*`` copies next to a complete directory
    are deleted. A half-written ``.NAME.<host>-<pid>-<id>.saving`` folder (a save killed before
    it finished) is deleted when its process is gone: ``<host>`` is this machine and no process
    ``<pid>`` runs; one from another machine, or without an owner in its name, when it has not
    been touched for :data:`STALE_SAVE_SECONDS` (a day). Called at the start of every save and
    load of a local directory.
    """
    target = Path(directory).expanduser().absolute()
    parent = target.parent
    if not parent.is_dir() or not target.name:
        return
    prefix = f".{target.name}.old-"
    try:
        entries = [p for p in parent.iterdir() if p.name.startswith(f".{target.name}.")]
    except OSError:
        return
    for tmp in entries:
        if tmp.name.endswith(".saving") and tmp.is_dir() and _stale_saving(tmp, target.name):
            shutil.rmtree(tmp, ignore_errors=True)
            logger.warning("removed %s, left by a save of %s that was interrupted", tmp.name, target)
    olds = [p for p in entries if p.name.startswith(prefix) and p.is_dir()]
    if not olds:
        return
    olds.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    if not target.exists():
        if not (olds[0] / CONFIG_NAME).is_file():
            return  # not a model copy: leave it for a person to look at
        os.rename(olds[0], target)
        logger.warning("restored %s from the copy an interrupted save left (%s)", target, olds[0].name)
        olds = olds[1:]
    for old in olds:
        shutil.rmtree(old, ignore_errors=True)
