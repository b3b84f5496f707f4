"""LAVT's pixel-word attention module (PWAM)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import kernels
from ..registry import FUSION

__all__ = ["PixelWordAttention"]


def _pointwise(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """A kernel-1 ``Conv1d`` on ``[B, C, N]`` as one matrix product over every position: torch's
    CPU convolution runs one small product per sample, several times slower on the short,
    wide maps of the last stages; the parameters (and so checkpoints) are the Conv1d's."""
    return F.linear(x.transpose(1, 2), conv.weight.squeeze(-1), conv.bias).transpose(1, 2)


class _ImageLanguageAttention(nn.Module):
    """Pixels attend over words; LAVT's ``SpatialImageLanguageAttention``."""

    def __init__(self, dim: int, text_dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.key_channels = dim
        # Sequential wrappers keep the official sub-keys (``f_query.0``, ``W.0``, ...).
        self.f_query = nn.Sequential(nn.Conv1d(dim, dim, 1), nn.InstanceNorm1d(dim))
        self.f_key = nn.Sequential(nn.Conv1d(text_dim, dim, 1))
        self.f_value = nn.Sequential(nn.Conv1d(text_dim, dim, 1))
        self.W = nn.Sequential(nn.Conv1d(dim, dim, 1), nn.InstanceNorm1d(dim))

    def forward(self, x: torch.Tensor, words: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x: [B, C, N], words: [B, D, L], mask: [B, L] -> [B, C, N]
        b, c, n = x.shape
        h = self.num_heads
        q = self.f_query[1](_pointwise(self.f_query[0], x)).reshape(b, h, c // h, n).transpose(-1, -2)
        k = _pointwise(self.f_key[0], words).reshape(b, h, c // h, -1).transpose(-1, -2)
        v = _pointwise(self.f_value[0], words).reshape(b, h, c // h, -1).transpose(-1, -2)
        # LAVT scales by the full key width, not the per-head width.
        out = kernels.pixel_word_attention(q, k, v, mask, self.key_channels**-0.5)
        return self.W[1](_pointwise(self.W[0], out.transpose(-1, -2).reshape(b, c, n)))


class PixelWordAttention(nn.Module):
    """Pixel-word attention: every pixel gathers the words it relates to.

    ``out = Proj(GELU(Conv(x)) ⊙ Attn(x, words))`` where the attention queries are
    instance-normalised pixel features and keys/values are word features; padded words
    are masked exactly as LAVT does (K, V zeroed and ``1e4·mask − 1e4`` on the scores).

    Args:
        dim: visual channels ``C``.
        text_dim: word feature width ``D``.
        num_heads: attention heads (LAVT: 1).
        dropout: dropout after the two projections.
    """

    def __init__(self, dim: int, text_dim: int, num_heads: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"PWAM: {dim} channels are not divisible into {num_heads} heads")
        self.vis_project = nn.Sequential(nn.Conv1d(dim, dim, 1), nn.GELU(), nn.Dropout(dropout))
        self.image_lang_att = _ImageLanguageAttention(dim, text_dim, num_heads)
        self.project_mm = nn.Sequential(nn.Conv1d(dim, dim, 1), nn.GELU(), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, words: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x [B, C, H, W]``, ``words [B, L, D]``, ``mask [B, L]`` → ``[B, C, H, W]``."""
        b, c, hh, ww = x.shape
        flat = x.flatten(2)
        lang = self.image_lang_att(flat, words.transpose(1, 2), mask)
        vis = self.vis_project[2](self.vis_project[1](_pointwise(self.vis_project[0], flat)))
        mm = self.project_mm[2](self.project_mm[1](_pointwise(self.project_mm[0], vis * lang)))
        return mm.view(b, c, hh, ww)


@FUSION.register("pwam")
def _build_pwam(*, dim: int, text_dim: int, num_heads: int = 1, dropout: float = 0.0) -> PixelWordAttention:
    return PixelWordAttention(dim, text_dim, num_heads=num_heads, dropout=dropout)
