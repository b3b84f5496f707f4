"""``rrsis predict --text``: the values as given, each ``@FILE`` read into its expressions.

A ``.json`` file is a list of strings, a ``.csv`` file has a header row with a ``text`` or
``expression`` column, any other file holds one expression a line. A value that reached Python
with surrogate escapes (a non-UTF-8 locale, ``LC_ALL=C``) is decoded back as UTF-8.
"""

from __future__ import annotations

import csv
import io
import json
import os

from .._paths import file_error

__all__ = ["CSV_COLUMNS", "argv_text", "expand_texts", "read_text_file"]

# The header names (any case) of the expressions' column in a CSV file, in the order looked for.
CSV_COLUMNS = ("text", "expression")


def expand_texts(values: list[str]) -> list[str]:
    """The ``--text`` values with each ``@FILE`` replaced by its expressions, in place
    (:func:`read_text_file`). ``@@TEXT`` is the expression ``@TEXT`` (an expression that starts
    with "@")."""
    texts = []
    for n, value in enumerate(values, 1):
        if value.startswith("@@"):
            texts.append(argv_text(value[1:], n))
        elif value.startswith("@"):
            texts += read_text_file(value[1:])
        else:
            texts.append(argv_text(value, n))
    return texts


def argv_text(value: str, n: int) -> str:
    """A ``--text`` value as the user typed it. Under a locale that is not UTF-8 (``LC_ALL=C``
    without Python's locale coercion) Python keeps each non-ASCII byte of the command line as a
    surrogate escape; the bytes are decoded back as UTF-8 (what terminals send).

    Raises:
        ValueError: bytes that are not UTF-8 either.
    """
    if not any("\udc80" <= c <= "\udcff" for c in value):
        return value
    try:
        return os.fsencode(value).decode("utf-8")
    except (UnicodeError, ValueError) as exc:
        why = getattr(exc, "reason", str(exc))
        raise ValueError(f"--text {n} is not UTF-8 text ({why}); give it in UTF-8 (a UTF-8 locale: "
                         "LC_ALL=C.UTF-8), or put it in a UTF-8 file and give --text @FILE") from None


def read_text_file(path: str) -> list[str]:
    """The expressions of one ``--text @FILE``, each stripped, blank ones skipped (UTF-8, a
    byte-order mark allowed): ``.json``: a list of strings; ``.csv``: the ``text`` or
    ``expression`` column of a file with a header row (the other columns ignored); any other
    file: one a line, lines starting with ``#`` skipped.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not UTF-8, another JSON shape, a CSV without such a column, or no expression.
    """
    if isinstance(error := file_error(path, f"--text @{path}"), FileNotFoundError):
        raise FileNotFoundError(f"{error} (an expression that starts with '@' is written with two: --text @@{path})")
    if error:  # a folder, /dev/zero (read for ever)
        raise error
    with open(path, "rb") as fh:
        raw = fh.read().removeprefix(b"\xef\xbb\xbf")
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".json", ".csv"):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise ValueError(f"--text @{path}: line {line} is not UTF-8 ({exc.reason}); save the file as UTF-8") from None
        texts = _json_texts(path, text) if suffix == ".json" else _csv_texts(path, text)
    else:
        texts = _line_texts(path, raw)
    if not texts:
        raise ValueError(f"--text @{path}: no expressions in it ({_FORMATS.get(suffix, _FORMATS[''])})")
    return texts


_FORMATS = {".json": 'a JSON list of strings: ["the red building", ...]',
            ".csv": "a CSV file with a header row and a column named text or expression",
            "": "one a line; # starts a comment"}


def _line_texts(path: str, raw: bytes) -> list[str]:
    texts = []
    for n, line in enumerate(raw.splitlines(), 1):
        try:
            text = line.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise ValueError(f"--text @{path}: line {n} is not UTF-8 ({exc.reason} at byte {exc.start + 1}); "
                             "save the file as UTF-8") from None
        if text and not text.startswith("#"):
            texts.append(text)
    return texts


def _json_texts(path: str, text: str) -> list[str]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--text @{path}: not JSON ({exc.msg}, line {exc.lineno}); a .json file of "
                         f"expressions is {_FORMATS['.json']}") from None
    if not isinstance(items, list):
        raise ValueError(f"--text @{path}: a JSON {_json_kind(items)}; a .json file of expressions is "
                         f"{_FORMATS['.json']}")
    texts = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, str):
            raise ValueError(f"--text @{path}: item {i} is a JSON {_json_kind(item)}, not a string; a .json "
                             f"file of expressions is {_FORMATS['.json']}")
        if item.strip():
            texts.append(item.strip())
    return texts


def _json_kind(value: object) -> str:
    kinds = {dict: "object", list: "list", str: "string", bool: "true/false", type(None): "null"}
    return kinds.get(type(value), "number")


def _csv_texts(path: str, text: str) -> list[str]:
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, None)
    if header is None:
        return []
    names = [h.strip().lower() for h in header]
    column = next((names.index(c) for c in CSV_COLUMNS if c in names), None)
    if column is None:
        found = ", ".join(repr(h) for h in header) or "none"
        raise ValueError(f"--text @{path}: no column named text or expression in the header row (its "
                         f"columns: {found}); a .csv file of expressions is {_FORMATS['.csv']}")
    texts = []
    for n, row in enumerate(rows, 2):
        if not any(cell.strip() for cell in row):
            continue
        if column >= len(row):
            raise ValueError(f"--text @{path}: row {n} has {len(row)} columns, no {header[column].strip()!r} value")
        if row[column].strip():
            texts.append(row[column].strip())
    return texts
