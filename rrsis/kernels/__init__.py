"""Attention hot spots behind one dispatcher: fused Triton kernels or PyTorch references.

``RRSIS_KERNELS=auto|triton|torch`` selects the backend (read on every call, so tests
may change it): ``auto`` uses Triton for CUDA tensors when Triton imports, otherwise the
reference; ``torch`` always uses the reference; ``triton`` requires Triton.

The Triton path goes through ``torch.library`` custom ops (``torch.ops.rrsis.*``), which
``torch.compile`` traces without graph breaks; on CPU those ops run Triton's interpreter under
``TRITON_INTERPRET=1`` and the reference otherwise. A CUDA call is sent to a kernel only inside
the envelope the kernels were compiled (for sm_90) and tested for (:mod:`.support`); outside
it ``auto`` uses the reference and ``triton`` raises, naming the parameter. Inside it, the
measured table of :mod:`.table` may send a shape to ``torch.compile`` of the reference, the
eager reference or SDPA instead, where one of those measured faster; a shape not in it uses the
op's measured default (:data:`.table.DEFAULTS`: the eager reference for PWAM, the kernel for the
others; the kernel for every op under ``RRSIS_KERNELS=triton``).
"""

from __future__ import annotations

import os

import torch

from . import eager, reference, sdpa, support, table
from .compile import compile_model
from .reference import elsa_aggregate_unfold, shift_window_mask

__all__ = [
    "backend",
    "compile_model",
    "elsa_aggregate",
    "elsa_aggregate_unfold",
    "elsa_attention",
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
            raise RuntimeError("RRSIS_KERNELS=triton but the Triton kernels cannot be imported; "
                               "RRSIS_KERNELS=torch uses the PyTorch reference")
        return "triton"
    on_cuda = all(t.is_cuda for t in tensors)
    return "triton" if (ops is not None and on_cuda) else "torch"


def _use_kernel(op: str, tensors, **params) -> bool:
    if backend(*tensors) == "torch":
        return False
    if not all(t.is_cuda for t in tensors):
        return True  # CPU: the op runs the interpreter or the reference, never a compiled kernel
    dtypes = {t.dtype for t in tensors}
    reason = next((r for r in (support.unsupported(op, dtype=d, **params) for d in dtypes) if r),
                  None)
    if reason is None:
        return True
    if os.environ.get("RRSIS_KERNELS", "auto").lower() == "triton":
        raise ValueError(
            f"RRSIS_KERNELS=triton: the Triton {op} kernel is not compiled and tested for "
            f"{reason}; set RRSIS_KERNELS=torch (or auto) to use the PyTorch reference"
        )
    return False


_compiled: dict = {}


def _compiled_reference(fn):
    if fn not in _compiled:
        _compiled[fn] = torch.compile(fn, dynamic=False)
    return _compiled[fn]


def _compute_dtype(t: torch.Tensor) -> torch.dtype:
    dev = t.device.type
    return torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else t.dtype


def _provider(op: str, t: torch.Tensor, shape) -> str:
    """The measured choice (:mod:`.table`) for a call the kernel could take; when the table has
    none, the op's default, or the kernel under an explicit ``RRSIS_KERNELS=triton``."""
    explicit = os.environ.get("RRSIS_KERNELS", "auto").lower() == "triton"
    return table.choose(op, t.device, _compute_dtype(t), shape, default="triton" if explicit else None)


def window_attention(q, k, v, rel_bias, window: int, shift: int, scale: float):
    """Dispatching (shifted-)window attention; see :func:`reference.window_attention`."""
    if _use_kernel("window_attention", (q, k, v), window=window, head_dim=q.shape[-1]):
        how = _provider("window_attention", q, (*q.shape, shift))
        if how == "triton":
            return _triton_module().window_attention(q, k, v, rel_bias, window, shift, scale)
        fn = {"sdpa": sdpa.window_attention, "eager": reference.window_attention,
              "compiled": _compiled_reference(reference.window_attention)}[how]
        return fn(q, k, v, rel_bias, window, shift, scale)
    return reference.window_attention(q, k, v, rel_bias, window, shift, scale)


def elsa_aggregate(v, attn, ghost_mul, ghost_add, kernel_size: int, dilation: int = 1):
    """Dispatching ELSA aggregation; see :func:`reference.elsa_aggregate`."""
    if _use_kernel("elsa_aggregate", (v, attn), kernel_size=kernel_size, dilation=dilation,
                   channels_per_head=v.shape[1] // attn.shape[1]):
        return _triton_module().elsa_aggregate(v, attn, ghost_mul, ghost_add, kernel_size, dilation)
    return _elsa_torch(v, attn, ghost_mul, ghost_add, kernel_size, dilation)


def _elsa_torch(v, attn, ghost_mul, ghost_add, kernel_size: int, dilation: int):
    inputs = (v, attn, ghost_mul, ghost_add)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs):
        # the same loop with a hand-written backward (autograd's allocates k² full-size buffers)
        return eager.elsa_aggregate(v, attn, ghost_mul, ghost_add, kernel_size, dilation)
    # no gradient: the in-place loop (about half the time of the reference's on a CPU)
    return eager.elsa_aggregate_no_grad(v, attn, ghost_mul, ghost_add, kernel_size, dilation)


def elsa_attention(v, logits, ghost_mul, ghost_add, kernel_size: int, dilation: int = 1):
    """Dispatching ELSA attention from the generator's logits (softmax over k² included),
    ``[B, H, W, C]`` out; see :func:`reference.elsa_attention`."""
    if _use_kernel("elsa_aggregate", (v, logits), kernel_size=kernel_size, dilation=dilation,
                   channels_per_head=v.shape[1] // logits.shape[1]):
        how, tiles = table.split("elsa_attention", _provider(
            "elsa_attention", v, (*v.shape, logits.shape[1], ghost_mul is not None,
                                  ghost_add is not None)))
        if how == "triton":
            return _triton_module().elsa_attention(v, logits, ghost_mul, ghost_add, kernel_size,
                                                   dilation, tiles)
        if how == "compiled":
            return _compiled_reference(reference.elsa_attention)(v, logits, ghost_mul, ghost_add,
                                                                 kernel_size, dilation)
    attn = logits.softmax(dim=2)
    return _elsa_torch(v, attn, ghost_mul, ghost_add, kernel_size, dilation).permute(0, 2, 3, 1)


def pixel_word_attention(q, k, v, mask, scale: float):
    """Dispatching pixel→word attention; see :func:`reference.pixel_word_attention`."""
    if _use_kernel("pixel_word_attention", (q, k, v), heads=q.shape[1], words=k.shape[2],
                   channels=q.shape[-1]):
        how = _provider("pixel_word_attention", q, (*q.shape, k.shape[2]))
        if how == "triton":
            return _triton_module().pixel_word_attention(q, k, v, mask, scale)
        fn = {"sdpa": sdpa.pixel_word_attention, "eager": reference.pixel_word_attention,
              "compiled": _compiled_reference(reference.pixel_word_attention)}[how]
        return fn(q, k, v, mask, scale)
    return reference.pixel_word_attention(q, k, v, mask, scale)
