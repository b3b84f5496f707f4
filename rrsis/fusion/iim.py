"""RMSIN's intra-scale interaction module (IIM): a re-parameterisable spatial gate.

In RMSIN ("various receptive" branch) every backbone stage computes, next to the PWAM
language path, a visual path ``v = x ⊙ w(mean_c(x))``; the stage then injects it through a
``LanguageGate``-style gate: ``x ← x + γ_l(f)⊙f + γ_v(v)⊙v``. This file holds the gate map
``w`` (:class:`RepBlock`) and ``v`` (:class:`IntraScaleInteraction`). Submodule names follow
the official checkpoints (``visual_residual.repblock.brb_3x3.conv1``, …) so that converted
weights load without renaming.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import VISUAL_BRANCH

__all__ = ["IntraScaleInteraction", "RepBlock"]


def _conv_bn(channels: int, kernel_size: int) -> nn.Sequential:
    """``conv(k×k, no bias) → BN`` as one branch (keys ``conv``, ``bn``)."""
    branch = nn.Sequential()
    branch.add_module(
        "conv", nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, bias=False)
    )
    branch.add_module("bn", nn.BatchNorm2d(channels))
    return branch


def _conv1x1_bn_conv3x3_bn(channels: int) -> nn.Sequential:
    """``conv1×1 → BN → conv3×3 → BN`` (keys ``conv1``, ``bn1``, ``conv2``, ``bn2``)."""
    branch = nn.Sequential()
    branch.add_module("conv1", nn.Conv2d(channels, channels, 1, bias=False))
    branch.add_module("bn1", nn.BatchNorm2d(channels))
    branch.add_module("conv2", nn.Conv2d(channels, channels, 3, padding=1, bias=False))
    branch.add_module("bn2", nn.BatchNorm2d(channels))
    return branch


class RepBlock(nn.Module):
    """Two RepVGG-style multi-branch units followed by a sigmoid: a spatial gate map.

    Each unit sums three branches of the same input — ``conv1×1→BN→conv3×3→BN``,
    ``conv1×1→BN`` and a plain ``BN`` (identity branch) — the first unit is followed by a
    ReLU, the second by the sigmoid. At inference the branches could be fused into one
    3×3 convolution; they are kept apart so that official checkpoints load unchanged.

    Args:
        channels: input = output channels (RMSIN uses 1: the channel-mean map).
    """

    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.brb_3x3 = _conv1x1_bn_conv3x3_bn(channels)
        self.brb_1x1 = _conv_bn(channels, 1)
        self.brb_identity = nn.BatchNorm2d(channels)
        self.brb_3x3_2 = _conv1x1_bn_conv3x3_bn(channels)
        self.brb_1x1_2 = _conv_bn(channels, 1)
        self.brb_identity_2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` → gate in (0, 1), ``[B, C, H, W]``."""
        # Summation order follows RMSIN (1×1, 3×3, identity) for bit-level parity.
        h = torch.relu(self.brb_1x1(x) + self.brb_3x3(x) + self.brb_identity(x))
        h = self.brb_1x1_2(h) + self.brb_3x3_2(h) + self.brb_identity_2(h)
        return torch.sigmoid(h)


class IntraScaleInteraction(nn.Module):
    """Spatially re-weighted visual feature ``v = x ⊙ RepBlock(mean_c(x))`` (RMSIN's IIM).

    Works on any ``H × W`` (RMSIN's own code assumed square maps).

    Args:
        dim: channels of ``x``; only recorded (the gate acts on the channel mean).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.repblock = RepBlock(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, C, H, W]`` → ``v: [B, C, H, W]``."""
        weight = self.repblock(x.mean(dim=1, keepdim=True))
        return x * weight


@VISUAL_BRANCH.register("iim")
def _build_iim(*, dim: int) -> IntraScaleInteraction:
    return IntraScaleInteraction(dim)
