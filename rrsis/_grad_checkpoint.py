"""Gradient checkpointing (activation recomputation), in timm's convention.

A part that can recompute carries a ``grad_checkpointing`` flag (``False`` by default) and runs
its costly pieces through :func:`run`: in training mode with autograd on, each piece keeps only
its inputs and is recomputed during the backward pass (``torch.utils.checkpoint`` without
re-entrance, RNG state preserved, so dropout and stochastic depth draw the same masks twice);
in evaluation mode or under ``torch.no_grad`` it runs as is. A Hugging Face model inside (the
BERT text encoder) is switched through its own ``activation_checkpointing_enable`` (older
transformers: ``gradient_checkpointing_enable``), also without re-entrance.

:func:`set_grad_checkpointing` switches every such part of a model at once; it is what
:meth:`rrsis.models.base.RRSISModel.set_grad_checkpointing` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

__all__ = ["active", "is_enabled", "run", "set_grad_checkpointing"]


def active(module: nn.Module) -> bool:
    """Whether ``module`` recomputes now: its flag on, training mode, autograd enabled."""
    return bool(getattr(module, "grad_checkpointing", False)) and module.training and torch.is_grad_enabled()


def run(owner: nn.Module, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, checkpointed when :func:`active` says ``owner`` recomputes."""
    if active(owner):
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


def _is_hf(module: nn.Module) -> bool:
    return bool(getattr(module, "supports_gradient_checkpointing", False)) and hasattr(module, "gradient_checkpointing_enable")


def _set_hf(model: nn.Module, enable: bool) -> None:
    # transformers 5 renamed the switch (the old name warns); both take the checkpoint's kwargs.
    if enable:
        kwargs = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        # transformers also makes the embeddings' output require grad, which only re-entrant
        # checkpointing needs: with frozen embeddings it would add work to every backward pass.
        if getattr(model, "_require_grads_hook", None) is not None:
            model.disable_input_require_grads()
    elif hasattr(model, "activation_checkpointing_disable"):
        model.activation_checkpointing_disable()
    else:
        model.gradient_checkpointing_disable()


def _hf_enabled(model: nn.Module) -> bool:
    return any(getattr(m, "gradient_checkpointing", False) is True for m in model.modules())


def _parts(model: nn.Module):
    """The parts of ``model`` with a switch: rrsis/timm flags, timm models, Hugging Face models."""
    hf = [m for m in model.modules() if m is not model and _is_hf(m)]
    inside_hf = {id(m) for h in hf for m in h.modules()}
    for m in model.modules():
        if m is model or (id(m) in inside_hf and not _is_hf(m)):
            continue
        if _is_hf(m):
            yield m, "hf"
        elif callable(getattr(m, "set_grad_checkpointing", None)):
            yield m, "method"
        elif isinstance(getattr(type(m), "grad_checkpointing", None), bool):
            yield m, "flag"


def set_grad_checkpointing(model: nn.Module, enable: bool = True) -> None:
    """Switch gradient checkpointing on or off in every part of ``model`` that has it (see the
    module's docstring); ``ValueError`` when ``enable`` and no part can recompute."""
    if not isinstance(enable, bool):
        raise TypeError(f"enable must be True or False, got {enable!r}")
    found = False
    for m, kind in _parts(model):
        found = True
        if kind == "hf":
            _set_hf(m, enable)
        elif kind == "method":
            m.set_grad_checkpointing(enable)
        else:
            m.grad_checkpointing = enable
    if enable and not found:
        raise ValueError(f"{type(model).__name__} has no part that supports gradient checkpointing")


def is_enabled(model: nn.Module) -> bool:
    """Whether any part of ``model`` has gradient checkpointing switched on."""
    for m, kind in _parts(model):
        if kind == "hf" and _hf_enabled(m):
            return True
        if kind != "hf" and getattr(m, "grad_checkpointing", False) is True:
            return True
    return False
