"""CPU training step time vs torch thread count, alone and beside a competing busy process.

Times training steps of the demo's model (``rrsis demo`` settings: gl-msin-tiny at the demo's
widths, 96² inputs, batch 8, AdamW) at each thread count, first on a quiet machine, then while
``--competitors`` other processes each keep one core busy (a pure-Python loop, like a second
user's job). Each configuration runs in a fresh process: ``--warmup`` steps, then the median of
``--steps`` timed steps.

    python benchmarks/cpu_threads.py                       # threads 1 and 2, 0 and 1 competitor
    python benchmarks/cpu_threads.py --threads 1 2 4 --competitors 0 1 2

Writes ``results/cpu-threads.{json,md}``. The figures depend on the machine; the results file
records its core count and the load before each configuration.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import time

import _common as C  # puts the checkout on sys.path

ROOT = C.ROOT
RESULTS = C.RESULTS


def _busy(stop) -> None:  # a competing process: one core, no I/O
    x = 0
    while not stop.is_set():
        for i in range(100_000):
            x += i * i


def time_steps(threads: int, steps: int, warmup: int, flush: bool) -> dict:
    """In this process: ``warmup`` + ``steps`` demo training steps on ``threads`` threads."""
    import torch

    torch.set_num_threads(threads)
    torch.set_flush_denormal(flush)
    from rrsis import ReferringLoss, create_model
    from rrsis.demo.settings import DEMO_MODEL, DemoConfig

    d = DemoConfig()
    torch.manual_seed(0)
    model = create_model("gl-msin-tiny", **{**DEMO_MODEL, "image_size": d.size, "text_vocab_size": 200}).train()
    loss_fn = ReferringLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=d.lr, weight_decay=d.weight_decay)
    g = torch.Generator().manual_seed(0)
    pixels = torch.randn(d.batch_size, 3, d.size, d.size, generator=g)
    ids = torch.randint(1, 200, (d.batch_size, 12), generator=g)
    mask = torch.ones(d.batch_size, 12, dtype=torch.long)
    target = (torch.rand(d.batch_size, d.size, d.size, generator=g) > 0.8).long()
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        loss = loss_fn(model(pixels, ids, mask), target)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return {"median_step_s": statistics.median(times), "min_step_s": min(times), "max_step_s": max(times)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--competitors", nargs="+", type=int, default=[0, 1])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--out", default=str(RESULTS / "cpu-threads"), help="results path without suffix")
    p.add_argument("--one", nargs=2, type=int, metavar=("THREADS", "STEPS"), help=argparse.SUPPRESS)
    p.add_argument("--warmup-one", type=int, default=5, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.one:
        print(json.dumps(time_steps(a.one[0], a.one[1], a.warmup_one, flush=False)))
        return 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("OMP_NUM_THREADS", None)
    rows = []
    for comp in a.competitors:
        stop = mp.Event()
        procs = [mp.Process(target=_busy, args=(stop,), daemon=True) for _ in range(comp)]
        for pr in procs:
            pr.start()
        try:
            time.sleep(1.0 if comp else 0.0)
            for th in a.threads:
                load = round(os.getloadavg()[0], 2)
                out = subprocess.run([sys.executable, __file__, "--one", str(th), str(a.steps),
                                      "--warmup-one", str(a.warmup)], env=env, capture_output=True,
                                     text=True, check=True).stdout
                r = {"threads": th, "competitors": comp, "load_before": load, **json.loads(out.splitlines()[-1])}
                rows.append(r)
                print(f"threads {th}, competitors {comp}: median step {r['median_step_s'] * 1e3:.0f} ms "
                      f"(min {r['min_step_s'] * 1e3:.0f}, max {r['max_step_s'] * 1e3:.0f})", flush=True)
        finally:
            stop.set()
            for pr in procs:
                pr.join(5)
    meta = {
        "command": "python benchmarks/cpu_threads.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="minutes"),
        "steps": a.steps, "warmup": a.warmup,
    }
    base = {r["threads"]: r["median_step_s"] for r in rows if r["competitors"] == 0}
    lines = ["# Demo training step vs threads and competing processes (CPU)", "",
             (f"`{meta['command']}` on {meta['machine']}, {meta['timestamp']}: demo model and batch, "
              f"median of {a.steps} steps after {a.warmup} warm-up steps, each configuration in a "
              "fresh process; a competitor is a pure-Python busy loop on one core."), "",
             "| threads | competitors | median step ms | min–max ms | × alone | load before |",
             "|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        slow = r["median_step_s"] / base[r["threads"]] if r["threads"] in base else float("nan")
        lines.append(f"| {r['threads']} | {r['competitors']} | {r['median_step_s'] * 1e3:.0f} | "
                     f"{r['min_step_s'] * 1e3:.0f}–{r['max_step_s'] * 1e3:.0f} | {slow:.2f} | {r['load_before']} |")
    md = "\n".join(lines) + "\n"
    C.write_results(a.out, {"meta": meta, "rows": rows}, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
