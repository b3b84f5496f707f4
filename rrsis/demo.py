"""The README's demo: does GL-MSIN use the expression? Train it, and a text-ablated control, on the CPU.

``rrsis demo`` (or :func:`run_demo`):

1. generates a small synthetic aerial set in the RRSIS-D layout (:mod:`rrsis.data.synthetic`)
   and reads it back through the real loader;
2. builds a whole-word vocabulary from the generator's grammar;
3. trains a small GL-MSIN from scratch (the :class:`~rrsis.engine.Trainer`, same recipe
   machinery as ``rrsis train``);
4. trains the same model, from the same initialisation, for the same number of steps on a
   control set whose expressions are shuffled across samples (same images and masks, each
   sample carries another sample's expression), so the control can only learn "what looks
   like a target" and never which one is meant;
5. evaluates both on the validation split, prints the table, and writes a prediction grid,
   the training curves and ``metrics.json``.

The gap between the two rows is the part of the score that comes from reading the text.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["DemoConfig", "MemoryDataset", "run_demo", "shuffled_texts"]

logger = logging.getLogger(__name__)

# The demo model: gl-msin-tiny's layout, wider, with the small BERT fully trainable (from
# scratch there are no pretrained layers worth freezing).
DEMO_MODEL: dict[str, Any] = {
    "embed_dim": 32,
    "num_heads": [1, 2, 4, 8],
    "head_hidden": 32,
    "text_hidden_size": 64,
    "text_heads": 2,
    "text_intermediate_size": 128,
    "text_freeze_embeddings": False,
    "text_freeze_last_layers": 0,
    "drop_path_rate": 0.0,
    "text_dropout": 0.0,
}

# Expression mix of the demo set, relative to the generator's defaults. Measured: a small model
# trained from scratch for a few CPU minutes learns colour, category and relation expressions
# well but absolute-position ones (extremes, regions, sizes) slowly, because nothing in the
# network encodes absolute position except zero padding; this mix keeps every kind present.
DEMO_KIND_WEIGHTS: dict[str, float] = {"colour": 3.0, "relation": 1.5, "extreme": 0.5, "size": 0.5}


@dataclass
class DemoConfig:
    """Settings of :func:`run_demo` (the defaults are the measured README run).

    Args:
        out: output folder.
        seed: seed of the data, the initialisation and the data order.
        steps: optimiser steps of each of the two trainings.
        threads: torch CPU threads (``None``: all cores).
        scenes: generated scenes (80 % train, 10 % val, 10 % test).
        size: scene side in pixels (also the model input size; a multiple of 32).
        expressions_per_scene: expressions per scene.
        batch_size: samples per step.
        lr, warmup_steps, weight_decay: AdamW and its linear warm-up, then poly 0.9 decay.
        clip_grad_norm: gradient clipping.
        kind_weights: expression-kind weights for the generator (see ``DEMO_KIND_WEIGHTS``).
        model: ``gl-msin-tiny`` overrides (see ``DEMO_MODEL``).
        examples: validation samples drawn in ``predictions.png``.
        device: ``"cpu"`` (the demo's measured setting), ``"auto"`` or a device.
        progress: progress bars.
    """

    out: str = "rrsis-demo"
    seed: int = 0
    steps: int = 1100
    threads: int | None = None
    scenes: int = 400
    size: int = 96
    expressions_per_scene: int = 4
    batch_size: int = 8
    lr: float = 1e-3
    warmup_steps: int = 50
    weight_decay: float = 1e-2
    clip_grad_norm: float = 1.0
    kind_weights: dict[str, float] = field(default_factory=lambda: dict(DEMO_KIND_WEIGHTS))
    model: dict[str, Any] = field(default_factory=lambda: dict(DEMO_MODEL))
    examples: int = 8
    device: str = "cpu"
    progress: bool = True


class MemoryDataset(Dataset):
    """Samples held in memory (decoded once: the demo's 2 cores go to training, not PNG decoding).

    Args:
        samples: rrsis sample dicts.
    """

    def __init__(self, samples: Sequence[dict[str, Any]]) -> None:
        self.samples = list(samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.samples[i]


def shuffled_texts(samples: Sequence[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """The control set: each sample keeps its image and mask but takes another sample's
    expression (a random cyclic derangement, so no sample keeps its own).

    Args:
        samples: sample dicts with ``text``, ``input_ids`` and ``attention_mask``.
        seed: permutation seed.
    """
    n = len(samples)
    if n < 2:
        raise ValueError("need at least two samples to shuffle expressions")
    order = np.random.default_rng([seed, 7]).permutation(n)
    donor = np.empty(n, dtype=np.int64)
    donor[order] = np.roll(order, -1)
    keys = ("text", "input_ids", "attention_mask")
    return [{**s, **{k: samples[int(d)][k] for k in keys}} for s, d in zip(samples, donor)]


def _load_split(root: str, split: str, size: int, tokenizer, progress: bool) -> list[dict[str, Any]]:
    from .data import RRSISDDataset

    ds = RRSISDDataset(root, split=split, mode="eval", size=size, tokenizer=tokenizer)
    keep = ("pixel_values", "mask", "input_ids", "attention_mask", "text", "sample_id")
    it = range(len(ds))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"load {split}", unit="sample", leave=False, dynamic_ncols=True)
    return [{k: v for k, v in ds[i].items() if k in keep} for i in it]


def _denormalise(pixel_values: torch.Tensor) -> np.ndarray:
    from .data import IMAGENET_MEAN, IMAGENET_STD

    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    img = (pixel_values * std + mean).clamp(0, 1)
    return (img.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


@torch.no_grad()
def _predict(model, samples: Sequence[dict[str, Any]]) -> list[np.ndarray]:
    from .data import collate_fn

    model.eval()
    device = next(model.parameters()).device
    batch = collate_fn(list(samples))
    out = model(batch["pixel_values"].to(device), batch["input_ids"].to(device),
                batch["attention_mask"].to(device))
    return [m.cpu().numpy().astype(bool) for m in out.logits.argmax(1)]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / u) if u else 0.0


def _build_model(cfg: DemoConfig, vocab_size: int):
    from . import create_model

    torch.manual_seed(cfg.seed)
    args = {**cfg.model, "image_size": cfg.size, "text_vocab_size": vocab_size}
    return create_model("gl-msin-tiny", **args)


def run_demo(cfg: DemoConfig | None = None, **overrides: Any) -> dict[str, Any]:
    """Run the demo end to end; see the module docstring.

    Args:
        cfg: settings (default :class:`DemoConfig`).
        **overrides: fields of :class:`DemoConfig` to replace.

    Returns:
        The content of ``metrics.json``: both rows of metrics, the gap, the settings and the
        time each phase took.
    """
    cfg = cfg or DemoConfig()
    if overrides:
        cfg = DemoConfig(**{**asdict(cfg), **overrides})
    if cfg.size % 32:
        raise ValueError(f"size must be a multiple of 32, got {cfg.size}")
    if cfg.steps < 1:
        raise ValueError(f"steps must be >= 1, got {cfg.steps}")
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    # Late in training tiny weights and gradients turn subnormal, which x86 CPUs process
    # many times slower; flushing them to zero costs nothing in accuracy.
    torch.set_flush_denormal(True)
    try:
        return _run_demo(cfg)
    finally:
        torch.set_flush_denormal(False)


def _run_demo(cfg: DemoConfig) -> dict[str, Any]:
    from .data.synthetic import generate, vocabulary
    from .engine import Trainer
    from .engine.logs import plot_history, read_jsonl
    from .engine.visualize import comparison_grid, save_png
    from .metrics import format_metrics
    from .text import Tokenizer

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    t_all = t0 = time.time()

    # 1. data
    data_dir = out / "data"
    stats = generate(str(data_dir), cfg.scenes, seed=cfg.seed, size=cfg.size, layout="rrsisd",
                     expressions_per_scene=cfg.expressions_per_scene, kind_weights=cfg.kind_weights,
                     progress=cfg.progress)
    tokenizer = Tokenizer.from_words(vocabulary())
    root = str(data_dir / "rrsisd")
    train = _load_split(root, "train", cfg.size, tokenizer, cfg.progress)
    val = _load_split(root, "val", cfg.size, tokenizer, cfg.progress)
    times["data_s"] = time.time() - t0

    base_cfg = {
        "recipe": "demo",
        "model": {"name": "gl-msin-tiny"},
        "data": {"image_size": cfg.size, "num_workers": 0},
        "optim": {"lr": cfg.lr, "weight_decay": cfg.weight_decay, "warmup_steps": cfg.warmup_steps},
        "loss": {"ce_weight": 0.9, "dice_weight": 0.1},
        "train": {
            "max_steps": cfg.steps, "batch_size": cfg.batch_size, "seed": cfg.seed, "device": cfg.device,
            "amp": "off", "clip_grad_norm": cfg.clip_grad_norm, "checkpoint_every": 0, "keep_checkpoints": 1, "log_every": 10,
            "eval_every": 0, "progress": cfg.progress, "eval_batch_size": 32,
        },
    }
    results: dict[str, Any] = {}
    models = {}
    runs = (("gl-msin", "GL-MSIN", train), ("control", "shuffled-text control", shuffled_texts(train, cfg.seed)))
    for key, label, samples in runs:
        t0 = time.time()
        # Validation a few times per run gives the plot a curve without costing much.
        steps_per_epoch = len(samples) // cfg.batch_size
        epochs = max(1, -(-cfg.steps // max(steps_per_epoch, 1)))
        run_cfg = json.loads(json.dumps(base_cfg))
        run_cfg["train"]["output_dir"] = str(out / key)
        run_cfg["train"]["eval_every"] = max(1, epochs // 4)
        model = _build_model(cfg, len(tokenizer))
        trainer = Trainer(run_cfg, model=model, tokenizer=tokenizer, train_dataset=MemoryDataset(samples),
                          val_dataset=MemoryDataset(val), run_name=label)
        summary = trainer.fit()
        results[key] = summary["final"]
        models[key] = trainer.model
        times[f"{key}_train_s"] = time.time() - t0

    # 3. pictures and numbers
    t0 = time.time()
    records = read_jsonl(out / "gl-msin" / "log.jsonl") + read_jsonl(out / "control" / "log.jsonl")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot = plot_history(records, out / "training.png", title="GL-MSIN vs shuffled-text control")
    for w in caught:
        print(f"warning: {w.message}")
    rng = np.random.default_rng([cfg.seed, 11])
    pick = sorted(rng.choice(len(val), size=min(cfg.examples, len(val)), replace=False).tolist())
    chosen = [val[i] for i in pick]
    pred_main = _predict(models["gl-msin"], chosen)
    pred_ctrl = _predict(models["control"], chosen)
    rows = []
    for s, pm, pc in zip(chosen, pred_main, pred_ctrl):
        gt = s["mask"].numpy().astype(bool)
        caption = f"\"{s['text']}\"  IoU GL-MSIN {_iou(pm, gt):.2f}, control {_iou(pc, gt):.2f}"
        rows.append((_denormalise(s["pixel_values"]), gt, [pm, pc], caption))
    grid = comparison_grid(rows, ["image", "ground truth", "GL-MSIN", "shuffled-text control"])
    save_png(grid, out / "predictions.png")
    times["report_s"] = time.time() - t0
    times["total_s"] = time.time() - t_all

    gap = results["gl-msin"]["mIoU"] - results["control"]["mIoU"]
    report = {
        "validation": {"GL-MSIN": results["gl-msin"], "shuffled-text control": results["control"]},
        "mIoU_gap": gap,
        "oIoU_gap": results["gl-msin"]["oIoU"] - results["control"]["oIoU"],
        "settings": asdict(cfg),
        "dataset": {k: stats[k] for k in ("n_scenes", "n_expressions", "non_unique_target_share", "splits")},
        "train_samples": len(train),
        "val_samples": len(val),
        "threads": torch.get_num_threads(),
        "seconds": times,
        "files": {
            "model": str(out / "gl-msin" / "final"),
            "predictions": str(out / "predictions.png"),
            "plot": str(plot) if plot else None,
        },
    }
    with open(out / "metrics.json", "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2)
        fh.write("\n")
    print()
    print(f"validation ({len(val)} expressions, {cfg.size}x{cfg.size} synthetic scenes):")
    print(format_metrics({"GL-MSIN": results["gl-msin"], "shuffled-text control": results["control"]}))
    print(f"mIoU gap (text used): {gap * 100:+.2f} points; total {times['total_s'] / 60:.1f} min "
          f"on {torch.get_num_threads()} thread(s)")
    print(f"outputs in {out}: predictions.png, training.png, metrics.json, gl-msin/final (the model)")
    images = sorted((data_dir / "rrsisd" / "JPEGImages").iterdir())
    if images:
        print(f"try: rrsis predict --model {out / 'gl-msin' / 'final'} --image {images[0]} "
              f"--text \"the red building\" --out pred")
    return report


def default_threads() -> int:
    """All cores the process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
