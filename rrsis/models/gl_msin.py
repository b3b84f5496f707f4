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

from typing import TYPE_CHECKING

from ..registry import PretrainedCfg, register_model, register_pretrained
from .lazy_build import build_segmenter

__all__ = ["GL_MSIN", "GL_MSIN_TINY", "gl_msin", "gl_msin_s", "gl_msin_t", "gl_msin_tiny"]

if TYPE_CHECKING:
    from .segmenter import ReferringSegmenter


def _swin(embed_dim, depths, num_heads, window_size=12, **more):
    return {"embed_dim": embed_dim, "depths": depths, "num_heads": num_heads, "window_size": window_size,
            "local_attn": ["elsa", "elsa", "elsa", "swin"], "elsa": {"kernel": 7}, **more}


# The reconstruction's defaults (Swin-B shapes, BERT-base); -s/-t change the backbone only.
GL_MSIN = {
    "image_size": 480,
    "backbone": _swin(128, [2, 2, 18, 2], [4, 8, 16, 32]),
    "text": {},
    "fusion": {"name": "pwam", "gate_act": "tanh", "gem": {"name": "gem", "stages": True, "pool": 8}},
    "neck": None,
    "head": {"name": "refine", "hidden": 256, "refine_steps": 3},
}
GL_MSIN_S = {**GL_MSIN, "backbone": _swin(96, [2, 2, 18, 2], [3, 6, 12, 24])}
GL_MSIN_T = {**GL_MSIN, "backbone": _swin(96, [2, 2, 6, 2], [3, 6, 12, 24])}

# A few-hundred-thousand-parameter configuration for tests and the CPU demo, trained from
# scratch. Three settings differ from the full models, each measured to train faster from
# scratch on the demo's data (README, "Ablation and learning efficiency"): a convolutional stem
# instead of the linear patch embedding, no language gate (plain addition of the fused
# features), and a refinement head that predicts at full resolution (sub-pixel correction).
GL_MSIN_TINY = {
    "image_size": 64,
    "backbone": _swin(16, [2, 2, 2, 2], [1, 2, 4, 8], window_size=4, drop_path_rate=0.1,
                      elsa={"kernel": 3, "group_width": 8}, stem="conv"),
    "text": {"vocab_size": 128, "hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64,
             "max_positions": 32, "freeze_last_layers": 1},
    "fusion": {"name": "pwam", "gate_act": "none", "gem": {"name": "gem", "stages": True, "pool": 2}},
    "neck": None,
    "head": {"name": "refine", "hidden": 16, "refine_steps": 2, "upscale": 4},
}

# gl-msin-tiny as rrsis 0.1 built it: what its flat config.json files leave unsaid.
GL_MSIN_TINY_V01 = {
    **GL_MSIN_TINY,
    "backbone": {**GL_MSIN_TINY["backbone"], "stem": "patch"},
    "fusion": {**GL_MSIN_TINY["fusion"], "gate_act": "tanh"},
    "head": {"name": "refine", "hidden": 16, "refine_steps": 2},
}


# Pretrained configurations: the first of an architecture is its default for pretrained=True.
_LICENCE = "Swin weights: MIT (Microsoft); ELSA weights: Apache-2.0 (DAMO); BERT: Apache-2.0 (Google)"
_RANDOM = "fusion (PWAM, gates), GEM, per-stage norms and the refinement head start random"
register_pretrained("gl-msin.in22k", PretrainedCfg(
    swin="swin_base_patch4_window12_384.ms_in22k", text="bert-base-uncased", license=_LICENCE,
    notes=f"ImageNet-22k Swin-B (384 px, window 12): ELSA stages load its norms and MLPs, their ELSA "
          f"attention starts random; {_RANDOM}",
))
register_pretrained("gl-msin.elsa-in1k", PretrainedCfg(
    swin="https://github.com/damo-cv/ELSA (ELSA-Swin-B ImageNet-1k checkpoint; download it and pass "
         "swin_weights=<file>)",
    text="bert-base-uncased", license=_LICENCE,
    notes=f"official ELSA-Swin-B (224 px, window 7): ELSA blocks and the Swin stage load, relative-position "
          f"tables resampled to window 12; {_RANDOM}",
    extra={"needs_local_file": True},
))
register_pretrained("gl-msin-s.in22k", PretrainedCfg(
    swin="swin_small_patch4_window7_224.ms_in22k", text="bert-base-uncased", license=_LICENCE,
    notes=f"ImageNet-22k Swin-S (224 px, window 7 → 12); {_RANDOM}",
))
register_pretrained("gl-msin-t.in22k", PretrainedCfg(
    swin="swin_tiny_patch4_window7_224.ms_in22k", text="bert-base-uncased", license=_LICENCE,
    notes=f"ImageNet-22k Swin-T (224 px, window 7 → 12); {_RANDOM}",
))


@register_model("gl-msin")
def gl_msin(config=None, **overrides) -> ReferringSegmenter:
    """GL-MSIN with a Swin-B-sized backbone and BERT-base."""
    return build_segmenter("gl-msin", GL_MSIN, config, overrides)


@register_model("gl-msin-s")
def gl_msin_s(config=None, **overrides) -> ReferringSegmenter:
    """GL-MSIN with a Swin-S-sized backbone and BERT-base."""
    return build_segmenter("gl-msin-s", GL_MSIN_S, config, overrides)


@register_model("gl-msin-t")
def gl_msin_t(config=None, **overrides) -> ReferringSegmenter:
    """GL-MSIN with a Swin-T-sized backbone and BERT-base."""
    return build_segmenter("gl-msin-t", GL_MSIN_T, config, overrides)


@register_model("gl-msin-tiny")
def gl_msin_tiny(config=None, **overrides) -> ReferringSegmenter:
    """A tiny GL-MSIN for tests and CPU demos (embed 16, BERT hidden 32)."""
    return build_segmenter("gl-msin-tiny", GL_MSIN_TINY, config, overrides, flat_defaults=GL_MSIN_TINY_V01)
