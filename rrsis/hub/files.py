"""Finding weight files (local paths or the Hugging Face Hub cache) and reading them safely.

Everything rrsis writes is safetensors. Foreign ``.pth``/``.bin`` checkpoints are read with
``torch.load(weights_only=True)`` only, so a checkpoint can never run code when loaded.
"""

from __future__ import annotations

import logging
import os
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import huggingface_hub
import torch
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from .._torch_load import load_failure, weights_only_load
from .._version import __version__
from .local import (
    LEGACY_SUFFIXES,
    SAFE_SUFFIXES,
    check_not_a_loop,
    local_folder_note,
    looks_like_path,
)

__all__ = [
    "LEGACY_SUFFIXES",
    "SAFE_SUFFIXES",
    "CheckpointError",
    "check_device",
    "check_not_a_loop",
    "find_weights_file",
    "hub_file",
    "hub_unreachable",
    "looks_like_path",
    "not_a_folder",
    "read_safetensors_header",
    "read_state_dict",
    "unwrap_state_dict",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike
# Names a checkpoint directory is searched for first, in this order (timm's convention).
PREFERRED_WEIGHT_NAMES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                          "pytorch_model.bin.index.json", "model.pth")


class CheckpointError(ValueError):
    """A weight file or config that cannot be used as it is: unreadable, corrupt, unsafe,
    or with keys/shapes that do not fit the model. Nothing has been loaded when it is raised."""


def _offline_reason(local_files_only: bool, reason: str = "") -> str:
    if reason:
        return reason
    if local_files_only:
        return "local_files_only=True forbids downloads"
    if hf_constants.HF_HUB_OFFLINE:
        return "offline mode is on (HF_HUB_OFFLINE=1, read when huggingface_hub is imported)"
    return (
        "the Hub could not be reached (on a machine without network, set HF_HUB_OFFLINE=1 before "
        "starting Python to skip the connection retries)"
    )


def _local_first(ref: str, hub_message: str) -> str:
    # A folder of a similar name beside it: most likely a mistyped path, said first.
    note = local_folder_note(ref)
    if "did you mean" in note:
        return f"{note} As a Hub repo id: {hub_message}"
    return f"{hub_message} {note}".rstrip()


def hub_file(
    repo_id: str,
    filename: str,
    *,
    revision: str | None = None,
    cache_dir: PathLike | None = None,
    local_files_only: bool = False,
    token: bool | str | None = None,
    absent_ok: bool = False,
    local_hint: str = "",
    offline_reason: str = "",
) -> str | None:
    """Path of ``filename`` from Hub repo ``repo_id`` via ``hf_hub_download`` (cache first).

    Args:
        repo_id: ``org/name`` model repo.
        filename: file in the repo.
        revision, cache_dir, local_files_only, token: forwarded to ``hf_hub_download``.
        absent_ok: return ``None`` when the repo is known not to have the file (the Hub says
            so, or the cache recorded it) instead of raising.
        local_hint: how to load the same thing from a local path, appended to cache-miss errors.
        offline_reason: why the cache alone is read, for cache-miss errors (default: from
            ``local_files_only`` and ``HF_HUB_OFFLINE``).

    Raises:
        LocalEntryNotFoundError: the file is not in the cache and cannot be downloaded;
            the message names repo, revision, file and cache directory.
        FileNotFoundError: the repo, revision or (when not ``absent_ok``) file does not exist.
    """
    rev = revision or "main"
    cache = Path(cache_dir) if cache_dir is not None else Path(hf_constants.HF_HUB_CACHE)
    try:
        # Looked up on the module at call time so tests (and users) can wrap it.
        return huggingface_hub.hf_hub_download(
            repo_id, filename, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only,
            token=token, library_name="rrsis", library_version=_version(),
        )
    except LocalEntryNotFoundError as exc:
        cached = huggingface_hub.try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision)
        # Neither a path nor None: the cache recorded that the repo has no such file.
        if absent_ok and cached is not None and not isinstance(cached, str):
            return None
        hint = local_hint or (
            f"download the repo on a connected machine (`hf download {repo_id} --local-dir DIR`) "
            "and pass that local directory instead of the repo id"
        )
        raise LocalEntryNotFoundError(_local_first(repo_id, (
            f"{filename!r} of Hub repo {repo_id!r} (revision {rev!r}) is not in the Hugging Face cache "
            f"at {cache}, and {_offline_reason(local_files_only, offline_reason)}. Run once online to fill the cache, "
            f"point cache_dir= (or HF_HUB_CACHE) at a cache that holds it, or {hint}."))
        ) from exc
    except RevisionNotFoundError as exc:
        raise FileNotFoundError(f"Hub repo {repo_id!r} has no revision {rev!r}") from exc
    except RepositoryNotFoundError as exc:
        raise FileNotFoundError(_local_first(
            repo_id, f"{repo_id!r} is not a local directory, and no Hub model repo of that name was found "
                     "(a private or gated repo needs token=)."
        )) from exc
    except EntryNotFoundError as exc:
        if absent_ok:
            return None
        raise FileNotFoundError(f"Hub repo {repo_id!r} (revision {rev!r}) has no file {filename!r}") from exc


def hub_unreachable(repo_id: str, filename: str, *, revision: str | None = None,
                    token: bool | str | None = None) -> str:
    """Why the Hub cannot be reached (``""`` when it answers, or when offline mode already says so).

    ``hf_hub_download`` serves a cached file at once when the Hub cannot be reached, but retries
    a file that is not cached for about 23 s before giving up. One HEAD request without retries
    tells; a caller that gets a reason reads the cache only (``local_files_only=True``) and passes
    the reason on as ``hub_file(..., offline_reason=)``.
    """
    if hf_constants.HF_HUB_OFFLINE:
        return ""
    url = huggingface_hub.hf_hub_url(repo_id, filename, revision=revision)
    try:
        huggingface_hub.get_hf_file_metadata(url, token=token)
    except HfHubHTTPError:
        return ""  # the Hub answered (not found, gated, ...): hf_hub_download says what it means
    except Exception as exc:  # noqa: BLE001 - any transport failure means "no Hub here"
        reason = f"the Hub could not be reached ({type(exc).__name__}: {exc})"
        logger.warning("%s: %s; reading the Hugging Face cache only", repo_id, reason)
        return reason
    return ""


def check_device(map_location: str | torch.device, what: str) -> torch.device:
    """The device ``map_location`` names, or a ``ValueError`` naming ``what`` when it is not one
    the weights can be placed on (a typo, ``meta``, or CUDA where there is none). Checked before
    any file is read: the readers would otherwise blame the file."""
    try:
        device = torch.device(map_location)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"{what}: map_location={map_location!r} is not a device ({exc}); use \"cpu\", "
                         "\"cuda\", \"cuda:1\" or a torch.device") from None
    if device.type == "meta":
        raise ValueError(f"{what}: map_location='meta' holds no values, so there is nothing to load the "
                         "weights into; rrsis.hub.model_from_config builds the model on the meta device")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index or 0) >= count:
            raise ValueError(f"{what}: map_location={str(device)!r} but this process sees {count} CUDA "
                             "device(s) (torch.cuda.is_available() / CUDA_VISIBLE_DEVICES); use \"cpu\"")
    return device


def check_repo_id(repo_id: str, what: str) -> None:
    """Raise a ``ValueError`` naming ``what`` when ``repo_id`` is not a valid Hub repo id."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise ValueError(f"{what} {repo_id!r} is neither an existing local path nor a valid Hub repo id ({exc})") from None


def read_safetensors_header(path: PathLike) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``name -> (dtype, shape)`` of a safetensors file, read from its header alone (no tensor
    data is read, whatever the file's size).

    Raises:
        CheckpointError: the header is unreadable (truncated, corrupt or not safetensors).
    """
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            out = {}
            for key in fh.keys():  # noqa: SIM118  (safe_open is not iterable)
                part = fh.get_slice(key)
                out[key] = (str(part.get_dtype()), tuple(int(v) for v in part.get_shape()))
            return out
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({exc}); it is truncated or corrupt. "
            "Delete it and download or save it again."
        ) from None


def find_weights_file(directory: PathLike) -> Path:
    """The weight file of a checkpoint directory: ``model.safetensors`` > its shard index
    ``model.safetensors.index.json`` > ``pytorch_model.bin`` > ``pytorch_model.bin.index.json``
    > ``model.pth`` > the single ``*.safetensors`` > the single legacy file. An index is read
    with its shards by :func:`rrsis.hub.weights.read_weights`.

    Raises:
        CheckpointError: no candidate, or several equally likely ones.
    """
    directory = Path(directory)
    for name in PREFERRED_WEIGHT_NAMES:
        if (directory / name).is_file():
            return directory / name
    for suffixes in (SAFE_SUFFIXES, LEGACY_SUFFIXES):
        found = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
        if len(found) == 1:
            return found[0]
        if found:
            names = ", ".join(p.name for p in found)
            raise CheckpointError(f"{directory}: several candidate weight files ({names}); pass the file itself")
    raise CheckpointError(
        f"{directory}: no weight file (looked for {', '.join(PREFERRED_WEIGHT_NAMES)}, "
        f"then *{'/*'.join(SAFE_SUFFIXES + LEGACY_SUFFIXES)})"
    )


def read_state_dict(path: PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a weight file without executing code from it.

    Args:
        path: ``.safetensors`` (read with safetensors) or a legacy ``.pth/.pt/.bin/.ckpt/.tar``
            (``torch.load(weights_only=True)``: tensors and plain containers only).
        map_location: device the tensors are loaded onto.

    Returns:
        The stored mapping (for legacy files possibly nested, see :func:`unwrap_state_dict`).

    Raises:
        CheckpointError: the file is truncated, corrupt, of an unknown format, or holds
            Python objects that a safe load refuses.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weight file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in SAFE_SUFFIXES:
        device = str(map_location) if isinstance(map_location, torch.device) else map_location
        try:
            return load_file(str(path), device=device)
        except SafetensorError as exc:
            raise CheckpointError(
                f"{path}: not a readable safetensors file ({exc}); it is truncated or corrupt. "
                "Delete it and download or save it again."
            ) from None
    if suffix in LEGACY_SUFFIXES:
        try:
            obj = weights_only_load(path, map_location=map_location)
        except pickle.UnpicklingError as exc:
            # torch's message opens with advice to load it anyway (unsafe): never passed on.
            first = load_failure(exc)
            raise CheckpointError(
                f"{path}: holds Python objects besides tensors and plain data ({first}). rrsis reads "
                "legacy checkpoints with torch.load(weights_only=True) only and will not unpickle "
                "arbitrary objects; re-save just the state dict (or convert it to safetensors)."
            ) from None
        except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as exc:
            raise CheckpointError(f"{path}: cannot read checkpoint ({load_failure(exc)}); it is truncated or "
                                  "corrupt") from None
        if not isinstance(obj, Mapping):
            raise CheckpointError(f"{path}: expected a state dict (a mapping), got {type(obj).__name__}")
        return dict(obj)
    raise CheckpointError(
        f"{path}: unknown weight format {suffix or '(no suffix)'!r}; expected "
        f"{', '.join(SAFE_SUFFIXES + LEGACY_SUFFIXES)}"
    )


def not_a_folder(path: Path) -> str:
    """Why ``from_pretrained(path)`` refuses a file, and how that file loads: a checkpoint of
    ``rrsis train`` (``format: rrsis-train-state``, read by the engine with its run's model
    folder) or a bare weight file."""
    try:
        obj = weights_only_load(path, map_location="cpu", mmap=True)
    except Exception:  # noqa: BLE001  (not a zip pickle, or not torch's at all: the generic advice)
        obj = None
    if isinstance(obj, Mapping) and obj.get("format") == "rrsis-train-state":
        return (f"{path} is a checkpoint of rrsis train (step {obj.get('step')}): its weights load into the model of "
                "its run's best/ or final/ folder with rrsis.engine.model_from_checkpoint(path), and rrsis evaluate "
                "--model takes the file itself; from_pretrained needs a model directory (config.json and "
                "model.safetensors)")
    return (f"{path} is a file; from_pretrained needs the directory holding config.json and model.safetensors (a "
            "bare weight file loads with model.load_state_dict(rrsis.hub.read_state_dict(path)))")


def unwrap_state_dict(obj: Mapping[str, Any], source: str, keys: Sequence[str] = ("state_dict", "model")) -> dict[str, torch.Tensor]:
    """The flat ``name → tensor`` mapping inside a training checkpoint.

    Training checkpoints nest the weights (``{"model": ..., "optimizer": ..., "epoch": ...}``);
    the first of ``keys`` that holds a mapping is used. The result must hold only tensors.
    """
    for key in keys:
        inner = obj.get(key)
        if isinstance(inner, Mapping):
            obj = inner
            break
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{source}: not a flat state dict; entries {bad[:5]} are not tensors "
            f"(top-level keys: {sorted(obj)[:10]})"
        )
    return dict(obj)


def tokenizer_vocab_check(vocab_size: int, model_vocab: int, source: str) -> None:
    """Refuse a vocabulary with ids the model's embedding table cannot look up."""
    if vocab_size > model_vocab:
        raise CheckpointError(
            f"{source}: the vocabulary has {vocab_size} tokens but the model's text embedding has "
            f"{model_vocab} rows (text_vocab_size); ids beyond it could not be embedded"
        )


def _version() -> str:

    return __version__
