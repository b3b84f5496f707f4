"""LAVT (Yang et al., CVPR 2022): language-aware vision transformer for referring segmentation.

Composition: BERT words → Swin stages, each followed by pixel-word attention (PWAM) and a
tanh language gate → LAVT's top-down decoder. With ``rrsis convert --arch lavt`` an
official ``lavt_one`` (or ``lavt`` + separate ``bert_model``) checkpoint loads into it and
reproduces the official logits.
"""

from __future__ import annotations

from .._registry import register_model
from .segmenter import ReferringSegmenter

__all__ = ["LAVT_DEFAULTS", "LAVT_TINY", "lavt", "lavt_tiny"]

# Swin-B (window 12, the 384-px ImageNet-22k weights) + BERT-base, as in the official builder.
LAVT_DEFAULTS = {
    "embed_dim": 128,
    "depths": [2, 2, 18, 2],
    "num_heads": [4, 8, 16, 32],
    "window_size": 12,
    "drop_path_rate": 0.3,
    "local_attn": "swin",
    "fusion": "pwam",
    "fusion_heads": 1,
    "use_gem": False,
    "gate_act": "tanh",
    # The last stage's gated stream is never read, but official checkpoints hold its gates.
    "keep_final_gate": True,
    "visual_branch": None,
    "neck": None,
    "head": "simple",
    "head_hidden": None,
}

# The shapes of the parity fixtures (embed 16, BERT hidden 64): for tests and CPU demos.
LAVT_TINY = {
    "embed_dim": 16,
    "depths": [2, 2, 2, 2],
    "num_heads": [2, 4, 8, 16],
    "window_size": 12,
    "text_vocab_size": 512,
    "text_hidden_size": 64,
    "text_layers": 2,
    "text_heads": 4,
    "text_intermediate_size": 256,
    "text_max_positions": 64,
}


@register_model("lavt")
def lavt(**overrides) -> ReferringSegmenter:
    """LAVT with Swin-B and BERT-base."""
    return ReferringSegmenter(**{**LAVT_DEFAULTS, **overrides, "arch": "lavt"})


@register_model("lavt-tiny")
def lavt_tiny(**overrides) -> ReferringSegmenter:
    """A tiny LAVT (embed 16, BERT hidden 64) for tests."""
    return ReferringSegmenter(**{**LAVT_DEFAULTS, **LAVT_TINY, **overrides, "arch": "lavt-tiny"})
