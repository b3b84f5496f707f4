"""A package's public names imported from their submodules on first use (PEP 562).

``import rrsis`` (and ``rrsis.hub``, ``rrsis.scene``, ``rrsis.scene.region``) stays cheap: the
command line checks its arguments before torch is imported, and a name is imported when it is
first read.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, table: Mapping[str, str], submodules: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``, whose names in ``table``
    (``name → submodule``) are imported from that submodule when first read, then kept; each of
    ``submodules`` is the submodule itself (``rrsis.kernels`` after a bare ``import rrsis``),
    imported when first read, as ``import rrsis.kernels`` would."""
    subs = frozenset(submodules)

    def __getattr__(name: str) -> Any:
        if name in subs:
            return importlib.import_module(f".{name}", package)  # the import binds it on the package
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(table) | subs)

    return __getattr__, __dir__
