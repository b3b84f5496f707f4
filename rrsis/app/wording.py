"""What the library says, told on the page: the warnings a request raises, collected for it (not
only printed in the server's log), and its messages in the page's terms: the uploaded file's own
name (never its path in the server's workspace) and the page's fields (never a Python argument or
a command-line flag)."""

from __future__ import annotations

import contextlib
import os
import re
import threading
import warnings
from collections.abc import Iterator

__all__ = ["collected_warnings", "page_words"]

_local = threading.local()

# The library's wording for the command line and Python, and the page's for the same thing.
_PHRASES = (
    (re.compile(r"give its CRS with crs= \(rrsis predict --crs, e\.g\. ([^)]*)\)"), r"give its CRS in the CRS field (e.g. \1)"),
    (re.compile(r"(?:pass )?crs='none' \(--crs none\)"), "none in the CRS field"),
    (re.compile(r"; crs= \(('[^']*')\) only gives one"), r"; the CRS field (\1) only gives one"),
    (re.compile(r"\(bands= chooses others, e\.g\. \((\d+), (\d+), (\d+)\)"), r"(the Bands field chooses others, e.g. \1,\2,\3"),
    (re.compile(r"\(bands=\((\d+),\) reads"), r"(Bands \1 reads"),
    (re.compile(r"pass bands= \(--bands\) with (\d+) band numbers"), r"give the Bands field \1 band numbers"),
    (re.compile(r"e\.g\. bands=\((\d+(?:, \d+)*),?\)"), lambda m: f"e.g. {m[1].replace(' ', '')}"),
    (re.compile(r"with bands= \(--bands\)"), "in the Bands field"),
    (re.compile(r"\bbands[= ]\((\d+(?:, \d+)*),?\) names (\d+) band\(s\)"),
     lambda m: f"the Bands field ({m[1].replace(' ', '')}) names {m[2]} band(s)"),
    (re.compile(r"^text (\d+):"), lambda m: f"expression {int(m[1]) + 1}:"),
)


def page_words(text: str, root: str | os.PathLike | None = None) -> str:
    """``text`` (a message or a warning) as the page says it: a file under ``root`` (the app's
    workspace, where uploads are stored) named by its own name, the command line's and Python's
    ways to give a CRS or bands named as the page's fields, an expression counted from 1."""
    text = str(text)
    if root is not None:
        for where in {os.fspath(root), os.path.realpath(root)}:
            text = re.sub(re.escape(where.rstrip(os.sep)) + r"/(?:[^/\s]+/)*", "", text)
    for pattern, replacement in _PHRASES:
        text = pattern.sub(replacement, text)
    return text


def _showing(previous):
    def show(message, category, filename, lineno, file=None, line=None):
        notes = getattr(_local, "notes", None)
        if notes is None or not issubclass(category, UserWarning):
            return previous(message, category, filename, lineno, file, line)
        if str(message) not in notes:
            notes.append(str(message))
        return None

    show.rrsis_app = True
    return show


@contextlib.contextmanager
def collected_warnings() -> Iterator[list[str]]:
    """The UserWarnings this thread raises inside the block, each once, in order, instead of being
    printed; other threads' warnings, and other categories, are shown as before.

    Thread-safe, unlike :class:`warnings.catch_warnings` (which swaps module-wide state, so two
    requests at once would lose or misroute each other's warnings): the module-wide hook is
    installed once and routes by thread. rrsis's own UserWarnings are shown every time (not once
    per place in the code), so a second request with the same problem is told it too."""
    if not getattr(warnings.showwarning, "rrsis_app", False):
        warnings.showwarning = _showing(warnings.showwarning)
    warnings.filterwarnings("always", category=UserWarning, module=r"rrsis\.")
    outer = getattr(_local, "notes", None)
    _local.notes = notes = []
    try:
        yield notes
    finally:
        _local.notes = outer
        if outer is not None:
            outer += [n for n in notes if n not in outer]
