"""Convert official checkpoints into rrsis ``save_pretrained`` directories: the driver.

The driver knows no architecture: each model module registers how to read its official
layout in :data:`rrsis.registry.CHECKPOINT_FORMATS` (``LavtCheckpoint`` in
``models/lavt.py``, ``RmsinCheckpoint`` in ``models/rmsin.py``): its key map, how to infer the
architecture from tensor shapes, and value checks. The driver reads the file with
``torch.load(weights_only=True)`` only, asks the format, and writes nothing unless every
official key is consumed and every rrsis key is filled with a tensor of the right shape.
"""

from __future__ import annotations

import argparse
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ._torch_load import load_failure, weights_only_load
from .factory import create_model
from .hub import save_pretrained
from .hub.save_check import unwrapped_state
from .registry import CHECKPOINT_FORMATS, list_pretrained, pretrained_cfg
from .text.tokenizer import Tokenizer

__all__ = [
    "ConversionPlan",
    "conversion_origin",
    "convert_checkpoint",
    "detect_architecture",
    "infer_model_args",
    "load_official_checkpoint",
    "map_official_key",
    "plan_conversion",
]


def load_official_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Read an official checkpoint with weights-only unpickling.

    Args:
        path: a ``.pth`` file written by the official ``train.py`` (or a bare state dict).

    Returns:
        ``(state, args)``: one flat state dict (a separate ``bert_model`` is merged in under
        ``text_encoder.``) and the builder's argparse values (``{}`` when absent).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"cannot read {path}: empty file (0 bytes)")
    # train.py stores its argparse.Namespace; allow exactly that class besides tensors.
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = weights_only_load(path, map_location="cpu")
    except pickle.UnpicklingError as exc:
        raise ValueError(
            f"cannot read {path} with weights-only loading ({load_failure(exc)}): rrsis reads {_ACCEPTED}, "
            "and never unpickles anything else"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise ValueError(f"cannot read {path} with weights-only loading: {load_failure(exc)}") from None
    if not isinstance(obj, Mapping):
        # A malformed file is bad input (ValueError, reported by the CLI), not a bug.
        raise ValueError(f"{path}: expected a dict checkpoint, got {type(obj).__name__}")
    if "model" in obj:
        model = obj["model"]
        bert = obj.get("bert_model")
    elif any(str(k).startswith(("backbone.", "classifier.")) for k in obj):
        model, bert = obj, None  # a bare state dict
    else:
        raise ValueError(
            f"{path}: no 'model' entry and no backbone./classifier. keys; top-level keys: "
            f"{sorted(map(str, obj))[:10]}"
        )
    state = _tensor_dict(model, f"{path}['model']")
    state = unwrapped_state(state)  # keys of a DDP-wrapped (module.) or compiled (_orig_mod.) model
    if bert is not None:
        for k, v in _tensor_dict(bert, f"{path}['bert_model']").items():
            key = "text_encoder." + k
            if key in state:
                raise ValueError(f"{key} is in both 'model' and 'bert_model'")
            state[key] = v
    args = obj.get("args") if "model" in obj else None
    if isinstance(args, argparse.Namespace):
        args = vars(args)
    return state, dict(args) if isinstance(args, Mapping) else {}


_ACCEPTED = ("a torch.save file of tensors in plain dicts, lists and numbers, with train.py's "
             "argparse.Namespace as its 'args' (an official checkpoint or a bare state dict)")


def _tensor_dict(d: Any, where: str) -> dict[str, torch.Tensor]:
    if not isinstance(d, Mapping):
        raise ValueError(f"{where} is not a state dict (got {type(d).__name__})")
    bad = [str(k) for k, v in d.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{where}: entries that are not tensors: {bad[:10]}")
    return {str(k): v for k, v in d.items()}


# ---------------------------------------------------------------------------- asking the model


def _shapes(shapes: Mapping[str, Any]) -> dict[str, tuple]:
    return {k: (tuple(v.shape) if isinstance(v, torch.Tensor) else tuple(v)) for k, v in shapes.items()}


def detect_architecture(keys) -> str:
    """The registered official format that fits ``keys`` best."""
    keys = list(keys)
    scores = {name: CHECKPOINT_FORMATS.get(name).score(keys) for name in CHECKPOINT_FORMATS.names()}
    best = max(scores, key=scores.get) if scores else None
    if best is None or scores[best] == 0:
        raise ValueError(f"no registered model reads this checkpoint (formats: {', '.join(scores) or 'none'})")
    return best


def map_official_key(key: str, arch: str = "rmsin") -> str | None:
    """rrsis name of an official key under ``arch``'s map (``None``: a dropped entry)."""
    return CHECKPOINT_FORMATS.get(arch).map_key(key)


def infer_model_args(arch: str, shapes: Mapping[str, Any], **kw: Any) -> dict[str, Any]:
    """``create_model`` keywords of the rrsis ``arch`` model holding these official tensors
    (``text_heads=``, ``official_args=``: see the format's ``model_args``)."""
    return CHECKPOINT_FORMATS.get(arch).model_args(_shapes(shapes), **kw)


class ConversionPlan:
    """The validated official → rrsis key mapping for one checkpoint.

    Attributes:
        arch: target architecture. model_args: ``create_model`` keywords. config: the target
        model's config tree. key_map: official key → rrsis key (``None``: dropped).
        expected: rrsis key → shape of the target model's state dict.
    """

    def __init__(self, arch, model_args, config, key_map, expected):
        self.arch = arch
        self.model_args = model_args
        self.config = config
        self.key_map = key_map
        self.expected = expected


def _summarise(keys, limit: int = 12) -> str:
    keys = sorted(keys)
    more = f" … (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def plan_conversion(
    arch: str, shapes: Mapping[str, Any], *, text_heads: int | None = None, official_args: Mapping[str, Any] | None = None,
    max_params: int | None = None, max_activation_gib: float | None = None,
) -> ConversionPlan:
    """Infer the target model, map every official key and check that the two key sets meet.

    The target's keys and shapes come from a model built on the ``meta`` device, so planning a
    full-size conversion allocates no weights; ``max_params`` / ``max_activation_gib`` are
    :func:`rrsis.create_model`'s cost limits.

    Raises:
        ValueError: the checkpoint is of another registered format, or keys/shapes do not
            match; the message lists unconsumed official keys, unfilled rrsis keys and shape
            mismatches.
    """
    fmt = CHECKPOINT_FORMATS.get(arch)
    found = detect_architecture(shapes)
    if found != arch:
        raise ValueError(f"this checkpoint reads as {found.upper()}, not {arch.upper()}: use --arch {found}")
    shape_of = _shapes(shapes)
    model_args = fmt.model_args(shape_of, text_heads=text_heads, official_args=official_args)
    with torch.device("meta"):
        model = create_model(arch, **model_args, max_params=max_params, max_activation_gib=max_activation_gib)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    key_map = {k: fmt.map_key(k) for k in shape_of}
    targets: dict[str, str] = {}
    unconsumed, duplicates, mismatched = [], [], []
    for src, dst in key_map.items():
        if dst is None:
            continue
        if dst not in expected:
            unconsumed.append(src)
        elif dst in targets:
            duplicates.append(f"{src} and {targets[dst]} → {dst}")
        else:
            targets[dst] = src
            if shape_of[src] != expected[dst]:
                mismatched.append(f"{src} {list(shape_of[src])} → {dst} {list(expected[dst])}")
    unfilled = [k for k in expected if k not in targets]
    problems = []
    if unconsumed:
        problems.append(f"{len(unconsumed)} official keys not consumed: {_summarise(unconsumed)}")
    if unfilled:
        problems.append(f"{len(unfilled)} rrsis keys not filled: {_summarise(unfilled)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches: {_summarise(mismatched, 6)}")
    if duplicates:
        problems.append(f"keys mapped twice: {_summarise(duplicates, 6)}")
    if problems:
        described = {k: model_args[k] for k in ("embed_dim", "depths", "num_heads", "window_size") if k in model_args}
        raise ValueError(f"checkpoint does not match the inferred {arch} architecture ({described}):\n  "
                         + "\n  ".join(problems))
    return ConversionPlan(arch, model_args, model.config, key_map, expected)


def convert_state_dict(state: Mapping[str, torch.Tensor], plan: ConversionPlan) -> dict[str, torch.Tensor]:
    """Apply a plan: rrsis state dict (contiguous copies, checkpoint dtypes)."""
    bad = CHECKPOINT_FORMATS.get(plan.arch).check_values(state, plan.key_map, plan.model_args)
    if bad:
        raise ValueError("corrupted checkpoint:\n  " + "\n  ".join(bad[:12]))
    return {dst: state[src].detach().clone().contiguous() for src, dst in plan.key_map.items() if dst is not None}


def convert_checkpoint(
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    arch: str,
    text_heads: int | None = None,
    vocab: str | os.PathLike | None = None,
    max_tokens: int | None = None,
    overwrite: bool = False,
    max_params: int | None = None,
    max_activation_gib: float | None = None,
) -> Path:
    """Convert an official checkpoint into an rrsis pretrained directory.

    Args:
        checkpoint: official ``.pth`` file.
        out_dir: directory written atomically with :func:`rrsis.hub.save_pretrained`.
        arch: a registered official format (``rrsis.convert.CHECKPOINT_FORMATS``: ``lavt``, ``rmsin``).
        text_heads: BERT attention heads (default hidden/64; 12 for BERT-base).
        vocab: a BERT ``vocab.txt`` to save with the model as its tokenizer.
        max_tokens: tokenizer length, saved as the model's ``text.max_tokens`` (``None``: the
            model's default, :data:`rrsis.text.MAX_TOKENS`).
        overwrite: allow writing into an existing non-empty ``out_dir``.
        max_params, max_activation_gib: the target model's cost limits, as in
            :func:`rrsis.create_model` (``None``: the environment's, then the defaults).

    Returns:
        the output directory; load it with :func:`rrsis.from_pretrained`.
    """
    CHECKPOINT_FORMATS.get(arch)  # an unknown format fails before the file is read
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise ValueError(f"{out_dir} exists and is not empty (pass overwrite=True / --overwrite)")
    state, official_args = load_official_checkpoint(checkpoint)
    limits = {"max_params": max_params, "max_activation_gib": max_activation_gib}
    plan = plan_conversion(arch, state, text_heads=text_heads, official_args=official_args, **limits)
    tensors = convert_state_dict(state, plan)
    # Built on the meta device and given the converted tensors themselves: no random init of a
    # 240 M-parameter model just to overwrite it. Only persistent entries are saved, all real.
    with torch.device("meta"):
        model = create_model(arch, **plan.model_args, max_tokens=max_tokens, **limits)
    tokenizer = None
    if vocab is not None:
        tokenizer = Tokenizer(vocab, max_tokens=model.config["text"]["max_tokens"])
        if len(tokenizer) != plan.model_args["text_vocab_size"]:
            raise ValueError(
                f"vocabulary {vocab} has {len(tokenizer)} tokens but the checkpoint's BERT "
                f"has {plan.model_args['text_vocab_size']}"
            )
    model.load_state_dict(tensors, strict=True, assign=True)
    model.tokenizer = tokenizer
    return save_pretrained(model, out_dir, origin=conversion_origin(arch, checkpoint))


def conversion_origin(arch: str, checkpoint: str | os.PathLike) -> str:
    """The model card's "Source" text of a converted model: the official architecture, the file's
    name, and where the registry's tag for that format (``extra={"convert": arch}``, e.g.
    ``lavt.official``) says the code and its licence are; no licence is named when none is registered."""
    text = (f"Converted with `rrsis convert --arch {arch}` from an official {arch.upper()} checkpoint "
            f"(`{Path(checkpoint).name}`, in the layout of the official code's train.py); rrsis did not train "
            "these weights.")
    tags = [t for t in list_pretrained(f"{arch}.*") if pretrained_cfg(t).extra.get("convert") == arch]
    if not tags:
        return text + " rrsis records no licence for this format: the checkpoint's source states its terms."
    cfg = pretrained_cfg(tags[0])
    where = cfg.swin.split(" (")[0] if cfg.swin else ""
    return (text + (f" Official code: {where}." if where.startswith("http") else "")
            + f" Licence: {cfg.license or 'not recorded in rrsis; see the official repository'}"
            + f" (`rrsis models --info {tags[0]}`): check the terms of the checkpoint's source before using or "
              "sharing these weights.")
