"""The one atomic write of rrsis: a temporary file beside the target, fsync, ``os.replace``, fsync
of the folder.

Every file rrsis writes goes through :func:`atomic_path` (writers that want a path: rasterio,
PIL, matplotlib, ``torch.save``) or its two shorthands :func:`atomic_open` (a file object, for
streaming writers such as ``json.dump``) and :func:`atomic_write` (text or bytes at once). A crash
at any moment leaves either the old file or the complete new one under the target's name; a
failed write removes its temporary file. Temporary names start with a dot and end in ``.tmp``
(plus the target's suffix, for writers that pick the format from it), so loaders that match
their own file names never read one.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_open", "atomic_path", "atomic_write", "temporary_path"]


def _fsync_dir(directory: str | os.PathLike) -> None:
    """Make renames inside ``directory`` durable (a no-op where a folder cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_path(path: str | os.PathLike, keep_suffix: bool = False) -> Path:
    """The name of a new temporary file of ``path``, beside it: ``.NAME.PID-XXXXXXXX.tmp`` (plus
    ``path``'s suffix with ``keep_suffix``). The PID lets a later run tell a dead writer's
    leftovers from a live one's (``rrsis.scene.remove_stale_temporaries``)."""
    path = Path(path)
    tail = path.suffix if keep_suffix else ""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{tail}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, durable: bool = True, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; when the block ends without an exception the
    file written there replaces ``path`` atomically, otherwise it is removed.

    Args:
        path: the target file (its folder is created).
        durable: fsync the file before the rename and the folder after it. ``False`` keeps the
            rename atomic but skips both (for thousands of regenerable files, such as generated
            data sets, where a crash costs a rerun and not a result).
        keep_suffix: end the temporary name with the target's suffix (``.png``, ``.tif``) for
            writers that choose the format from it.

    Yields:
        The temporary path (not yet created).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path, keep_suffix)
    try:
        yield tmp
        if durable:
            _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", *, durable: bool = True,
                encoding: str | None = None) -> Iterator[IO]:
    """:func:`atomic_path` as an open file (``"w"`` text, UTF-8 unless ``encoding``; ``"wb"`` bytes)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes a new file: mode 'w' or 'wb', got {mode!r}")
    if mode == "w" and encoding is None:
        encoding = "utf-8"
    with atomic_path(path, durable=durable) as tmp, open(tmp, mode, encoding=encoding) as fh:
        yield fh


def atomic_write(path: str | os.PathLike, data: str | bytes, *, durable: bool = True) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically; returns the path."""
    if not isinstance(data, (str, bytes)):
        raise TypeError(f"atomic_write writes str or bytes, got {type(data).__name__}")
    with atomic_open(path, "w" if isinstance(data, str) else "wb", durable=durable) as fh:
        fh.write(data)
    return Path(path)


def writable_folder(folder: str | os.PathLike, advice: str) -> None:
    """Make ``folder`` if needed and check that files can be created in it, before any work
    whose result would go there; ``advice`` ends the message (what the user can do instead).

    Raises:
        PermissionError: the folder cannot be made, or cannot be written into.
    """
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise PermissionError(f"{folder}: cannot create the folder ({exc.strerror or exc}); {advice}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"{folder}: the folder is not writable; {advice}")
