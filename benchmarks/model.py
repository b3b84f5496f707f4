"""Whole-model throughput of GL-MSIN-B: reference kernels vs fused Triton kernels, fp32 vs bf16.

Forward (inference, ``torch.no_grad``) and a full train step (forward, loss, backward, AdamW step)
at 480×480, batch 8 and 16, with ``RRSIS_KERNELS=torch`` (pure-PyTorch references) and
``RRSIS_KERNELS=triton`` (fused kernels), in fp32 and under bf16 autocast: images/s and peak
device memory, all in one process.

    python benchmarks/model.py                   # GL-MSIN-B (random weights), needs a CUDA GPU
    python benchmarks/model.py --batch 8 --precisions bf16
    python benchmarks/model.py --smoke           # tiny model on CPU (Triton via its interpreter)

Writes ``benchmarks/results/<gpu-slug>-model.json`` and ``.md``.
"""

from __future__ import annotations

import _common as C  # first: puts the checkout on sys.path

C.enable_interpreter_for_smoke()

import argparse
import contextlib
import os
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch

import rrsis
from rrsis import kernels

WORDS = 20


def make_batch(model, batch: int, size: int, device: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    vocab = model.text_encoder.config.vocab_size
    pixels = torch.randn(batch, 3, size, size, generator=g).to(device)
    ids = torch.randint(1, vocab, (batch, WORDS), generator=g).to(device)
    mask = torch.ones(batch, WORDS, dtype=torch.long)
    lengths = torch.randint(5, WORDS + 1, (batch,), generator=g)
    for i, n in enumerate(lengths.tolist()):
        mask[i, n:] = 0
    target = (torch.rand(batch, size, size, generator=g) > 0.7).long().to(device)
    return pixels, ids, mask.to(device), target


def timed(step, device: str, warmup: int, iters: int) -> list[float]:
    """Per-iteration seconds (CUDA events on GPU, wall clock on CPU), after ``warmup`` steps."""
    for _ in range(warmup):
        step()
    C.sync(device)
    times = []
    for _ in range(iters):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
    return times


def run_config(model, loss_fn, opt, batch_data, mode: str, precision: str, device: str,
               args) -> dict[str, Any]:
    pixels, ids, mask, target = batch_data
    autocast = (torch.autocast(device_type=device, dtype=torch.bfloat16)
                if precision == "bf16" else contextlib.nullcontext())

    def forward():
        with torch.no_grad(), autocast:
            model(pixels, ids, mask)

    def train_step():
        with autocast:
            out = model(pixels, ids, mask)
            loss = loss_fn(out, target)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step = forward if mode == "forward" else train_step
    model.train(mode == "train")
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = timed(step, device, args.warmup, args.iters)
    row: dict[str, Any] = {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "images_per_s": pixels.shape[0] / statistics.median(times),
    }
    if device == "cuda":
        row["peak_bytes"] = torch.cuda.max_memory_allocated()
    return row


def logits_parity(model, batch_data, precision: str, device: str) -> float:
    """Relative difference of eval-mode logits, fused kernels vs references, same inputs."""
    pixels, ids, mask, _ = batch_data
    autocast = (torch.autocast(device_type=device, dtype=torch.bfloat16)
                if precision == "bf16" else contextlib.nullcontext())
    model.eval()
    outs = []
    for kern in ("torch", "triton"):
        os.environ["RRSIS_KERNELS"] = kern
        with torch.no_grad(), autocast:
            outs.append(model(pixels, ids, mask).logits.float())
    return ((outs[1] - outs[0]).norm() / outs[0].norm().clamp_min(1e-30)).item()


def markdown(data: dict[str, Any]) -> str:
    runs = data.get("runs", [])
    last = runs[-1] if runs else {}
    lines = [
        "# Whole-model benchmark (GL-MSIN)",
        "",
        (f"GPU: **{last.get('gpu')}** (driver {last.get('driver')}, CUDA {last.get('cuda')}), "
         f"torch {last.get('torch')}, triton {last.get('triton')}."),
        "",
        ("Produced by `benchmarks/model.py`: random weights, 480×480 images, 20-token "
         "expressions; forward = inference under `torch.no_grad`; train = forward + loss + "
         "backward + AdamW step. images/s from the median iteration time (CUDA events); peak = "
         "`torch.cuda.max_memory_allocated` over the timed iterations (weights, optimizer state "
         "and activations)."),
        "",
        ("| model | image | B | mode | precision | kernels | images/s | median ms | peak GiB | "
         "× torch kernels | logits vs torch | status |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = data.get("rows", [])
    for r in sorted(rows, key=lambda r: (r["model"], r["batch"], r["mode"], r["precision"],
                                         r["kernels"])):
        base = next((x for x in rows if x["kernels"] == "torch" and all(
            x[k] == r[k] for k in ("model", "size", "batch", "mode", "precision"))), None)
        speed = ("–" if not (base and base.get("images_per_s") and r.get("images_per_s"))
                 else f"{r['images_per_s'] / base['images_per_s']:.2f}")
        ips = C.fmt(r.get("images_per_s"), ".2f")
        ms = C.fmt(r["median_s"] * 1e3 if r.get("median_s") else None, ".1f")
        peak = C.fmt(r["peak_bytes"] / 2**30 if r.get("peak_bytes") else None, ".2f")
        lines.append(f"| {r['model']} | {r['size']} | {r['batch']} | {r['mode']} | "
                     f"{r['precision']} | {r['kernels']} | {ips} | {ms} | {peak} | {speed} | "
                     f"{C.fmt(r.get('logits_rel_diff'), '.1e')} | {r['status']} |")
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true",
                   help="tiny model on CPU, one timed iteration per configuration")
    p.add_argument("--model", default=None, help="default gl-msin (smoke: gl-msin-tiny)")
    p.add_argument("--size", type=int, default=None, help="image side (default 480; smoke 64)")
    p.add_argument("--batch", nargs="+", type=int, default=None, help="default 8 16 (smoke 2)")
    p.add_argument("--modes", nargs="+", default=["forward", "train"], choices=["forward", "train"])
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--kernels", nargs="+", default=["torch", "triton"], choices=["torch", "triton"])
    p.add_argument("--warmup", type=int, default=None, help="warm-up iterations (default 3)")
    p.add_argument("--iters", type=int, default=None, help="timed iterations (default 10)")
    p.add_argument("--out", type=Path, default=None,
                   help="results folder (default benchmarks/results; smoke: /tmp/rrsis-bench-smoke)")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    smoke = args.smoke
    args.model = args.model or ("gl-msin-tiny" if smoke else "gl-msin")
    args.size = args.size or (64 if smoke else 480)
    args.batch = args.batch or ([2] if smoke else [8, 16])
    args.warmup = args.warmup if args.warmup is not None else (1 if smoke else 3)
    args.iters = args.iters if args.iters is not None else (1 if smoke else 10)
    args.out = args.out or (Path("/tmp/rrsis-bench-smoke") if smoke else C.RESULTS)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.smoke:
        C.require_cuda_or_exit("benchmarks/model.py")
    device = "cpu" if args.smoke else "cuda"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    env = C.environment(device)
    print(f"# {env['gpu']} | torch {env['torch']} | triton {env['triton']} | CUDA {env['cuda']} | "
          f"driver {env['driver']}", flush=True)
    torch.manual_seed(0)
    model = rrsis.create_model(args.model, image_size=args.size).to(device)
    loss_fn = rrsis.ReferringLoss().to(device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"# {args.model}: {n_params / 1e6:.1f} M parameters, {args.size}² images", flush=True)
    rows = []
    saved = os.environ.get("RRSIS_KERNELS")
    try:
        for batch in args.batch:
            data = make_batch(model, batch, args.size, device)
            for mode in args.modes:
                for precision in args.precisions:
                    for kern in args.kernels:
                        # The dispatcher reads RRSIS_KERNELS on every call.
                        os.environ["RRSIS_KERNELS"] = kern
                        row = {"model": args.model, "size": args.size, "batch": batch,
                               "mode": mode, "precision": precision, "kernels": kern,
                               "status": "ok"}
                        try:
                            if kern == "triton" and mode == "forward":
                                row["logits_rel_diff"] = logits_parity(model, data, precision,
                                                                       device)
                                os.environ["RRSIS_KERNELS"] = kern
                            probe = torch.empty(1, device=device)
                            row["backend_used"] = kernels.backend(probe)
                            row.update(run_config(model, loss_fn, opt, data, mode, precision,
                                                  device, args))
                        except torch.cuda.OutOfMemoryError:
                            row["status"] = "oom"
                        except Exception as exc:  # noqa: BLE001  (record and go on)
                            row["status"] = f"error: {type(exc).__name__}: {str(exc)[:160]}"
                            if args.verbose:
                                traceback.print_exc()
                        opt.zero_grad(set_to_none=True)
                        if device == "cuda":
                            torch.cuda.empty_cache()
                        ips = C.fmt(row.get("images_per_s"), ".2f")
                        parity = row.get("logits_rel_diff")
                        parity = f"  logits vs torch {parity:.1e}" if parity is not None else ""
                        print(f"{args.model} B{batch:<3d} {mode:7s} {precision:4s} {kern:6s} "
                              f"{ips:>9s} img/s  peak {C.fmt_bytes(row.get('peak_bytes'))} MiB  "
                              f"{row['status']}{parity}", flush=True)
                        rows.append(row)
    finally:
        if saved is None:
            os.environ.pop("RRSIS_KERNELS", None)
        else:
            os.environ["RRSIS_KERNELS"] = saved
    json_path, md_path = C.results_paths(env, args.out, "-model")
    data = C.merge_rows(json_path, env, rows,
                        ("model", "size", "batch", "mode", "precision", "kernels"),
                        {"argv": " ".join(sys.argv[1:])})
    md_path.write_text(markdown(data))
    print(f"\nwrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
