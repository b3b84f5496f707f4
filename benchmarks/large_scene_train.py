"""Train the tiny GL-MSIN for whole scenes: crops of large scenes, with their boxes in the scene.

What it makes (``--out DIR``):

- ``DIR/data/{train,val}``: large scenes at training scale (:mod:`rrsis.data.synthetic.at_scale`,
  objects at the pixel sizes of 96² training scenes) with their six kinds of expressions. Their
  settings (density 0.35, the generator's own palette, 384² and 512² scenes) differ from both
  sets of ``benchmarks/large_scene.py`` (tuning: density 0.3, white/gray palette; held-out:
  density 0.45, red/blue/orange palette, 1024² and 2048²), and the seeds do too.
- ``DIR/<variant>-seed<N>/final``: a model per variant and seed, trained with the recipe below
  on :class:`rrsis.data.SceneCropDataset` (96² crops; 60 % of them around a target of their
  expression, the rest anywhere, so that most say "not here").

Variants: ``position`` (the demo's gl-msin-tiny layout with ``fusion.position="fourier"``: each
crop knows its box in the scene) and ``crops`` (the same model without the position encoding:
what the crops alone teach). The recipe is the demo's (AdamW lr 2e-3, warm-up, batch 8, CE 0.9
+ Dice 0.1, one torch thread) for ``--steps`` steps, the ablation benchmark's CPU budget.

    python benchmarks/large_scene_train.py --out /tmp/scene-train --seeds 0 1 --steps 1400
    python benchmarks/large_scene.py --model /tmp/scene-train/position-seed0/final ...
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Training-set settings: other than the tuning and held-out sets of benchmarks/large_scene.py.
TRAIN = {"density": 0.35, "palette": {}}
SIZES = {"train": ((384, 120), (512, 60)), "val": ((384, 10),)}
SEED_BASE = {"train": 50_000, "val": 60_000}
VARIANTS = {"position": {"position": "fourier"}, "crops": {}}


def make_data(root: Path, train_size: int, per_kind: int, scale: float = 1.0) -> dict[str, int]:
    """Write the training and validation scenes (skipped when already there); expression counts."""
    from rrsis.data.synthetic.at_scale import LargeSceneSettings, write_scene_at_scale

    counts = {}
    for split, plan in SIZES.items():
        out = root / split
        n = 0
        for size, k in plan:
            k = max(1, round(k * scale))
            st = LargeSceneSettings.from_dict({**TRAIN, "size": size, "train_size": train_size, "per_kind": per_kind})
            for i in range(k):
                name = f"s{size}_{i}"
                if (out / f"{name}.json").exists():
                    meta = json.loads((out / f"{name}.json").read_text())
                else:
                    meta = write_scene_at_scale(out, st, seed=SEED_BASE[split] + 1000 * i + size, name=name)
                n += len(meta["expressions"])
        counts[split] = n
    return counts


def train(root: Path, out: Path, variant: str, seed: int, steps: int, size: int, threads: int,
          progress: bool) -> dict:
    """Train one model; returns its final validation metrics and the time it took."""
    import torch

    from rrsis import Tokenizer, create_model
    from rrsis.data import SceneCropDataset
    from rrsis.data.synthetic import vocabulary
    from rrsis.demo.run import fix_cpu_threads
    from rrsis.demo.settings import DEMO_MODEL
    from rrsis.engine import Trainer
    from rrsis.engine.inputs import text_words

    fix_cpu_threads(threads)
    t0 = time.time()
    train_set = SceneCropDataset(root, "train", size=size, train=True, seed=seed)
    val_set = SceneCropDataset(root, "val", size=size, train=False, seed=seed)
    words = vocabulary() + [w for w in text_words(t for e in train_set.entries for _, t in e.sentences)
                            if w not in set(vocabulary())]
    tok = Tokenizer.from_words(words)
    train_set.tokenizer = val_set.tokenizer = tok
    torch.manual_seed(seed)
    model = create_model("gl-msin-tiny", **DEMO_MODEL, **VARIANTS[variant], image_size=size,
                         text_vocab_size=len(tok))
    cfg = {
        "recipe": f"large-scene-{variant}",
        "model": {"name": "gl-msin-tiny"},
        "data": {"image_size": size, "num_workers": 0},
        "optim": {"lr": 2e-3, "weight_decay": 1e-2, "warmup_steps": 50, "fused": True},
        "loss": {"ce_weight": 0.9, "dice_weight": 0.1},
        "train": {"max_steps": steps, "batch_size": 8, "seed": seed, "device": "cpu", "amp": "off",
                  "clip_grad_norm": 1.0, "checkpoint_every": 0, "keep_checkpoints": 1, "log_every": 20,
                  "eval_every": 1000, "progress": progress, "eval_batch_size": 32,
                  "output_dir": str(out / f"{variant}-seed{seed}")},
    }
    trainer = Trainer(cfg, model=model, tokenizer=tok, train_dataset=train_set, val_dataset=val_set,
                      run_name=f"{variant}-seed{seed}")
    summary = trainer.fit()
    return {"variant": variant, "seed": seed, "steps": steps, "final": summary["final"],
            "minutes": round((time.time() - t0) / 60, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="work folder (data/ and one folder per model)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--variants", nargs="+", default=["position"], choices=sorted(VARIANTS))
    p.add_argument("--steps", type=int, default=1400)
    p.add_argument("--size", type=int, default=96, help="crop side = model input = training scale")
    p.add_argument("--per-kind", type=int, default=6, help="expressions of each kind per scene")
    p.add_argument("--data-scale", type=float, default=1.0, help="multiplies the scene counts (smoke runs)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-only", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args()
    out = Path(args.out)
    counts = make_data(out / "data", args.size, args.per_kind, args.data_scale)
    print(f"scenes written to {out / 'data'}: {counts} expressions", flush=True)
    if args.data_only:
        return 0
    results = []
    for variant in args.variants:
        for seed in args.seeds:
            r = train(out / "data", out, variant, seed, args.steps, args.size, args.threads, not args.no_progress)
            print(json.dumps(r), flush=True)
            results.append(r)
    (out / "training.json").write_text(json.dumps({"data": counts, "runs": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
