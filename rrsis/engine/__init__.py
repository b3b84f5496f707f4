"""Training and evaluation: recipes, the trainer, checkpoints, logs and the evaluation loop.

>>> from rrsis.engine import load_config, Trainer
>>> cfg = load_config("gl-msin-rrsisd", ["data.root=data/rrsisd", "train.epochs=2"])
>>> Trainer(cfg).fit(resume="auto-or-new")     # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

# public name → submodule defining it (relative to this package); loaded on first use, so that
# submodules that need no torch (the recipes) can be imported without it.
_LAZY = {
    "atomic_save": "checkpoint",
    "latest_checkpoint": "checkpoint",
    "list_checkpoints": "checkpoint",
    "load_checkpoint": "checkpoint",
    "model_from_checkpoint": "checkpoint",
    "DEFAULTS": "recipe",
    "apply_overrides": "recipe",
    "list_configs": "recipe",
    "load_config": "recipe",
    "parse_override_args": "recipe",
    "resolve_device": "distributed",
    "evaluate": "evaluation",
    "JsonlLogger": "logs",
    "plot_history": "..pictures",  # the run's plot, drawn where every picture is
    "read_jsonl": "logs",
    "build_optimizer": "optim",
    "build_scheduler": "optim",
    "param_groups": "optim",
    "poly_lambda": "optim",
    "Trainer": "trainer",
    "build_model": "trainer",
    "build_tokenizer": "trainer",
    "text_words": "trainer",
    "validate_config": "validate",
}

__all__ = [
    "DEFAULTS",
    "JsonlLogger",
    "Trainer",
    "apply_overrides",
    "atomic_save",
    "build_model",
    "build_optimizer",
    "build_scheduler",
    "build_tokenizer",
    "evaluate",
    "latest_checkpoint",
    "list_checkpoints",
    "list_configs",
    "load_checkpoint",
    "load_config",
    "model_from_checkpoint",
    "param_groups",
    "parse_override_args",
    "plot_history",
    "poly_lambda",
    "read_jsonl",
    "resolve_device",
    "text_words",
    "validate_config",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module if module.startswith(".") else f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
