"""LAVT's language gate: how much of a fused feature is injected into the visual stream."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GATE_ACTIVATIONS", "LanguageGate"]

_ACTS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
# "none": no gate at all (x <- x + f, no parameters), the ablation's "gate off".
GATE_ACTIVATIONS = (*_ACTS, "none")


class LanguageGate(nn.Sequential):
    """Element-wise gate ``γ(f) = act(W₂ ReLU(W₁ f))`` with bias-free linears.

    Used as ``x ← x + γ(f) ⊙ f``. Subclassing ``nn.Sequential`` keeps LAVT's
    state-dict names (``0.weight``, ``2.weight``).

    Args:
        dim: channels ``C`` (applied over the last axis, ``[..., C]``).
        act: ``"tanh"`` (LAVT, default), ``"sigmoid"``, or ``"none"``: no gate at all
            (``γ ≡ 1``, ``x ← x + f``, no parameters).
    """

    def __init__(self, dim: int, act: str = "tanh") -> None:
        if act not in GATE_ACTIVATIONS:
            raise ValueError(f"unknown gate activation {act!r}; expected one of {sorted(GATE_ACTIVATIONS)}")
        if act == "none":
            super().__init__()
        else:
            super().__init__(
                nn.Linear(dim, dim, bias=False), nn.ReLU(), nn.Linear(dim, dim, bias=False), _ACTS[act]()
            )

    def inject(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """``x + γ(f) ⊙ f`` for channel-last ``x``, ``f`` of shape ``[..., C]``."""
        if len(self) == 0:
            return x + f
        return x + self(f) * f
