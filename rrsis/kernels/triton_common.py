"""Helpers shared by the Triton kernels: interpreter switch, tile sizes, dot precision, checks."""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

__all__ = ["LOG2E", "interpreting", "launch"]

# Scores are kept in log2 units (exp2 is the native instruction): natural-unit terms × LOG2E.
LOG2E = tl.constexpr(1.4426950408889634)


def interpreting() -> bool:
    """Whether Triton runs kernels through its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "yes", "on")


def npow2(n: int, lo: int = 16) -> int:
    return max(lo, triton.next_power_of_2(int(n)))


@triton.jit
def _dot(a, b, UPCAST: tl.constexpr, PREC: tl.constexpr):
    # The interpreter multiplies raw bf16 bit patterns in tl.dot, so it gets float32 operands.
    if UPCAST:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    else:
        return tl.dot(a, b, input_precision=PREC)


def dot_precision(dtype: torch.dtype) -> str:
    """``tl.dot`` precision for ``dtype`` operands.

    float32 follows torch's matmul setting, but "ieee" is never asked of the tensor cores: a
    float32 dot at IEEE precision has no tensor-core instruction and its FMA fallback spills
    (≈ 6 KB per thread in the window backward). Without TF32 the kernels use ``tf32x3`` (three
    TF32 products, error near float32's), with TF32 allowed plain ``tf32``.
    """
    if dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32:
        return "tf32x3"
    return "tf32"


def check_device(*tensors: torch.Tensor) -> None:
    if not interpreting() and not all(t.is_cuda for t in tensors):
        raise RuntimeError(
            "Triton kernels need CUDA tensors; on CPU set TRITON_INTERPRET=1 before importing "
            "rrsis.kernels.triton_ops (the interpreter), or use RRSIS_KERNELS=torch"
        )


def common_dtype(*tensors: torch.Tensor):
    """Cast matmul operands to one dtype: autocast's when it is on (as the reference's matmuls
    would be), else the promoted dtype."""
    dev = tensors[0].device.type
    if torch.is_autocast_enabled(dev):
        dtype = torch.get_autocast_dtype(dev)
    else:
        dtype = tensors[0].dtype
        for t in tensors[1:]:
            dtype = torch.promote_types(dtype, t.dtype)
    return [t if t.dtype == dtype else t.to(dtype) for t in tensors]


class Launch:
    """One kernel launch, planned from shapes and strides before it runs.

    The ahead-of-time compile check (:mod:`rrsis.kernels.aot`) builds the same plans from meta
    tensors, so what it compiles for sm_90 is exactly what a GPU run would launch.
    """

    __slots__ = ("args", "grid", "kernel", "kwargs")

    def __init__(self, kernel, grid, args, kwargs):
        self.kernel, self.grid, self.args, self.kwargs = kernel, grid, args, kwargs

    def __call__(self):
        return self.kernel[self.grid](*self.args, **self.kwargs)


def launch(plan: Launch):
    return plan()
