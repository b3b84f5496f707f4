"""Deprecated import path, removed in rrsis 0.3.0: the name tables are public as :mod:`rrsis.registry`.

``from rrsis._registry import HEADS`` keeps working for one release and warns once per import.
"""

from __future__ import annotations

import warnings
from typing import Any

from . import registry as _public

warnings.warn(
    "rrsis._registry is deprecated and will be removed in rrsis 0.3.0; import from rrsis.registry "
    "instead (e.g. `from rrsis.registry import HEADS`)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = list(_public.__all__)


def __getattr__(name: str) -> Any:
    return getattr(_public, name)
