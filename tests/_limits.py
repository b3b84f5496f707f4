"""Run code in a child process with bounded memory and time, so that a regression to unbounded
allocation fails one test quickly instead of taking the machine.

``run_limited(code)`` runs ``python -c code`` under ``RLIMIT_AS`` (address space, default 4 GiB)
and a wall-clock timeout; the result says how it ended. Importing torch alone reserves a large
address space, so the limit is on top of what a bare ``import torch, rrsis`` reserves, measured
once per session in the same way.
"""

from __future__ import annotations

import functools
import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GIB = 1 << 30


@dataclass
class Limited:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool

    @property
    def last_line(self) -> str:
        lines = [ln for ln in self.stderr.strip().splitlines() if ln.strip()]
        return lines[-1] if lines else ""


@functools.cache
def _import_baseline() -> tuple[int, float]:
    """``(VmPeak bytes, wall seconds)`` of one child that runs ``import torch, rrsis``: measured
    once per session, in one child for both numbers (an interpreter start costs seconds)."""
    import time

    code = ("import torch, rrsis, rrsis.factory\n"
            "print([l for l in open('/proc/self/status') if l.startswith('VmPeak')][0].split()[1])")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO, env=_env())
    return int(out.stdout.strip()) * 1024, time.perf_counter() - t0


def baseline_address_space() -> int:
    """Bytes of address space a child holds after ``import torch, rrsis`` (VmPeak)."""
    return _import_baseline()[0]


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_limited(code: str, *, extra_gib: float = 4.0, timeout: float = 10.0, cwd: str | os.PathLike | None = None,
                args: list[str] | None = None) -> Limited:
    """Run ``python -c code [args]`` with ``extra_gib`` GiB of address space above the import
    baseline and a ``timeout`` in seconds (on top of the interpreter's start-up, which the
    baseline measurement also pays). A child killed by the limit or the clock reports it."""
    limit = baseline_address_space() + int(extra_gib * GIB)

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    try:
        p = subprocess.run([sys.executable, "-c", code, *(args or [])], capture_output=True, text=True,
                           check=False, timeout=timeout + _startup_seconds(), preexec_fn=cap,
                           cwd=cwd or REPO, env=_env())
    except subprocess.TimeoutExpired as exc:
        return Limited(-9, _text(exc.stdout), _text(exc.stderr), True)
    return Limited(p.returncode, p.stdout, p.stderr, False)


def _startup_seconds() -> float:
    return 2.0 * _import_baseline()[1] + 5.0


def _text(b) -> str:
    if b is None:
        return ""
    return b.decode(errors="replace") if isinstance(b, bytes) else b
