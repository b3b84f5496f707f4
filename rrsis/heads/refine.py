"""GL-MSIN's learnable-fusion iterative refinement head — a reconstruction.

The abstract names "a learnable fusion feature-based iterative refinement network" that
"overcomes inconsistency in feature fusion". Reconstructed here (every number is a knob):
project the four scales to one width, fuse them at 1/4 resolution with learnable,
normalised non-negative weights ``w_i = ReLU(a_i) / (Σ_j ReLU(a_j) + ε)``, predict a
mask, then refine ``T`` times, each step conditioned on the current mask:
``F_t = F_{t-1} + Block([F_{t-1}, F_0, softmax(M_{t-1})])``, ``M_t = Pred_t(F_t)``.
Every ``M_t`` is returned for deep supervision.

``upscale`` (default 1) predicts each mask at ``u×`` the 1/4 grid: a prediction is the
bilinear upsampling of the 1/4-grid logits plus a sub-pixel correction, ``K·u²`` extra
channels of the same 1×1 conv rearranged by pixel shuffle into ``u×u`` sub-pixels per cell,
initialised at zero (so training starts from the plain head's prediction). The features of
one cell come from its whole ``4×4`` patch, so they can place a boundary inside the cell,
which bilinear upsampling of 1/4-grid logits alone cannot.

Two switches for the GPU, off by default and leaving the weights and the state dict as they
are (``benchmarks/gpu_check.py`` times each against the default): :meth:`use_channels_last`
runs the head's convolutions in the channels-last layout, and ``pad_channels_to = 8`` widens a
refinement block's input (``2·hidden + K·u²`` channels, 514 at the defaults) with zero channels
to a multiple of 8, the first convolution seeing its weight padded with zeros to match.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._config import check_size
from ..registry import HEADS
from .simple import _check_width

__all__ = ["IterativeRefinementHead"]


def _conv_bn_relu(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class IterativeRefinementHead(nn.Module):
    """Learnable multi-scale fusion followed by ``T`` mask-conditioned refinements.

    Args:
        in_channels: widths of the four stage features ``[C1, C2, C3, C4]``.
        hidden: common width of the projected scales.
        steps: number of refinement iterations ``T`` (0: fusion + one prediction).
        num_classes: output channels (2).
        eps: ε of the normalised fusion weights.
        upscale: sub-pixel factor ``u`` of the predictions (1: the 1/4 grid, as before).
    """

    def __init__(
        self, in_channels: Sequence[int], hidden: int = 256, steps: int = 3, num_classes: int = 2, eps: float = 1e-4,
        upscale: int = 1,
    ) -> None:
        super().__init__()
        if steps < 0:
            raise ValueError(f"refinement steps must be >= 0, got {steps}")
        if int(upscale) != upscale or upscale < 1:
            raise ValueError(f"upscale must be a positive integer, got {upscale}")
        self.steps, self.eps, self.num_classes, self.upscale = steps, eps, num_classes, int(upscale)
        out = num_classes * (1 + self.upscale**2) if self.upscale > 1 else num_classes
        self.proj = nn.ModuleList(_conv_bn_relu(c, hidden, 1) for c in in_channels)
        self.fusion_weights = nn.Parameter(torch.ones(len(in_channels)))
        self.fuse = _conv_bn_relu(hidden, hidden, 3)
        self.pred = nn.ModuleList(nn.Conv2d(hidden, out, 1) for _ in range(steps + 1))
        self.refine = nn.ModuleList(
            nn.Sequential(_conv_bn_relu(2 * hidden + num_classes * self.upscale**2, hidden, 3),
                          _conv_bn_relu(hidden, hidden, 3))
            for _ in range(steps)
        )
        if self.upscale > 1:
            for p in self.pred:  # the sub-pixel correction starts at zero
                nn.init.zeros_(p.weight[num_classes:])
                nn.init.zeros_(p.bias[num_classes:])

    channels_last = False
    pad_channels_to = 1

    def use_channels_last(self, enabled: bool = True) -> IterativeRefinementHead:
        """Run the convolutions channels-last (inputs and weights); ``False`` goes back.
        Outputs are the same up to rounding; build the optimizer after switching."""
        fmt = torch.channels_last if enabled else torch.contiguous_format
        self.channels_last = bool(enabled)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.data = m.weight.data.contiguous(memory_format=fmt)
        return self

    def normalized_weights(self) -> torch.Tensor:
        w = F.relu(self.fusion_weights)
        return w / (w.sum() + self.eps)

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``[C1..C4]`` NCHW → (final logits ``[B, K, H1, W1]``, earlier predictions)."""
        size = feats[0].shape[-2:]
        if self.channels_last:
            feats = [f.contiguous(memory_format=torch.channels_last) for f in feats]
        w = self.normalized_weights()
        fused = 0
        for i, (proj, f) in enumerate(zip(self.proj, feats)):
            p = proj(f)
            if p.shape[-2:] != size:
                p = F.interpolate(p, size=size, mode="bilinear", align_corners=False)
            fused = fused + w[i] * p
        f0 = self.fuse(fused)
        x = f0
        preds = [self._predict(0, x)]
        for t, block in enumerate(self.refine):
            # Conditioned on the current mask, folded back onto the 1/4 grid.
            prob = preds[-1].softmax(dim=1)
            if self.upscale > 1:
                prob = F.pixel_unshuffle(prob, self.upscale)
            x = x + self._refine(block, [x, f0, prob])
            preds.append(self._predict(t + 1, x))
        return preds[-1], preds[:-1]

    def _refine(self, block: nn.Sequential, parts: list[torch.Tensor]) -> torch.Tensor:
        channels = sum(p.shape[1] for p in parts)
        pad = -channels % max(1, int(self.pad_channels_to))
        if pad:
            parts = [*parts, parts[-1].new_zeros((parts[-1].shape[0], pad, *parts[-1].shape[2:]))]
        inp = torch.cat(parts, dim=1)
        if self.channels_last:
            inp = inp.contiguous(memory_format=torch.channels_last)
        if not pad:
            return block(inp)
        first, rest = block[0], block[1:]
        conv = first[0]
        weight = F.pad(conv.weight, (0, 0, 0, 0, 0, pad))  # zero weights for the zero channels
        if self.channels_last:
            weight = weight.contiguous(memory_format=torch.channels_last)
        h = F.conv2d(inp, weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
        return rest(first[1:](h))

    def _predict(self, t: int, x: torch.Tensor) -> torch.Tensor:
        out = self.pred[t](x)
        u, k = self.upscale, self.num_classes
        if u == 1:
            return out
        base = F.interpolate(out[:, :k], scale_factor=u, mode="bilinear", align_corners=False)
        return base + F.pixel_shuffle(out[:, k:], u)


@HEADS.register("refine")
def _build_refine(
    *, in_channels: Sequence[int], hidden: int = 256, refine_steps: int = 3, num_classes: int = 2,
    upscale: int = 1,
) -> IterativeRefinementHead:
    _check_width("hidden", hidden)
    check_size("refine_steps", refine_steps, "head.refine_steps", low=0)
    check_size("upscale", upscale, "head.upscale")
    return IterativeRefinementHead(in_channels, hidden or 256, refine_steps, num_classes, upscale=upscale)
