"""Loading a saved model (``from_pretrained``) from a local directory or a Hub repo.

Loading a full model never fetches part weights (ImageNet Swin, bert-base-uncased): the model
is built with random parts and every tensor is then overwritten from ``model.safetensors``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from huggingface_hub.errors import LocalEntryNotFoundError
from torch import nn

from .._config import ConfigError
from .._finite import warn_non_finite
from .._version import __version__
from ..registry import _build_checked, build_from_config, is_model, list_models, probe_model
from ..text.tokenizer import Tokenizer
from .dtypes import check_config_dtype, resolve_dtype, torch_dtype_arg
from .files import (
    CheckpointError,
    check_device,
    check_not_a_loop,
    check_repo_id,
    hub_file,
    hub_unreachable,
    not_a_folder,
    tokenizer_vocab_check,
    unwrap_state_dict,
)
from .kwargs import refuse_hub_kwargs
from .local import check_local_folder
from .origin import remember_origin
from .plugin_record import plugin_note
from .ranker import RANKER_CONFIG_NAME, RANKER_WEIGHTS_NAME, attach_ranker, read_ranker
from .report import (
    LoadReport,
    alias_groups,
    apply_tensors,
    format_keys,
    format_mismatches,
    shape_mismatches,
)
from .save import (
    CARD_NAME,
    CONFIG_NAME,
    TOKENIZER_CONFIG_NAME,
    VOCAB_NAME,
    recover_interrupted_save,
)
from .weights import locate_weights, read_weights, weights_header

__all__ = ["from_pretrained", "load_full_state_dict", "model_from_config", "read_config"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike
_TAKES = ("revision=, cache_dir=, local_files_only=, token=, strict=, map_location=, torch_dtype=, max_params=, "
          "max_activation_gib=")


class _Source:
    """A saved model's location: a local directory or a Hub repo (resolved through the cache)."""

    def __init__(self, ref: PathLike, revision, cache_dir, local_files_only, token) -> None:
        self.ref = str(ref)
        path = Path(ref).expanduser()
        check_not_a_loop(path, "from_pretrained")
        self.local = path if path.is_dir() else None
        if self.local is None:
            if path.is_file():
                raise CheckpointError(not_a_folder(path))
            check_local_folder(self.ref)  # a path meant as one (./nope, out/best/) that is not there
            check_repo_id(self.ref, "from_pretrained:")
        elif revision is not None:
            logger.warning("revision=%r is ignored for the local directory %s", revision, path)
        self.hub_kwargs = {"revision": revision, "cache_dir": cache_dir, "local_files_only": local_files_only, "token": token}
        self.unreachable = ""
        if self.local is None and not local_files_only:
            self.unreachable = hub_unreachable(self.ref, CONFIG_NAME, revision=revision, token=token)
            self.hub_kwargs["local_files_only"] = bool(self.unreachable)

    def file(self, name: str, absent_ok: bool = False) -> Path | None:
        if self.local is not None:
            path = self.local / name
            if path.is_file():
                return path
            check_not_a_loop(path, "from_pretrained", f"Point the link at the model's {name}, or put the file itself there")
            if absent_ok:
                return None
            raise FileNotFoundError(f"{self.local} has no {name}; is it a directory written by save_pretrained?")
        found = hub_file(self.ref, name, absent_ok=absent_ok, offline_reason=self.unreachable, **self.hub_kwargs)
        return None if found is None else Path(found)


def read_config(path: PathLike) -> dict[str, Any]:
    """Read and check a saved model's ``config.json``."""
    path = Path(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # recursion: nested too deeply
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    if (
        not isinstance(config, dict)
        or not isinstance(config.get("architecture"), str)
        or not isinstance(config.get("model_args", {}), dict)
    ):
        raise CheckpointError(
            f"{path}: expected {{\"architecture\": str, \"model_args\": {{...}}}}, got "
            f"{json.dumps(config)[:200]}"
        )
    check_config_dtype(config, str(path))
    return config


def model_from_config(config: Mapping[str, Any] | PathLike, *, _checked: bool = False, **overrides: Any) -> nn.Module:
    """Build the model a ``config.json`` describes, with fresh (random) weights.

    The stored tree is built as written (``"neck": null`` is a model without neck); flat
    ``model_args`` written by rrsis 0.1 are migrated. ``overrides`` follow
    :func:`rrsis.create_model`'s rule (``None`` = not given).

    Args:
        config: the parsed ``config.json`` or its path.
        **overrides: config nodes or flat aliases replacing the stored ones, and the limits
            ``max_params=`` / ``max_activation_gib=`` (:func:`rrsis.registry.probe_model`).

    Raises:
        CheckpointError: unknown architecture, or a config its architecture refuses (unknown
            or misplaced keys, values out of range, parts of another architecture).
    """
    source = "config"
    if not isinstance(config, Mapping):
        source = str(config)
        config = read_config(config)
    _known_architecture(config, source)
    arch = config["architecture"]
    try:
        build = _build_checked if _checked else build_from_config
        return build(arch, config.get("model_args", {}), **overrides)
    except ConfigError as exc:
        raise CheckpointError(
            f"{source} does not describe a valid {arch!r}: {exc} "
            f"{_written_by(config)}"
        ) from None


def _written_by(config: Mapping[str, Any]) -> str:
    written = str(config.get("rrsis_version", "?"))

    def release(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", v.split("+")[0])[:3])

    note = f"{plugin_note(config).lstrip()} (written by rrsis {written}, this is rrsis {__version__})".lstrip()
    if release(written) > release(__version__):
        # A newer rrsis may have added the knob; an older one cannot know it.
        note += "; the file comes from a newer rrsis: upgrade (pip install -U rrsis) to load it"
    return note


def _known_architecture(config: Mapping[str, Any], source: str) -> None:
    arch = config["architecture"]
    if not is_model(arch):
        raise CheckpointError(
            f"{source} names architecture {arch!r}, which this rrsis ({__version__}) does not know. "
            f"Known: {', '.join(list_models()) or '(none)'}. Import the module that registers it (rrsis "
            f"commands: --plugin MODULE or RRSIS_PLUGINS=MODULE), or upgrade rrsis (the file was written by "
            f"rrsis {config.get('rrsis_version', '?')}).{plugin_note(config)}"
        )


def from_pretrained(
    repo_id_or_dir: PathLike,
    revision: str | None = None,
    cache_dir: PathLike | None = None,
    local_files_only: bool = False,
    strict: bool = True,
    map_location: str | torch.device = "cpu",
    token: bool | str | None = None,
    max_params: int | None = None,
    max_activation_gib: float | None = None,
    torch_dtype: torch.dtype | str | None = None,
    **overrides: Any,
) -> nn.Module:
    """Load a model written by :func:`save_pretrained`, from a local directory or a Hub repo.

    Args:
        repo_id_or_dir: an existing local directory, or a Hub repo id ``org/name``.
        revision: Hub branch, tag or commit (ignored for directories).
        cache_dir: Hugging Face cache directory (default ``$HF_HUB_CACHE``).
        local_files_only: never touch the network; use the cache only. ``HF_HUB_OFFLINE=1``
            (read when ``huggingface_hub`` is imported) has the same effect.
        strict: raise when the checkpoint lacks model tensors or holds unknown ones. With
            ``strict=False`` the matching tensors load, the rest are logged and listed in
            ``model.load_report``. Wrong shapes always raise.
        map_location: device the model and its weights are placed on.
        token: Hub token for private repos.
        max_params, max_activation_gib: the largest parameter count and estimated activation
            memory (GiB, one training image) accepted from ``config.json``; defaults 2·10⁹ and
            64, or ``$RRSIS_MAX_PARAMS`` / ``$RRSIS_MAX_ACTIVATION_GIB``. Checked on the meta
            device, with the weights' header, before the model is built.
        torch_dtype: floating dtype of the returned model's parameters and buffers (a
            ``torch.dtype`` or its name, e.g. ``torch.bfloat16`` / ``"bfloat16"``); ``"auto"``:
            the dtype the model was saved in (``config.json``'s ``"torch_dtype"``; for a
            config written before rrsis recorded it, the weights' own dtype); ``None`` keeps
            float32, whatever dtype the weights were saved in. The weights are loaded in
            float32 and cast once (bfloat16 and float16 weights come back bit for bit).
        **overrides: constructor arguments replacing the saved ones (e.g. ``image_size=512``,
            ``drop_path_rate=0.0``); ones that change tensor shapes make the load fail.

    Returns:
        The model in eval mode, with ``model.tokenizer`` (``None`` when the checkpoint has no
        vocabulary), ``model.scene_ranker`` (the ranked whole-scene mode's second stage,
        ``None`` when the folder has no ``scene_ranker.json``), ``model.load_report`` and
        ``model.origin`` (the model card's "Source" section, which a re-save carries).

    Raises:
        CheckpointError: corrupt weights, unknown architecture, a config above the size
            bounds or limits, wrong shapes or dtypes (from the header), or (strict)
            missing/unexpected keys. Nothing is loaded partly.
        LocalEntryNotFoundError: offline and a required file is not in the cache.
    """
    if not str(repo_id_or_dir).strip():
        # Path("") is the current folder: an empty setting must not load whatever lies there.
        raise ValueError("from_pretrained: the model path or Hub repo id is empty; pass a directory "
                         "written by save_pretrained (\".\" for the current one) or org/name")
    refuse_hub_kwargs(overrides, "rrsis.from_pretrained", _TAKES,
                      repo=None if os.path.isdir(repo_id_or_dir) else str(repo_id_or_dir))
    dtype = torch_dtype_arg(torch_dtype)
    check_device(map_location, "from_pretrained")
    recover_interrupted_save(repo_id_or_dir)  # a local directory an interrupted save left aside
    src = _Source(repo_id_or_dir, revision, cache_dir, local_files_only, token)
    config_path = src.file(CONFIG_NAME)
    config = read_config(config_path)
    # model.safetensors, a shard index, or pytorch_model.bin: whichever is there (or cached)
    weights = locate_weights(lambda name, absent_ok: src.file(name, absent_ok=absent_ok), src.ref)
    limits = {"max_params": max_params, "max_activation_gib": max_activation_gib}
    # The config is built on the meta device first (no memory) and checked against the limits
    # and against the weights' header, so that neither a hostile config.json nor weights of
    # another shape cost a full build or a full read.
    probe = _probe(config, str(config_path), limits, overrides)
    used = {k: v for k, v in overrides.items() if v is not None}
    describe = f"{config['architecture']} built from {config_path}" + (f" with overrides {used}" if used else "")
    header = weights_header(weights)  # None for pickle-based weights
    if header is not None:
        check_header(header, probe.state_dict(), source=str(weights), describe=describe)
    tensors = unwrap_state_dict(read_weights(weights, map_location=map_location), str(weights))
    warn_non_finite(tensors, str(weights))  # a diverged checkpoint still loads (to be inspected), with a warning
    model = model_from_config(config, _checked=True, **overrides)
    tokenizer = _load_tokenizer(src, model)
    ranker = _load_ranker(src)
    model.to(map_location)
    report = load_full_state_dict(model, tensors, strict=strict, source=str(weights), describe=describe)
    model.tokenizer = tokenizer
    attach_ranker(model, ranker)
    model.load_report = report
    model.name_or_path = os.path.abspath(repo_id_or_dir) if os.path.isdir(repo_id_or_dir) else str(repo_id_or_dir)
    dtype = resolve_dtype(dtype, config, tensors)
    if dtype is not None:
        model.to(dtype)
    remember_origin(model, lambda: src.file(CARD_NAME, absent_ok=True))  # model.origin: the card's Source section, carried by a re-save
    return model.eval()


def _probe(config: Mapping[str, Any], source: str, limits: Mapping[str, Any], overrides: Mapping[str, Any]):
    _known_architecture(config, source)
    try:
        return probe_model(config["architecture"], config.get("model_args", {}), **limits, **overrides)[0]
    except ConfigError as exc:
        used = sorted(k for k, v in overrides.items() if v is not None)
        # An override the model does not take is the caller's typo, not the file's fault.
        source += f" with the keyword arguments {used}" if used else ""
        raise CheckpointError(
            f"{source} does not describe a valid {config['architecture']!r}: {exc} "
            f"{_written_by(config)}"
        ) from None


def check_header(header: Mapping[str, tuple], state: Mapping[str, torch.Tensor], *, source: str,
                 describe: str) -> None:
    """Refuse a safetensors header whose shapes or dtypes do not fit the model's state dict (read
    from the header alone: no tensor is loaded). Missing and unexpected names are left to the
    strict/non-strict rule of :func:`load_full_state_dict`."""
    bad = [(k, tuple(shape), tuple(state[k].shape)) for k, (dtype, shape) in header.items()
           if k in state and tuple(shape) != tuple(state[k].shape)]
    if bad:
        lines = "\n".join(f"  {k}: checkpoint {list(a)} vs model {list(b)}" for k, a, b in bad[:20])
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        raise CheckpointError(
            f"{source} does not fit {describe}: {len(bad)} tensors have other shapes (read from its "
            f"header, before anything was built):\n{lines}{more}"
        )
    floats = {"F16", "BF16", "F32", "F64"}
    odd = [(k, dtype) for k, (dtype, _) in header.items()
           if k in state and state[k].is_floating_point() and dtype not in floats]
    if odd:
        raise CheckpointError(
            f"{source}: tensors that are floating point in the model are stored as other types: "
            + ", ".join(f"{k} ({d})" for k, d in odd[:5])
        )


def load_full_state_dict(
    model: nn.Module, tensors: Mapping[str, torch.Tensor], *, strict: bool, source: str, describe: str = ""
) -> LoadReport:
    """Load a complete state dict into ``model``, checking every key and shape first.

    Raises:
        CheckpointError: shape mismatches (always); missing or unexpected keys (``strict``).
    """
    state = model.state_dict()
    target = describe or type(model).__name__
    bad = shape_mismatches(tensors, state)
    if bad:
        raise CheckpointError(
            f"{source} does not fit {target}: {len(bad)} tensors have other shapes:\n{format_mismatches(bad)}"
        )
    groups = alias_groups(state)
    given = {k for k in tensors if k in state}
    missing = sorted(k for k in state if not (groups[k] & given))
    unexpected = sorted(k for k in tensors if k not in state)
    if strict and (missing or unexpected):
        parts = [f"{source} does not match {target}:"]
        if missing:
            parts.append(f"{len(missing)} model tensors are missing from the checkpoint:\n{format_keys(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} checkpoint tensors are not in the model:\n{format_keys(unexpected)}")
        parts.append(
            "Pass strict=False to load the tensors that match (the rest are listed in model.load_report); "
            "official LAVT/RMSIN checkpoints need `rrsis convert` first."
        )
        raise CheckpointError("\n".join(parts))
    apply_tensors(model, {k: tensors[k] for k in given}, source)
    report = LoadReport(
        loaded={"model": sorted(given)}, missing=missing, unexpected={"model": unexpected} if unexpected else {},
        sources={"model": source},
    )
    if missing:
        logger.warning("%s (strict=False): %d model tensors not in the checkpoint keep their initial values:\n%s",
                       source, len(missing), format_keys(missing))
    if unexpected:
        logger.warning("%s (strict=False): %d checkpoint tensors are not in the model and were ignored:\n%s",
                       source, len(unexpected), format_keys(unexpected))
    return report


def _load_ranker(src: _Source):
    """The folder's scene ranker, or ``None``. A Hub cache that never asked for it (a model
    downloaded offline-first, before rankers existed) loads without one, as a missing vocabulary does."""
    try:
        config = src.file(RANKER_CONFIG_NAME, absent_ok=True)
    except LocalEntryNotFoundError:
        logger.info("%s: %s is not in the cache; loading without a scene ranker", src.ref, RANKER_CONFIG_NAME)
        return None
    return None if config is None else read_ranker(config, src.file(RANKER_WEIGHTS_NAME, absent_ok=True))


def _load_tokenizer(src: _Source, model: nn.Module):
    try:
        vocab = src.file(VOCAB_NAME, absent_ok=True)
        cfg_path = src.file(TOKENIZER_CONFIG_NAME, absent_ok=True) if vocab is not None else None
    except LocalEntryNotFoundError as exc:
        # The weights are here; a model without its vocabulary still runs forward.
        logger.warning("model.tokenizer is None (predict needs a vocabulary): %s", exc)
        return None
    if vocab is None:
        logger.info("%s has no %s: model.tokenizer is None; predict needs a vocabulary", src.ref, VOCAB_NAME)
        return None
    cfg: dict[str, Any] = {}
    if cfg_path is not None:
        try:
            cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise CheckpointError(f"{cfg_path}: not valid JSON ({exc})") from None
    # The tokenizer's own file wins (it is what the weights were trained with); the model's
    # text.max_tokens otherwise.
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{cfg_path}: expected a JSON object, got {type(cfg).__name__}")
    text = model.config["text"]
    max_tokens = cfg.get("max_tokens", text["max_tokens"])
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 2 <= max_tokens <= text["max_positions"]:
        # Each expression is padded to max_tokens: 10**9 would be an 8 GB tensor at predict.
        raise CheckpointError(
            f"{cfg_path}: max_tokens={max_tokens!r} does not fit the model, whose text encoder has "
            f"{text['max_positions']} positions (text.max_positions); use an integer in "
            f"2..{text['max_positions']} (the model's own is {text['max_tokens']})"
        )
    try:
        tok = Tokenizer(vocab, max_tokens=max_tokens, lowercase=cfg.get("lowercase", True))
    except ValueError as exc:
        raise CheckpointError(f"{vocab}: unusable vocabulary ({exc})") from None
    tokenizer_vocab_check(len(tok), model.text_encoder.vocab_size, str(vocab))
    return tok
