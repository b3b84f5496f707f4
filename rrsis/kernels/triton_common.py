"""Helpers shared by the Triton kernels: interpreter switch, tile sizes, dot precision, checks."""

from __future__ import annotations

import math
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


def sm_count(device) -> int | None:
    """Multiprocessors of a CUDA ``device``; ``None`` off CUDA and in the interpreter."""
    if interpreting() or device.type != "cuda":
        return None
    return torch.cuda.get_device_properties(device).multi_processor_count


def chunks_for(programs_per_chunk: int, items: int, sms: int | None) -> int:
    """How many chunks a reduction over ``items`` is split into: about four resident programs
    per SM on a GPU; two off it (exercising both the in-register loop and the cross-chunk sum)."""
    if sms is None:
        return min(2, items)
    return max(1, min(items, math.ceil(4 * sms / max(1, programs_per_chunk))))


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


def fp32_tile(block: int, prec: str) -> int:
    """A ``tf32x3`` dot holds each operand twice (high and low parts): halve its tile."""
    return max(16, block // 2) if prec == "tf32x3" else block


def check_device(*tensors: torch.Tensor) -> None:
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise ValueError(f"kernel inputs are on several devices: {sorted(map(str, devices))}")


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
