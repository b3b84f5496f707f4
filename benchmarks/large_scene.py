"""Large scenes: global vs tiles vs global-local accuracy, throughput and peak memory.

1. Trains a tiny GL-MSIN on small synthetic scenes (96², plus a set with objects 1.8× larger, so
   the model sees the object sizes the tiles show it), a few CPU minutes, through rrsis.engine.
2. Generates large georeferenced scenes (`rrsis synth --large`) with expressions that name one
   object each, global ones first ("the largest …", "the … in the north-east"), and scores the
   three modes on them (mIoU, oIoU over the valid pixels, against the object-id raster).
3. Runs `segment_scene` on 2048² and 8192² scenes (optionally 20480²), each in a fresh process,
   and records wall time, Mpx/s and peak RSS (and CUDA peak memory on a GPU).

    python benchmarks/large_scene.py                      # CPU; writes results/large-scene-cpu.{json,md}
    python benchmarks/large_scene.py --sizes 2048 8192 20480 --device cuda
    python benchmarks/large_scene.py --perf-only --sizes 2048 20480   # throughput/memory only
    python benchmarks/large_scene.py --smoke              # tiny, checks the script
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

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import write_results

MODES = ("global", "tiles", "global-local")


def random_model(size: int):
    """The benchmark's model with random weights (throughput and memory do not depend on them)."""
    import torch

    from rrsis import create_model
    from rrsis.data.synthetic import vocabulary
    from rrsis.demo.settings import DEMO_MODEL
    from rrsis.text import Tokenizer

    tok = Tokenizer.from_words(vocabulary())
    torch.manual_seed(0)
    model = create_model("gl-msin-tiny", **DEMO_MODEL, image_size=size, text_vocab_size=len(tok)).eval()
    model.tokenizer = tok
    return model


def train_model(work: Path, steps: int, scenes: int, size: int, device: str, seed: int):
    import torch

    from rrsis import create_model
    from rrsis.data import RRSISDDataset
    from rrsis.data.synthetic import generate, vocabulary
    from rrsis.engine import Trainer
    from rrsis.demo import MemoryDataset
    from rrsis.demo.settings import DEMO_MODEL
    from rrsis.text import Tokenizer

    tok = Tokenizer.from_words(vocabulary())
    samples = []
    for name, n, extra in (("small", scenes, {}), ("large-objects", scenes // 2,
                                                   {"object_scale": 1.8, "max_objects": 4})):
        generate(str(work / name), n, seed=seed, size=size, layout="rrsisd", splits=(1, 0, 0),
                 expressions_per_scene=4, **extra)
        ds = RRSISDDataset(str(work / name / "rrsisd"), split="train", mode="eval", size=size, tokenizer=tok)
        samples += [ds[i] for i in range(len(ds))]
    torch.manual_seed(seed)
    model = create_model("gl-msin-tiny", **DEMO_MODEL, image_size=size, text_vocab_size=len(tok))
    cfg = {
        "recipe": "large-scene-bench", "model": {"name": "gl-msin-tiny"},
        "data": {"image_size": size, "num_workers": 0},
        "optim": {"lr": 1e-3, "weight_decay": 1e-2, "warmup_steps": 50},
        "loss": {"ce_weight": 0.9, "dice_weight": 0.1},
        "train": {"max_steps": steps, "batch_size": 8, "seed": seed, "device": device, "amp": "off",
                  "clip_grad_norm": 1.0, "checkpoint_every": 0, "keep_checkpoints": 1, "log_every": 50,
                  "eval_every": 0, "progress": True, "output_dir": str(work / "run")},
    }
    torch.set_flush_denormal(True)
    trainer = Trainer(cfg, model=model, tokenizer=tok, train_dataset=MemoryDataset(samples), val_dataset=None)
    trainer.fit()
    torch.set_flush_denormal(False)
    model = trainer.model.eval()
    model.tokenizer = tok
    return model, len(samples)


def score_modes(model, work: Path, n_scenes: int, size: int, render: int, seed: int, options: dict):
    import numpy as np
    import rasterio

    from rrsis.data.synthetic.large import write_large_scene
    from rrsis.scene import segment_scene

    rows = {m: {"I": 0, "U": 0, "ious": [], "seconds": 0.0} for m in MODES}
    per_kind: dict[str, dict[str, list[float]]] = {}
    n_expr = 0
    for k in range(n_scenes):
        meta = write_large_scene(work / "eval", size, seed=seed + 100 + k, render_size=render,
                                 name=f"eval{k}", n_expressions=4)
        with rasterio.open(work / "eval" / meta["labels"]) as ds:
            labels = ds.read(1)
        with rasterio.open(work / "eval" / meta["image"]) as ds:
            valid = ds.dataset_mask() > 0
        texts = [e["text"] for e in meta["expressions"]]
        for mode in MODES:
            res = segment_scene(model, work / "eval" / meta["image"], texts, mode=mode,
                                return_mask=True, **options)
            for e, r in zip(meta["expressions"], res):
                gt = (labels == e["object"]) & valid
                pred = r.mask & valid
                i, u = int((gt & pred).sum()), int((gt | pred).sum())
                iou = i / u if u else 1.0
                rows[mode]["I"] += i
                rows[mode]["U"] += u
                rows[mode]["ious"].append(iou)
                rows[mode]["seconds"] += r.seconds
                per_kind.setdefault(e["kind"], {m: [] for m in MODES})[mode].append(iou)
        n_expr += len(texts)
    out = {m: {"mIoU": float(np.mean(v["ious"])), "oIoU": v["I"] / max(v["U"], 1),
               "P@0.5": float(np.mean(np.asarray(v["ious"]) >= 0.5)),
               "seconds_per_expression": v["seconds"] / max(len(v["ious"]), 1)} for m, v in rows.items()}
    kinds = {k: {m: float(np.mean(v)) for m, v in d.items()} | {"n": len(d[MODES[0]])}
             for k, d in sorted(per_kind.items())}
    return out, kinds, n_expr


GRID = {"gate_threshold": (0.3, 0.4, 0.5), "gate_dilation": (1, 2, 4),
        "local_weight": (0.25, 0.5, 0.75, 1.0), "local_rule": ("mean", "max")}


def tune_fusion(model, work: Path, n_scenes: int, size: int, render: int, seed: int, options: dict):
    """Choose the global-local knobs on held-out scenes (other seeds than the scored ones).

    Each expression's global logits and tiled probabilities are computed once; the fusion rule
    (``rrsis.scene.infer.fuse``, the one ``segment_scene`` applies) is then evaluated for every
    point of ``GRID``. Returns ``(best knobs, rows of the grid with their mIoU)``."""
    import itertools

    import numpy as np
    import rasterio
    import torch

    from rrsis.data.synthetic.large import write_large_scene
    from rrsis.scene import SceneOptions, open_scene
    from rrsis.scene.infer import (
        fuse,
        global_gate,
        global_pass,
        global_rows,
        predict_strips,
        resample_rows,
    )

    keys = list(GRID)
    points = list(itertools.product(*GRID.values()))
    ious: dict[tuple, list[float]] = {pt: [] for pt in points}
    alone: dict[str, list[float]] = {"global": [], "tiles": []}  # the two passes on their own
    for k in range(n_scenes):
        meta = write_large_scene(work / "tune", size, seed=seed + 200 + k, render_size=render,
                                 name=f"tune{k}", n_expressions=4)
        with rasterio.open(work / "tune" / meta["labels"]) as ds:
            labels = ds.read(1)
        with open_scene(work / "tune" / meta["image"]) as sc:
            H, W = sc.height, sc.width
            opt = SceneOptions(**{**options, "mode": "tiles"}).resolved(model, H, W)
            g = opt.global_size
            fy, fx = global_rows(g, H, W)
            for e in meta["expressions"]:
                tok = model.tokenizer([e["text"]])
                with torch.no_grad():
                    text = model.encode_text(tok["input_ids"], tok["attention_mask"])
                d_g = global_pass(sc, model, text, g)
                p_g = 1 / (1 + np.exp(-resample_rows(d_g, 0, g, (0, H), W, fy, fx)))
                strips = list(predict_strips(sc, model, text, opt))
                p_l = np.concatenate([p for _, p, _ in strips])
                valid = np.concatenate([v for _, _, v in strips])
                gt = (labels == e["object"]) & valid

                def iou(m, gt=gt):
                    u = int((gt | m).sum())
                    return int((gt & m).sum()) / u if u else 1.0

                alone["global"].append(iou((p_g > 0.5) & valid))
                alone["tiles"].append(iou((p_l > 0.5) & valid))
                for thr, dil in itertools.product(GRID["gate_threshold"], GRID["gate_dilation"]):
                    gate = resample_rows(global_gate(d_g, thr, dil), 0, g, (0, H), W, fy, fx)
                    for lw, rule in itertools.product(GRID["local_weight"], GRID["local_rule"]):
                        ious[(thr, dil, lw, rule)].append(iou((fuse(p_g, p_l, gate, lw, rule) > 0.5) & valid))
    rows = [{**dict(zip(keys, pt)), "mIoU": float(np.mean(v)), "n": len(v)} for pt, v in ious.items()]
    best = max(rows, key=lambda r: r["mIoU"])
    return {k: best[k] for k in keys}, rows, {m: float(np.mean(v)) for m, v in alone.items()}


_CHILD = r"""
import json, resource, sys, time, torch
sys.path.insert(0, {root!r})
torch.set_num_threads({threads})
from rrsis.hub import from_pretrained
from rrsis.scene import segment_scene
model = from_pretrained({model!r}, map_location={device!r})
if {device!r}.startswith("cuda"):
    torch.cuda.reset_peak_memory_stats()
t = time.time()
(r,) = segment_scene(model, {image!r}, [{text!r}], out={out!r}, **{options!r})
dt = time.time() - t
cuda = torch.cuda.max_memory_allocated() / 2**20 if {device!r}.startswith("cuda") else None
def peak_rss_mib():
    # VmHWM: this process's own high-water mark. ru_maxrss is not: on Linux it keeps the
    # high-water mark of the forked copy of the parent from before exec.
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": dt, "rss_mib": peak_rss_mib(),
                  "cuda_mib": cuda, "area_px": r.area_px, "n_polygons": r.n_polygons, "mode": r.mode}}))
"""


def measure(model_dir: Path, work: Path, size: int, render: int, device: str, threads: int,
            configs: dict[str, dict]) -> list[dict]:
    from rrsis.data.synthetic.large import write_large_scene

    t = time.time()
    meta = write_large_scene(work / "perf", size, seed=7, render_size=render, name=f"perf{size}")
    gen_s = time.time() - t
    rows = []
    for label, options in configs.items():
        code = _CHILD.format(root=str(ROOT), threads=threads, model=str(model_dir), device=device,
                             image=str(work / "perf" / meta["image"]), text=meta["expressions"][0]["text"],
                             out=str(work / "perf" / f"out{size}-{label}"), options=options)
        proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"size {size} {label}: {proc.stderr[-2000:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        r.update(size=size, config=label, mpx_per_s=size * size / 1e6 / r["seconds"], generate_s=gen_s)
        rows.append(r)
        print(f"  {size}² {label}: {r['seconds']:.1f} s, {r['mpx_per_s']:.2f} Mpx/s, "
              f"peak RSS {r['rss_mib']:.0f} MiB", flush=True)
    return rows


def markdown(report: dict) -> str:
    s = report["settings"]
    if report["accuracy"] is None:
        lines = [f"# Large scenes: throughput and peak memory ({report['device']}, random weights)", "",
                 f"Run {report['timestamp']} on {report['machine']}; {report['conditions']}", ""]
        return "\n".join(lines + _perf_lines(report)) + "\n"
    lines = [
        "# Large scenes: global vs tiles vs global-local (CPU)" if report["device"] == "cpu"
        else f"# Large scenes ({report['device']})", "",
        f"Run {report['timestamp']} on {report['machine']}; {report['conditions']}", "",
        (f"Model: gl-msin-tiny (demo widths) trained {s['train_steps']} steps on {report['train_samples']} "
        f"samples of {s['train_size']}² synthetic scenes ({report['train_s']:.0f} s). Evaluation: "
        f"{report['eval_expressions']} expressions on {s['eval_scenes']} generated {s['eval_size']}² "
        f"georeferenced scenes, each naming one object. Global pass at {s['train_size']}²; tiles "
        f"{s['options']['tile']} px at pixel ratio {s['options'].get('pixel_ratio', s['options'].get('scale')):.2f}, overlap {s['options']['overlap']}."), "",
    ]
    tu = report["tuning"]
    keys = list(tu["grid"])
    defaults = tu["defaults"]
    default = next((r for r in tu["rows"] if all(r[k] == defaults[k] for k in keys)), None)
    lines += [
        (f"Global-local knobs chosen on {tu['scenes']} held-out scenes ({tu['rows'][0]['n']} expressions, "
         f"other seeds than the scored scenes) over a grid of {len(tu['rows'])} points: "
         + ", ".join(f"`{k}={v}`" for k, v in tu["chosen"].items())
         + f" (held-out mIoU {100 * tu['rows'][0]['mIoU']:.2f}"
         + (f"; `SceneOptions` defaults at the time of the run, {', '.join(str(defaults[k]) for k in keys)}: "
            f"{100 * default['mIoU']:.2f}" if default else "")
         + (f"; global alone {100 * tu['alone']['global']:.2f}, tiles alone {100 * tu['alone']['tiles']:.2f}"
            if "alone" in tu else "") + ")."), "",
        "Best grid points on the held-out scenes:", "",
        "| " + " | ".join(keys) + " | mIoU |", "|" + "---|" * (len(keys) + 1),
    ]
    for r in tu["rows"][:6]:
        lines.append("| " + " | ".join(str(r[k]) for k in keys) + f" | {100 * r['mIoU']:.2f} |")
    lines += ["", "Scored scenes:", "", "| mode | mIoU | oIoU | P@0.5 | s / expression |", "|---|---|---|---|---|"]
    for m, r in report["accuracy"].items():
        lines.append(f"| {m} | {100 * r['mIoU']:.2f} | {100 * r['oIoU']:.2f} | {100 * r['P@0.5']:.1f} | "
                     f"{r['seconds_per_expression']:.2f} |")
    a = report["accuracy"]
    beats = a["global-local"]["mIoU"] > max(a["global"]["mIoU"], a["tiles"]["mIoU"])
    lines += ["", f"global-local beats both on mIoU: **{'yes' if beats else 'no'}**.", "",
              "mIoU by expression kind:", "", "| kind | n | " + " | ".join(MODES) + " |",
              "|---|---|" + "---|" * len(MODES)]
    for k, d in report["by_kind"].items():
        lines.append(f"| {k} | {d['n']} | " + " | ".join(f"{100 * d[m]:.1f}" for m in MODES) + " |")
    return "\n".join(lines + [""] + _perf_lines(report)) + "\n"


def _perf_lines(report: dict) -> list[str]:
    lines = [("Throughput and peak memory (one fresh process per row, reading the GeoTIFF by windows; "
              "mask GeoTIFF, GeoJSON and overlay written):"), "",
             "| scene | configuration | seconds | Mpx/s | peak RSS MiB | CUDA MiB |", "|---|---|---|---|---|---|"]
    for r in report["performance"]:
        cuda = f"{r['cuda_mib']:.0f}" if r["cuda_mib"] is not None else "-"
        lines.append(f"| {r['size']}² | {r['config']} | {r['seconds']:.1f} | {r['mpx_per_s']:.2f} | "
                     f"{r['rss_mib']:.0f} | {cuda} |")
    for label, ratio in report.get("rss_ratio", {}).items():
        lines.append(f"\nPeak RSS {label}: **{ratio:.2f}×** (target ≤ 1.5×).")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny everything (checks the script)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1: on a loaded machine, 2 threads wait on each other)")
    p.add_argument("--train-steps", type=int, default=1000)
    p.add_argument("--train-scenes", type=int, default=480)
    p.add_argument("--eval-scenes", type=int, default=20)
    p.add_argument("--tune-scenes", type=int, default=8,
                   help="held-out scenes on which the global-local knobs are chosen")
    p.add_argument("--eval-size", type=int, default=2048)
    p.add_argument("--sizes", type=int, nargs="*", default=[2048, 8192])
    p.add_argument("--perf-only", action="store_true",
                   help="throughput and memory only (tiles, random weights), e.g. --sizes 2048 20480")
    p.add_argument("--conditions", default="", help="free text on machine load, recorded")
    p.add_argument("--out", help="results stem (default: results/large-scene-<device>)")
    args = p.parse_args()
    import torch

    from rrsis.scene import SceneOptions

    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the measuring subprocesses
    size = 96
    if args.smoke:
        args.train_steps, args.train_scenes, args.eval_scenes, args.eval_size = 5, 8, 1, 384
        args.tune_scenes = 1
        args.sizes = [256, 512]
    options = {"tile": size, "overlap": 0.25, "pixel_ratio": args.eval_size / (2 * size), "global_size": size}
    render = min(args.eval_size, 1024)
    acc = kinds = knobs = grid = None
    n_train = n_expr = 0
    train_s = tune_s = eval_s = 0.0
    with tempfile.TemporaryDirectory(prefix="rrsis-large-") as tmp:
        work = Path(tmp)
        if args.perf_only:
            model = random_model(size)
        else:
            t = time.time()
            model, n_train = train_model(work / "train", args.train_steps, args.train_scenes, size,
                                         args.device, seed=0)
            train_s = time.time() - t
            print(f"trained on {n_train} samples in {train_s:.0f} s", flush=True)
            t = time.time()
            knobs, grid, tune_alone = tune_fusion(model, work, args.tune_scenes, args.eval_size, render, 0, options)
            tune_s = time.time() - t
            print(f"global-local knobs chosen on {args.tune_scenes} held-out scenes: {knobs}", flush=True)
            options = {**options, **knobs}
            t = time.time()
            acc, kinds, n_expr = score_modes(model, work, args.eval_scenes, args.eval_size, render, 0, options)
            print(json.dumps(acc, indent=1), flush=True)
            eval_s = time.time() - t
        model.save_pretrained(work / "model")

        def configs(s: int) -> dict[str, dict]:
            tiles = {"tiles, scale 8": {"mode": "tiles", "tile": size, "overlap": 0.25, "pixel_ratio": 8.0}}
            if args.perf_only:  # random weights: where global-local runs tiles would mean nothing
                return tiles
            return {"global-local (as scored)": {**options, "mode": "global-local", "pixel_ratio": s / (2 * size)},
                    **tiles}

        perf = []
        for s in args.sizes:
            perf += measure(work / "model", work, s, min(s, 1024), args.device, args.threads, configs(s))
    rss = {}
    for label in configs(0):
        by = {r["size"]: r["rss_mib"] for r in perf if r["config"] == label}
        sizes = sorted(by)
        if len(sizes) >= 2:
            rss[f"{sizes[-1]}² / {sizes[0]}², {label}"] = by[sizes[-1]] / by[sizes[0]]
    report = {
        "timestamp": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "device": args.device, "machine": f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}, {args.threads} threads",
        "conditions": args.conditions or "no notes", "perf_only": args.perf_only,
        "settings": {"train_steps": args.train_steps, "train_size": size, "eval_scenes": args.eval_scenes,
                     "eval_size": args.eval_size, "render_size": render, "options": options, "smoke": args.smoke,
                     "tune_scenes": args.tune_scenes},
        "train_samples": n_train, "train_s": train_s, "eval_s": eval_s, "eval_expressions": n_expr,
        "tuning": None if grid is None else {
            "scenes": args.tune_scenes, "seconds": tune_s, "grid": GRID, "chosen": knobs,
            "defaults": {k: getattr(SceneOptions(), k) for k in GRID}, "alone": tune_alone,
            "rows": sorted(grid, key=lambda r: -r["mIoU"])},
        "accuracy": acc, "by_kind": kinds, "performance": perf, "rss_ratio": rss,
    }
    default = f"large-scene-{'smoke' if args.smoke else args.device.split(':')[0]}"
    stem = Path(args.out) if args.out else RESULTS / (default + ("-perf" if args.perf_only else ""))
    stem.parent.mkdir(parents=True, exist_ok=True)
    write_results(str(stem), report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
