"""Non-finite weights and outputs: a diverged checkpoint (NaN or infinite weights) loads with a
warning naming its tensors, and a prediction whose logits are not finite is an error naming the
cause, not a confident empty mask."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch

__all__ = ["check_finite_logits", "non_finite", "warn_non_finite"]

logger = logging.getLogger("rrsis.hub")
_SHOWN = 5


def non_finite(named: Iterable[tuple[str, torch.Tensor]]) -> tuple[list[str], int]:
    """The names of the floating-point tensors holding NaN or ±inf, and how many floating-point
    tensors there were. One reduction per tensor (its sum, no copy); only a sum that is not
    finite is looked at element by element (a sum of large finite values may overflow)."""
    bad, n = [], 0
    for name, t in named:
        if not (isinstance(t, torch.Tensor) and t.is_floating_point()) or t.device.type == "meta":
            continue
        n += 1
        if not bool(torch.isfinite(t.sum())) and not bool(torch.isfinite(t).all()):
            bad.append(name)
    return bad, n


def _names(bad: list[str]) -> str:
    more = f", ... ({len(bad) - _SHOWN} more)" if len(bad) > _SHOWN else ""
    return ", ".join(bad[:_SHOWN]) + more


def warn_non_finite(tensors: dict[str, torch.Tensor], source: str) -> list[str]:
    """Log a warning naming the checkpoint tensors that hold NaN or ±inf (the model still loads,
    so that a diverged run can be inspected); returns their names."""
    bad, n = non_finite(tensors.items())
    if bad:
        logger.warning("%s: %d of %d floating-point tensors hold NaN or infinite values (%s): predictions with "
                       "these weights are meaningless (a diverged training?)", source, len(bad), n, _names(bad))
    return bad


def check_finite_logits(model: torch.nn.Module, logits: torch.Tensor) -> torch.Tensor:
    """``logits`` when every value is finite; else a ``RuntimeError`` naming the cause: the model's
    non-finite weights when it has any, else an overflow inside the model."""
    if bool(torch.isfinite(logits).all()):
        return logits
    bad, _ = non_finite(model.named_parameters())
    bad += non_finite(model.named_buffers())[0]
    cause = (f"{len(bad)} of its weight tensors hold NaN or infinite values ({_names(bad)})" if bad else
             "its weights are finite, so a value overflowed inside it (an extreme input, or a float16 model?)")
    raise RuntimeError(f"the model's output holds NaN or infinite values: {cause}; its prediction would be "
                       "meaningless, so no mask is made")
