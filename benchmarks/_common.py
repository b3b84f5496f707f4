"""Shared plumbing of the rrsis benchmarks: environment record, timing, memory, results files."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    # Run from a checkout without installing rrsis.
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"


def smoke_requested(argv: list[str] | None = None) -> bool:
    """``--smoke`` on the command line; checked before torch/triton are imported."""
    return "--smoke" in (sys.argv if argv is None else argv)


def enable_interpreter_for_smoke() -> None:
    # triton.jit picks compile-vs-interpret when a kernel is defined, so this must run before
    # rrsis.kernels.triton_ops is imported.
    if smoke_requested():
        os.environ.setdefault("TRITON_INTERPRET", "1")


def require_cuda_or_exit(script: str) -> None:
    import torch

    if not torch.cuda.is_available():
        print(
            f"{script}: no CUDA device found. These benchmarks time GPU kernels and need a CUDA "
            f"GPU; run `python {script} --smoke` to check the script itself on CPU at tiny "
            "shapes (the Triton kernels then run in Triton's interpreter).",
            file=sys.stderr,
        )
        raise SystemExit(2)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def environment(device: str) -> dict[str, Any]:
    """GPU name, driver, CUDA, torch, triton and cuDNN versions of this run."""
    import torch

    env: dict[str, Any] = {
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "device": device,
    }
    try:
        import triton

        env["triton"] = triton.__version__
    except ImportError:
        env["triton"] = None
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env["gpu"] = props.name
        env["sm_count"] = props.multi_processor_count
        env["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        env["capability"] = f"{props.major}.{props.minor}"
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=30, check=False,
            )
            env["driver"] = out.stdout.strip().splitlines()[0] if out.stdout.strip() else None
        except (OSError, subprocess.SubprocessError):
            env["driver"] = None
    else:
        env["gpu"] = f"cpu ({platform.processor() or platform.machine()})"
        env["driver"] = None
    return env


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def time_ms(fn: Callable[[], Any], device: str, grad_to_none: Iterable | None = None,
            warmup: int = 25, rep: int = 100) -> tuple[float, float, float]:
    """(p50, p20, p80) in milliseconds.

    CUDA: ``triton.testing.do_bench`` (CUDA events, L2 flushed before every repetition, gradients
    reset to None so backward does not accumulate; ``warmup``/``rep`` are milliseconds).
    CPU (smoke runs): one call, wall clock.
    """
    if device == "cuda":
        from triton.testing import do_bench

        grads = list(grad_to_none) if grad_to_none is not None else None
        p50, p20, p80 = do_bench(fn, warmup=warmup, rep=rep, grad_to_none=grads,
                                 quantiles=[0.5, 0.2, 0.8])
        return float(p50), float(p20), float(p80)
    t0 = time.perf_counter()
    fn()
    t = (time.perf_counter() - t0) * 1e3
    return t, t, t


def peak_bytes(fn: Callable[[], Any], device: str, grads: Iterable = ()) -> int | None:
    """Extra device memory one call allocates at its peak (``max_memory_allocated`` delta)."""
    import torch

    if device != "cuda":
        return None
    for t in grads:
        t.grad = None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    for t in grads:
        t.grad = None
    return int(peak)


def measure_bandwidth(device: str, gib: float = 2.0) -> float | None:
    """Device-to-device copy bandwidth in bytes/s (bytes read + bytes written), p50."""
    import torch

    if device != "cuda":
        return None
    n = int(gib * 2**30) // 4
    src = torch.randn(n, device="cuda")
    dst = torch.empty_like(src)
    p50, _, _ = time_ms(lambda: dst.copy_(src), device, warmup=50, rep=200)
    bandwidth = 2 * n * 4 / (p50 * 1e-3)
    src = dst = None
    torch.cuda.empty_cache()
    return bandwidth


def results_paths(env: dict[str, Any], out_dir: Path, stem_suffix: str) -> tuple[Path, Path]:
    name = slug(env.get("gpu") or "unknown")
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir / f"{name}{stem_suffix}.json", out_dir / f"{name}{stem_suffix}.md"


def merge_rows(path: Path, env: dict[str, Any], rows: list[dict[str, Any]], key_fields: tuple,
               extra: dict[str, Any]) -> dict[str, Any]:
    """Merge ``rows`` into the JSON results file (same key → replaced), so one GPU's results can be
    gathered over several invocations (each invocation still runs all providers side by side)."""
    data: dict[str, Any] = {"runs": [], "rows": []}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            pass
    new_keys = {tuple(r.get(k) for k in key_fields) for r in rows}
    kept = [r for r in data.get("rows", []) if tuple(r.get(k) for k in key_fields) not in new_keys]
    data["rows"] = kept + rows
    data.setdefault("runs", []).append({**env, **extra})
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")
    return data


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "–"
    return f"{n / 2**20:,.1f}"


def fmt(x: float | None, spec: str = ".3f") -> str:
    return "–" if x is None else format(x, spec)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def write_results(stem: str, data: dict[str, Any], markdown: str) -> None:
    """``stem.json`` (``data``) and ``stem.md`` (``markdown``), each written atomically."""
    write_atomic(Path(stem + ".json"), json.dumps(data, indent=2, default=str) + "\n")
    write_atomic(Path(stem + ".md"), markdown)
