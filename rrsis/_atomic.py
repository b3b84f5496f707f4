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
import errno
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_append", "atomic_folder", "atomic_open", "atomic_path", "atomic_write", "disk_errors", "io_cause",
           "json_text", "pid_alive", "remove_stale_temporaries", "temporary_path", "write_error"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def json_text(value, **kwargs) -> str:
    """``json.dumps(value, ensure_ascii=False, **kwargs)``: the JSON rrsis writes, its text as it is
    (UTF-8 files, not ``\\u`` escapes); a lone surrogate (a file name's undecodable byte) alone is
    escaped, since UTF-8 cannot hold it. Read back, it is the same value as the ASCII form."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value, ensure_ascii=False, **kwargs))


# Rust writers (safetensors) report an I/O failure as text: "... (os error 28)".
_OS_ERROR = re.compile(r"\(os error (\d+)\)")


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


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a new temporary folder beside ``path``; when the block ends without an exception it
    becomes ``path`` by a rename (an existing ``path``, allowed only with ``overwrite``, is renamed
    away first and then removed), otherwise it is removed: the folder appears complete or not at
    all. Files written inside need no atomic write of their own (``durable=False`` is enough).

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false (checked before the block runs).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} is a file, not a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    tmp.mkdir()
    old = None
    try:
        yield tmp
        if path.exists():
            old = temporary_path(path)
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not path.exists():
            os.replace(old, path)  # the swap failed halfway: the old folder comes back
        raise
    _fsync_dir(path.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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


def atomic_append(path: str | os.PathLike, data: bytes) -> None:
    """Append ``data`` to ``path`` whole or not at all: a failed or short write (a full disk)
    cuts the file back to its size before, so no torn line is left for the next append to glue
    onto. For one writer at a time (an append-only log)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(fd).st_size
        view = memoryview(data)
        try:
            while view:
                n = os.write(fd, view)
                if n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[n:]
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def io_cause(exc: BaseException) -> OSError | None:
    """The ``OSError`` behind ``exc``: itself, one in its context chain (``torch.save`` wraps a
    full disk in a ``RuntimeError``), or one rebuilt from a message that carries the code
    (safetensors: ``... (os error 28)``); ``None`` when the failure is not an I/O one."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        if m := _OS_ERROR.search(str(seen)):
            code = int(m.group(1))
            return OSError(code, os.strerror(code))
        seen = seen.__context__ or seen.__cause__
    return None


def _size(n: float) -> str:
    if n < 2**10:
        return f"{n:.0f} bytes"
    if n < 2**20:
        return f"{n / 2**10:.1f} KiB"
    return f"{n / 2**20:.1f} MiB" if n < 10 * 2**20 else f"{n / 2**20:,.0f} MiB"


def write_error(exc: BaseException, path: str | os.PathLike, what: str, *, needed: int | None = None,
                advice: str = "") -> OSError:
    """An ``OSError`` for a failed write of ``path`` that says what it was, why (the cause's
    words: "No space left on device"), the space it needed (``needed`` bytes, when known) and
    what is free there, then ``advice``; its ``errno`` is the cause's."""
    cause = io_cause(exc)
    text = str(cause or exc).strip()
    reason = getattr(cause, "strerror", None) or (text.splitlines()[0] if text else type(cause or exc).__name__)
    space = [f"about {_size(needed)} needed"] if needed else []
    folder = Path(path).absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        space.append(f"{_size(shutil.disk_usage(folder).free)} free there")
    except OSError:
        pass
    text = f"could not write {what} {path}: {reason}" + (f" ({', '.join(space)})" if space else "")
    err = OSError(text + (f". {advice}" if advice else ""))
    err.errno = getattr(cause, "errno", None) or errno.EIO  # no .filename: it would replace the message
    err.rrsis_failure = exc  # what failed, for an outer disk_errors to say it its own way
    return err


@contextlib.contextmanager
def disk_errors(path: str | os.PathLike, what: str, *, needed: int | None = None,
                advice: str = "") -> Iterator[None]:
    """Turn an I/O failure inside the block into :func:`write_error`'s one clear ``OSError``;
    other errors pass unchanged. A failure an inner block already turned is said again with this
    block's words, not wrapped twice."""
    try:
        yield
    except Exception as exc:
        failure = getattr(exc, "rrsis_failure", exc)
        if io_cause(failure) is None:
            raise
        raise write_error(failure, path, what, needed=needed, advice=advice) from None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (another user's counts): the writer of a
    temporary file or lock named by its pid may still be at work."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Remove the temporary files (and folders, :func:`atomic_folder`'s) a killed or failed write of
    ``path`` (a target, or several: each folder is read once) left beside it.

    The rule: a file or folder in ``path``'s folder named as this module names temporaries of
    ``path`` (``.NAME.PID-XXXXXXXX.tmp[.SUFFIX]``, temporaries of those as rrsis before 0.3 and
    GDAL name them, or ``.NAME.tmpPID`` from rrsis before 0.2) whose process ``PID`` no longer runs
    on this machine is removed. Temporaries of a live process (another run writing the same
    target) are left alone.

    Returns:
        The paths removed.
    """
    targets = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    folders: dict[Path, set[str]] = {}
    for t in map(Path, targets):
        folders.setdefault(t.parent if str(t.parent) else Path("."), set()).add(t.name)
    removed = []
    for folder, names in folders.items():
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            pid = _temporary_of(entry.name, names)
            if pid is None or not (entry.is_file() or entry.is_dir()) or entry.is_symlink():
                continue
            if pid_alive(pid):  # this process or another run still writing it
                continue
            with contextlib.suppress(FileNotFoundError):
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed.append(entry)
    return removed


# After ".NAME": the writer's pid and a random tag, then the target's suffix or more (a writer that
# itself writes atomically, PNG, or GDAL's overview files, put their own temporary beside the staged one).
_TAIL = re.compile(r"^\.(?:(\d+)-[0-9a-f]{8}\.tmp(?:\..+)?|tmp(\d+))$")


def _temporary_of(entry: str, names: set[str]) -> int | None:
    """The writer's pid when ``entry`` is a temporary of one of ``names`` (one or more leading dots)."""
    rest = entry.lstrip(".")
    if rest == entry:
        return None
    for k, c in enumerate(rest):
        if c == "." and rest[:k] in names and (m := _TAIL.match(rest[k:])):
            return int(m.group(1) or m.group(2))
    return None
