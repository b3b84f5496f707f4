"""Triton kernels behind the :mod:`rrsis.kernels` dispatcher (imports ``triton``).

Each op has the exact signature of its reference in :mod:`rrsis.kernels.reference`, a fused
forward and backward wrapped in a ``torch.autograd.Function``, and accepts float32, bfloat16 and
float16 inputs (accumulating in float32). On CPU the kernels run only through Triton's
interpreter, which must be switched on (``TRITON_INTERPRET=1``) before this module is imported,
because ``triton.jit`` decides between compiling and interpreting when a kernel is defined.
"""

from __future__ import annotations

from .triton_elsa import ElsaConfig, elsa_aggregate
from .triton_pwam import PwamConfig, pixel_word_attention
from .triton_window import WindowConfig, interpreting, window_attention

__all__ = [
    "ElsaConfig",
    "PwamConfig",
    "WindowConfig",
    "elsa_aggregate",
    "interpreting",
    "pixel_word_attention",
    "window_attention",
]
