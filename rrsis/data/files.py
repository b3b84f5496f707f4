"""Reading annotation files, JSON and plain-data pickles, with errors that name the file."""

from __future__ import annotations

import io
import json
import os
import pickle
from typing import Any

__all__ = ["load_json", "load_plain_pickle"]


def load_json(path: str) -> Any:
    """Load a JSON file; malformed JSON raises ``ValueError`` naming the file and position.

    Args:
        path: the file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8-sig") as f:  # a byte-order mark is not JSON
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: malformed JSON ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc})") from exc


class _PlainDataUnpickler(pickle.Unpickler):
    """An unpickler that builds only containers, numbers, strings and bytes.

    Every class or function lookup is refused, so a pickle cannot run code or build objects.
    """

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_plain_pickle(path: str, encoding: str = "utf-8") -> Any:
    """Load a pickle that must hold only plain data (dict, list, tuple, str, bytes, numbers).

    Every class or function reference is refused, which also refuses sets and Python 3
    ``bytes`` in protocols 0-2 (both are stored as calls).

    Args:
        path: the file (e.g. ``refs(unc).p``).
        encoding: how Python 2 ``str`` objects are decoded.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: file not found")
    with open(path, "rb") as f:
        data = f.read()
    try:
        return _PlainDataUnpickler(io.BytesIO(data), encoding=encoding).load()
    except pickle.UnpicklingError as exc:
        raise ValueError(
            f"{path}: the pickle holds more than plain data ({exc}); only dicts, lists, tuples, "
            "strings, bytes and numbers are accepted"
        ) from exc
    except (EOFError, ValueError, TypeError, IndexError, KeyError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: malformed pickle ({type(exc).__name__}: {exc})") from exc

