"""Measure every candidate of every kernel op at the models' shapes; write the choice table.

    python benchmarks/dispatch_table.py --out DIR [--dry-run] [--budget 60] [--install]

One step of ``benchmarks/gpu_check.py``. For window attention (Swin-B stages 1–4 of a 480²
input, shift 0 and 6), PWAM (stages 1–4, 20 words) and ELSA attention from logits (stages 1–3,
both ghost terms, v as the channels-last slice of ``pre_proj``), batch 8, bfloat16, it times
forward+backward (CUDA events, median of 5 after 2 warm-ups) of each candidate of
:mod:`rrsis.kernels.table` — the Triton kernel, ``torch.compile`` of the reference, the eager
reference, SDPA (PyTorch's choice of backend), and for ELSA the kernel at each other tile shape
of :data:`rrsis.kernels.tiles.ELSA_FUSED_CANDIDATES` (``"triton:<label>"``) — and keeps the
fastest per shape. Writes ``dispatch-table.json`` (the table plus every timing) into ``--out``
after each shape; ``--install`` merges the table into ``rrsis/kernels/dispatch_table.json`` for this GPU (then
commit it). Candidates that fail are recorded with their error and never chosen; ``--budget``
seconds bound the whole run (the compiled candidate is skipped once it would overrun).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import time
from pathlib import Path

import _common as C
import torch

STAGES = ((120, 128, 4), (60, 256, 8), (30, 512, 16), (15, 1024, 32))  # map side, C, heads


def _timer(device):
    def run(fn, warm=2, rep=5):
        for _ in range(warm):
            fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times = []
        for _ in range(rep):
            t0 = time.perf_counter()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)
    return run


def _cases(dry: bool, device: str):
    from rrsis.kernels import eager, reference, sdpa, table
    from rrsis.kernels.tiles import ELSA_FUSED_CANDIDATES

    b, dt = (1, torch.float32) if dry else (8, torch.bfloat16)
    stages = ((8, 16, 1), (4, 32, 2)) if dry else STAGES
    window = 4 if dry else 12
    g = torch.Generator().manual_seed(0)

    def rnd(*shape, dtype=dt):
        return torch.randn(*shape, generator=g).to(device, dtype).requires_grad_()

    def elsa_eager(v, lg, mul, add, ks, dil):
        return eager.elsa_aggregate(v, lg.softmax(2), mul, add, ks, dil).permute(0, 2, 3, 1)

    # ELSA first: it is the op the fused kernels are measured for, and the budget cuts the last
    # shapes' compiled candidates.
    for side, c, heads in stages:
        if side >= (4 if dry else 30):  # ELSA stages 1-3
            ks = 3 if dry else 7
            wide = rnd(b, side, side, 2 * c).detach()
            v = wide.permute(0, 3, 1, 2)[:, c:].requires_grad_()
            lg = rnd(b, heads, ks * ks, side, side)
            mul, add = (rnd(c, ks * ks, dtype=torch.float32) for _ in range(2))
            # The kernel's other tile shapes come last: the budget cuts them first.
            yield (table.key("elsa_attention", dt, (*v.shape, heads, True, True)),
                   "elsa_attention", (v, lg, mul, add, ks, 1),
                   {"eager": elsa_eager, "compiled": reference.elsa_attention,
                    "triton": "elsa_attention",
                    **{f"triton:{cfg.label}": "elsa_attention" for cfg in ELSA_FUSED_CANDIDATES[1:]}})
    for side, c, heads in stages:
        hp = -(-side // window) * window
        d = c // heads
        for shift in (0, window // 2):
            q, k, v = (rnd(b, hp, hp, heads, d) for _ in range(3))
            rb = rnd(heads, window**2, window**2)
            yield (table.key("window_attention", dt, (*q.shape, shift)), "window_attention",
                   (q, k, v, rb, window, shift, d**-0.5),
                   {"eager": reference.window_attention, "sdpa": sdpa.window_attention,
                    "compiled": reference.window_attention, "triton": "window_attention"})
        n = side * side
        q = rnd(b, 1, n, c)
        k, v = rnd(b, 1, 20, c), rnd(b, 1, 20, c)
        m = torch.ones(b, 20, device=device)
        m[:, 12:] = 0
        yield (table.key("pixel_word_attention", dt, (*q.shape, 20)), "pixel_word_attention",
               (q, k, v, m, c**-0.5),
               {"eager": reference.pixel_word_attention, "sdpa": sdpa.pixel_word_attention,
                "compiled": reference.pixel_word_attention, "triton": "pixel_word_attention"})


def measure(dry: bool, out: Path, budget: float, install: bool) -> dict:
    from rrsis.kernels import table

    device = "cpu" if dry else "cuda"
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    timer = _timer(device)
    t_end = time.perf_counter() + budget
    result = {"device": name, "note": "seconds per forward+backward, median", "rows": [],
              "devices": {name: {}}}
    path = out / "dispatch-table.json"
    for key, op, args, cands in _cases(dry, device):
        row = {"key": key, "op": op, "seconds": {}, "errors": {}}
        for prov, fn in cands.items():
            if prov == "compiled" and (dry or time.perf_counter() + 30 > t_end):
                row["errors"][prov] = "skipped (dry run or time budget)"
                continue
            if time.perf_counter() > t_end:
                row["errors"][prov] = "skipped (time budget)"
                continue
            try:
                if prov.startswith("triton"):
                    from rrsis.kernels import triton_ops
                    _, tiles = table.split(op, prov)
                    call = getattr(triton_ops, fn)
                    if tiles is not None:
                        call = functools.partial(call, config=tiles)
                elif prov == "compiled":
                    call = torch.compile(fn, dynamic=False)
                else:
                    call = fn
                leaves = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]

                def step(call=call, leaves=leaves, args=args):
                    y = call(*args)
                    torch.autograd.grad(y.float().sum(), leaves)

                row["seconds"][prov] = timer(step)
            except Exception as exc:  # noqa: BLE001  (recorded; the candidate is not chosen)
                row["errors"][prov] = f"{type(exc).__name__}: {exc}"[:300]
        if row["seconds"]:
            row["choice"] = min(row["seconds"], key=row["seconds"].get)
            result["devices"][name][key] = row["choice"]
        result["rows"].append(row)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, path)
        print(json.dumps(row), flush=True)
    if install and not dry:
        dest = table.PATH
        data = json.loads(dest.read_text()) if dest.exists() else {"devices": {}}
        data.setdefault("devices", {})[name] = result["devices"][name]
        data["measured"] = f"benchmarks/dispatch_table.py on {name}, {C.environment('cuda')['timestamp']}"
        tmp = dest.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, dest)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--dry-run", action="store_true", help="CPU, toy shapes, no compiled candidate")
    p.add_argument("--budget", type=float, default=60.0, help="seconds for the whole run")
    p.add_argument("--install", action="store_true",
                   help="merge the table into rrsis/kernels/dispatch_table.json")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    measure(args.dry_run, args.out, args.budget, args.install)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
