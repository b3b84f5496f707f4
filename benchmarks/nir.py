"""Does a near-infrared band pay? A 4-band tiny GL-MSIN against the RGB one, at equal budget (CPU).

Both rows train ``gl-msin-tiny`` at the ablation table's widths (benchmarks/ablation.py) from
scratch on the same generated near-infrared scenes (``generate(nir=True)``: a vegetated and a
bare plot, or a dry and a wet pond, alike in R, G, B and told apart by the near-infrared band
alone), the same expressions, steps, batch size, recipe and seeds; the only difference is the
band count: R, G, B (``bands=(1, 2, 3)``, ImageNet statistics) against R, G, B, NIR
(``in_chans=4``, ``bands=(1, 2, 3, 4)``, :func:`rrsis.backbones.band_statistics`). They are
scored on held-out scenes generated with another seed, per expression kind: ``nir`` (the
expressions that name a state only the NIR band shows: "the vegetated plot", "the dry pond")
and ``other`` (every other kind). An RGB model cannot do better than guess on the first.

    python benchmarks/nir.py             # the table (writes results/nir-cpu.{json,md})
    python benchmarks/nir.py --quick     # smoke run: tiny data, few steps, one seed

Runs go two at a time (``--jobs``), each on one thread, so figures reproduce for a fixed seed.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import platform
import re
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "benchmarks"):  # run from a checkout, or imported by file path
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import _common as C
import ablation as A

RESULTS = ROOT / "benchmarks" / "results"
ROWS = {"rgb": 3, "rgb+nir": 4}  # row -> bands read (the first N of R, G, B, NIR)
KINDS = ("nir", "other")
_NIR_WORDS = re.compile(r"\b(vegetated|bare|dry|wet)\b")


def expression_kind(text: str) -> str:
    """``"nir"`` for an expression naming a state only the near-infrared band shows."""
    return "nir" if _NIR_WORDS.search(text.lower()) else "other"


def make_data(folder: Path, *, scenes: int, size: int, seed: int, splits, nir_weight: float) -> str:
    """Generate (once; reused when present) and return an RRSIS-D root of NIR scenes."""
    from rrsis.data.synthetic import generate

    marker = folder / f"generated-{scenes}-{size}-{seed}-{nir_weight}"
    if not marker.exists():
        generate(str(folder), scenes, seed=seed, size=size, layout="rrsisd", splits=splits,
                 expressions_per_scene=4, nir=True, kind_weights={"nir": nir_weight, "colour": 2.0})
        marker.touch()
    return str(folder / "rrsisd")


def load(root: str, split: str, size: int, tokenizer, bands: int, mean, std) -> list[dict[str, Any]]:
    from rrsis.data import RRSISDDataset

    ds = RRSISDDataset(root, split=split, mode="eval", size=size, tokenizer=tokenizer,
                       bands=tuple(range(1, bands + 1)), mean=mean, std=std)
    keep = ("pixel_values", "mask", "input_ids", "attention_mask", "text")
    return [{k: v for k, v in ds[i].items() if k in keep} for i in range(len(ds))]


def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one (row, seed) on one thread and score it on the held-out scenes per kind."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from rrsis import create_model
    from rrsis.backbones import band_statistics
    from rrsis.backbones.config import IMAGENET_MEAN, IMAGENET_STD
    from rrsis.data.synthetic import vocabulary
    from rrsis.demo import MemoryDataset
    from rrsis.engine import Trainer
    from rrsis.text import Tokenizer

    t0 = time.time()
    size, bands, seed = int(spec["size"]), int(spec["bands"]), int(spec["seed"])
    if bands == 3:
        mean, std = list(IMAGENET_MEAN), list(IMAGENET_STD)
    else:
        mean, std = band_statistics(bands)
    tokenizer = Tokenizer.from_words(vocabulary(nir=True))
    train = load(spec["train"], "train", size, tokenizer, bands, mean, std)
    test = load(spec["test"], "test", size, tokenizer, bands, mean, std)
    torch.manual_seed(seed)
    model = create_model("gl-msin-tiny", **{**A.WIDTHS, "head_hidden": 32, "image_size": size,
                                             "text_vocab_size": len(tokenizer), "in_chans": bands,
                                             "mean": mean, "std": std})
    cfg = {
        "recipe": "ablation",
        "model": {"name": "gl-msin-tiny"},
        "data": {"image_size": size, "num_workers": 0},
        "optim": {"lr": spec["lr"], "weight_decay": 1e-2, "warmup_steps": spec["warmup"]},
        "loss": {"ce_weight": 0.9, "dice_weight": 0.1},
        "train": {
            "max_steps": int(spec["steps"]), "batch_size": int(spec["batch_size"]), "seed": seed,
            "device": "cpu", "amp": "off", "clip_grad_norm": 1.0, "checkpoint_every": 0,
            "keep_checkpoints": 1, "log_every": 50, "eval_every": 0, "progress": False, "threads": 1,
            "output_dir": spec["out"],
        },
    }
    trainer = Trainer(cfg, model=model, tokenizer=tokenizer, train_dataset=MemoryDataset(train))
    trainer.fit()
    t_train = time.time() - t0
    metrics = A.score(trainer.model.eval(), test)
    res = dict(metrics.compute())
    kinds = [expression_kind(s["text"]) for s in test]
    res["kinds"] = {k: float(np.mean([x for x, kk in zip(metrics.ious, kinds) if kk == k]))
                    for k in KINDS if k in kinds}
    res["kind_counts"] = {k: kinds.count(k) for k in KINDS}
    res["params_M"] = sum(p.numel() for p in trainer.model.parameters()) / 1e6
    res["train_s"], res["seed"], res["bands"] = t_train, seed, bands
    return res


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out = {k: A._agg([r[k] for r in runs]) for k in ("mIoU", "oIoU")}
    for k in KINDS:
        out[k] = A._agg([r["kinds"].get(k, math.nan) for r in runs])
    out["params_M"] = runs[0]["params_M"]
    out["train_s_mean"] = sum(r["train_s"] for r in runs) / len(runs)
    return out


def verdict(runs: dict[str, list[dict[str, Any]]], margin: float) -> dict[str, Any]:
    """The acceptance line, seed by seed: NIR-dependent mIoU of the 4-band model at least the RGB
    model's + ``margin`` (points), and other expressions no worse (within one point)."""
    pairs = list(zip(runs["rgb"], runs["rgb+nir"]))
    nir_gain = [100 * (b["kinds"]["nir"] - a["kinds"]["nir"]) for a, b in pairs]
    other_gain = [100 * (b["kinds"]["other"] - a["kinds"]["other"]) for a, b in pairs]
    return {"nir_gain_points": nir_gain, "other_gain_points": other_gain, "margin": margin,
            "met": all(g >= margin for g in nir_gain) and all(g >= -1.0 for g in other_gain)}


def markdown(table: dict[str, Any], check: dict[str, Any], meta: dict[str, Any]) -> str:
    cols = ("mIoU", "oIoU", "nir", "other")
    lines = ["| row | bands | params | " + " | ".join(f"{c} (mIoU)" if c in KINDS else c for c in cols) + " |",
             "|---|---:|---:|" + "---:|" * len(cols)]
    for name, s in table.items():
        cells = [f"{100 * s[c]['mean']:.1f} ± {100 * s[c]['spread']:.1f}" for c in cols]
        lines.append(f"| {name} | {ROWS[name]} | {s['params_M']:.2f} M | " + " | ".join(cells) + " |")
    gains = ", ".join(f"seed {s}: nir {n:+.1f}, other {o:+.1f}" for s, n, o in
                      zip(meta["seeds"], check["nir_gain_points"], check["other_gain_points"]))
    lines += ["", (f"4-band minus RGB, in mIoU points ({gains}): acceptance (nir ≥ +{check['margin']:g} "
                   f"and other ≥ −1 on every seed) **{'met' if check['met'] else 'not met'}**."), "",
              (f"Held-out: {meta['test_samples']} expressions ({meta['test_kinds']}) on {meta['test_scenes']} scenes "
              f"of data seed {meta['test_seed']}; training: {meta['train_scenes']} scenes of data seed "
              f"{meta['data_seed']}, {meta['steps']} steps × batch {meta['batch_size']}, lr {meta['lr']}, "
              f"warm-up {meta['warmup']}; seeds {meta['seeds']} (mean ± spread = max − min over seeds); "
              f"one thread per run; `{meta['command']}` on {meta['machine']}, {meta['timestamp']}, "
              f"{meta['wall_min']:.1f} min wall.")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 30 scenes, 10 steps, one seed")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--scenes", type=int, default=800, help="training scenes, 4 expressions each")
    p.add_argument("--test-scenes", type=int, default=150, help="held-out scenes (another data seed)")
    p.add_argument("--nir-weight", type=float, default=3.0, help="generator weight of the nir kind")
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--margin", type=float, default=10.0, help="required nir gain, mIoU points")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--work", default=None, help="folder for data and runs (default: a temporary one)")
    p.add_argument("--out", default=str(RESULTS / "nir-cpu"), help="results path without suffix")
    a = p.parse_args(argv)
    if a.quick:
        a.scenes, a.test_scenes, a.steps, a.seeds = 30, 12, 10, a.seeds[:1]
        if a.out == str(RESULTS / "nir-cpu"):
            a.out = str(Path(tempfile.gettempdir()) / "nir-quick")
    t_start = time.time()
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="rrsis-nir-"))
    train = make_data(work / "train", scenes=a.scenes, size=a.size, seed=a.data_seed, splits=(1, 0, 0),
                      nir_weight=a.nir_weight)
    test_seed = a.data_seed + 1000
    test = make_data(work / "test", scenes=a.test_scenes, size=a.size, seed=test_seed, splits=(0, 0, 1),
                     nir_weight=a.nir_weight)
    specs = [{"row": row, "bands": bands, "seed": seed, "steps": a.steps, "batch_size": a.batch_size,
              "lr": a.lr, "warmup": a.warmup, "train": train, "test": test, "size": a.size,
              "out": str(work / "runs" / f"{row}-s{seed}")}
             for seed in a.seeds for row, bands in ROWS.items()]
    runs: dict[str, list[dict[str, Any]]] = {row: [] for row in ROWS}
    with ProcessPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        for spec, res in zip(specs, pool.map(run_one, specs)):
            runs[spec["row"]].append(res)
            print(f"{spec['row']:<8} seed {spec['seed']}: mIoU {100 * res['mIoU']:.2f} "
                  f"nir {100 * res['kinds'].get('nir', math.nan):.2f} "
                  f"other {100 * res['kinds'].get('other', math.nan):.2f} ({res['train_s']:.0f} s)", flush=True)
    table = {row: summarise(r) for row, r in runs.items()}
    check = verdict(runs, a.margin)
    counts = runs["rgb"][0]["kind_counts"]
    meta = {
        "command": "python benchmarks/nir.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.processor() or platform.system()}",
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="minutes"),
        "steps": a.steps, "batch_size": a.batch_size, "lr": a.lr, "warmup": a.warmup, "seeds": a.seeds,
        "train_scenes": a.scenes, "test_scenes": a.test_scenes, "size": a.size, "data_seed": a.data_seed,
        "test_seed": test_seed, "nir_weight": a.nir_weight, "widths": A.WIDTHS,
        "test_samples": sum(counts.values()), "test_kinds": ", ".join(f"{k} {n}" for k, n in counts.items()),
        "wall_min": (time.time() - t_start) / 60,
    }
    md = markdown(table, check, meta)
    C.write_results(a.out, {"meta": meta, "table": table, "check": check, "runs": runs}, md)
    print(md)
    print(f"wrote {a.out}.json and {a.out}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
