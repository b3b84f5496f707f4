"""LAVT (Yang et al., CVPR 2022): language-aware vision transformer for referring segmentation.

Composition: BERT words → Swin stages, each followed by pixel-word attention (PWAM) and a
tanh language gate → LAVT's top-down decoder. With ``rrsis convert --arch lavt`` an
official ``lavt_one`` (or ``lavt`` + separate ``bert_model``) checkpoint loads into it and
reproduces the official logits.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from ..registry import CHECKPOINT_FORMATS, PretrainedCfg, register_model, register_pretrained
from .lazy_build import build_segmenter

__all__ = ["LAVT", "LAVT_FIXED", "LAVT_TINY", "LavtCheckpoint", "lavt", "lavt_tiny"]

if TYPE_CHECKING:
    from .segmenter import ReferringSegmenter


# Swin-B (window 12, the 384-px ImageNet-22k weights) + BERT-base, as in the official builder.
LAVT = {
    "image_size": 480,
    "backbone": {"embed_dim": 128, "depths": [2, 2, 18, 2], "num_heads": [4, 8, 16, 32], "window_size": 12,
                 "drop_path_rate": 0.3, "local_attn": "swin"},
    "text": {},
    # The last stage's gated stream is never read, but official checkpoints hold its gates.
    "fusion": {"name": "pwam", "heads": 1, "gate_act": "tanh", "keep_final_gate": True},
    "neck": None,
    "head": {"name": "simple"},
}
# What makes a model LAVT: a config.json naming lavt with other parts is refused.
LAVT_FIXED = {"backbone.local_attn": "swin", "backbone.elsa": None, "fusion.gem": None, "head.name": "simple"}

# The shapes of the parity fixtures (embed 16, BERT hidden 64): for tests and CPU demos.
TINY_SHAPES = {
    "backbone": {**LAVT["backbone"], "embed_dim": 16, "depths": [2, 2, 2, 2], "num_heads": [2, 4, 8, 16]},
    "text": {"vocab_size": 512, "hidden_size": 64, "num_layers": 2, "num_heads": 4, "intermediate_size": 256,
             "max_positions": 64},
}
LAVT_TINY = {**LAVT, **TINY_SHAPES}


register_pretrained("lavt.in22k", PretrainedCfg(
    swin="swin_base_patch4_window12_384.ms_in22k", text="bert-base-uncased",
    license="Swin weights: MIT (Microsoft); BERT: Apache-2.0 (Google)",
    notes="the official LAVT starting point; PWAM, gates, per-stage norms and the decoder start random",
))
register_pretrained("lavt.official", PretrainedCfg(
    swin="https://github.com/yz93/LAVT-RIS (a trained checkpoint: convert it with `rrsis convert --arch lavt`, "
         "then rrsis.from_pretrained(<dir>))",
    license="see the LAVT-RIS repository (MIT)",
    notes="whole trained model, RefCOCO-family datasets; not part weights",
    extra={"convert": "lavt"},
))


@register_model("lavt")
def lavt(config=None, **overrides) -> ReferringSegmenter:
    """LAVT with Swin-B and BERT-base."""
    return build_segmenter("lavt", LAVT, config, overrides, fixed=LAVT_FIXED)


@register_model("lavt-tiny")
def lavt_tiny(config=None, **overrides) -> ReferringSegmenter:
    """A tiny LAVT (embed 16, BERT hidden 64) for tests."""
    return build_segmenter("lavt-tiny", LAVT_TINY, config, overrides, fixed=LAVT_FIXED)


# ---------------------------------------------------------------------------- official checkpoints


def _shape(shapes: Mapping[str, tuple], key: str) -> tuple[int, ...]:
    if key not in shapes:
        raise ValueError(f"cannot infer the architecture: checkpoint has no {key!r}")
    return tuple(int(s) for s in shapes[key])


def count_indices(shapes: Mapping[str, Any], pattern: str) -> int:
    """``1 + max(i)`` over keys matching ``pattern`` (one ``(\\d+)`` group), 0 when none match."""
    rx = re.compile(pattern)
    found = {int(m.group(1)) for k in shapes for m in [rx.match(k)] if m}
    return max(found) + 1 if found else 0


class LavtCheckpoint:
    """How to read an official LAVT ``train.py`` checkpoint (yz93/LAVT-RIS) into ``lavt``.

    Key map, official → rrsis:

        backbone.layers.{i}.downsample.*    → backbone.layers.{i+1}.downsample.*  (mmseg merges
                                               at the end of a stage, timm at the start of the next)
        backbone.norm{i}.*                  → backbone.out_norms.{i}.*
        text_encoder.*                      → text_encoder.bert.*  (``bert_model`` entries included)
        *.relative_position_index           → dropped (rebuilt; checked to be Swin's)
        text_encoder.embeddings.position_ids → dropped (rebuilt; checked to be 0..n-1)
        text_encoder.pooler.*               → dropped (never used)
        everything else                     → unchanged

    The architecture is read from tensor shapes; only BERT's head count is not in the
    weights (``text_heads``, default ``hidden // 64``).
    """

    arch = "lavt"
    _DROPPED_SUFFIX = ".relative_position_index"
    _POSITION_IDS = "text_encoder.embeddings.position_ids"
    _POOLER = "text_encoder.pooler."

    def score(self, keys) -> int:
        """How well ``keys`` fit this format (0: not at all); the driver takes the best."""
        return 1 if any(k.startswith("backbone.layers.") for k in keys) and any(".fusion." in k for k in keys) else 0

    def map_key(self, key: str) -> str | None:
        """rrsis name of an official key, or ``None`` for a dropped entry."""
        if key.endswith(self._DROPPED_SUFFIX) or key == self._POSITION_IDS or key.startswith(self._POOLER):
            return None
        m = re.match(r"backbone\.layers\.(\d+)\.downsample\.(.+)$", key)
        if m:
            return f"backbone.layers.{int(m.group(1)) + 1}.downsample.{m.group(2)}"
        m = re.match(r"backbone\.norm(\d+)\.(.+)$", key)
        if m:
            return f"backbone.out_norms.{m.group(1)}.{m.group(2)}"
        if key.startswith("text_encoder."):
            return "text_encoder.bert." + key[len("text_encoder."):]
        return key

    def model_args(
        self, shapes: Mapping[str, tuple], *, text_heads: int | None = None, official_args: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """``create_model`` keywords of the rrsis model with these official tensors."""
        embed_shape = _shape(shapes, "backbone.patch_embed.proj.weight")
        embed_dim, patch_size = embed_shape[0], embed_shape[-1]
        n_stages = count_indices(shapes, r"backbone\.layers\.(\d+)\.")
        if n_stages == 0:
            raise ValueError("cannot infer the architecture: no backbone.layers.* keys")
        depths, heads, windows = [], [], set()
        for i in range(n_stages):
            depth = count_indices(shapes, rf"backbone\.layers\.{i}\.blocks\.(\d+)\.")
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
        if text_heads is None:
            text_heads = max(1, hidden // 64)
        if isinstance(text_heads, bool) or not isinstance(text_heads, int) or text_heads < 1:
            raise ValueError(f"text_heads must be a positive integer (BERT attention heads), got {text_heads!r}")
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
        return {
            "embed_dim": embed_dim,
            "patch_size": patch_size,
            "depths": depths,
            "num_heads": heads,
            "window_size": windows.pop(),
            "mlp_ratio": fc1[0] / embed_dim,
            "qkv_bias": "backbone.layers.0.blocks.0.attn.qkv.bias" in shapes,
            "fusion_heads": [int(h) for h in mha.split("-")] if mha else 1,
            "fusion_drop": float(official_args.get("fusion_drop", 0.0) or 0.0),
            "text_vocab_size": word[0],
            "text_hidden_size": hidden,
            "text_layers": count_indices(shapes, r"text_encoder\.encoder\.layer\.(\d+)\."),
            "text_heads": int(text_heads),
            "text_intermediate_size": _shape(shapes, "text_encoder.encoder.layer.0.intermediate.dense.weight")[0],
            "text_max_positions": _shape(shapes, "text_encoder.embeddings.position_embeddings.weight")[0],
            "text_type_vocab_size": _shape(shapes, "text_encoder.embeddings.token_type_embeddings.weight")[0],
            # None keeps the head's own default (C4 // 2), so configs equal the registered ones.
            "head_hidden": None if classes[1] == embed_dim * 2 ** (n_stages - 1) // 2 else classes[1],
        }

    def check_values(self, state: Mapping[str, torch.Tensor], key_map: Mapping[str, str | None],
                     model_args: Mapping[str, Any]) -> list[str]:
        """Problems with the tensors' values: dropped buffers that are not what rrsis rebuilds,
        non-finite weights, integer tensors where floats belong."""
        w = model_args["window_size"]
        from timm.models.swin_transformer import get_relative_position_index

        index = get_relative_position_index(w, w)
        bad = []
        for k, v in state.items():
            if k.endswith(self._DROPPED_SUFFIX):
                # A different stored index would mean the official model used another bias layout.
                if not torch.equal(v.long(), index):
                    bad.append(f"{k} is not Swin's relative position index for window {w}")
            elif k == self._POSITION_IDS:
                if not torch.equal(v.long().flatten(), torch.arange(v.numel())):
                    bad.append(f"{k} is not 0..{v.numel() - 1}")
            elif key_map[k] is None:
                continue
            elif v.is_floating_point() and not torch.isfinite(v).all():
                bad.append(f"{k} has NaN or infinite values")
            elif not v.is_floating_point() and not k.endswith("num_batches_tracked"):
                bad.append(f"{k} has dtype {v.dtype}, expected a float tensor")
        return bad


CHECKPOINT_FORMATS.register("lavt")(LavtCheckpoint())
