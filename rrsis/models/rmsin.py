"""RMSIN (Liu et al., CVPR 2024): rotated multi-scale interaction network for RRSIS.

RMSIN is LAVT plus three parts:

    stage  = Swin blocks → PWAM + language gate, and an intra-scale interaction (IIM,
             ``visual_branch="iim"``) injected through its own gate
    neck   = cross-scale interaction (CIM, ``neck="cim"``) over the four stage maps
    head   = LAVT's decoder with adaptive rotated convolutions (``head="arc"``)

The CIM mixes scales on a fixed pooled grid (``neck_args={"grid": 15}``, stage 4 of a
480×480 input, what the official weights were trained for); other input sizes are
pooled to the same grid. ``rrsis convert --arch rmsin`` loads official checkpoints.
"""

from __future__ import annotations

from .._registry import PretrainedCfg, register_model, register_pretrained
from .lavt import LAVT, LAVT_FIXED, TINY_SHAPES
from .segmenter import ReferringSegmenter, build_segmenter

__all__ = ["RMSIN", "RMSIN_FIXED", "rmsin", "rmsin_tiny"]

RMSIN = {
    **LAVT,
    "fusion": {**LAVT["fusion"], "visual_branch": "iim"},
    "neck": {"name": "cim", "grid": 15, "num_blocks": 1, "mlp_ratio": 2},
    "head": {"name": "arc", "kernel_number": 1, "dropout": 0.2},
}
# The CIM and the IIM branch may be ablated (neck=False, visual_branch=False); ELSA, GEM and
# another head would make it a different model.
RMSIN_FIXED = {**LAVT_FIXED, "head.name": "arc"}


register_pretrained("rmsin.in22k", PretrainedCfg(
    swin="swin_base_patch4_window12_384.ms_in22k", text="bert-base-uncased",
    license="Swin weights: MIT (Microsoft); BERT: Apache-2.0 (Google)",
    notes="the official RMSIN starting point; PWAM, IIM, CIM, gates and the ARC decoder start random",
))
register_pretrained("rmsin.official", PretrainedCfg(
    swin="https://github.com/Lsan2401/RMSIN (a trained RRSIS-D checkpoint: convert it with "
         "`rrsis convert --arch rmsin`, then rrsis.from_pretrained(<dir>))",
    license="see the RMSIN repository",
    notes="whole trained model on RRSIS-D; not part weights",
    extra={"convert": "rmsin"},
))


@register_model("rmsin")
def rmsin(config=None, **overrides) -> ReferringSegmenter:
    """RMSIN with Swin-B and BERT-base."""
    return build_segmenter("rmsin", RMSIN, config, overrides, fixed=RMSIN_FIXED)


@register_model("rmsin-tiny")
def rmsin_tiny(config=None, **overrides) -> ReferringSegmenter:
    """A tiny RMSIN (embed 16, BERT hidden 64, the parity fixtures' shapes) for tests."""
    return build_segmenter("rmsin-tiny", {**RMSIN, **TINY_SHAPES}, config, overrides, fixed=RMSIN_FIXED)
