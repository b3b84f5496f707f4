"""Triton kernels behind the :mod:`rrsis.kernels` dispatcher (imports ``triton``).

Each op has the exact signature of its reference in :mod:`rrsis.kernels.reference`, runs through
a ``torch.library`` custom op (:mod:`rrsis.kernels.ops`: fused forward and backward, traceable by
``torch.compile``), and accepts float32, bfloat16 and float16 inputs (accumulating in float32).
On CPU the kernels run only through Triton's interpreter, which must be switched on
(``TRITON_INTERPRET=1``) before this module is imported, because ``triton.jit`` decides between
compiling and interpreting when a kernel is defined; without it the ops run the reference on CPU.
"""

from __future__ import annotations

import torch

from . import ops
from .reference import _check_elsa
from .triton_common import check_device, common_dtype, interpreting
from .triton_elsa import DEFAULT as _ELSA_DEFAULT
from .triton_elsa import ElsaTiles
from .triton_elsa_fused import DEFAULT as _FUSED_DEFAULT
from .triton_elsa_fused import ElsaFusedTiles
from .triton_pwam import DEFAULT as _PWAM_DEFAULT
from .triton_pwam import PwamConfig
from .triton_window import DEFAULT as _WINDOW_DEFAULT
from .triton_window import WindowConfig

__all__ = [
    "ElsaFusedTiles",
    "ElsaTiles",
    "PwamConfig",
    "WindowConfig",
    "elsa_aggregate",
    "elsa_attention",
    "interpreting",
    "pixel_word_attention",
    "window_attention",
]


def window_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    rel_bias: torch.Tensor,
    window: int,
    shift: int,
    scale: float,
    config: WindowConfig | None = None,
) -> torch.Tensor:
    """Fused (shifted-)window attention; same contract as :func:`reference.window_attention`.

    Args:
        q, k, v: ``[B, Hp, Wp, heads, d]``, any strides (views are read in place); under
            autocast they are cast to its dtype, else to their promoted dtype.
        rel_bias: ``[heads, N, N]``, ``N = window²``; cast to ``q.dtype`` like the reference.
        window: window side; ``Hp`` and ``Wp`` must be multiples of it.
        shift: cyclic shift (0 for W-MSA); cross-region pairs get Swin's additive −100.
        scale: score multiplier.
        config: tile shapes (:class:`WindowConfig`); the defaults suit 12×12 windows.

    Returns:
        ``[B, Hp, Wp, heads, d]`` (contiguous), dtype of ``q``.
    """
    if q.dim() != 5 or k.shape != q.shape or v.shape != q.shape:
        raise ValueError(f"expected q, k, v [B,Hp,Wp,heads,d] of one shape, got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    hp, wp, heads = q.shape[1:4]
    if hp % window or wp % window:
        raise ValueError(f"map {hp}x{wp} is not a multiple of window {window}")
    n = window * window
    if tuple(rel_bias.shape) != (heads, n, n):
        raise ValueError(f"rel_bias {tuple(rel_bias.shape)} is not [heads={heads}, {n}, {n}]")
    if shift < 0:
        raise ValueError(f"shift must be ≥ 0, got {shift}")
    check_device(q, k, v, rel_bias)
    q, k, v = common_dtype(q, k, v)
    cfg = (config or _WINDOW_DEFAULT).to_list()
    return ops.window_attention_op(q, k, v, rel_bias, int(window), int(shift), float(scale), cfg)[0]


def elsa_aggregate(
    v: torch.Tensor,
    attn: torch.Tensor,
    ghost_mul: torch.Tensor | None,
    ghost_add: torch.Tensor | None,
    kernel_size: int,
    dilation: int = 1,
    config: ElsaTiles | None = None,
) -> torch.Tensor:
    """Fused ELSA aggregation; same contract as :func:`reference.elsa_aggregate`.

    Args:
        v: ``[B, C, H, W]`` values (any strides: the channels-last split of ``pre_proj``'s
            output is read in place).
        attn: ``[B, G, k², H, W]`` softmax-normalised weights (any strides).
        ghost_mul: ``[C, k²]`` or ``None``.
        ghost_add: ``[C, k²]`` or ``None``.
        kernel_size: neighbourhood side ``k`` (odd in ELSA; offsets ``j // k − k // 2``).
        dilation: neighbourhood dilation.
        config: tile shapes (:class:`ElsaTiles`).

    Returns:
        ``[B, C, H, W]`` contiguous.
    """
    _check_elsa(v, attn, kernel_size)
    c, k2 = v.shape[1], kernel_size * kernel_size
    for name, t in (("ghost_mul", ghost_mul), ("ghost_add", ghost_add)):
        if t is not None and t.numel() != c * k2:
            raise ValueError(f"{name} has {t.numel()} elements, expected [C={c}, k²={k2}]")
    check_device(v, attn)
    ghost_mul = ghost_mul.reshape(c, k2) if ghost_mul is not None else None
    ghost_add = ghost_add.reshape(c, k2) if ghost_add is not None else None
    cfg = (config or _ELSA_DEFAULT).to_list()
    return ops.elsa_aggregate_op(v, attn, ghost_mul, ghost_add, int(kernel_size), int(dilation), cfg)


def elsa_attention(
    v: torch.Tensor,
    logits: torch.Tensor,
    ghost_mul: torch.Tensor | None,
    ghost_add: torch.Tensor | None,
    kernel_size: int,
    dilation: int = 1,
    config: ElsaFusedTiles | None = None,
) -> torch.Tensor:
    """Fused ELSA attention from logits; same contract as :func:`reference.elsa_attention`.

    Args:
        v: ``[B, C, H, W]`` values (any strides).
        logits: ``[B, G, k², H, W]`` the generator's output before the softmax (any strides);
            the softmax over k² is done in the kernel.
        ghost_mul: ``[C, k²]`` or ``None``; ghost_add: ``[C, k²]`` or ``None``.
        kernel_size, dilation: the neighbourhood.
        config: tile shapes (:class:`ElsaFusedTiles`).

    Returns:
        ``[B, H, W, C]`` contiguous, dtype of v and the logits promoted.
    """
    _check_elsa(v, logits, kernel_size)
    c, k2 = v.shape[1], kernel_size * kernel_size
    for name, t in (("ghost_mul", ghost_mul), ("ghost_add", ghost_add)):
        if t is not None and t.numel() != c * k2:
            raise ValueError(f"{name} has {t.numel()} elements, expected [C={c}, k²={k2}]")
    check_device(v, logits)
    ghost_mul = ghost_mul.reshape(c, k2) if ghost_mul is not None else None
    ghost_add = ghost_add.reshape(c, k2) if ghost_add is not None else None
    cfg = (config or _FUSED_DEFAULT).to_list()
    return ops.elsa_attention_op(v, logits, ghost_mul, ghost_add, int(kernel_size), int(dilation),
                                 cfg)[0]


def pixel_word_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor,
    scale: float,
    config: PwamConfig | None = None,
) -> torch.Tensor:
    """Fused pixel→word attention; same contract as :func:`reference.pixel_word_attention`.

    Args:
        q: ``[B, h, N, d]`` pixel queries (any strides; q, k, v are cast to one dtype as in
            :func:`window_attention`).
        k: ``[B, h, L, d]`` word keys, unmasked.
        v: ``[B, h, L, dv]`` word values, unmasked.
        mask: ``[B, L]`` 1 for words, 0 for padding (any dtype; receives no gradient).
        scale: score multiplier.
        config: tile shapes (:class:`PwamConfig`).

    Returns:
        ``[B, h, N, dv]`` contiguous, dtype of ``q``.
    """
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError("expected q [B,h,N,d], k [B,h,L,d], v [B,h,L,dv]")
    b, heads, _, d = q.shape
    L = k.shape[2]
    if k.shape != (b, heads, L, d) or v.shape[:3] != (b, heads, L):
        raise ValueError(f"shapes do not match: q {tuple(q.shape)}, k {tuple(k.shape)}, "
                         f"v {tuple(v.shape)}")
    if tuple(mask.shape) != (b, L):
        raise ValueError(f"mask {tuple(mask.shape)} is not [B={b}, L={L}]")
    if L > 256:
        raise ValueError(f"{L} words: the kernel keeps every word in one tile (≤ 256)")
    check_device(q, k, v)
    q, k, v = common_dtype(q, k, v)
    cfg = (config or _PWAM_DEFAULT).to_list()
    return ops.pixel_word_attention_op(q, k, v, mask.detach(), float(scale), cfg)[0]
