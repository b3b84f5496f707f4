"""GL-MSIN: global–local hierarchical multiscale interaction network — a reconstruction.

Composition (the abstract's figure, in code):

    BERT words ─┐
    image → [EN-Trans stage]×4 → learnable-fusion iterative refinement head → mask
    EN-Trans stage = ELSA (stages 1–3) / Swin W-MSA (stage 4) blocks
                     → pixel-word attention → GEM → tanh-gated injection

Only the abstract of GL-MSIN is public. ELSA placement, GEM's pooled attention (P = 8),
the tanh gate and the refinement head (T = 3, deep supervision) are reconstructions and
are all keywords: ``create_model("gl-msin", local_attn="swin", use_gem=False, head="simple")``
is the LAVT-like ablation. No paper numbers are claimed.
"""

from __future__ import annotations

from .._registry import register_model
from .segmenter import ReferringSegmenter

__all__ = ["gl_msin", "gl_msin_s", "gl_msin_t", "gl_msin_tiny"]

GL_MSIN_DEFAULTS = dict(
    local_attn=["elsa", "elsa", "elsa", "swin"],
    use_gem=True,
    gem="gem",
    gem_pool=8,
    gate_act="tanh",
    head="refine",
    head_hidden=256,
    refine_steps=3,
)

# Swin-B / -S / -T shapes; window 12 as in LAVT/RMSIN's 384-px ImageNet-22k weights.
SWIN_B = dict(embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32], window_size=12)
SWIN_S = dict(embed_dim=96, depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24], window_size=12)
SWIN_T = dict(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=12)

# A few-hundred-thousand-parameter configuration for tests and the CPU demo.
TINY = dict(
    image_size=64, embed_dim=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], window_size=4,
    drop_path_rate=0.1, elsa_kernel=3, elsa_group_width=8, gem_pool=2, head_hidden=16, refine_steps=2,
    text_vocab_size=128, text_hidden_size=32, text_layers=2, text_heads=2, text_intermediate_size=64,
    text_max_positions=32, text_freeze_last_layers=1,
)


def _gl_msin(arch: str, size: dict, **overrides) -> ReferringSegmenter:
    return ReferringSegmenter(**{**GL_MSIN_DEFAULTS, **size, **overrides, "arch": arch})


@register_model("gl-msin")
def gl_msin(**overrides) -> ReferringSegmenter:
    """GL-MSIN with a Swin-B-sized backbone and BERT-base."""
    return _gl_msin("gl-msin", SWIN_B, **overrides)


@register_model("gl-msin-s")
def gl_msin_s(**overrides) -> ReferringSegmenter:
    """GL-MSIN with a Swin-S-sized backbone and BERT-base."""
    return _gl_msin("gl-msin-s", SWIN_S, **overrides)


@register_model("gl-msin-t")
def gl_msin_t(**overrides) -> ReferringSegmenter:
    """GL-MSIN with a Swin-T-sized backbone and BERT-base."""
    return _gl_msin("gl-msin-t", SWIN_T, **overrides)


@register_model("gl-msin-tiny")
def gl_msin_tiny(**overrides) -> ReferringSegmenter:
    """A tiny GL-MSIN for tests and CPU demos (embed 16, BERT hidden 32)."""
    return _gl_msin("gl-msin-tiny", TINY, **overrides)
