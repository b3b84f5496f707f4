"""Pure-PyTorch reference implementations of the attention hot spots.

These are the numerical specification for the fused kernels and the path used on CPU.
Every function is differentiable by autograd and works in any floating dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "elsa_aggregate",
    "elsa_aggregate_unfold",
    "elsa_attention",
    "pixel_word_attention",
    "shift_window_mask",
    "window_attention",
]

# Swin marks cross-region pairs with an additive -100 rather than -inf; converted
# checkpoints were trained with it, so parity depends on keeping it.
SHIFT_MASK_VALUE = -100.0
# LAVT's word mask: scores get ``1e4 * mask - 1e4`` added.
WORD_MASK_VALUE = 1e4


def shift_window_mask(
    hp: int, wp: int, window: int, shift: int, device=None, dtype=torch.float32
) -> torch.Tensor:
    """Additive mask for shifted windows on a padded ``hp × wp`` map.

    Returns:
        ``[nW, N, N]`` with 0 inside a region and -100 across regions, ``N = window²``,
        windows in row-major order over the (rolled) map.
    """
    img = torch.zeros(hp, wp, device=device)
    cnt = 0
    bounds = ((0, hp - window), (hp - window, hp - shift), (hp - shift, hp))
    wbounds = ((0, wp - window), (wp - window, wp - shift), (wp - shift, wp))
    for h0, h1 in bounds:
        for w0, w1 in wbounds:
            img[h0:h1, w0:w1] = cnt
            cnt += 1
    win = img.view(hp // window, window, wp // window, window).permute(0, 2, 1, 3)
    win = win.reshape(-1, window * window)
    diff = win[:, None, :] - win[:, :, None]
    return torch.where(diff != 0, SHIFT_MASK_VALUE, 0.0).to(dtype)


def _partition(x: torch.Tensor, window: int) -> torch.Tensor:
    # [B, Hp, Wp, h, d] -> [B, nW, h, N, d]
    b, hp, wp, h, d = x.shape
    x = x.view(b, hp // window, window, wp // window, window, h, d)
    x = x.permute(0, 1, 3, 5, 2, 4, 6).reshape(b, -1, h, window * window, d)
    return x


def _merge(x: torch.Tensor, hp: int, wp: int, window: int) -> torch.Tensor:
    # [B, nW, h, N, d] -> [B, Hp, Wp, h, d]
    b, _, h, _, d = x.shape
    x = x.view(b, hp // window, wp // window, h, window, window, d)
    return x.permute(0, 1, 4, 2, 5, 3, 6).reshape(b, hp, wp, h, d)


def window_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    rel_bias: torch.Tensor,
    window: int,
    shift: int,
    scale: float,
) -> torch.Tensor:
    """(Shifted-)window multi-head attention on an un-partitioned map.

    Args:
        q, k, v: ``[B, Hp, Wp, heads, d]``; ``Hp`` and ``Wp`` are multiples of ``window``.
        rel_bias: ``[heads, N, N]`` relative-position bias, ``N = window²``.
        window: window side.
        shift: cyclic shift (0 for W-MSA); when > 0 the map is rolled by ``-shift``,
            cross-region scores get -100, and the result is rolled back.
        scale: multiplier of ``q`` (usually ``d ** -0.5``).

    Returns:
        ``[B, Hp, Wp, heads, d]`` in the input layout.
    """
    hp, wp = q.shape[1:3]
    if hp % window or wp % window:
        raise ValueError(f"map {hp}x{wp} is not a multiple of window {window}")
    if shift:
        q, k, v = (torch.roll(t, shifts=(-shift, -shift), dims=(1, 2)) for t in (q, k, v))
    qw, kw, vw = (_partition(t, window) for t in (q, k, v))
    attn = (qw * scale) @ kw.transpose(-2, -1) + rel_bias.unsqueeze(0).unsqueeze(0).to(q.dtype)
    if shift:
        mask = shift_window_mask(hp, wp, window, shift, device=q.device, dtype=q.dtype)
        attn = attn + mask[None, :, None]
    attn = attn.softmax(dim=-1)
    out = _merge(attn @ vw, hp, wp, window)
    if shift:
        out = torch.roll(out, shifts=(shift, shift), dims=(1, 2))
    return out


def _ghost_filter(
    attn: torch.Tensor, channels: int, ghost_mul: torch.Tensor | None, ghost_add: torch.Tensor | None
) -> torch.Tensor:
    # [B, G, K2, H, W] -> per-channel filter [B, C, K2, H, W]
    b, g, k2, hh, ww = attn.shape
    f = attn.unsqueeze(2).expand(b, g, channels // g, k2, hh, ww).reshape(b, channels, k2, hh, ww)
    if ghost_mul is not None:
        f = f * ghost_mul.reshape(1, channels, k2, 1, 1)
    if ghost_add is not None:
        f = f + ghost_add.reshape(1, channels, k2, 1, 1)
    return f


def _check_elsa(v: torch.Tensor, attn: torch.Tensor, kernel_size: int) -> None:
    if v.dim() != 4 or attn.dim() != 5:
        raise ValueError(f"expected v [B,C,H,W] and attn [B,G,K2,H,W], got {tuple(v.shape)}, {tuple(attn.shape)}")
    b, c, hh, ww = v.shape
    if attn.shape[0] != b or attn.shape[2] != kernel_size**2 or attn.shape[3:] != (hh, ww):
        raise ValueError(f"attn {tuple(attn.shape)} does not match v {tuple(v.shape)} with kernel {kernel_size}")
    if c % attn.shape[1]:
        raise ValueError(f"{c} channels are not divisible into {attn.shape[1]} heads")


def elsa_aggregate(
    v: torch.Tensor,
    attn: torch.Tensor,
    ghost_mul: torch.Tensor | None,
    ghost_add: torch.Tensor | None,
    kernel_size: int,
    dilation: int = 1,
) -> torch.Tensor:
    """ELSA neighbourhood aggregation with ghost heads, zero padding, O(B·C·H·W) memory.

    ``y[b,c,p] = Σ_j (mul[c,j] · attn[b, g(c), j, p] + add[c,j]) · v[b, c, p + dil·δ_j]``
    with ``g(c) = c // (C / G)`` and zero outside the map. Computed as a k²-step
    shift-and-accumulate loop, so no ``k²×`` larger tensor is ever materialised.

    Args:
        v: ``[B, C, H, W]`` values.
        attn: ``[B, G, k², H, W]`` softmax-normalised neighbourhood weights per head.
        ghost_mul: ``[C, k²]`` multiplicative ghost term (already raised to λ) or ``None`` (≡ 1).
        ghost_add: ``[C, k²]`` additive ghost term (already scaled by γ) or ``None`` (≡ 0).
        kernel_size: odd neighbourhood side ``k``.
        dilation: neighbourhood dilation.

    Returns:
        ``[B, C, H, W]``.
    """
    _check_elsa(v, attn, kernel_size)
    b, c, hh, ww = v.shape
    g = attn.shape[1]
    pad = (kernel_size // 2) * dilation
    vp = F.pad(v, (pad, pad, pad, pad))
    vp = vp.view(b, g, c // g, hh + 2 * pad, ww + 2 * pad)
    a = attn.unsqueeze(2)  # [B, G, 1, K2, H, W]
    out = torch.zeros(b, g, c // g, hh, ww, dtype=v.dtype, device=v.device)
    mul = ghost_mul.view(g, c // g, -1) if ghost_mul is not None else None
    add = ghost_add.view(g, c // g, -1) if ghost_add is not None else None
    for j in range(kernel_size * kernel_size):
        dy, dx = divmod(j, kernel_size)
        sl = vp[..., dy * dilation : dy * dilation + hh, dx * dilation : dx * dilation + ww]
        w = a[:, :, :, j]
        if mul is not None:
            w = w * mul[None, :, :, j, None, None]
        if add is not None:
            w = w + add[None, :, :, j, None, None]
        out = out + w * sl
    return out.view(b, c, hh, ww)


def elsa_attention(
    v: torch.Tensor,
    logits: torch.Tensor,
    ghost_mul: torch.Tensor | None,
    ghost_add: torch.Tensor | None,
    kernel_size: int,
    dilation: int = 1,
) -> torch.Tensor:
    """ELSA attention from the generator's logits: softmax over the k² taps, then
    :func:`elsa_aggregate`, returned channels-last (the layout the output projection reads).

    The softmax runs in float32 (as autocast runs it); the result has v's and the logits'
    promoted dtype.

    Args:
        v: ``[B, C, H, W]`` values.
        logits: ``[B, G, k², H, W]`` the attention generator's output, before the softmax.
        ghost_mul, ghost_add, kernel_size, dilation: as in :func:`elsa_aggregate`.

    Returns:
        ``[B, H, W, C]``.
    """
    _check_elsa(v, logits, kernel_size)
    out_dtype = torch.promote_types(v.dtype, logits.dtype)
    attn = logits.float().softmax(dim=2)
    f32 = [t.float() if t is not None else None for t in (v, ghost_mul, ghost_add)]
    y = elsa_aggregate(f32[0], attn, f32[1], f32[2], kernel_size, dilation)
    return y.permute(0, 2, 3, 1).to(out_dtype)


def elsa_aggregate_unfold(
    v: torch.Tensor,
    attn: torch.Tensor,
    ghost_mul: torch.Tensor | None,
    ghost_add: torch.Tensor | None,
    kernel_size: int,
    dilation: int = 1,
) -> torch.Tensor:
    """The unfold formulation of :func:`elsa_aggregate` (k²× memory); kept as a test oracle."""
    _check_elsa(v, attn, kernel_size)
    b, c, hh, ww = v.shape
    k2 = kernel_size * kernel_size
    cols = F.unfold(v, kernel_size, dilation=dilation, padding=(kernel_size // 2) * dilation)
    cols = cols.view(b, c, k2, hh, ww)
    f = _ghost_filter(attn, c, ghost_mul, ghost_add)
    return (f * cols).sum(dim=2)


def pixel_word_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, scale: float
) -> torch.Tensor:
    """Pixel→word attention with LAVT's word masking.

    Keys and values are multiplied by the mask and ``1e4·mask − 1e4`` is added to the
    scores, exactly as LAVT does, so converted checkpoints keep their outputs.

    Args:
        q: ``[B, h, N, d]`` pixel queries.
        k: ``[B, h, L, d]`` word keys (unmasked).
        v: ``[B, h, L, dv]`` word values (unmasked).
        mask: ``[B, L]`` 1 for real words, 0 for padding (any dtype).
        scale: score multiplier.

    Returns:
        ``[B, h, N, dv]``.
    """
    m = mask.to(q.dtype)[:, None, :, None]  # [B, 1, L, 1]
    k = k * m
    v = v * m
    scores = (q @ k.transpose(-2, -1)) * scale
    scores = scores + (WORD_MASK_VALUE * m.transpose(-2, -1) - WORD_MASK_VALUE)
    return scores.softmax(dim=-1) @ v
