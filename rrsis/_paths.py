"""Why a path given as a file to read is not one, in a few words: not there, a folder, or not a
regular file (a device such as /dev/zero, a FIFO, a socket), which would never end or never start."""

from __future__ import annotations

import os
import stat

__all__ = ["file_error", "not_a_file"]


def not_a_file(path: str | os.PathLike) -> str:
    """``""`` for a regular file (or a link to one); else what it is instead: ``"file not found"``,
    ``"is a directory, not a file"`` or ``"is not a regular file (a device, FIFO or socket)"``."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # absent, a broken link or loop, a NUL in the name
        return "file not found"
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    return "is not a regular file (a device, FIFO or socket)"


def file_error(path: str | os.PathLike, label: str) -> OSError | ValueError | None:
    """``None`` for a regular file; else the error to raise, ``"{label}": `` and what
    :func:`not_a_file` says: a ``FileNotFoundError`` when it is not there, a ``ValueError`` when it
    is something else."""
    problem = not_a_file(path)
    if not problem:
        return None
    return (FileNotFoundError if problem == "file not found" else ValueError)(f"{label}: {problem}")
