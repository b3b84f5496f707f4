"""Attention hot spots behind one dispatcher: fused Triton kernels or PyTorch references.

``RRSIS_KERNELS=auto|triton|torch`` selects the backend (read on every call, so tests
may change it): ``auto`` uses Triton for CUDA tensors when Triton imports, otherwise the
reference; ``torch`` always uses the reference; ``triton`` requires Triton.
"""

from __future__ import annotations

import os

import torch

from . import reference
from .reference import elsa_aggregate_unfold, shift_window_mask

__all__ = [
    "backend",
    "elsa_aggregate",
    "elsa_aggregate_unfold",
    "pixel_word_attention",
    "shift_window_mask",
    "window_attention",
]

_VALID = ("auto", "triton", "torch")


def _triton_module():
    try:
        from . import triton_ops
    except ImportError:
        return None
    return triton_ops


def backend(*tensors: torch.Tensor) -> str:
    """The backend a call on ``tensors`` would use: ``"triton"`` or ``"torch"``."""
    choice = os.environ.get("RRSIS_KERNELS", "auto").lower()
    if choice not in _VALID:
        raise ValueError(f"RRSIS_KERNELS={choice!r}; expected one of {', '.join(_VALID)}")
    if choice == "torch":
        return "torch"
    ops = _triton_module()
    if choice == "triton":
        if ops is None:
            raise RuntimeError("RRSIS_KERNELS=triton but the Triton kernels cannot be imported")
        return "triton"
    on_cuda = all(t.is_cuda for t in tensors)
    return "triton" if (ops is not None and on_cuda) else "torch"


def window_attention(q, k, v, rel_bias, window: int, shift: int, scale: float):
    """Dispatching (shifted-)window attention; see :func:`reference.window_attention`."""
    if backend(q, k, v) == "triton":
        return _triton_module().window_attention(q, k, v, rel_bias, window, shift, scale)
    return reference.window_attention(q, k, v, rel_bias, window, shift, scale)


def elsa_aggregate(v, attn, ghost_mul, ghost_add, kernel_size: int, dilation: int = 1):
    """Dispatching ELSA aggregation; see :func:`reference.elsa_aggregate`."""
    if backend(v, attn) == "triton":
        return _triton_module().elsa_aggregate(v, attn, ghost_mul, ghost_add, kernel_size, dilation)
    return reference.elsa_aggregate(v, attn, ghost_mul, ghost_add, kernel_size, dilation)


def pixel_word_attention(q, k, v, mask, scale: float):
    """Dispatching pixel→word attention; see :func:`reference.pixel_word_attention`."""
    if backend(q, k, v) == "triton":
        return _triton_module().pixel_word_attention(q, k, v, mask, scale)
    return reference.pixel_word_attention(q, k, v, mask, scale)
