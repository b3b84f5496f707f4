"""Swin (shifted-)window attention blocks built on timm's, routed through rrsis kernels."""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from timm.models import adapt_input_conv
from timm.models.swin_transformer import SwinTransformerBlock

from .. import kernels
from ..registry import LOCAL_ATTENTION

__all__ = ["INPUT_CONV", "SwinBlock", "adapt_input_channels", "swin_checkpoint_filter"]


class SwinBlock(SwinTransformerBlock):
    """A timm Swin block whose attention runs on the un-partitioned map.

    Parameters keep timm's names (``norm1``, ``attn.qkv``, ``attn.proj``,
    ``attn.relative_position_bias_table``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``) so timm's
    Hub weights load directly. The window and shift stay fixed at every resolution and
    maps are zero-padded to window multiples before the cyclic shift, as the mmseg-style
    Swin of LAVT/RMSIN does (timm instead clamps the window on small maps).

    Args:
        dim: channels ``C``; input and output are ``[B, H, W, C]``.
        num_heads: attention heads.
        window_size: window side.
        shift: cyclic shift (0 for W-MSA, ``window_size // 2`` for SW-MSA).
        mlp_ratio, qkv_bias, drop_path: as in Swin.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int = 12,
        shift: int = 0,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__(
            dim,
            input_resolution=(window_size * 2, window_size * 2),
            num_heads=num_heads,
            window_size=window_size,
            shift_size=shift,
            always_partition=True,
            dynamic_mask=True,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            drop_path=drop_path,
        )
        self.window = window_size
        self.shift = shift

    def _attn(self, x: torch.Tensor) -> torch.Tensor:
        b, hh, ww, _ = x.shape
        win, attn = self.window, self.attn
        pad_h, pad_w = (-hh) % win, (-ww) % win
        if pad_h or pad_w:
            x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        hp, wp = hh + pad_h, ww + pad_w
        heads = attn.num_heads
        qkv = attn.qkv(x).view(b, hp, wp, 3, heads, -1)
        q, k, v = qkv.unbind(3)
        n = win * win
        bias = attn.relative_position_bias_table[attn.relative_position_index.view(-1)]
        bias = bias.view(n, n, heads).permute(2, 0, 1)
        out = kernels.window_attention(q, k, v, bias, win, self.shift, attn.scale)
        out = attn.proj_drop(attn.proj(out.reshape(b, hp, wp, -1)))
        return out[:, :hh, :ww]


@LOCAL_ATTENTION.register("swin")
def _build_swin_block(
    *, dim: int, num_heads: int, window_size: int, index: int, mlp_ratio: float = 4.0,
    qkv_bias: bool = True, drop_path: float = 0.0,
) -> SwinBlock:
    # Even blocks use W-MSA, odd ones SW-MSA, as in every Swin stage.
    shift = 0 if index % 2 == 0 else window_size // 2
    return SwinBlock(dim, num_heads, window_size, shift, mlp_ratio, qkv_bias, drop_path)


# The input convolution of an ImageNet Swin (the patch embedding), in rrsis's names.
INPUT_CONV = "patch_embed.proj.weight"


def adapt_input_channels(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Pretrained input-convolution weights ``[O, I, k, k]`` (``I = 3``: R, G, B) adapted to
    ``in_chans`` bands, by :func:`timm.models.adapt_input_conv` itself, which does:

    - ``in_chans == I``: unchanged;
    - ``in_chans == 1``: the sum of the ``I`` filters (a grey band answers as R + G + B would);
    - ``in_chans > 1``: the ``I`` filters repeated cyclically (band ``j`` gets filter
      ``j mod I``: R, G, B, R, G, B, ...) and cut to ``in_chans``, all scaled by
      ``I / in_chans``, so a first layer fed equal bands keeps the RGB layer's output
      scale. With ``in_chans = 2`` that is the R and G filters times 3/2; with 4 (RGB + NIR)
      R, G, B, R times 3/4.

    A band's filter says nothing about what the band means (the near-infrared band starts as a
    red filter); training adapts it. The dtype is kept.

    Args:
        weight: ``[O, I, k, k]``.
        in_chans: bands of the model, at least 1.
    """
    if weight.dim() != 4:
        raise ValueError(f"an input convolution weight is [O, I, k, k], got shape {tuple(weight.shape)}")
    if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans < 1:
        raise ValueError(f"in_chans must be a positive integer, got {in_chans!r}")
    return adapt_input_conv(in_chans, weight, base_chans=weight.shape[1])


# Buffers some checkpoints carry that every model rebuilds itself.
_REBUILT = ("relative_position_index", "attn_mask")


def swin_checkpoint_filter(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An ImageNet Swin state dict (timm's layout, or Microsoft's original one) → the names of
    :class:`~rrsis.backbones.multimodal.MultiModalSwin` (without the ``backbone.`` prefix).

    timm's ``patch_embed``, ``layers.{i}.downsample`` and ``layers.{i}.blocks.{j}`` are rrsis's
    names; Microsoft's layout downsamples at the *end* of a stage (stage 0 owning a downsample
    gives it away), so its merges move one stage up. Rebuilt buffers are dropped; keys rrsis
    has no place for (the classifier ``head``, the final ``norm``) pass through for the loader
    to report.
    """
    if state and all(k.startswith("backbone.") for k in state):
        state = {k[len("backbone."):]: v for k, v in state.items()}
    if any(k.startswith("layers.0.downsample.") for k in state):
        state = {
            re.sub(r"^layers\.(\d+)\.downsample\.", lambda m: f"layers.{int(m.group(1)) + 1}.downsample.", k): v
            for k, v in state.items()
        }
    return {k: v for k, v in state.items() if not k.endswith(_REBUILT)}
