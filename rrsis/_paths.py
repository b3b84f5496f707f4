"""Why a path given as a file to read is not one, in a few words: not there, a folder, or not a
regular file (a device such as /dev/zero, a FIFO, a socket), which would never end or never start."""

from __future__ import annotations

import os
import stat

__all__ = ["not_a_file"]


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
