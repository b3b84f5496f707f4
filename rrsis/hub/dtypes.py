"""The dtype a model is saved in and loaded in: ``config.json``'s ``"torch_dtype"`` and
``from_pretrained(torch_dtype=...)``, after transformers' convention.

A save records its parameters' dtype by name (``"bfloat16"``); the weights keep that dtype in
``model.safetensors``. A load gives float32 unless asked: ``torch_dtype="auto"`` takes the
recorded dtype (or, for a ``config.json`` written before the key existed, the weights' own), and
a named dtype casts to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .._config import suggest
from .files import CheckpointError

__all__ = ["TORCH_DTYPES", "check_config_dtype", "parameter_dtype", "resolve_dtype", "torch_dtype_arg"]

# The floating dtypes a saved model's parameters may have, by the names config.json uses.
TORCH_DTYPES = ("float32", "bfloat16", "float16", "float64")


def parameter_dtype(model: nn.Module) -> str:
    """The name of the dtype ``model``'s floating-point parameters are in (``"bfloat16"``): the
    one holding most elements when they differ, ``"float32"`` for a model without any.

    Raises:
        ValueError: the parameters are in a dtype rrsis does not save (float8, ...).
    """
    counts: dict[torch.dtype, int] = {}
    for p in model.parameters():
        if p.is_floating_point():
            counts[p.dtype] = counts.get(p.dtype, 0) + p.numel()
    name = str(max(counts, key=counts.__getitem__)).removeprefix("torch.") if counts else "float32"
    if name not in TORCH_DTYPES:
        raise ValueError(f"save_pretrained: the parameters are {name}; rrsis saves models in "
                         f"{', '.join(TORCH_DTYPES)} (cast with model.to(torch.float32) first)")
    return name


def torch_dtype_arg(value: torch.dtype | str | None) -> torch.dtype | str | None:
    """``from_pretrained``'s ``torch_dtype``, checked before any file is read: a floating
    ``torch.dtype``, its name, ``"auto"`` (kept as is) or ``None`` (float32).

    Raises:
        ValueError: anything else, naming the valid values and the closest one.
    """
    if value is None or value == "auto":
        return value
    if isinstance(value, torch.dtype) and value.is_floating_point:
        return value
    if isinstance(value, str) and value in TORCH_DTYPES:
        return getattr(torch, value)
    raise ValueError(f"from_pretrained: torch_dtype={value!r} is not a floating dtype"
                     f"{suggest(value, (*TORCH_DTYPES, 'auto')) if isinstance(value, str) else ''}; use one of "
                     f"{', '.join(TORCH_DTYPES)} (a torch.dtype or its name), 'auto' for the dtype the model "
                     "was saved in, or None for float32")


def check_config_dtype(config: Mapping[str, Any], source: str) -> None:
    """Refuse a ``config.json`` whose ``"torch_dtype"`` is not a dtype name rrsis writes (the key
    may be absent: files written before it existed).

    Raises:
        CheckpointError: naming the file, the value, the valid names and the closest one.
    """
    if "torch_dtype" not in config:
        return
    value = config["torch_dtype"]
    if not isinstance(value, str) or value not in TORCH_DTYPES:
        raise CheckpointError(
            f"{source}: \"torch_dtype\": {value!r} is not a dtype a saved model can have"
            f"{suggest(value, TORCH_DTYPES) if isinstance(value, str) else ''} (valid: {', '.join(TORCH_DTYPES)})"
        )


def resolve_dtype(arg: torch.dtype | str | None, config: Mapping[str, Any],
                  tensors: Mapping[str, torch.Tensor]) -> torch.dtype | None:
    """The dtype to cast a loaded model to (``None``: leave it float32) from the checked
    ``torch_dtype`` argument: ``"auto"`` reads the config's ``"torch_dtype"``, else (a config
    written before the key existed) the dtype most of the weights' floating elements are in."""
    if arg != "auto":
        return arg
    name = config.get("torch_dtype")
    if name is None:
        counts: dict[torch.dtype, int] = {}
        for t in tensors.values():
            if t.is_floating_point():
                counts[t.dtype] = counts.get(t.dtype, 0) + t.numel()
        return max(counts, key=counts.__getitem__) if counts else torch.float32
    return getattr(torch, name)
