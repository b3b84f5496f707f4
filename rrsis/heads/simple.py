"""LAVT's top-down decoder ("SimpleDecoding")."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._config import check_size
from ..registry import HEADS

__all__ = ["SimpleDecoder"]


class SimpleDecoder(nn.Module):
    """Top-down decoder: fuse C4→C3→C2→C1 with two 3×3 conv-BN-ReLU per step.

    Attribute names match LAVT's checkpoints (``conv1_4``, ``bn1_4``, ..., ``conv1_1``).

    Args:
        in_channels: channels of the four stage features ``[C1, C2, C3, C4]``.
        hidden: decoder width (LAVT: ``C4 // 2``).
        num_classes: output channels (2 for LAVT/RMSIN logits).
        upsample: ``"size"`` (LAVT: resize to the skip's size) or ``"scale"`` (RMSIN: ×2).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        hidden: int | None = None,
        num_classes: int = 2,
        upsample: str = "size",
    ) -> None:
        super().__init__()
        if len(in_channels) != 4:
            raise ValueError(f"SimpleDecoder needs 4 stage widths, got {list(in_channels)}")
        if upsample not in ("size", "scale"):
            raise ValueError(f"upsample must be 'size' or 'scale', got {upsample!r}")
        c1, c2, c3, c4 = in_channels
        hidden = hidden or c4 // 2
        self.upsample = upsample
        for tag, cin in (("4", c4 + c3), ("3", hidden + c2), ("2", hidden + c1)):
            setattr(self, f"conv1_{tag}", nn.Conv2d(cin, hidden, 3, padding=1, bias=False))
            setattr(self, f"bn1_{tag}", nn.BatchNorm2d(hidden))
            setattr(self, f"conv2_{tag}", self._second_conv(hidden))
            setattr(self, f"bn2_{tag}", nn.BatchNorm2d(hidden))
        self.conv1_1 = nn.Conv2d(hidden, num_classes, 1)

    def _second_conv(self, hidden: int) -> nn.Module:
        return nn.Conv2d(hidden, hidden, 3, padding=1, bias=False)

    def _up(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        if self.upsample == "scale":
            return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        if x.shape[-2:] != ref.shape[-2:]:
            return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=True)
        return x

    def _step(self, tag: str, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(getattr(self, f"bn1_{tag}")(getattr(self, f"conv1_{tag}")(x)))
        return F.relu(getattr(self, f"bn2_{tag}")(getattr(self, f"conv2_{tag}")(x)))

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``[C1..C4]`` NCHW → (logits ``[B, K, H1, W1]`` at C1's resolution, no aux)."""
        c1, c2, c3, c4 = feats
        x = self._step("4", torch.cat([self._up(c4, c3), c3], dim=1))
        x = self._step("3", torch.cat([self._up(x, c2), c2], dim=1))
        x = self._step("2", torch.cat([self._up(x, c1), c1], dim=1))
        return self.conv1_1(x), []


@HEADS.register("simple")
def _build_simple(*, in_channels: Sequence[int], hidden: int | None = None, num_classes: int = 2):
    _check_width("hidden", hidden)
    return SimpleDecoder(in_channels, hidden, num_classes, upsample="size")


def _check_width(name: str, value: int | None) -> None:
    if value is not None:
        check_size(name, value, "head.hidden")
