"""Which plugin modules a saved model needs: recorded in ``config.json`` as ``"plugins"`` by
``save_pretrained``, imported in the model card's snippet, and named when a load meets a part it
does not know. Loading never imports them itself (a downloaded file does not choose what code
runs): the user imports them, or names them to a command with ``--plugin``."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from .. import registry

__all__ = ["plugin_modules", "plugin_note"]

_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _strings(value)


def plugin_modules(arch: str, config: Mapping[str, Any]) -> list[str]:
    """The modules outside rrsis that define the builders ``arch`` and its config tree name (the
    architecture's entry point, and every registered part name in the tree), sorted. A builder
    defined in ``__main__`` (a script, a notebook) has no module another process can import: left out."""
    builders = [registry._model_entrypoints.get(arch)]
    tables = [t for t in vars(registry).values() if isinstance(t, registry.Registry)]
    for value in set(_strings(config)):
        builders += [t._entries.get(value) for t in tables]
    modules = {str(getattr(b, "__module__", "") or "") for b in builders if b is not None}
    return sorted(m for m in modules if _MODULE_NAME.fullmatch(m) and m.split(".")[0] != "rrsis" and m != "__main__")


def plugin_note(config: Mapping[str, Any]) -> str:
    """For a load that failed on a name it does not know: the modules ``config.json`` records as
    registering the model's parts that are not imported in this process, and how to import them
    (``""`` when it records none, or all are imported)."""
    recorded = config.get("plugins")
    if not isinstance(recorded, list):
        return ""
    missing = [m for m in recorded if isinstance(m, str) and _MODULE_NAME.fullmatch(m) and m not in sys.modules]
    if not missing:
        return ""
    flags = " ".join(f"--plugin {m}" for m in missing)
    return (f" Its parts were registered by {', '.join(missing)} (config.json's \"plugins\"): import "
            f"{'it' if len(missing) == 1 else 'them'} first, or pass {flags} to the rrsis command.")
