"""Convert official LAVT / RMSIN checkpoints into rrsis ``save_pretrained`` directories.

Official checkpoints (``train.py`` of yz93/LAVT-RIS and Lsan2401/RMSIN) hold
``{"model": state_dict, "bert_model"?: state_dict, "args": ..., ...}``. They are read with
``torch.load(weights_only=True)`` only. The architecture is inferred from the tensors
(Swin width, depths, heads, window; BERT sizes; decoder and CIM widths); only BERT's head
count is not recoverable from weights (``text_heads``, default ``hidden // 64``).

Key mapping, official → rrsis:

    backbone.layers.{i}.downsample.*   → backbone.layers.{i+1}.downsample.*  (mmseg merges
                                          at the end of a stage, timm at the start of the next)
    backbone.norm{i}.*                 → backbone.out_norms.{i}.*
    backbone.cim.*                     → neck.*                         (RMSIN)
    text_encoder.*                     → text_encoder.bert.*
    bert_model: embeddings.*, encoder.* → text_encoder.bert.*           (LAVT's ``lavt`` variant)
    *.relative_position_index          → dropped (a non-persistent buffer in timm; checked)
    text_encoder.embeddings.position_ids → dropped (non-persistent in transformers; checked)
    text_encoder.pooler.*              → dropped (LAVT/RMSIN never use BERT's pooler)
    everything else                    → unchanged

Nothing is written unless every official key is consumed and every rrsis key is filled
with a tensor of the right shape.
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "ARCHITECTURES",
    "ConversionPlan",
    "convert_checkpoint",
    "detect_architecture",
    "infer_model_args",
    "load_official_checkpoint",
    "map_official_key",
    "plan_conversion",
]

ARCHITECTURES = ("lavt", "rmsin")

# Keys only RMSIN checkpoints have; used to tell the two architectures apart.
_RMSIN_MARKERS = ("backbone.cim.", ".visual_residual.", ".visual_gate.", ".rounting_func.")
_DROPPED_SUFFIX = ".relative_position_index"
_POSITION_IDS = "text_encoder.embeddings.position_ids"
_POOLER = "text_encoder.pooler."


# ---------------------------------------------------------------------------- loading


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
    # train.py stores its argparse.Namespace; allow exactly that class besides tensors.
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        raise ValueError(
            f"cannot read {path} with weights-only loading (rrsis never unpickles arbitrary "
            f"code): {str(exc).splitlines()[0]}"
        ) from None
    if not isinstance(obj, Mapping):
        # A malformed file is bad input (ValueError, reported by the CLI), not a bug.
        raise ValueError(f"{path}: expected a dict checkpoint, got {type(obj).__name__}")  # noqa: TRY004
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
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
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


def _tensor_dict(d: Any, where: str) -> dict[str, torch.Tensor]:
    if not isinstance(d, Mapping):
        raise ValueError(f"{where} is not a state dict (got {type(d).__name__})")  # noqa: TRY004
    bad = [str(k) for k, v in d.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{where}: entries that are not tensors: {bad[:10]}")
    return {str(k): v for k, v in d.items()}


# ---------------------------------------------------------------------------- mapping


def map_official_key(key: str) -> str | None:
    """rrsis name of an official state-dict key, or ``None`` for a dropped entry."""
    if key.endswith(_DROPPED_SUFFIX) or key == _POSITION_IDS or key.startswith(_POOLER):
        return None
    m = re.match(r"backbone\.layers\.(\d+)\.downsample\.(.+)$", key)
    if m:
        return f"backbone.layers.{int(m.group(1)) + 1}.downsample.{m.group(2)}"
    m = re.match(r"backbone\.norm(\d+)\.(.+)$", key)
    if m:
        return f"backbone.out_norms.{m.group(1)}.{m.group(2)}"
    if key.startswith("backbone.cim."):
        return "neck." + key[len("backbone.cim."):]
    if key.startswith("text_encoder."):
        return "text_encoder.bert." + key[len("text_encoder."):]
    return key


def detect_architecture(keys) -> str:
    """``"rmsin"`` if the official keys contain RMSIN's parts, else ``"lavt"``."""
    return "rmsin" if any(m in k or k.startswith(m) for k in keys for m in _RMSIN_MARKERS) else "lavt"


# ---------------------------------------------------------------------------- inference


def _shape(shapes: Mapping[str, Any], key: str) -> tuple[int, ...]:
    if key not in shapes:
        raise ValueError(f"cannot infer the architecture: checkpoint has no {key!r}")
    return tuple(int(s) for s in shapes[key])


def _count(shapes: Mapping[str, Any], pattern: str) -> int:
    rx = re.compile(pattern)
    found = {int(m.group(1)) for k in shapes for m in [rx.match(k)] if m}
    return max(found) + 1 if found else 0


def infer_model_args(
    arch: str,
    shapes: Mapping[str, Any],
    *,
    text_heads: int | None = None,
    official_args: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Architecture arguments of the rrsis model matching an official checkpoint.

    Args:
        arch: ``"lavt"`` or ``"rmsin"``.
        shapes: official key → tensor shape (tensors or shape lists both work).
        text_heads: BERT attention heads (not recoverable from weights; default hidden/64).
        official_args: the checkpoint's argparse values (PWAM heads ``mha``, ``fusion_drop``).

    Returns:
        keyword arguments for ``create_model(arch, **args)``.
    """
    shapes = {k: (tuple(v.shape) if isinstance(v, torch.Tensor) else tuple(v)) for k, v in shapes.items()}
    embed_shape = _shape(shapes, "backbone.patch_embed.proj.weight")
    embed_dim, patch_size = embed_shape[0], embed_shape[-1]
    n_stages = _count(shapes, r"backbone\.layers\.(\d+)\.")
    if n_stages == 0:
        raise ValueError("cannot infer the architecture: no backbone.layers.* keys")
    depths, heads, windows = [], [], set()
    for i in range(n_stages):
        depth = _count(shapes, rf"backbone\.layers\.{i}\.blocks\.(\d+)\.")
        if depth == 0:
            raise ValueError(f"cannot infer the architecture: stage {i} has no blocks")
        depths.append(depth)
        table = _shape(shapes, f"backbone.layers.{i}.blocks.0.attn.relative_position_bias_table")
        heads.append(table[1])
        side = math.isqrt(table[0])
        if side * side != table[0] or side % 2 == 0:
            raise ValueError(f"stage {i}: relative_position_bias_table has {table[0]} rows, not (2w-1)²")
        windows.add((side + 1) // 2)
    if len(windows) != 1:
        raise ValueError(f"stages use different window sizes {sorted(windows)}")
    fc1 = _shape(shapes, "backbone.layers.0.blocks.0.mlp.fc1.weight")
    word = _shape(shapes, "text_encoder.embeddings.word_embeddings.weight")
    hidden = word[1]
    n_text_layers = _count(shapes, r"text_encoder\.encoder\.layer\.(\d+)\.")
    if text_heads is None:
        text_heads = max(1, hidden // 64)
    if hidden % text_heads:
        raise ValueError(f"BERT hidden size {hidden} is not divisible by text_heads={text_heads}")
    key_dim = _shape(shapes, "backbone.layers.0.fusion.image_lang_att.f_key.0.weight")[1]
    if key_dim != hidden:
        raise ValueError(f"PWAM reads {key_dim}-wide words but BERT's hidden size is {hidden}")
    classes = _shape(shapes, "classifier.conv1_1.weight")
    if classes[0] != 2:
        raise ValueError(f"classifier.conv1_1 has {classes[0]} outputs; rrsis models are 2-class")
    official_args = dict(official_args or {})
    mha = str(official_args.get("mha") or "")
    fusion_heads: Any = [int(h) for h in mha.split("-")] if mha else 1
    args: dict[str, Any] = {
        "embed_dim": embed_dim,
        "patch_size": patch_size,
        "depths": depths,
        "num_heads": heads,
        "window_size": windows.pop(),
        "mlp_ratio": fc1[0] / embed_dim,
        "qkv_bias": "backbone.layers.0.blocks.0.attn.qkv.bias" in shapes,
        "fusion_heads": fusion_heads,
        "fusion_drop": float(official_args.get("fusion_drop", 0.0) or 0.0),
        "text_vocab_size": word[0],
        "text_hidden_size": hidden,
        "text_layers": n_text_layers,
        "text_heads": int(text_heads),
        "text_intermediate_size": _shape(
            shapes, "text_encoder.encoder.layer.0.intermediate.dense.weight"
        )[0],
        "text_max_positions": _shape(shapes, "text_encoder.embeddings.position_embeddings.weight")[0],
        "text_type_vocab_size": _shape(shapes, "text_encoder.embeddings.token_type_embeddings.weight")[0],
        # None keeps the head's own default (C4 // 2), so configs equal the registered ones.
        "head_hidden": None if classes[1] == embed_dim * 2 ** (n_stages - 1) // 2 else classes[1],
    }
    if arch == "rmsin":
        proj = _shape(shapes, "backbone.cim.block.0.csa1.m.attention.proj.weight")
        grid = math.isqrt(proj[0])
        if grid * grid != proj[0]:
            raise ValueError(f"CIM token projection outputs {proj[0]} tokens, not a square grid")
        cim_hidden = _shape(shapes, "backbone.cim.down_channel.weight")[0]
        ff = _shape(shapes, "backbone.cim.block.0.ff.m.conv1.weight")[0]
        args["neck_args"] = {
            "grid": grid,
            "num_blocks": _count(shapes, r"backbone\.cim\.block\.(\d+)\."),
            "mlp_ratio": ff // cim_hidden,
        }
        args["head_args"] = {
            "kernel_number": _shape(shapes, "classifier.conv2_4.weight")[0],
            "dropout": 0.2,
        }
    elif arch != "lavt":
        raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHITECTURES}")
    return args


# ---------------------------------------------------------------------------- planning


class ConversionPlan:
    """The validated official → rrsis key mapping for one checkpoint.

    Attributes:
        arch: target architecture.
        model_args: ``create_model`` arguments.
        config: the full JSON config of the target model.
        key_map: official key → rrsis key (``None``: dropped buffer).
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
    arch: str,
    shapes: Mapping[str, Any],
    *,
    text_heads: int | None = None,
    official_args: Mapping[str, Any] | None = None,
) -> ConversionPlan:
    """Infer the target model, map every official key and check the two key sets meet.

    The target's keys and shapes come from a model built on the ``meta`` device, so
    planning a full-size conversion allocates no weights.

    Args:
        arch: ``"lavt"`` or ``"rmsin"``.
        shapes: official key → tensor or shape.
        text_heads, official_args: see :func:`infer_model_args`.

    Raises:
        ValueError: the checkpoint is of the other architecture, or keys/shapes do not
            match; the message lists the unconsumed official keys, the unfilled rrsis keys
            and the shape mismatches.
    """
    from ._registry import create_model

    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHITECTURES}")
    found = detect_architecture(shapes)
    if found != arch:
        markers = sorted({k for k in shapes for m in _RMSIN_MARKERS if m in k or k.startswith(m)})
        if found == "rmsin":
            raise ValueError(
                f"this is an RMSIN checkpoint, not {arch.upper()}: it has RMSIN-only keys "
                f"({_summarise(markers, 4)}); use --arch rmsin"
            )
        raise ValueError(
            f"this is a LAVT checkpoint, not {arch.upper()}: it has no RMSIN parts "
            "(backbone.cim.*, visual_residual, visual_gate, ARC rounting_func); use --arch lavt"
        )
    shape_of = {k: (tuple(v.shape) if isinstance(v, torch.Tensor) else tuple(v)) for k, v in shapes.items()}
    model_args = infer_model_args(arch, shape_of, text_heads=text_heads, official_args=official_args)
    with torch.device("meta"):
        model = create_model(arch, **model_args)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    config = {k: v for k, v in model.config.items() if k != "arch"}
    key_map = {k: map_official_key(k) for k in shape_of}
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
        raise ValueError(
            f"checkpoint does not match the inferred {arch} architecture "
            f"({_describe(model_args)}):\n  " + "\n  ".join(problems)
        )
    return ConversionPlan(arch, model_args, config, key_map, expected)


def _describe(args: Mapping[str, Any]) -> str:
    return (
        f"embed {args['embed_dim']}, depths {args['depths']}, heads {args['num_heads']}, "
        f"window {args['window_size']}, BERT {args['text_hidden_size']}×{args['text_layers']}"
    )


# ---------------------------------------------------------------------------- conversion


def _check_values(state: Mapping[str, torch.Tensor], plan: ConversionPlan) -> None:
    from timm.models.swin_transformer import get_relative_position_index

    w = plan.model_args["window_size"]
    index = get_relative_position_index(w, w)
    bad = []
    for k, v in state.items():
        if k.endswith(_DROPPED_SUFFIX):
            # Dropped because rrsis rebuilds it; a different stored index would mean the
            # official model attended with another bias layout.
            if not torch.equal(v.long(), index):
                bad.append(f"{k} is not Swin's relative position index for window {w}")
        elif k == _POSITION_IDS:
            if not torch.equal(v.long().flatten(), torch.arange(v.numel())):
                bad.append(f"{k} is not 0..{v.numel() - 1}")
        elif plan.key_map[k] is None:
            continue
        elif v.is_floating_point() and not torch.isfinite(v).all():
            bad.append(f"{k} has NaN or infinite values")
        elif not v.is_floating_point() and not k.endswith("num_batches_tracked"):
            bad.append(f"{k} has dtype {v.dtype}, expected a float tensor")
    if bad:
        raise ValueError("corrupted checkpoint:\n  " + "\n  ".join(bad[:12]))


def convert_state_dict(
    state: Mapping[str, torch.Tensor], plan: ConversionPlan
) -> dict[str, torch.Tensor]:
    """Apply a plan: rrsis state dict (contiguous copies, checkpoint dtypes)."""
    _check_values(state, plan)
    return {
        dst: state[src].detach().clone().contiguous()
        for src, dst in plan.key_map.items()
        if dst is not None
    }


def convert_checkpoint(
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    arch: str,
    text_heads: int | None = None,
    vocab: str | os.PathLike | None = None,
    max_tokens: int = 20,
    overwrite: bool = False,
) -> Path:
    """Convert an official LAVT/RMSIN checkpoint into an rrsis pretrained directory.

    Args:
        checkpoint: official ``.pth`` file.
        out_dir: directory to write with :func:`rrsis.hub.save_pretrained` (``config.json``
            + ``model.safetensors`` [+ tokenizer] + model card), atomically.
        arch: ``"lavt"`` or ``"rmsin"``.
        text_heads: BERT attention heads (default hidden/64; 12 for BERT-base).
        vocab: a BERT ``vocab.txt`` to save with the model as its tokenizer.
        max_tokens: tokenizer length.
        overwrite: allow writing into an existing non-empty ``out_dir``.

    Returns:
        the output directory; load it with :func:`rrsis.from_pretrained`.
    """
    from ._registry import create_model
    from .hub import save_pretrained

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise ValueError(f"{out_dir} exists and is not empty (pass overwrite=True / --overwrite)")
    state, official_args = load_official_checkpoint(checkpoint)
    plan = plan_conversion(arch, state, text_heads=text_heads, official_args=official_args)
    tensors = convert_state_dict(state, plan)
    tokenizer = None
    if vocab is not None:
        from .text import Tokenizer

        tokenizer = Tokenizer(vocab, max_tokens=max_tokens)
        if len(tokenizer) != plan.model_args["text_vocab_size"]:
            raise ValueError(
                f"vocabulary {vocab} has {len(tokenizer)} tokens but the checkpoint's BERT "
                f"has {plan.model_args['text_vocab_size']}"
            )
    # Built on the meta device and given the converted tensors themselves: no random init of a
    # 240 M-parameter model just to overwrite it. Only persistent entries are saved, all real.
    with torch.device("meta"):
        model = create_model(arch, **plan.model_args, max_tokens=max_tokens)
    model.load_state_dict(tensors, strict=True, assign=True)
    model.tokenizer = tokenizer
    return save_pretrained(model, out_dir)
