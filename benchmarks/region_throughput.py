"""Throughput of ``rrsis.segment_scenes`` over a region: scenes per minute and Mpx/s.

Writes ``--scenes`` generated georeferenced scenes of ``--size``² (objects at the 96² training
scale, :mod:`rrsis.data.synthetic.at_scale`), then segments all of them for one expression with
the default options (``auto``: object above two tiles a side), one process, ``--threads`` torch threads, every output
written (mask COG, GeoJSON, overlay, the merged GeoPackage).

    python benchmarks/region_throughput.py --model /tmp/scene-train/position-seed0/final
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import write_results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a save_pretrained folder")
    p.add_argument("--scenes", type=int, default=12)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--text", default="the storage tanks")
    p.add_argument("--conditions", default="")
    p.add_argument("--out", help="results stem (default: results/region-throughput-cpu)")
    args = p.parse_args()
    import torch

    import rrsis
    from rrsis.data.synthetic.at_scale import LargeSceneSettings, write_scene_at_scale

    torch.set_num_threads(args.threads)
    model = rrsis.from_pretrained(args.model).eval()
    with tempfile.TemporaryDirectory(prefix="rrsis-region-") as tmp:
        st = LargeSceneSettings(size=args.size, train_size=model.image_size, density=0.4)
        for k in range(args.scenes):
            write_scene_at_scale(Path(tmp) / "scenes", st, seed=70_000 + k, name=f"tile_{k:03d}")
        t0 = time.time()
        summary = rrsis.segment_scenes(model, str(Path(tmp) / "scenes" / "tile_???.tif"), [args.text],
                                       out=str(Path(tmp) / "region"))
        seconds = time.time() - t0
    row = {"scenes": len(summary.done), "size": args.size, "seconds": seconds,
           "scenes_per_min": len(summary.done) / seconds * 60, "mpx_per_s": summary.megapixels / seconds,
           "polygons": summary.n_polygons}
    report = {"timestamp": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "model": args.model,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
              "threads": args.threads, "conditions": args.conditions, "text": args.text, **row}
    md = "\n".join([
        "# Regions: throughput of segment_scenes (cpu)", "",
        (f"Run {report['timestamp']} on {report['machine']}, {args.threads} thread(s); "
         f"{args.conditions or 'no notes'}. Model `{args.model}`, expression {args.text!r}, default options "
         "(auto → tiles), every output written (mask COG, GeoJSON, overlay, merged GeoPackage)."), "",
        "| scenes | side | seconds | scenes / min | Mpx/s | polygons |", "|---|---|---|---|---|---|",
        (f"| {row['scenes']} | {args.size}² | {seconds:.1f} | {row['scenes_per_min']:.1f} | "
         f"{row['mpx_per_s']:.2f} | {row['polygons']} |"), ""])
    write_results(str(Path(args.out) if args.out else ROOT / "benchmarks" / "results" / "region-throughput-cpu"),
                  report, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
