"""``rrsis demo`` over several seeds: is the first impression reliable?

Runs the demo exactly as a new user does (``rrsis demo --seed S``, default settings, a fresh
process per seed, one after another) and records, per seed, GL-MSIN's and the shuffled-text
control's validation metrics, the gap and the wall time, against the demo's promises:

- GL-MSIN val mIoU >= ``--min-miou`` (0.60) on every seed;
- GL-MSIN beats the shuffled-text control by >= ``--min-gap`` (0.25) mIoU on every seed;
- each demo finishes within ``--max-minutes`` (10) on this machine.

    python benchmarks/demo_seeds.py                    # seeds 0 1 2; writes results/demo-cpu.{json,md}
    python benchmarks/demo_seeds.py --seeds 0 --steps 40 --scenes 40 --out /tmp/demo-smoke

Wall times depend on the machine's load (the demo uses a fixed thread count, so its metrics do
not); the results file records the load average before and after each run.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as C  # puts the checkout on sys.path

ROOT = C.ROOT
RESULTS = C.RESULTS


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def run_seed(seed: int, work: Path, extra: list[str]) -> dict:
    out = work / f"demo-seed{seed}"
    cmd = [sys.executable, "-c", "import sys; from rrsis.cli import main; sys.exit(main())", "demo",
           "--seed", str(seed), "--out", str(out), "--overwrite", "--no-progress", *extra]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    load0, t0 = _load(), time.time()
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise SystemExit(f"seed {seed}: rrsis demo failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    m = json.loads((out / "metrics.json").read_text())
    val = m["validation"]
    return {
        "seed": seed, "wall_s": round(wall, 1), "load_before": load0, "load_after": _load(),
        "mIoU": val["GL-MSIN"]["mIoU"], "oIoU": val["GL-MSIN"]["oIoU"],
        "control_mIoU": val["shuffled-text control"]["mIoU"], "gap": m["mIoU_gap"],
        "threads": m["threads"], "seconds": m["seconds"],
    }


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# `rrsis demo` over seeds (CPU)", "",
        f"`{meta['command']}` on {meta['machine']}, {meta['timestamp']}; rrsis at `{meta['commit']}`.",
        (f"Default demo settings{(' plus ' + ' '.join(meta['extra'])) if meta['extra'] else ''}; "
         f"promises: mIoU ≥ {meta['min_miou']:.2f}, gap over the shuffled-text control ≥ "
         f"{meta['min_gap']:.2f}, ≤ {meta['max_minutes']:g} min per demo."), "",
        "| seed | GL-MSIN mIoU | oIoU | control mIoU | gap | wall | load before → after | met |",
        "|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['seed']} | {r['mIoU']:.4f} | {r['oIoU']:.4f} | {r['control_mIoU']:.4f} | {r['gap']:.4f} | "
            f"{r['wall_s'] / 60:.1f} min | {r['load_before']} → {r['load_after']} | {'yes' if r['met'] else 'NO'} |")
    lines += ["", f"All seeds met: **{'yes' if meta['all_met'] else 'no'}**.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--min-miou", type=float, default=0.60)
    p.add_argument("--min-gap", type=float, default=0.25)
    p.add_argument("--max-minutes", type=float, default=10.0)
    p.add_argument("--steps", type=int, default=None, help="demo --steps (default: the demo's)")
    p.add_argument("--scenes", type=int, default=None, help="demo --scenes (default: the demo's)")
    p.add_argument("--work", default=None, help="folder for the demos (default: a temporary one)")
    p.add_argument("--out", default=str(RESULTS / "demo-cpu"), help="results path without suffix")
    a = p.parse_args(argv)
    extra = ([f"--steps={a.steps}"] if a.steps else []) + ([f"--scenes={a.scenes}"] if a.scenes else [])
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="rrsis-demo-seeds-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in a.seeds:
        r = run_seed(seed, work, extra)
        r["met"] = (r["mIoU"] >= a.min_miou and r["gap"] >= a.min_gap and r["wall_s"] <= 60 * a.max_minutes)
        rows.append(r)
        print(f"seed {seed}: mIoU {r['mIoU']:.4f}, control {r['control_mIoU']:.4f}, gap {r['gap']:.4f}, "
              f"{r['wall_s'] / 60:.1f} min, met: {r['met']}", flush=True)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=False).stdout.strip() or "unknown"
    except OSError:
        commit = "unknown"
    meta = {
        "command": "python benchmarks/demo_seeds.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="minutes"),
        "commit": commit, "extra": extra, "min_miou": a.min_miou, "min_gap": a.min_gap,
        "max_minutes": a.max_minutes, "all_met": all(r["met"] for r in rows),
    }
    md = markdown(rows, meta)
    C.write_results(a.out, {"meta": meta, "runs": rows}, md)
    print(md)
    print(f"wrote {a.out}.json and {a.out}.md")
    return 0 if meta["all_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
