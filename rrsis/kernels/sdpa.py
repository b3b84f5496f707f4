"""Window and pixel→word attention through ``F.scaled_dot_product_attention`` (SDPA).

Both keep the references' exact conventions (Swin's additive −100 shift mask plus the relative
bias; LAVT's ``K·mask`` and ``1e4·mask − 1e4``) as one additive float mask, which SDPA's
memory-efficient and cuDNN backends accept (the flash backend takes no mask). Windows are folded
into the head axis (``[B, nW·heads, N, d]``), so one ``[1, nW·heads, N, N]`` bias+mask tensor
broadcasts over the batch instead of being materialised per image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .reference import WORD_MASK_VALUE, shift_window_mask

__all__ = ["merge_windows", "partition_windows", "pixel_word_attention", "window_attention"]


def partition_windows(x: torch.Tensor, window: int) -> torch.Tensor:
    # [B, Hp, Wp, h, d] -> [B, nW·h, N, d]
    b, hp, wp, h, d = x.shape
    x = x.view(b, hp // window, window, wp // window, window, h, d)
    return x.permute(0, 1, 3, 5, 2, 4, 6).reshape(b, -1, window * window, d)


def merge_windows(x: torch.Tensor, b: int, hp: int, wp: int, h: int, window: int) -> torch.Tensor:
    d = x.shape[-1]
    x = x.view(b, hp // window, wp // window, h, window, window, d)
    return x.permute(0, 1, 4, 2, 5, 3, 6).reshape(b, hp, wp, h, d)


def window_attention(q, k, v, rel_bias, window: int, shift: int, scale: float) -> torch.Tensor:
    """Same contract as :func:`.reference.window_attention`."""
    b, hp, wp, h = q.shape[:4]
    if shift:
        q, k, v = (torch.roll(t, (-shift, -shift), (1, 2)) for t in (q, k, v))
    qw, kw, vw = (partition_windows(t, window) for t in (q, k, v))
    n = window * window
    bias = rel_bias.to(q.dtype)[None]  # [1, h, N, N]
    if shift:
        bias = bias + shift_window_mask(hp, wp, window, shift, q.device, q.dtype)[:, None]
    bias = bias.expand(qw.shape[1] // h, h, n, n).reshape(1, -1, n, n)
    o = F.scaled_dot_product_attention(qw, kw, vw, attn_mask=bias, scale=scale)
    o = merge_windows(o, b, hp, wp, h, window)
    return torch.roll(o, (shift, shift), (1, 2)) if shift else o


def pixel_word_attention(q, k, v, mask, scale: float) -> torch.Tensor:
    """Same contract as :func:`.reference.pixel_word_attention`."""
    m = mask.to(q.dtype)[:, None, :, None]
    bias = (WORD_MASK_VALUE * m - WORD_MASK_VALUE).transpose(-1, -2)  # [B, 1, 1, L]
    return F.scaled_dot_product_attention(q, k * m, v * m, attn_mask=bias, scale=scale)
