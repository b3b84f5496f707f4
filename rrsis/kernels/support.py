"""The envelope of shapes and dtypes the compiled kernels are built and tested for.

:mod:`rrsis.kernels.aot` compiles every launch inside this envelope for sm_90 (a test in the
default suite), and ``tests/kernels/test_kernels.py`` checks the kernels against the references; the
dispatcher sends a CUDA call to a kernel only when :func:`unsupported` finds nothing outside it.
Elsewhere ``RRSIS_KERNELS=auto`` uses the PyTorch reference and ``RRSIS_KERNELS=triton`` raises,
naming the parameter. (On CPU the kernels run in Triton's interpreter, a test mode with no
compiler: any shape goes there.)
"""

from __future__ import annotations

import torch

__all__ = ["DTYPES", "MODELS", "SPILL_BUDGET", "spill_budget", "unsupported"]

# Swin-B and Swin-S/T (same stage shapes; T has fewer blocks): embed dim and heads per stage.
MODELS = {"swin-b": (128, (4, 8, 16, 32)), "swin-s/t": (96, (3, 6, 12, 24))}
IMAGE = 480
WINDOW = 12
WINDOW_HEAD_DIM = 32
ELSA_KERNEL = 7
ELSA_CHANNELS_PER_HEAD = 32
PWAM_WORDS = 20
DTYPES = (torch.float32, torch.bfloat16, torch.float16)
# Spill stores (bytes per thread) allowed at sm_90, by kernel and dot precision; 0 elsewhere.
# float32 with TF32 off (torch's default) runs ``tf32x3`` dots: each operand is held as a high
# and a low TF32 part and three products are summed, doubling the operand registers. The window
# backward then needs a few hundred bytes of (L1-cached) local memory per thread; halving its
# tiles more would cost more than it saves. bfloat16 / float16 / TF32 never spill.
SPILL_BUDGET: dict[str, int] = {"window_bwd_dq:tf32x3": 256, "window_bwd_dkdv:tf32x3": 128}


def spill_budget(kernel: str, prec: str | None) -> int:
    return SPILL_BUDGET.get(f"{kernel}:{prec}", SPILL_BUDGET.get(kernel, 0))


def _pwam_channels() -> set[int]:
    return {embed * 2**s for embed, _ in MODELS.values() for s in range(4)}


def unsupported(op: str, **p) -> str | None:
    """Why a CUDA call of ``op`` falls outside the envelope (``None``: inside it)."""
    dtype = p["dtype"]
    if dtype not in DTYPES:
        return f"dtype {dtype} (compiled for {', '.join(str(d)[6:] for d in DTYPES)})"
    if op == "window_attention":
        if p["window"] != WINDOW:
            return f"window {p['window']} (compiled for {WINDOW})"
        if p["head_dim"] != WINDOW_HEAD_DIM:
            return f"head dim {p['head_dim']} (compiled for {WINDOW_HEAD_DIM})"
    elif op == "elsa_aggregate":
        if p["kernel_size"] != ELSA_KERNEL:
            return f"kernel size {p['kernel_size']} (compiled for {ELSA_KERNEL})"
        if p["dilation"] != 1:
            return f"dilation {p['dilation']} (compiled for 1)"
        if p["channels_per_head"] != ELSA_CHANNELS_PER_HEAD:
            return (f"{p['channels_per_head']} channels per head "
                    f"(compiled for {ELSA_CHANNELS_PER_HEAD})")
    elif op == "pixel_word_attention":
        if p["heads"] != 1:
            return f"{p['heads']} heads (compiled for LAVT's single-head PWAM)"
        if p["words"] > 32:
            return f"{p['words']} words (compiled for at most 32)"
        if p["channels"] not in _pwam_channels():
            return f"{p['channels']} channels (compiled for {sorted(_pwam_channels())})"
    else:
        raise ValueError(f"unknown kernel op {op!r}")
    return None
