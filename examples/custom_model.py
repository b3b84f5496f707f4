"""Compose a model from registered parts, and register a part of your own.

    python examples/custom_model.py [--tiny]

A GL-MSIN ablation is a keyword argument, not a new class: here Swin attention instead of
ELSA, linear-attention GEM and LAVT's decoder. Then a new head is registered by name and
used the same way.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn

import rrsis
from rrsis.registry import FUSION, GLOBAL_ENHANCEMENT, HEADS, LOCAL_ATTENTION


class LightHead(nn.Module):
    """Project the four stage maps to one width, upsample to stage 1 and sum: a minimal head.

    Args:
        in_channels: widths of the stage features ``[C1, C2, C3, C4]``.
        hidden: common width.
    """

    def __init__(self, in_channels, hidden: int = 32, num_classes: int = 2) -> None:
        super().__init__()
        self.proj = nn.ModuleList(nn.Conv2d(c, hidden, 1) for c in in_channels)
        self.out = nn.Conv2d(hidden, num_classes, 1)

    def forward(self, feats):
        size = feats[0].shape[-2:]
        x = sum(F.interpolate(p(f), size=size, mode="bilinear", align_corners=False)
                for p, f in zip(self.proj, feats))
        return self.out(F.relu(x)), []  # (logits at stage-1 resolution, no aux outputs)


if "light" not in HEADS:  # re-running the script in one session must not register twice
    @HEADS.register("light")
    def _light(*, in_channels, hidden=None, num_classes=2, **_):
        return LightHead(in_channels, hidden or 32, num_classes)


def describe(name: str, model: nn.Module) -> None:
    n = sum(p.numel() for p in model.parameters())
    print(f"{name:<34} {n / 1e6:6.2f} M parameters")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="smallest settings (tests)")
    p.parse_args(argv)  # --tiny is accepted for symmetry: this example is always small
    print("local attention:", LOCAL_ATTENTION.names(), "| fusion:", FUSION.names(),
          "| global enhancement:", GLOBAL_ENHANCEMENT.names(), "| heads:", HEADS.names())
    variants = {
        "gl-msin-tiny (reconstruction)": {},
        "swin + gem-linear + simple head": {"local_attn": "swin", "gem": "gem-linear", "head": "simple"},
        "no GEM, one refinement step": {"use_gem": False, "refine_steps": 1},
        "custom 'light' head": {"head": "light", "head_hidden": 24},
    }
    size = 64
    x = torch.randn(2, 3, size, size)
    ids = torch.tensor([[2, 10, 11, 12, 3, 0], [2, 13, 3, 0, 0, 0]])
    mask = (ids != 0).long()
    for name, kw in variants.items():
        model = rrsis.create_model("gl-msin-tiny", **kw).eval()
        with torch.no_grad():
            out = model(x, ids, mask)
        describe(name, model)
        assert out.logits.shape == (2, 2, size, size)
        print(f"{'':<34} logits {tuple(out.logits.shape)}, {len(out.aux_logits)} aux outputs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
