"""Record the public API: every name of ``rrsis.__all__`` and ``rrsis.registry.__all__`` with its
signature (classes: their public methods, properties and dataclass fields too).

    python tools/public_api.py            # print the record
    python tools/public_api.py --write    # rewrite docs/public-api.json (the committed record)

``tests/test_public_api.py`` fails when the package no longer matches the committed record: a
changed signature is then either a mistake, or a decision to record (and to list in
CHANGELOG.md) by rerunning this script with ``--write``.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import sys
from pathlib import Path
from typing import Any

RECORD = Path(__file__).resolve().parents[1] / "docs" / "public-api.json"
MODULES = ("rrsis", "rrsis.registry")


def _signature(obj: Any) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"


def _describe(obj: Any) -> dict[str, Any]:
    if inspect.isclass(obj):
        entry: dict[str, Any] = {"kind": "class", "bases": [b.__name__ for b in obj.__bases__],
                                 "init": _signature(obj)}
        members: dict[str, str] = {}
        for name, value in sorted(vars(obj).items()):
            if name.startswith("_") and name != "__call__":  # calling an instance is public
                continue
            if isinstance(value, property):
                members[name] = "property"
            elif isinstance(value, (staticmethod, classmethod)):
                members[name] = f"{type(value).__name__}{_signature(value.__func__)}"
            elif inspect.isfunction(value):
                members[name] = f"method{_signature(value)}"
        entry["members"] = members
        if dataclasses.is_dataclass(obj):
            entry["fields"] = [f.name for f in dataclasses.fields(obj)]
        return entry
    if callable(obj):
        return {"kind": "function", "signature": _signature(obj)}
    return {"kind": type(obj).__name__}


def public_api() -> dict[str, dict[str, Any]]:
    """``{module: {name: description}}`` of the public names, as the installed package has them."""
    import importlib

    out: dict[str, dict[str, Any]] = {}
    for mod_name in MODULES:
        mod = importlib.import_module(mod_name)
        out[mod_name] = {name: _describe(getattr(mod, name)) for name in sorted(mod.__all__)
                         if name != "__version__"}
    return out


def dumps(api: dict[str, Any]) -> str:
    return json.dumps(api, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = dumps(public_api())
    if "--write" in argv:
        RECORD.write_text(text)
        print(f"wrote {RECORD}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
