"""Peak memory and time of ``segment_scene`` in its default mode, scene side by side.

Each row is one fresh process that opens a GeoTIFF written here (RGB uint8, tiled, deflate; smooth
noise with bright blobs, so masks and polygons are not empty), runs ``segment_scene`` with the
default options (``auto``) or the ones given, writes the mask GeoTIFF, GeoJSON and overlay, and
reports wall time and peak RSS (``VmHWM``). The target: peak RSS of 8192² ≤ 1.5 × that of 2048².

    python benchmarks/scene_memory.py --model /tmp/scene-train/position-seed0/final --sizes 2048 8192
    python benchmarks/scene_memory.py --model M --sizes 20480 --pixel-ratio 8     # the largest scene
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import write_results

_CHILD = r"""
import json, sys, time, torch
sys.path.insert(0, {root!r})
torch.set_num_threads({threads})
from rrsis.hub import from_pretrained
from rrsis.scene import segment_scene
model = from_pretrained({model!r}).eval()
t = time.time()
(r,) = segment_scene(model, {image!r}, [{text!r}], return_mask=False, out={out!r}, progress=False, **{options!r})
dt = time.time() - t
rss = next(int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"seconds": dt, "rss_mib": rss, "mode": r.mode}}))
"""


def write_scene(path: Path, size: int, seed: int = 0, block: int = 1024) -> None:
    """An RGB GeoTIFF of ``size``², written block by block (bounded memory)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(seed)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(400000, 4600000 + size * 0.5, 0.5, 0.5),
                       tiled=True, blockxsize=256, blockysize=256, compress="deflate") as ds:
        for r in range(0, size, block):
            for c in range(0, size, block):
                h, w = min(block, size - r), min(block, size - c)
                base = rng.integers(90, 160, 3)
                img = np.empty((3, h, w), np.uint8)
                yy, xx = np.mgrid[0:h, 0:w]
                blob = np.zeros((h, w), bool)
                for _ in range(6):
                    cy, cx, rad = rng.integers(0, h), rng.integers(0, w), rng.integers(6, 30)
                    blob |= (yy - cy) ** 2 + (xx - cx) ** 2 < rad ** 2
                for b in range(3):
                    img[b] = np.clip(base[b] + rng.normal(0, 6, (h, w)), 0, 255).astype(np.uint8)
                    img[b][blob] = 230 if b == 0 else 60
                ds.write(img, window=Window(c, r, w, h))


def measure(model: str, image: Path, options: dict, out: Path, threads: int, text: str) -> dict:
    code = _CHILD.format(root=str(ROOT), model=model, image=str(image), text=text, out=str(out),
                         options=options, threads=threads)
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a save_pretrained folder")
    p.add_argument("--sizes", type=int, nargs="+", default=[2048, 8192])
    p.add_argument("--mode", default="auto")
    p.add_argument("--pixel-ratio", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--text", default="the red building")
    p.add_argument("--conditions", default="")
    p.add_argument("--out", help="results stem (default: results/scene-memory-cpu)")
    args = p.parse_args()
    import torch

    rows = []
    with tempfile.TemporaryDirectory(prefix="rrsis-mem-") as tmp:
        for size in args.sizes:
            image = Path(tmp) / f"scene{size}.tif"
            t0 = time.time()
            write_scene(image, size)
            print(f"wrote {size}² in {time.time() - t0:.0f} s", flush=True)
            opts = {"mode": args.mode, "pixel_ratio": args.pixel_ratio}
            r = measure(args.model, image, opts, Path(tmp) / f"pred{size}", args.threads, args.text)
            r.update(size=size, options=opts, mpx_per_s=size * size / 1e6 / r["seconds"])
            print(f"{size}²: {r['mode']}, {r['seconds']:.1f} s, {r['mpx_per_s']:.2f} Mpx/s, peak RSS "
                  f"{r['rss_mib']:.0f} MiB", flush=True)
            rows.append(r)
            image.unlink()
    base = rows[0]["rss_mib"]
    lines = [f"# Whole scenes: peak memory of the default mode ({args.model})", "",
             (f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, "
              f"{os.cpu_count()} cores, torch {torch.__version__}, {args.threads} thread(s); "
              f"{args.conditions or 'no notes'}"), "",
             ("One fresh process per row; `segment_scene` reads the GeoTIFF by windows and writes mask, "
              "GeoJSON and overlay."), "",
             "| scene | mode | pixel ratio | seconds | Mpx/s | peak RSS MiB | × first row |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['size']}² | {r['mode']} | {r['options']['pixel_ratio']:g} | {r['seconds']:.1f} | "
                     f"{r['mpx_per_s']:.2f} | {r['rss_mib']:.0f} | {r['rss_mib'] / base:.2f} |")
    report = {"timestamp": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "model": args.model,
              "threads": args.threads, "conditions": args.conditions, "rows": rows}
    stem = Path(args.out) if args.out else RESULTS / "scene-memory-cpu"
    write_results(str(stem), report, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
