"""The README's demo: a small GL-MSIN and a shuffled-text control trained on generated scenes.

>>> from rrsis.demo import run_demo
>>> run_demo(out="rrsis-demo", steps=1400)      # doctest: +SKIP

The settings (:mod:`.settings`) import without torch, so ``rrsis demo --help`` stays fast; the
run itself (:mod:`.run`) is loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from .settings import DEMO_KIND_WEIGHTS, DEMO_MODEL, DEMO_OUTPUTS, DEMO_THREADS, DemoConfig

_LAZY = ("MemoryDataset", "fix_cpu_threads", "run_demo", "shuffled_texts")

__all__ = [
    "DEMO_KIND_WEIGHTS",
    "DEMO_MODEL",
    "DEMO_OUTPUTS",
    "DEMO_THREADS",
    "DemoConfig",
    "MemoryDataset",
    "fix_cpu_threads",
    "run_demo",
    "shuffled_texts",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(".run", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
