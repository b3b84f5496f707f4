"""One rrsis run at a time per output: a lock file beside the outputs.

A region's folder ``OUT`` is locked by ``OUT/.rrsis.lock``; one scene's output prefix
``DIR/NAME`` by ``DIR/.NAME.rrsis.lock`` (so runs of other scenes into the same folder go on in
parallel). The lock file is created with ``os.open(O_CREAT | O_EXCL)`` and holds the pid, host,
start time and command of the run that holds it; it is removed when that run ends, on every
exit path Python sees (an error, Ctrl-C, SIGTERM through the CLI).

Why a created file and not ``fcntl.flock``: ``O_EXCL`` creation is atomic on every file system a
region folder lives on (local disks, NFS v3+, Lustre, GPFS), also between hosts, where ``flock``
is per host on some NFS set-ups and refused on Lustre mounted without ``-o flock``; and the
file says who holds it. The one thing ``flock`` does better, letting go when its process is
killed (``kill -9``), is done here by reading the file: a lock whose process no longer runs on
this host is taken over, with a note. A lock left by a dead process on another host stays until
someone removes it; the refusal says how.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from ._atomic import json_text, pid_alive

__all__ = ["LOCK_NAME", "OutputInUseError", "lock_path", "output_lock", "remove_stale_lock", "run_lock"]

LOCK_NAME = ".rrsis.lock"
_held: dict[tuple[str, int], int] = {}  # (lock file, thread) held → how many blocks hold it (re-entrant per thread)


class OutputInUseError(RuntimeError):
    """Another rrsis run holds the output's lock (the CLI says it in one line, exit 2)."""


def lock_path(out: str | os.PathLike, folder: bool) -> Path:
    """The lock file of a region's folder (``folder``) or of one scene's output prefix."""
    out = Path(out)
    return out / LOCK_NAME if folder else out.with_name(f".{out.name}{LOCK_NAME}")



def _read(path: Path) -> dict | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _in_use(out: str, path: Path, info: dict | None) -> OutputInUseError:
    who = (f"{info.get('command', 'rrsis')} (pid {info.get('pid')} on {info.get('host')} since {info.get('started')})"
           if info else "another rrsis run")
    return OutputInUseError(f"{out} is in use by {who}; wait for it, or remove {path} if that process is gone")


def _create(path: Path, command: str) -> bool:
    """Create the lock file; ``False`` when it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.write(fd, json_text(info).encode("utf-8"))
    finally:
        os.close(fd)
    return True


def _take_over(path: Path, seen: dict) -> bool:
    """Move a dead run's lock aside and check it was that one (not a new run's that took its
    place meanwhile, which is put back); ``True`` when it was removed."""
    aside = path.with_name(f"{path.name}.stale-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return True  # another process removed it first: try to create it again
    if _read(aside) != seen:
        with contextlib.suppress(OSError):
            os.link(aside, path)  # a live run's lock back where it was (refused if one is there)
        with contextlib.suppress(OSError):
            os.unlink(aside)
        return False
    with contextlib.suppress(OSError):
        os.unlink(aside)
    return True


def _stale(info: dict | None) -> bool:
    """Whether a lock's holder was a process on this host that no longer runs."""
    return (info is not None and info.get("host") == socket.gethostname()
            and isinstance(info.get("pid"), int) and not pid_alive(info["pid"]))


def remove_stale_lock(out: str | os.PathLike, *, folder: bool) -> bool:
    """Remove ``out``'s lock when a process of this host that no longer runs left it (``kill -9``):
    for a run that stops before taking the lock (its outputs refused). ``True`` when removed."""
    path = lock_path(out, folder)
    info = _read(path)
    return _stale(info) and _take_over(path, info)


def _acquire(out: str, path: Path, command: str, note: Callable[[str], None]) -> None:
    for _ in range(3):
        if _create(path, command):
            return
        info = _read(path)
        if not _stale(info):
            raise _in_use(out, path, info)
        if _take_over(path, info):
            note(f"took over {path}: left by {info.get('command', 'rrsis')} (pid {info['pid']} since "
                 f"{info.get('started')}), which is no longer running")
    raise _in_use(out, path, _read(path))


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=4)


@contextlib.contextmanager
def output_lock(out: str | os.PathLike, *, folder: bool, command: str = "rrsis",
                note: Callable[[str], None] = _warn) -> Iterator[Path]:
    """Hold ``out``'s lock for the block; yields the lock file. Re-entrant in one thread (the CLI,
    then the Python API under it); another thread of the same process is refused, as another
    process is (two threads writing one output would replace each other's files).

    Raises:
        OutputInUseError: another live run holds it (the message names its pid, host and start).
    """
    path = lock_path(out, folder)
    key = (os.path.abspath(path), threading.get_ident())
    if key not in _held:
        path.parent.mkdir(parents=True, exist_ok=True)
        _acquire(os.fspath(out), path, command, note)
    _held[key] = _held.get(key, 0) + 1
    try:
        yield path
    finally:
        _held[key] -= 1
        if not _held[key]:
            del _held[key]
            if (_read(path) or {}).get("pid") == os.getpid():
                with contextlib.suppress(OSError):
                    os.unlink(path)


@contextlib.contextmanager
def run_lock(out: str | os.PathLike, rank: int, world: int, *, command: str = "rrsis",
             note: Callable[[str], None] = _warn) -> Iterator[None]:
    """A region folder's lock for a run of ``world`` ranks (``torchrun``): rank 0 holds it for
    them all, and every rank learns whether it could (all ranks must enter together)."""
    error, stack = None, contextlib.ExitStack()
    with stack:
        if rank == 0:
            try:
                stack.enter_context(output_lock(out, folder=True, command=command, note=note))
            except OutputInUseError as exc:
                error = str(exc)
        if world > 1:
            import torch.distributed as dist

            box = [error]
            dist.broadcast_object_list(box, src=0)
            error = box[0]
        if error is not None:
            raise OutputInUseError(error)
        yield
