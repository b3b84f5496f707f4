"""Part weights for a freshly built model: ImageNet Swin (or ELSA-Swin) and BERT.

``create_model(name, pretrained=True)`` calls :func:`load_pretrained_parts`. By default the
Swin weights come from timm's Hub repo of the matching size (``timm/swin_base_patch4_window12_384.ms_in22k``
for embed 128, window 12) and BERT from ``bert-base-uncased``; each part also accepts a local
file, a local directory, a Hub repo id, a timm tag or an in-memory state dict, so the same
code path serves offline users. Parameters with no counterpart in these checkpoints (ELSA
attention, fusion, GEM, gates, per-stage norms, neck, head) keep their initialisation and are
listed in the returned :class:`~rrsis.hub.report.LoadReport`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from huggingface_hub.errors import LocalEntryNotFoundError
from timm.layers import resize_rel_pos_bias_table
from timm.models import get_pretrained_cfg
from torch import nn

from ..backbones.elsa import ELSABlock, elsa_swin_checkpoint_filter, is_elsa_swin_checkpoint
from ..backbones.swin import INPUT_CONV, SwinBlock, adapt_input_channels, swin_checkpoint_filter
from ..text.tokenizer import Tokenizer
from .files import (
    CheckpointError,
    check_repo_id,
    find_weights_file,
    hub_file,
    hub_unreachable,
    looks_like_path,
    tokenizer_vocab_check,
    unwrap_state_dict,
)
from .report import LoadReport, alias_groups, apply_tensors, format_mismatches
from .weights import locate_weights, read_weights

__all__ = ["DEFAULT_TEXT_WEIGHTS", "PartSource", "default_swin_weights", "load_pretrained_parts"]

logger = logging.getLogger(__name__)

PartSource = None | bool | str | os.PathLike | Mapping[str, torch.Tensor]
DEFAULT_TEXT_WEIGHTS = "bert-base-uncased"
# The rrsis text arguments that must equal bert-base-uncased's for its weights to fit.
BERT_BASE = {
    "hidden_size": 768, "num_heads": 12, "intermediate_size": 3072, "vocab_size": 30522,
    "max_positions": 512, "type_vocab_size": 2,
}
# ImageNet-22k Swin checkpoints by (embed_dim, depths, num_heads) and window size: the
# backbones LAVT and RMSIN start from (Swin-B, window 12, 384 px) and its smaller siblings.
SWIN_IN22K = {
    (128, (2, 2, 18, 2), (4, 8, 16, 32)): {
        12: "swin_base_patch4_window12_384.ms_in22k", 7: "swin_base_patch4_window7_224.ms_in22k",
    },
    (192, (2, 2, 18, 2), (6, 12, 24, 48)): {
        12: "swin_large_patch4_window12_384.ms_in22k", 7: "swin_large_patch4_window7_224.ms_in22k",
    },
    (96, (2, 2, 18, 2), (3, 6, 12, 24)): {7: "swin_small_patch4_window7_224.ms_in22k"},
    (96, (2, 2, 6, 2), (3, 6, 12, 24)): {7: "swin_tiny_patch4_window7_224.ms_in22k"},
}
_BERT_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")


def default_swin_weights(config: Mapping[str, Any]) -> str:
    """The timm ImageNet-22k tag whose shapes fit a ``backbone`` config node (``embed_dim``,
    ``depths``, ``num_heads``, ``window_size``); the closest window is chosen and the
    relative-position tables are resampled on load.

    Raises:
        ValueError: no published Swin has this size.
    """
    key = (config.get("embed_dim"), tuple(config.get("depths", ())), tuple(config.get("num_heads", ())))
    tags = SWIN_IN22K.get(key) if config.get("patch_size", 4) == 4 else None
    if not tags:
        raise ValueError(
            f"no ImageNet Swin checkpoint has embed_dim={key[0]}, depths={list(key[1])}, num_heads={list(key[2])}; "
            "pass swin_weights=<file, directory, timm tag or Hub repo> (rrsis train: --model.swin_weights; "
            "False skips it), "
            "or build with pretrained=False"
        )
    window = config.get("window_size", 7)
    return tags[min(tags, key=lambda w: (abs(w - window), -w))]


def _check_bert_base(config: Mapping[str, Any]) -> None:
    """``config``: the model's ``text`` node."""
    off = {k: config.get(k) for k, v in BERT_BASE.items() if config.get(k, v) != v}
    if off or config.get("num_layers", 12) > 12:
        raise ValueError(
            f"{DEFAULT_TEXT_WEIGHTS} does not fit this text encoder ({off or 'more than 12 layers'} differ from "
            f"{BERT_BASE}); pass text_weights=<file, directory or Hub repo> (rrsis train: --model.text_weights; False skips it)"
        )


@dataclass
class _Fetched:
    tensors: dict[str, torch.Tensor]
    location: str
    directory: Path | None = None  # local directory holding sibling files (vocab.txt, config.json)
    repo: str | None = None  # Hub repo the weights came from
    unreachable: str = ""  # why the Hub could not be reached: its sibling files come from the cache only


@dataclass
class _Mapped:
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    resized: dict[str, tuple[tuple, tuple]] = field(default_factory=dict)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)


def _timm_repo(name: str) -> tuple[str, str | None] | None:
    """``swin_base_patch4_window12_384.ms_in22k`` → (``timm/...`` repo, file name), or ``None``."""
    try:
        cfg = get_pretrained_cfg(name)
    except RuntimeError:
        return None
    if cfg is None or not cfg.hf_hub_id:
        return None
    return cfg.hf_hub_id, cfg.hf_hub_filename


def _fetch(part: str, source, *, cache_dir, local_files_only, token) -> _Fetched:
    arg = f"{part}_weights"
    if isinstance(source, Mapping):
        return _Fetched(unwrap_state_dict(source, f"{arg} (state dict)"), f"{arg} (state dict)")
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.is_file():
        return _Fetched(unwrap_state_dict(read_weights(path), str(path)), str(path), path.parent)
    if path.is_dir():
        file = find_weights_file(path)
        return _Fetched(unwrap_state_dict(read_weights(file), str(file)), str(file), path)
    if looks_like_path(text):
        raise FileNotFoundError(f"{arg}={text!r}: no such file or directory")
    repo, filename = text, None
    if part == "swin" and "/" not in text:
        found = _timm_repo(text)
        if found is not None:
            repo, filename = found
    check_repo_id(repo, f"{arg}=")
    unreachable = "" if local_files_only else hub_unreachable(repo, filename or "model.safetensors", token=token)
    kw = {
        "cache_dir": cache_dir, "local_files_only": local_files_only or bool(unreachable), "token": token,
        "local_hint": f"pass {arg}= (rrsis train: --model.{arg}) the path of a local copy of that file or of the "
                      "repo's directory",
        "offline_reason": unreachable,
    }
    if filename:
        file = hub_file(repo, filename, **kw)
    else:
        # timm's order: safetensors first, the pickle only where a repo has nothing else (or, offline,
        # where the cache holds nothing else: `hf download` records no absent file).
        file = locate_weights(lambda name, absent_ok: hub_file(repo, name, absent_ok=absent_ok, **kw), repo)
    location = f"{repo}/{Path(file).name}"
    return _Fetched(unwrap_state_dict(read_weights(file), location), location, repo=repo, unreachable=unreachable)


def _map_swin(state: dict[str, torch.Tensor], model: nn.Module, model_state: Mapping[str, torch.Tensor]) -> _Mapped:
    """ImageNet Swin (timm, Microsoft) or ELSA-Swin weights → ``backbone.*``, through the
    backbone's own checkpoint filters; attention loads only into a block of the same kind."""
    if is_elsa_swin_checkpoint(state):
        state = elsa_swin_checkpoint_filter(state)
    state = swin_checkpoint_filter(state)
    kinds = _block_kinds(state)
    out = _Mapped()
    for key, value in state.items():
        target = "backbone." + key
        if target not in model_state:
            out.unexpected.append(key)
            continue
        block = re.match(r"layers\.(\d+)\.blocks\.(\d+)\.attn\.", key)
        module = model.get_submodule(f"backbone.{block.group(0)[:-len('.attn.')]}") if block else None
        if block and _kind(module) != kinds.get(block.group(0)):
            out.unexpected.append(key)  # Swin attention into an ELSA block or back: only norms and MLP are shared
            continue
        want = tuple(model_state[target].shape)
        if key == INPUT_CONV and value.dim() == 4 and len(want) == 4 and value.shape[1] != want[1] \
                and (value.shape[0], *value.shape[2:]) == (want[0], *want[2:]):
            # RGB filters for a model of another band count (backbone.in_chans), as timm adapts them
            out.resized[target] = (tuple(value.shape), want)
            value = adapt_input_channels(value, want[1])
        if key.endswith("relative_position_bias_table") and tuple(value.shape) != want and value.shape[-1] == want[-1]:
            old = tuple(value.shape)
            with warnings.catch_warnings():
                # timm's interpolation trips torch deprecation notices a user can do nothing about.
                warnings.simplefilter("ignore", UserWarning)
                value = resize_rel_pos_bias_table(value, new_window_size=module.attn.window_size, new_bias_shape=want)
            out.resized[target] = (old, want)
        if tuple(value.shape) != want:
            out.mismatched.append((target, tuple(value.shape), want))
            continue
        out.tensors[target] = value
    return out


def _kind(block: nn.Module | None) -> str | None:
    return "swin" if isinstance(block, SwinBlock) else "elsa" if isinstance(block, ELSABlock) else None


def _block_kinds(state: Mapping[str, torch.Tensor]) -> dict[str, str]:
    """``layers.i.blocks.j.attn.`` → the kind of attention the checkpoint holds there."""
    kinds = {}
    for key in state:
        m = re.match(r"(layers\.\d+\.blocks\.\d+\.attn\.)(qkv|relative_position_bias_table|pre_proj|attn_gen)", key)
        if m:
            kinds[m.group(1)] = "swin" if m.group(2) in ("qkv", "relative_position_bias_table") else "elsa"
    return kinds


def _map_bert(state: dict[str, torch.Tensor], model_state: Mapping[str, torch.Tensor]) -> _Mapped:
    """BERT keys (``bert.embeddings...`` of the Hub's BertForPreTraining files, or a bare
    ``embeddings...`` BertModel) → ``text_encoder.bert.*``; pooler and pre-training heads unused."""
    out = _Mapped()
    for key, value in state.items():
        name = key.removeprefix("bert.")
        # The original BERT checkpoints name LayerNorm parameters gamma/beta.
        name = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name))
        if name in _BERT_BUFFERS:
            continue
        target = "text_encoder.bert." + name
        if target not in model_state:
            out.unexpected.append(key)
            continue
        want = tuple(model_state[target].shape)
        if tuple(value.shape) != want:
            out.mismatched.append((target, tuple(value.shape), want))
            continue
        out.tensors[target] = value
    return out


def _beside(fetched: _Fetched, name: str, *, cache_dir, local_files_only, token,
            missing: str | None = None) -> Path | None:
    """The file ``name`` beside the fetched weights (their folder, or their Hub repo), or ``None``;
    a Hub file that cannot be had offline is ``None`` too (with a warning saying ``missing``)."""
    if fetched.directory is not None and (fetched.directory / name).is_file():
        return fetched.directory / name
    if fetched.repo is None:
        return None
    try:
        found = hub_file(fetched.repo, name, absent_ok=True, cache_dir=cache_dir, token=token,
                         local_files_only=local_files_only or bool(fetched.unreachable),
                         offline_reason=fetched.unreachable)
    except LocalEntryNotFoundError as exc:
        if missing:
            logger.warning("%s: %s", missing, exc)
        return None
    return Path(found) if found else None


def _bert_config_check(fetched: _Fetched, model: nn.Module, *, cache_dir, local_files_only, token) -> None:
    # Heads and activation do not show in tensor shapes, yet a mismatch silently breaks BERT.
    path = _beside(fetched, "config.json", cache_dir=cache_dir, local_files_only=local_files_only,
                   token=token)
    if path is None:
        return
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return
    mine = model.text_encoder.config
    for theirs, ours in (("num_attention_heads", mine.num_attention_heads), ("hidden_act", mine.hidden_act)):
        if theirs in cfg and cfg[theirs] != ours:
            raise CheckpointError(f"{path}: {theirs}={cfg[theirs]!r} but the model's text encoder has {ours!r}")


def _text_tokenizer(fetched: _Fetched, model: nn.Module, *, cache_dir, local_files_only, token):
    vocab = _beside(fetched, "vocab.txt", cache_dir=cache_dir, local_files_only=local_files_only,
                    token=token, missing="model.tokenizer stays None")
    if vocab is None:
        logger.info("no vocab.txt next to the text weights (%s): model.tokenizer stays None", fetched.location)
        return None
    try:
        tok = Tokenizer(vocab, max_tokens=model.config["text"]["max_tokens"])
    except ValueError as exc:
        raise CheckpointError(f"{vocab}: unusable vocabulary ({exc})") from None
    tokenizer_vocab_check(len(tok), model.text_encoder.vocab_size, str(vocab))
    return tok


def load_pretrained_parts(
    model: nn.Module,
    swin: PartSource = None,
    text: PartSource = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: bool | str | None = None,
) -> LoadReport:
    """Load ImageNet Swin weights into ``model.backbone`` and BERT weights into
    ``model.text_encoder`` (plus its ``vocab.txt`` as ``model.tokenizer``).

    Key mapping is the backbone's own (``swin_checkpoint_filter`` in ``backbones/swin.py``:
    timm and Microsoft layouts; ``elsa_swin_checkpoint_filter`` in ``backbones/elsa.py``: the
    official ELSA-Swin checkpoints); relative-position bias tables of another window size are
    resampled; the RGB patch embedding of a model with another band count (``in_chans``) is
    adapted as timm adapts it (:func:`rrsis.backbones.swin.adapt_input_channels`). Attention loads only into a block of the same kind: from a plain Swin checkpoint,
    ELSA stages get ``norm1``, ``norm2`` and ``mlp`` only; from ELSA-Swin, everything. BERT ``bert.*``/bare keys go to
    ``text_encoder.bert.*`` (legacy ``LayerNorm.gamma/beta`` renamed); pooler and
    pre-training heads are unused.

    Args:
        model: a freshly built rrsis model.
        swin: ``None`` (timm's ImageNet-22k Swin of the model's size, from the Hub), a local
            ``.safetensors``/``.pth``/``.bin`` file (legacy ones via ``weights_only``), a local
            directory, a timm tag (``swin_base_patch4_window12_384.ms_in22k``), a Hub repo id,
            a state dict, or ``False`` to skip the part.
        text: likewise for BERT (default ``bert-base-uncased``); a ``vocab.txt`` beside the
            weights (or in the repo) becomes ``model.tokenizer``.
        cache_dir, local_files_only, token: forwarded to every Hub download.

    Returns:
        The :class:`LoadReport` (also logged): loaded keys per part, missing rrsis keys,
        unused checkpoint keys, resampled tables.

    Raises:
        CheckpointError: a checkpoint tensor whose shape does not fit (other than the tables);
            the model is left untouched.
        ValueError: a default was requested for a model size no published checkpoint has.
    """
    config = model.config
    # Decide every source before downloading anything, so an impossible default fails fast.
    swin_source = default_swin_weights(config["backbone"]) if swin is None else swin
    if text is None:
        _check_bert_base(config["text"])
    text_source = DEFAULT_TEXT_WEIGHTS if text is None else text
    hub = {"cache_dir": cache_dir, "local_files_only": local_files_only, "token": token}
    state = model.state_dict()
    report = LoadReport()
    mapped: dict[str, _Mapped] = {}
    tokenizer = None
    if swin_source is not False:
        fetched = _fetch("swin", swin_source, **hub)
        mapped["swin"] = _map_swin(fetched.tensors, model, state)
        report.sources["swin"] = fetched.location
    if text_source is not False:
        fetched = _fetch("text", text_source, **hub)
        _bert_config_check(fetched, model, **hub)
        mapped["text"] = _map_bert(fetched.tensors, state)
        report.sources["text"] = fetched.location
        tokenizer = _text_tokenizer(fetched, model, **hub)
    bad = [m for part in mapped.values() for m in part.mismatched]
    if bad:
        where = "; ".join(f"{p}: {report.sources[p]}" for p, m in mapped.items() if m.mismatched)
        raise CheckpointError(
            f"part weights do not fit {getattr(model, 'arch', type(model).__name__)} ({where}); "
            f"nothing was loaded:\n{format_mismatches(bad)}"
        )
    merged: dict[str, torch.Tensor] = {}
    for part, m in mapped.items():
        merged.update(m.tensors)
        report.loaded[part] = sorted(m.tensors)
        report.unexpected[part] = m.unexpected
        report.resized.update(m.resized)
    apply_tensors(model, merged, "part weights")
    if tokenizer is not None:
        model.tokenizer = tokenizer
    groups = alias_groups(state)
    report.missing = sorted(k for k in state if not (groups[k] & merged.keys()))
    logger.info("pretrained parts for %s:\n%s", getattr(model, "arch", ""), report.summary())
    return report
