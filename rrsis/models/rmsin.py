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

from .._registry import register_model
from .lavt import LAVT_DEFAULTS, LAVT_TINY
from .segmenter import ReferringSegmenter

__all__ = ["RMSIN_DEFAULTS", "rmsin", "rmsin_tiny"]

RMSIN_DEFAULTS = dict(
    LAVT_DEFAULTS,
    visual_branch="iim",
    neck="cim",
    neck_args={"grid": 15, "num_blocks": 1, "mlp_ratio": 2},
    head="arc",
    head_args={"kernel_number": 1, "dropout": 0.2},
)


@register_model("rmsin")
def rmsin(**overrides) -> ReferringSegmenter:
    """RMSIN with Swin-B and BERT-base."""
    return ReferringSegmenter(**{**RMSIN_DEFAULTS, **overrides, "arch": "rmsin"})


@register_model("rmsin-tiny")
def rmsin_tiny(**overrides) -> ReferringSegmenter:
    """A tiny RMSIN (embed 16, BERT hidden 64, the parity fixtures' shapes) for tests."""
    return ReferringSegmenter(**{**RMSIN_DEFAULTS, **LAVT_TINY, **overrides, "arch": "rmsin-tiny"})
