"""LAVT (Yang et al., CVPR 2022): language-aware vision transformer for referring segmentation.

Composition: BERT words → Swin stages, each followed by pixel-word attention (PWAM) and a
tanh language gate → LAVT's top-down decoder. With ``rrsis convert --arch lavt`` an
official ``lavt_one`` (or ``lavt`` + separate ``bert_model``) checkpoint loads into it and
reproduces the official logits.
"""

from __future__ import annotations

from .._registry import PretrainedCfg, register_model, register_pretrained
from .segmenter import ReferringSegmenter, build_segmenter

__all__ = ["LAVT", "LAVT_FIXED", "LAVT_TINY", "lavt", "lavt_tiny"]

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
