"""The ablation table: what each part of GL-MSIN buys, at equal budget, on generated scenes (CPU).

Every row trains one model from scratch on the same generated RRSIS-D-layout set (fixed data
seed), for the same number of steps and batch size, on one CPU thread, for several seeds (the
seed sets initialisation and data order; the data stay fixed), and scores the validation split:
mIoU, oIoU, P@0.5, P@0.9 and mIoU per expression kind (colour, relation, position/extreme,
size), as mean ± spread (max − min) over the seeds.

Rows: ``lavt-tiny``, ``rmsin-tiny``, ``gl-msin-tiny``, GL-MSIN with one part changed at a time
(ELSA → Swin window attention, GEM off, refinement head → LAVT's decoder, the tanh language gate
that the tiny GL-MSIN drops, Swin's patch embedding instead of the conv stem) and a
shuffled-text control (GL-MSIN trained on expressions shuffled across samples: it can
learn "what looks like a target" but not which one is meant). All rows use the same widths
(the demo's: embed 32, BERT hidden 64, 2 layers) and the conv stem.

    python benchmarks/ablation.py                 # the full table (writes results/ablation-cpu.*)
    python benchmarks/ablation.py --quick         # smoke run: tiny data, few steps, 1 seed
    python benchmarks/ablation.py --rows gl-msin lavt --seeds 0 1 2 --steps 600

Runs go two at a time (``--jobs``), each on one thread, so figures reproduce to the digit for a
fixed seed whatever the machine's load (wall times do not).
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

from rrsis.demo.settings import DEMO_MODEL

RESULTS = ROOT / "benchmarks" / "results"

# Widths shared by every row: the demo's model (the head width is set per row, since the
# baselines' heads take other keys; the refinement count stays gl-msin-tiny's own, two, where
# the demo refines once), with the small BERT's depth stated for every architecture, and the
# convolutional stem for every row (all train from scratch; the registered lavt-tiny and
# rmsin-tiny keep Swin's patch embedding, the shape of the parity fixtures).
WIDTHS: dict[str, Any] = {
    **{k: v for k, v in DEMO_MODEL.items() if k not in ("head_hidden", "refine_steps")},
    "text_layers": 2,
    "stem": "conv",
}

# name -> (registered model, overrides on top of WIDTHS, shuffled text?)
ROWS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "lavt-tiny": ("lavt-tiny", {"window_size": 4}, False),
    "rmsin-tiny": ("rmsin-tiny", {"window_size": 4}, False),
    "gl-msin-tiny": ("gl-msin-tiny", {"head_hidden": 32}, False),
    "gl-msin: ELSA->Swin": ("gl-msin-tiny", {"head_hidden": 32, "local_attn": "swin"}, False),
    "gl-msin: GEM off": ("gl-msin-tiny", {"head_hidden": 32, "use_gem": False}, False),
    "gl-msin: simple head": ("gl-msin-tiny", {"head_hidden": 32, "head": "simple"}, False),
    "gl-msin: tanh gate": ("gl-msin-tiny", {"head_hidden": 32, "gate_act": "tanh"}, False),
    "gl-msin: patch stem": ("gl-msin-tiny", {"head_hidden": 32, "stem": "patch"}, False),
    "gl-msin: shuffled text": ("gl-msin-tiny", {"head_hidden": 32}, True),
}
ROW_KEYS = {re.sub(r"[^a-z0-9]+", "-", k.lower()).strip("-"): k for k in ROWS}

# Expression kinds reported (the generator's extreme and region kinds are both "position").
KINDS = ("colour", "relation", "position", "size", "category", "absent")
_POSITION = re.compile(r"most\b|\b(in the (north|south|east|west|center|middle)|at the (top|bottom)|on the (left|right))")
_RELATION = re.compile(r"\b(left of|right of|north of|south of|next to)\b")


def expression_kind(text: str, has_target: bool) -> str:
    """The grammar rule behind a generated expression, read back from its words."""
    from rrsis.data.synthetic import COLOURS

    t = text.lower()
    if not has_target:
        return "absent"
    if _RELATION.search(t):
        return "relation"
    if "largest" in t or "smallest" in t:
        return "size"
    if _POSITION.search(t):
        return "position"
    if any(re.search(rf"\b{c}\b", t) for c in COLOURS):
        return "colour"
    return "category"


def oversampled(samples: list[dict], factors: dict[str, float], seed: int) -> list[dict]:
    """Each sample of kind ``k`` repeated ``factors[k]`` times (the fraction drawn at random)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for s in samples:
        f = float(factors.get(expression_kind(s["text"], bool(s["mask"].any())), 1.0))
        out.extend([s] * (int(f) + int(rng.random() < f - int(f))))
    return out


# ---------------------------------------------------------------------------- data
def make_data(folder: str, *, scenes: int, size: int, seed: int, kind_weights: dict | None) -> str:
    """Generate (once; reused when present) and return the RRSIS-D root."""
    from rrsis.data.synthetic import generate

    root = Path(folder) / "rrsisd"
    marker = Path(folder) / f"generated-{scenes}-{size}-{seed}"
    if not marker.exists():
        generate(str(folder), scenes, seed=seed, size=size, layout="rrsisd", expressions_per_scene=4,
                 kind_weights=kind_weights)
        marker.touch()
    return str(root)


def load_split(root: str, split: str, size: int, tokenizer) -> list[dict[str, Any]]:
    from rrsis.data import RRSISDDataset

    ds = RRSISDDataset(root, split=split, mode="eval", size=size, tokenizer=tokenizer)
    keep = ("pixel_values", "mask", "input_ids", "attention_mask", "text")
    return [{k: v for k, v in ds[i].items() if k in keep} for i in range(len(ds))]


# ---------------------------------------------------------------------------- one run
def score(net, samples: list[dict[str, Any]]):
    """``ReferringMetrics`` of ``net`` (in eval mode) over ``samples``, 32 at a time; its
    ``.ious`` holds each sample's IoU in order."""
    import torch

    from rrsis.data import collate_fn
    from rrsis.metrics import ReferringMetrics

    metrics = ReferringMetrics()
    with torch.no_grad():
        for i in range(0, len(samples), 32):
            batch = collate_fn(samples[i:i + 32])
            out = net(batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
            metrics.update(out.logits, batch["mask"])
    return metrics


def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    """Train and score one (model, overrides, seed) on one thread; returns its metrics.

    ``spec`` keys: model, overrides, seed, steps, batch_size, lr, warmup, data (root), size,
    shuffle (bool), optim/loss/train (extra recipe sections, optional), out (folder);
    experiments only: oversample ({kind: factor}, training samples of that kind repeated).
    """
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from rrsis import create_model
    from rrsis.data.synthetic import vocabulary
    from rrsis.demo import MemoryDataset, shuffled_texts
    from rrsis.engine import Trainer
    from rrsis.text import Tokenizer

    t0 = time.time()
    size = int(spec["size"])
    tokenizer = Tokenizer.from_words(vocabulary())
    train = load_split(spec["data"], "train", size, tokenizer)
    val = load_split(spec["data"], "val", size, tokenizer)
    seed = int(spec["seed"])
    if spec.get("shuffle"):
        train = shuffled_texts(train, seed)
    if spec.get("oversample"):
        train = oversampled(train, spec["oversample"], seed)
    torch.manual_seed(seed)
    model = create_model(spec["model"], **{**spec["overrides"], "image_size": size,
                                           "text_vocab_size": len(tokenizer)})
    if spec.get("post_init"):  # experiments only: "module:function" applied to the fresh model
        import importlib

        mod, fn = spec["post_init"].split(":")
        getattr(importlib.import_module(mod), fn)(model, spec.get("post_init_args", []))
    cfg = {
        "recipe": "ablation",
        "model": {"name": spec["model"]},
        "data": {"image_size": size, "num_workers": 0},
        "optim": {"lr": spec["lr"], "weight_decay": 1e-2, "warmup_steps": spec["warmup"], **spec.get("optim", {})},
        "loss": {"ce_weight": 0.9, "dice_weight": float(spec.get("dice_weight", 0.1)), **spec.get("loss", {})},
        "train": {
            "max_steps": int(spec["steps"]), "batch_size": int(spec["batch_size"]), "seed": seed,
            "device": "cpu", "amp": "off", "clip_grad_norm": 1.0, "checkpoint_every": 0,
            "keep_checkpoints": 1, "log_every": 50, "eval_every": 0, "progress": False, "threads": 1,
            "output_dir": spec["out"], "flush_denormal": bool(spec.get("flush_denormal", True)),
            **spec.get("train", {}),
        },
    }
    curve = bool(spec.get("curve"))
    if curve:
        cfg["train"]["eval_every"] = 1
    trainer = Trainer(cfg, model=model, tokenizer=tokenizer, train_dataset=MemoryDataset(train),
                      val_dataset=MemoryDataset(val) if curve else None)
    averages = {}
    for decay in spec.get("ema") or ():  # experiments only: weight averages, scored beside the model
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        averages[decay] = AveragedModel(trainer.model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    if averages:
        trainer.optimizer.register_step_post_hook(
            lambda *_: [avg.update_parameters(trainer.model) for avg in averages.values()])
    trainer.fit()
    t_train = time.time() - t0
    net = trainer.model.eval()
    metrics = score(net, val)
    res = dict(metrics.compute())
    res["ema"] = {str(d): score(avg.module.eval(), val).compute()["mIoU"] for d, avg in averages.items()}
    ious = metrics.ious
    kinds = [expression_kind(s["text"], bool(s["mask"].any())) for s in val]
    res["kinds"] = {k: float(np.mean([x for x, kk in zip(ious, kinds) if kk == k]))
                    for k in KINDS if k in kinds}
    res["kind_counts"] = {k: kinds.count(k) for k in KINDS if k in kinds}
    res["params_M"] = sum(p.numel() for p in net.parameters()) / 1e6
    res["train_s"] = t_train
    res["seed"] = seed
    if curve:
        from rrsis.engine.logs import read_jsonl

        res["curve"] = [(r["step"], r["mIoU"]) for r in read_jsonl(Path(spec["out"]) / "log.jsonl")
                        if r.get("type") == "val"]
    return res


# ---------------------------------------------------------------------------- table
def _agg(values: list[float]) -> dict[str, float]:
    vals = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return {"mean": math.nan, "spread": math.nan}
    return {"mean": sum(vals) / len(vals), "spread": max(vals) - min(vals), "values": vals}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out = {k: _agg([r[k] for r in runs]) for k in ("mIoU", "oIoU", "P@0.5", "P@0.9")}
    for k in ("colour", "relation", "position", "size"):
        out[k] = _agg([r["kinds"].get(k, math.nan) for r in runs])
    out["params_M"] = runs[0]["params_M"]
    out["train_s_mean"] = sum(r["train_s"] for r in runs) / len(runs)
    return out


def markdown(table: dict[str, Any], meta: dict[str, Any]) -> str:
    cols = ("mIoU", "oIoU", "P@0.5", "P@0.9", "colour", "relation", "position", "size")
    lines = [
        "| row | params | " + " | ".join(cols) + " |",
        "|---|---:|" + "---:|" * len(cols),
    ]
    for name, s in table.items():
        cells = [f"{100 * s[c]['mean']:.1f} ± {100 * s[c]['spread']:.1f}" for c in cols]
        lines.append(f"| {name} | {s['params_M']:.2f} M | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Validation of {meta['val_samples']} expressions ({meta['val_kinds']}); "
        f"{meta['steps']} steps × batch {meta['batch_size']}, lr {meta['lr']}, warm-up {meta['warmup']}, "
        f"loss 0.9·CE + {meta.get('dice_weight', 0.1)}·Dice; "
        f"seeds {meta['seeds']} (mean ± spread = max − min over seeds, in points); "
        f"{meta['scenes']} scenes of {meta['size']} px, data seed {meta['data_seed']}; "
        f"one thread per run; `{meta['command']}` on {meta['machine']}, {meta['timestamp']}, "
        f"{meta['wall_min']:.1f} min wall."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 40 scenes, 20 steps, one seed, 2 rows")
    p.add_argument("--rows", nargs="+", default=None, help=f"row keys (default all): {', '.join(ROW_KEYS)}")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--dice-weight", type=float, default=0.1, help="Dice weight of every row's loss (cross-entropy 0.9)")
    p.add_argument("--scenes", type=int, default=1300,
                   help="generated scenes, 4 expressions each, 80 %% train: 1300 gives about 4,160 training "
                        "expressions, the size of the conv+FiLM comparison in the README")
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--work", default=None, help="folder for data and runs (default: a temporary one)")
    p.add_argument("--out", default=str(RESULTS / "ablation-cpu"), help="results path without suffix")
    a = p.parse_args(argv)
    if a.quick:
        a.scenes, a.steps, a.seeds = 40, 20, a.seeds[:1]
        a.rows = a.rows or ["gl-msin-tiny", "gl-msin-shuffled-text"]
        if a.out == str(RESULTS / "ablation-cpu"):
            a.out = str(Path(tempfile.gettempdir()) / "ablation-quick")
    keys = a.rows or list(ROW_KEYS)
    bad = [k for k in keys if k not in ROW_KEYS]
    if bad:
        p.error(f"unknown row(s) {bad}; known: {', '.join(ROW_KEYS)}")
    from rrsis.demo.settings import DEMO_KIND_WEIGHTS

    t_start = time.time()
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="rrsis-ablation-"))
    data = make_data(str(work / "data"), scenes=a.scenes, size=a.size, seed=a.data_seed,
                     kind_weights=DEMO_KIND_WEIGHTS)
    specs = []
    for key in keys:
        name = ROW_KEYS[key]
        model, over, shuffle = ROWS[name]
        for seed in a.seeds:
            specs.append({
                "row": name, "model": model, "overrides": {**WIDTHS, **over}, "seed": seed,
                "steps": a.steps, "batch_size": a.batch_size, "lr": a.lr, "warmup": a.warmup,
                "dice_weight": a.dice_weight, "data": data, "size": a.size, "shuffle": shuffle,
                "out": str(work / "runs" / f"{key}-s{seed}"),
            })
    runs: dict[str, list[dict[str, Any]]] = {ROW_KEYS[k]: [] for k in keys}
    with ProcessPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        for spec, res in zip(specs, pool.map(run_one, specs)):
            runs[spec["row"]].append(res)
            print(f"{spec['row']:<24} seed {spec['seed']}: mIoU {100 * res['mIoU']:.2f} "
                  f"oIoU {100 * res['oIoU']:.2f} ({res['train_s']:.0f} s)", flush=True)
    table = {name: summarise(r) for name, r in runs.items()}
    first = next(iter(runs.values()))[0]
    meta = {
        "command": "python benchmarks/ablation.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.processor() or platform.system()}",
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="minutes"),
        "steps": a.steps, "batch_size": a.batch_size, "lr": a.lr, "warmup": a.warmup, "seeds": a.seeds,
        "dice_weight": a.dice_weight,
        "scenes": a.scenes, "size": a.size, "data_seed": a.data_seed, "widths": WIDTHS,
        "val_samples": sum(first["kind_counts"].values()),
        "val_kinds": ", ".join(f"{k} {n}" for k, n in first["kind_counts"].items()),
        "wall_min": (time.time() - t_start) / 60,
    }
    md = markdown(table, meta)
    C.write_results(a.out, {"meta": meta, "table": table, "runs": runs}, md)
    print(md)
    print(f"wrote {a.out}.json and {a.out}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
