"""Full-size models on a CPU: seconds per image, what a whole scene then takes, peak memory.

Times the forward pass (``torch.inference_mode``, batch 1 by default, random weights: the
time does not depend on them) of each model at its input size, at each thread count, as
``model.predict`` and every tile of ``rrsis predict`` run it. Variants: ``eager`` (float32, the
default path), ``compile`` (``torch.compile`` of the same model: the simplest baseline for any
faster path) and ``bf16`` (CPU autocast to bfloat16). Each configuration runs in a fresh
process: build, ``--warmup`` calls (the first one, which includes compilation, is reported as
``first call``), then the median of ``--iters`` timed calls. The scene column multiplies the
per-image time by the number of tiles ``tiles`` mode reads on a square scene of ``--scene``
pixels at the default overlap (``rrsis.SceneOptions``), batch size aside.

    python benchmarks/cpu_inference.py                              # gl-msin, gl-msin-t, lavt, rmsin; 1 and 2 threads
    python benchmarks/cpu_inference.py --models gl-msin --threads 2 --variants eager compile bf16
    python benchmarks/cpu_inference.py --smoke                      # tiny models, a few seconds (a test runs it)

Writes ``results/cpu-inference.{json,md}`` (``--out``). The figures depend on the machine: the
results record its core count, CPU model and the load average before each configuration.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import _common as C  # puts the checkout on sys.path

VARIANTS = ("eager", "compile", "bf16")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _peak_rss_mib() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def measure(model_name: str, threads: int, variant: str, batch: int, size: int | None, warmup: int,
            iters: int, words: int) -> dict:
    """In this process: build ``model_name`` and time its forward pass as ``variant``."""
    import torch

    import rrsis

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = rrsis.create_model(model_name).eval()
    build_s = time.perf_counter() - t0
    size = size or model.image_size
    vocab = model.text_encoder.config.vocab_size
    g = torch.Generator().manual_seed(0)
    pixels = torch.randn(batch, 3, size, size, generator=g)
    ids = torch.randint(1, vocab, (batch, words), generator=g)
    mask = torch.ones(batch, words, dtype=torch.long)
    net = torch.compile(model) if variant == "compile" else model
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant == "bf16")

    def call() -> None:
        with torch.inference_mode(), autocast:
            net(pixels, ids, mask)

    t0 = time.perf_counter()
    call()
    first_s = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0)):
        call()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return {
        "size": size, "build_s": build_s, "first_call_s": first_s,
        "median_s": statistics.median(times) / batch, "min_s": min(times) / batch,
        "max_s": max(times) / batch, "peak_rss_mib": _peak_rss_mib(),
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
    }


def scene_tiles(scene: int, tile: int) -> int:
    """Tiles ``tiles`` mode reads on a ``scene``² scene at the default overlap and pixel ratio."""
    from rrsis.scene.infer import SceneOptions, tile_starts

    opt = SceneOptions(pixel_ratio=1)  # the benchmark's scene has no georeference: auto reads it at 1
    side = round(scene / opt.pixel_ratio)
    stride = round(tile * (1 - opt.overlap))
    return len(tile_starts(side, tile, stride)) ** 2


def _run_one(args: argparse.Namespace, model: str, threads: int, variant: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--one", model, str(threads), variant,
           "--batch", str(args.batch), "--warmup", str(args.warmup), "--iters", str(args.iters),
           "--words", str(args.words)] + (["--size", str(args.size)] if args.size else [])
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    row = {"model": model, "threads": threads, "variant": variant, "batch": args.batch,
           "load_before": load}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False,
                              timeout=args.timeout)
    except subprocess.TimeoutExpired:
        row["error"] = f"not done after {args.timeout:g} s (--timeout)"
        return row
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [""])[-1][:300]
        killed = f"killed by signal {-done.returncode}" if done.returncode < 0 else ""
        row["error"] = "; ".join(x for x in (killed, last) if x) or f"exit status {done.returncode}"
        return row
    row.update(json.loads(done.stdout.strip().splitlines()[-1]))
    row["scene_tiles"] = scene_tiles(args.scene, row["size"])
    row["scene_min"] = row["scene_tiles"] * row["median_s"] / 60
    return row


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# Full-size models on a CPU: forward time per image, a scene's time, peak memory", "",
        (f"`{meta['command']}` on {meta['cpu']} ({meta['cores']} cores), {meta['timestamp']}, torch "
         f"{meta['torch']}: random weights, batch {meta['batch']}, {meta['words']} words, "
         f"`torch.inference_mode`; each configuration in a fresh process, median of {meta['iters']} "
         f"calls after {meta['warmup']} warm-up calls. `scene` = tiles `tiles` mode reads on a "
         f"{meta['scene']}² scene (default overlap) × the median; `first call` includes compilation."),
        "",
        ("| model | params M | input | threads | variant | median s/image | min–max s | first call s | "
         f"{meta['scene']}² scene (tiles) | peak RSS MiB | load before |"),
        "|---|---:|---:|---:|---|---:|---|---:|---|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | | | {r['threads']} | {r['variant']} | error: {r['error']} |"
                         " | | | | |")
            continue
        lines.append(
            f"| {r['model']} | {r['params_m']:.1f} | {r['size']}² | {r['threads']} | {r['variant']} | "
            f"{r['median_s']:.2f} | {r['min_s']:.2f}–{r['max_s']:.2f} | {r['first_call_s']:.1f} | "
            f"{r['scene_min']:.1f} min ({r['scene_tiles']}) | {r['peak_rss_mib']:.0f} | "
            f"{r['load_before']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=None,
                   help="default gl-msin gl-msin-t lavt rmsin (smoke: gl-msin-tiny)")
    p.add_argument("--threads", nargs="+", type=int, default=None, help="default 1 2 (smoke: 1)")
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=["eager"])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", type=int, default=None, help="input side (default: the model's)")
    p.add_argument("--words", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--scene", type=int, default=4096, help="scene side for the scene column")
    p.add_argument("--timeout", type=float, default=900, help="seconds per configuration")
    p.add_argument("--smoke", action="store_true", help="tiny models, one thread, 2 calls")
    p.add_argument("--out", default=str(C.RESULTS / "cpu-inference"), help="results path without suffix")
    p.add_argument("--one", nargs=3, metavar=("MODEL", "THREADS", "VARIANT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        model, threads, variant = args.one
        print(json.dumps(measure(model, int(threads), variant, args.batch, args.size, args.warmup,
                                args.iters, args.words)))
        return 0
    if args.smoke:
        args.models = args.models or ["gl-msin-tiny"]
        args.threads = args.threads or [1]
        args.warmup, args.iters = 1, 1
    models = args.models or ["gl-msin", "gl-msin-t", "lavt", "rmsin"]
    threads = args.threads or [1, 2]
    import torch

    meta = {
        "command": "python benchmarks/cpu_inference.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="minutes"),
        "cpu": _cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__,
        "batch": args.batch, "words": args.words, "iters": args.iters, "warmup": args.warmup,
        "scene": args.scene,
    }
    rows = []
    for model in models:
        for n in threads:
            for variant in args.variants:
                row = _run_one(args, model, n, variant)
                rows.append(row)
                shown = row.get("error") or f"{row['median_s']:.3f} s/image, first {row['first_call_s']:.1f} s"
                print(f"{model:12s} threads={n} {variant:8s} {shown}", flush=True)
    text = markdown(rows, meta)
    C.write_results(args.out, {"meta": meta, "rows": rows}, text)
    print(text)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
