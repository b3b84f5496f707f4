"""Global Enhancement Module (GEM) of GL-MSIN — a reconstruction.

The GL-MSIN abstract says only that GEM "employs a lightweight attention mechanism to
expand pixel-level interactions across the entire image". Everything below is a
reconstruction, exposed as knobs: full-resolution queries attend over ``P×P``
average-pooled keys/values of the same map (cost O(HW·P²)), multi-head, plus a
depthwise-convolution positional term; or a softmax-kernelised linear attention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import GLOBAL_ENHANCEMENT

__all__ = ["GlobalEnhancementModule"]


class GlobalEnhancementModule(nn.Module):
    """Lightweight global attention over a feature map, added back residually.

    ``out = f + Proj(Attn(Q(f), K(pool(f)), V(pool(f))) + DWConv(f))``

    Args:
        dim: channels ``C`` of ``f [B, C, H, W]``.
        num_heads: attention heads (``C`` must divide).
        pool_size: ``P``; keys/values come from an adaptive average pool to ``P×P``
            (``"pooled"`` attention only). Reconstruction default 8.
        attn_type: ``"pooled"`` (softmax attention over the pooled grid) or ``"linear"``
            (softmax-kernelised linear attention over all positions).
        pos_kernel: side of the depthwise positional convolution (0 disables it).
    """

    def __init__(
        self, dim: int, num_heads: int = 4, pool_size: int = 8, attn_type: str = "pooled", pos_kernel: int = 3
    ) -> None:
        super().__init__()
        if attn_type not in ("pooled", "linear"):
            raise ValueError(f"GEM attn_type must be 'pooled' or 'linear', got {attn_type!r}")
        if dim % num_heads:
            raise ValueError(f"GEM: {dim} channels are not divisible into {num_heads} heads")
        if pool_size < 1:
            raise ValueError(f"GEM pool_size must be >= 1, got {pool_size}")
        self.num_heads = num_heads
        self.pool_size = pool_size
        self.attn_type = attn_type
        self.norm = nn.GroupNorm(1, dim)
        self.q = nn.Conv2d(dim, dim, 1)
        self.kv = nn.Conv2d(dim, 2 * dim, 1)
        self.pos = nn.Conv2d(dim, dim, pos_kernel, padding=pos_kernel // 2, groups=dim) if pos_kernel else None
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` → ``[B, C, H, W]``."""
        b, c, hh, ww = f.shape
        h, d = self.num_heads, c // self.num_heads
        x = self.norm(f)
        # 1×1 convolutions applied as Linear layers on a channels-last view, so q, k and v come
        # out with a unit last stride: SDPA's fused (flash / memory-efficient) backends need it,
        # and fall back to the math backend otherwise.
        q = F.linear(x.permute(0, 2, 3, 1), self.q.weight.flatten(1), self.q.bias)
        q = q.view(b, hh * ww, h, d).transpose(1, 2)  # [B, h, N, d]
        src = F.adaptive_avg_pool2d(x, self.pool_size) if self.attn_type == "pooled" else x
        kv = F.linear(src.permute(0, 2, 3, 1), self.kv.weight.flatten(1), self.kv.bias)
        k, v = kv.view(b, -1, 2, h, d).permute(2, 0, 3, 1, 4).unbind(0)  # [B, h, M, d]
        if self.attn_type == "pooled":
            y = F.scaled_dot_product_attention(q, k, v)
        else:
            # Efficient attention: normalise q over channels and k over positions, so
            # the d×d context k^T v replaces the N×N score matrix.
            y = q.softmax(dim=-1) @ (k.softmax(dim=-2).transpose(-1, -2) @ v)
        y = y.transpose(1, 2).reshape(b, hh, ww, c).permute(0, 3, 1, 2)
        if self.pos is not None:
            y = y + self.pos(x)
        return f + self.proj(y)


@GLOBAL_ENHANCEMENT.register("gem")
def _build_gem(*, dim: int, num_heads: int = 4, pool_size: int = 8, pos_kernel: int = 3) -> GlobalEnhancementModule:
    return GlobalEnhancementModule(dim, num_heads, pool_size, "pooled", pos_kernel)


@GLOBAL_ENHANCEMENT.register("gem-linear")
def _build_gem_linear(*, dim: int, num_heads: int = 4, pool_size: int = 8, pos_kernel: int = 3) -> GlobalEnhancementModule:
    return GlobalEnhancementModule(dim, num_heads, pool_size, "linear", pos_kernel)
