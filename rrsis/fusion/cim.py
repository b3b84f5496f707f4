"""RMSIN's cross-scale interaction module (CIM), with sizes computed instead of hard-coded.

All four stage maps are average-pooled to one ``grid × grid`` map and concatenated; a
light transformer block mixes scales there (attention over the grid tokens plus two
strided depth-wise summaries of them, and a per-scale feed-forward); the result is split
back per scale and injected into each stage map by a :class:`ScaleAwareGate`.

RMSIN pools to the stage-4 size and hard-codes 15×15 (a 480×480 input), because a Linear
layer mixes *tokens* (``proj``: 314 → 225). Here the pooled grid is a constructor argument
(``grid=15``, the official value) and every input is adaptively pooled to it, so one set of
weights serves 320, 480 or 640 inputs; at 480×480 the computation is exactly RMSIN's.
Submodule names follow the official checkpoints (``block.0.csa1.m.DWConv1.0``, …).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._config import check_size
from ..registry import NECKS

__all__ = [
    "CrossScaleAttention",
    "CrossScaleInteraction",
    "ScaleAwareGate",
    "conv_out_size",
]


def conv_out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Spatial output size of a convolution (dilation 1)."""
    return (size + 2 * padding - kernel) // stride + 1


class LinearBN(nn.Module):
    """Bias-free Linear followed by BatchNorm1d over all tokens (keys ``c``, ``bn``)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.c = nn.Linear(in_features, out_features, bias=False)
        self.bn = nn.BatchNorm1d(out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, N, C_in]`` → ``[B, N, C_out]``."""
        y = self.c(x)
        return self.bn(y.flatten(0, 1)).reshape_as(y)


class Residual(nn.Module):
    """``x + m(x)`` (the wrapped module is ``m``, as in the official keys)."""

    def __init__(self, m: nn.Module) -> None:
        super().__init__()
        self.m = m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.m(x)


class ConvFeedForward(nn.Module):
    """``BN → 1×1 → BN → grouped 3×3 (groups=dim) → ReLU6 → 1×1`` on a map.

    Args:
        dim: input/output channels.
        hidden_dim: expanded channels (a multiple of ``dim``).
    """

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(dim)
        self.conv1 = nn.Conv2d(dim, hidden_dim, 1)
        self.bn2 = nn.BatchNorm2d(hidden_dim)
        self.conv2 = nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1, groups=dim)
        self.conv3 = nn.Conv2d(hidden_dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` → ``[B, C, H, W]``."""
        x = self.conv2(self.bn2(self.conv1(self.bn1(x))))
        return self.conv3(F.relu6(x))


class IntraFeedForward(nn.Module):
    """Separate residual feed-forward per scale slice of the mixed map.

    Args:
        channels: per-scale channels of the backbone; slice ``i`` has ``channels[i] // 4``.
        mlp_ratio: expansion of each feed-forward.
    """

    def __init__(self, channels: Sequence[int], mlp_ratio: int = 2) -> None:
        super().__init__()
        self.split = [c // 4 for c in channels]
        for i, c in enumerate(self.split):
            self.add_module(f"ff{i + 1}", Residual(ConvFeedForward(c, mlp_ratio * c)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, Σ channels/4, H, W]`` → same shape."""
        parts = x.split(self.split, dim=1)
        return torch.cat(
            [getattr(self, f"ff{i + 1}")(p) for i, p in enumerate(parts)], dim=1
        )


class PooledTokenAttention(nn.Module):
    """Attention of the ``grid²`` tokens over themselves plus two pooled summaries.

    Queries, keys and values come from all ``N = grid² + n1 + n2`` tokens; the output keeps
    only ``grid²`` positions through a Linear over the token axis (``proj``: N → grid²),
    plus a depth-wise 3×3 term on the grid part of the values.

    Args:
        dim: token channels.
        grid: side of the token grid.
        num_tokens: ``N``, all tokens (grid + the two strided summaries).
        key_dim: query/key channels per head.
        num_heads: heads.
        attn_ratio: value channels per head = ``attn_ratio * key_dim``.
    """

    def __init__(
        self,
        dim: int,
        grid: int,
        num_tokens: int,
        key_dim: int = 32,
        num_heads: int = 8,
        attn_ratio: int = 2,
    ) -> None:
        super().__init__()
        self.grid = grid
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.scale = key_dim**-0.5
        self.value_dim = int(attn_ratio * key_dim)
        self.dh = self.value_dim * num_heads
        self.qkv = LinearBN(dim, self.dh + 2 * key_dim * num_heads)
        self.parallel_conv = nn.Sequential(
            nn.Hardswish(),
            nn.Conv2d(self.dh, self.dh, 3, padding=1, groups=self.dh),
        )
        self.to_out = nn.Linear(self.dh, dim)
        self.proj = nn.Linear(num_tokens, grid * grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, N, C]`` → ``[B, grid², C]``."""
        b, n, _ = x.shape
        g2 = self.grid * self.grid
        q, k, v = (
            self.qkv(x)
            .view(b, n, self.num_heads, -1)
            .split([self.key_dim, self.key_dim, self.value_dim], dim=3)
        )
        q, k, v = (t.permute(0, 2, 1, 3) for t in (q, k, v))
        # RMSIN reinterprets the [heads, tokens, dim] memory as a [dh, grid, grid] map (and
        # the attention output as [dh, N]) without permuting; trained weights depend on
        # this scrambled layout, so it is reproduced as is.
        v_grid = v[:, :, :g2].reshape(b, self.dh, self.grid, self.grid)
        v_conv = self.parallel_conv(v_grid).flatten(2)
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, self.dh, n)
        out = self.proj(out) + v_conv
        return self.to_out(out.permute(0, 2, 1))


class CrossScaleAttention(nn.Module):
    """Attention on a ``grid × grid`` map with two strided depth-wise summaries as extra keys.

    Args:
        dim: channels of the map.
        grid: side of the (square) map this block is built for.
        key_dim, num_heads, attn_ratio: see :class:`PooledTokenAttention`.
    """

    def __init__(
        self,
        dim: int,
        grid: int = 15,
        key_dim: int = 32,
        num_heads: int = 8,
        attn_ratio: int = 2,
    ) -> None:
        super().__init__()
        self.grid = grid
        self.bn1 = nn.BatchNorm2d(dim)
        self.DWConv1 = nn.Sequential(
            nn.Conv2d(dim, dim, 3, stride=2, padding=1, groups=dim), nn.BatchNorm2d(dim)
        )
        self.DWConv2 = nn.Sequential(
            nn.Conv2d(dim, dim, 5, stride=3, padding=2, groups=dim), nn.BatchNorm2d(dim)
        )
        # 15 → 8 and 15 → 5 for the official grid: 225 + 64 + 25 = 314 tokens.
        n1 = conv_out_size(grid, 3, 2, 1) ** 2
        n2 = conv_out_size(grid, 5, 3, 2) ** 2
        self.num_tokens = grid * grid + n1 + n2
        self.attention = PooledTokenAttention(
            dim, grid, self.num_tokens, key_dim=key_dim, num_heads=num_heads,
            attn_ratio=attn_ratio,
        )
        self.bn4 = nn.BatchNorm2d(dim)
        self.conv = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, grid, grid]`` → ``[B, C, grid, grid]``."""
        b, c, h, w = x.shape
        if (h, w) != (self.grid, self.grid):
            raise ValueError(f"CrossScaleAttention built for {self.grid}×{self.grid}, got {h}×{w}")
        x0 = self.bn1(x)
        tokens = torch.cat(
            [x0.flatten(2), self.DWConv1(x0).flatten(2), self.DWConv2(x0).flatten(2)], dim=2
        )
        out = self.attention(tokens.permute(0, 2, 1))
        out = out.permute(0, 2, 1).reshape(b, c, h, w)
        return self.conv(F.hardswish(self.bn4(out)))


class CIMBlock(nn.Module):
    """``x + CSA(x)`` → ``x + IntraFF(x)`` → ``x + CSA(x)`` → ``x + FF(x)``.

    Args:
        dim: channels of the mixed map (``Σ channels / 4``).
        channels: per-scale backbone channels.
        grid: side of the mixed map.
        mlp_ratio: feed-forward expansion.
    """

    def __init__(self, dim: int, channels: Sequence[int], grid: int = 15, mlp_ratio: int = 2):
        super().__init__()
        self.csa1 = Residual(CrossScaleAttention(dim, grid))
        self.intra_ff = Residual(IntraFeedForward(channels, mlp_ratio))
        self.csa2 = Residual(CrossScaleAttention(dim, grid))
        self.ff = Residual(ConvFeedForward(dim, dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff(self.csa2(self.intra_ff(self.csa1(x))))


class ScaleAwareGate(nn.Module):
    """Inject a coarse global map into a stage map: ``BN(conv(l)) · up(hσ(BN(conv(g)))) + up(BN(conv(g)))``.

    Args:
        in_dim: channels of both inputs.
        out_dim: output channels.
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.local_embedding = nn.Conv2d(in_dim, out_dim, 1)
        self.bn1 = nn.BatchNorm2d(out_dim)
        self.global_embedding = nn.Conv2d(in_dim, out_dim, 1)
        self.bn2 = nn.BatchNorm2d(out_dim)
        self.global_act = nn.Conv2d(in_dim, out_dim, 1)
        self.bn3 = nn.BatchNorm2d(out_dim)

    def forward(self, x_local: torch.Tensor, x_global: torch.Tensor) -> torch.Tensor:
        """``x_local: [B, C, H, W]``, ``x_global: [B, C, h, w]`` → ``[B, C_out, H, W]``."""
        size = x_local.shape[-2:]
        local = self.bn1(self.local_embedding(x_local))
        glob = F.interpolate(
            self.bn2(self.global_embedding(x_global)), size=size, mode="bilinear",
            align_corners=False,
        )
        gate = F.interpolate(
            F.hardsigmoid(self.bn3(self.global_act(x_global))), size=size, mode="bilinear",
            align_corners=False,
        )
        return local * gate + glob


class CrossScaleInteraction(nn.Module):
    """RMSIN's CIM over the four stage maps; returns the four enhanced maps.

    Args:
        channels: per-stage channels (Swin-B 128/256/512/1024); the mixed map has
            ``Σ channels / 4`` channels, split per scale as ``channels[i] / 4``.
        grid: side of the pooled map all stages meet on (15 = stage 4 of a 480 input, the
            size official weights were trained for; token-mixing weights depend on it).
        num_blocks: CIM blocks.
        mlp_ratio: feed-forward expansion.
    """

    def __init__(
        self,
        channels: Sequence[int] = (128, 256, 512, 1024),
        grid: int = 15,
        num_blocks: int = 1,
        mlp_ratio: int = 2,
    ) -> None:
        super().__init__()
        self.channels = [int(c) for c in channels]
        self.grid = grid
        dim = sum(self.channels)
        hidden = dim // 4
        if sum(c // 4 for c in self.channels) != hidden:
            raise ValueError(f"channels {self.channels} must be multiples of 4")
        self.down_channel = nn.Conv2d(dim, hidden, 1)
        self.up_channel = nn.Conv2d(hidden, dim, 1)
        self.block = nn.ModuleList(
            [CIMBlock(hidden, self.channels, grid, mlp_ratio) for _ in range(num_blocks)]
        )
        self.bn = nn.BatchNorm2d(hidden)
        self.fusion = nn.ModuleList([ScaleAwareGate(c, c) for c in self.channels])

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Stage maps ``[B, C_i, H_i, W_i]`` (i = 1..4) → enhanced maps of the same shapes."""
        if len(features) != len(self.channels):
            raise ValueError(f"expected {len(self.channels)} maps, got {len(features)}")
        g = (self.grid, self.grid)
        out = torch.cat([F.adaptive_avg_pool2d(f, g) for f in features], dim=1)
        out = self.down_channel(out)
        for blk in self.block:
            out = blk(out)
        out = self.up_channel(self.bn(out))
        return [
            gate(f, glob)
            for gate, f, glob in zip(self.fusion, features, out.split(self.channels, dim=1))
        ]


@NECKS.register("cim")
def _build_cim(
    *, in_channels: Sequence[int], grid: int = 15, num_blocks: int = 1, mlp_ratio: int = 2
) -> CrossScaleInteraction:
    check_size("grid", grid, "neck.grid")
    check_size("num_blocks", num_blocks, "neck.num_blocks")
    check_size("mlp_ratio", mlp_ratio, "neck.mlp_ratio")
    return CrossScaleInteraction(
        in_channels, grid=grid, num_blocks=num_blocks, mlp_ratio=mlp_ratio
    )
