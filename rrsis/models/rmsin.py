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

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..registry import CHECKPOINT_FORMATS, PretrainedCfg, register_model, register_pretrained
from .lavt import LAVT, LAVT_FIXED, TINY_SHAPES, LavtCheckpoint, count_indices
from .lazy_build import build_segmenter

__all__ = ["RMSIN", "RMSIN_FIXED", "RmsinCheckpoint", "rmsin", "rmsin_tiny"]

if TYPE_CHECKING:
    from .segmenter import ReferringSegmenter


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


class RmsinCheckpoint(LavtCheckpoint):
    """An official RMSIN checkpoint (Lsan2401/RMSIN): LAVT's layout plus ``backbone.cim.*``
    → ``neck.*``; the IIM (``visual_residual``/``visual_gate``) and ARC decoder keep their names."""

    arch = "rmsin"
    MARKERS = ("backbone.cim.", ".visual_residual.", ".visual_gate.", ".rounting_func.")

    def score(self, keys) -> int:
        base = super().score(keys)
        return base + 1 if base and any(m in k or k.startswith(m) for k in keys for m in self.MARKERS) else 0

    def map_key(self, key: str) -> str | None:
        if key.startswith("backbone.cim."):
            return "neck." + key[len("backbone.cim."):]
        return super().map_key(key)

    def model_args(self, shapes: Mapping[str, tuple], **kw: Any) -> dict[str, Any]:
        args = super().model_args(shapes, **kw)
        proj = shapes.get("backbone.cim.block.0.csa1.m.attention.proj.weight")
        if proj is None:
            raise ValueError("cannot infer the architecture: checkpoint has no backbone.cim.block.0 attention")
        grid = math.isqrt(proj[0])
        if grid * grid != proj[0]:
            raise ValueError(f"CIM token projection outputs {proj[0]} tokens, not a square grid")
        cim_hidden = shapes["backbone.cim.down_channel.weight"][0]
        args["neck_args"] = {
            "grid": grid,
            "num_blocks": count_indices(shapes, r"backbone\.cim\.block\.(\d+)\."),
            "mlp_ratio": shapes["backbone.cim.block.0.ff.m.conv1.weight"][0] // cim_hidden,
        }
        args["head_args"] = {"kernel_number": shapes["classifier.conv2_4.weight"][0], "dropout": 0.2}
        return args


CHECKPOINT_FORMATS.register("rmsin")(RmsinCheckpoint())
