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
5. evaluates both on the validation split, prints the table, and writes a prediction grid
   (through ``model.predict`` on the image files, the path users take), the training curves
   and ``metrics.json``.

The gap between the two rows is the part of the score that comes from reading the text.

The same seed gives the same figures run after run on one machine, whatever else runs on it:
torch uses a fixed number of threads (:data:`DEMO_THREADS`, not the number of cores or a number
chosen from the load), and MKL/OpenMP may not lower it when the machine is busy, so every
reduction is summed in the same order.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .._atomic import atomic_write, json_text
from ..allocator import keep_freed_memory
from ..data import RRSISDDataset
from ..data.synthetic import generate, vocabulary
from ..data.transforms import ResizeNormalize, resize_mask
from ..engine.distributed import resolve_device
from ..engine.logs import read_jsonl
from ..engine.trainer import Trainer
from ..factory import create_model, from_pretrained
from ..metrics import ReferringMetrics, format_metrics
from ..pictures import comparison_grid, plot_history, save_png
from ..text import Tokenizer
from .settings import DEMO_KIND_WEIGHTS, DEMO_MODEL, DEMO_OUTPUTS, DEMO_THREADS, DemoConfig

__all__ = ["DEMO_KIND_WEIGHTS", "DEMO_MODEL", "DEMO_THREADS", "DemoConfig", "MemoryDataset", "fix_cpu_threads", "run_demo", "shuffled_texts"]

logger = logging.getLogger(__name__)

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
    ds = RRSISDDataset(root, split=split, mode="eval", size=size, tokenizer=tokenizer)
    keep = ("pixel_values", "mask", "input_ids", "attention_mask", "text", "sample_id")
    it = range(len(ds))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"load {split}", unit="sample", leave=False, dynamic_ncols=True)
    out = []
    for i in it:
        sample = {k: v for k, v in ds[i].items() if k in keep}
        sample["image_path"] = ds.entries[ds.sentence_index(i)[0]].image_path
        out.append(sample)
    return out


def _iou(pred: np.ndarray, target: torch.Tensor) -> float:
    m = ReferringMetrics()
    m.update(torch.from_numpy(pred)[None], target[None])
    return float(m.ious[0])


def _build_model(cfg: DemoConfig, vocab_size: int):
    torch.manual_seed(cfg.seed)
    args = {**cfg.model, "image_size": cfg.size, "text_vocab_size": vocab_size}
    return create_model("gl-msin-tiny", **args)


def _train_run(cfg: DemoConfig, key: str, label: str, shuffle: bool, progress: bool, train=None, val=None,
               tokenizer=None, keep: dict | None = None) -> tuple[dict[str, Any], float]:
    """Train one of the demo's two models into ``out/key`` (``final/`` holds it); returns its
    final validation metrics and the seconds it took. Without ``train``/``val`` (a worker
    process) the samples are read from the generated set, and the process takes the demo's
    thread count and float settings first."""
    t0 = time.time()
    out = Path(cfg.out)
    if train is None:
        fix_cpu_threads(cfg.threads)
        keep_freed_memory()
        tokenizer = Tokenizer.from_words(vocabulary())
        root = str(out / "data" / "rrsisd")
        train = _load_split(root, "train", cfg.size, tokenizer, False)
        val = _load_split(root, "val", cfg.size, tokenizer, False)
    samples = shuffled_texts(train, cfg.seed) if shuffle else train
    # Validation half-way (and at the end) gives the plot a curve; each one costs the time of
    # ~15 training steps (at 1,400 steps: after epoch 3 and at the end, not after 2, 4 and 5).
    steps_per_epoch = len(samples) // cfg.batch_size
    epochs = max(1, -(-cfg.steps // max(steps_per_epoch, 1)))
    run_cfg = {
        "recipe": "demo",
        "model": {"name": "gl-msin-tiny"},
        "data": {"image_size": cfg.size, "num_workers": 0},
        # torch's fused AdamW: one kernel per step instead of a dozen per tensor (measured on the
        # demo model, one thread: 7 ms per optimiser step instead of 30).
        "optim": {"lr": cfg.lr, "weight_decay": cfg.weight_decay, "warmup_steps": cfg.warmup_steps, "fused": True},
        "loss": {"ce_weight": 0.9, "dice_weight": 0.1},
        "train": {
            "max_steps": cfg.steps, "batch_size": cfg.batch_size, "seed": cfg.seed, "device": cfg.device,
            "amp": "off", "clip_grad_norm": cfg.clip_grad_norm, "checkpoint_every": 0, "keep_checkpoints": 1,
            "log_every": 10, "eval_every": max(1, (epochs + 1) // 2), "progress": progress, "eval_batch_size": 32,
            "output_dir": str(out / key),
        },
    }
    model = _build_model(cfg, len(tokenizer))
    trainer = Trainer(run_cfg, model=model, tokenizer=tokenizer, train_dataset=MemoryDataset(samples),
                      val_dataset=MemoryDataset(val), run_name=label)
    summary = trainer.fit()
    if keep is not None:
        keep[key] = trainer.model
    return summary["final"], time.time() - t0


def fix_cpu_threads(threads: int) -> None:
    """Use exactly ``threads`` CPU threads, also when the machine is busy.

    Sets torch's intra-op pool and forbids MKL and OpenMP to run fewer threads than asked
    (their "dynamic" mode may do so under load, which changes the order of sums and so the
    last bits of every result).

    Args:
        threads: the thread count.
    """
    torch.set_num_threads(int(threads))
    os.environ["MKL_DYNAMIC"] = "FALSE"  # read by worker processes started later
    os.environ["OMP_DYNAMIC"] = "FALSE"
    lib = os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so")
    try:
        handle = ctypes.CDLL(lib)
    except OSError:  # not Linux, or another build layout: the fixed pool size still holds
        return
    # C interfaces, by value (lower-case mkl_set_dynamic is the Fortran one, by reference).
    for name in ("MKL_Set_Dynamic", "omp_set_dynamic"):
        fn = getattr(handle, name, None)
        if fn is not None:
            fn.argtypes = [ctypes.c_int]
            fn(0)


def _prepare_out(out: Path, overwrite: bool) -> None:
    present = sorted(os.listdir(out)) if out.is_dir() else []
    if present and not overwrite:
        raise FileExistsError(
            f"{out} is not empty ({', '.join(present[:5])}{' ...' if len(present) > 5 else ''}): "
            "pass --overwrite to replace the previous demo, or --out for another folder"
        )
    for name in DEMO_OUTPUTS if present else ():
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    out.mkdir(parents=True, exist_ok=True)


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
    if not isinstance(cfg.threads, int) or cfg.threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {cfg.threads!r}")
    resolve_device(cfg.device)
    _prepare_out(Path(cfg.out), cfg.overwrite)
    fix_cpu_threads(cfg.threads)
    keep_freed_memory()
    # Subnormal floats are flushed to zero while training on CPU: the trainer's policy
    # (``train.flush_denormal``), the same for ``rrsis train``.
    return _run_demo(cfg)


def _run_demo(cfg: DemoConfig) -> dict[str, Any]:
    out = Path(cfg.out)
    times: dict[str, float] = {}
    t_all = t0 = time.time()
    results: dict[str, Any] = {}
    models = {}
    runs = (("gl-msin", "GL-MSIN", False), ("control", "shuffled-text control", True))
    pool = None
    if cfg.parallel and cfg.device == "cpu":
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # Two fresh (spawned) processes: they make the scenes while this one writes them, then
        # one of them, already started, trains the control with its own thread pool.
        pool = ProcessPoolExecutor(max_workers=2, mp_context=mp.get_context("spawn"))
    try:
        # 1. data
        data_dir = out / "data"
        stats = generate(str(data_dir), cfg.scenes, seed=cfg.seed, size=cfg.size, layout="rrsisd",
                         expressions_per_scene=cfg.expressions_per_scene, kind_weights=cfg.kind_weights,
                         progress=cfg.progress, executor=pool)
        control = None
        if pool is not None:
            # The control reads the data from disk, while GL-MSIN trains here on the samples loaded below.
            control = pool.submit(_train_run, cfg, "control", "shuffled-text control", True, False)
        tokenizer = Tokenizer.from_words(vocabulary())
        root = str(data_dir / "rrsisd")
        train = _load_split(root, "train", cfg.size, tokenizer, cfg.progress)
        val = _load_split(root, "val", cfg.size, tokenizer, cfg.progress)
        times["data_s"] = time.time() - t0

        # 2. the two trainings: side by side (``cfg.parallel``), else one by one
        if control is not None:
            results["gl-msin"], times["gl-msin_train_s"] = _train_run(cfg, "gl-msin", "GL-MSIN", False,
                                                                      cfg.progress, train, val, tokenizer)
            results["control"], times["control_train_s"] = control.result()
        else:
            for key, label, shuffle in runs:
                results[key], times[f"{key}_train_s"] = _train_run(cfg, key, label, shuffle, cfg.progress, train,
                                                                   val, tokenizer, keep=models)
    except BaseException:
        # Ctrl-C or a failure here: stop the workers (the control's training) instead of waiting for them.
        if pool is not None:
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    if pool is not None:
        for key, _, _ in runs:
            models[key] = from_pretrained(str(out / key / "final")).eval()

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
    # The pictures go through model.predict on the image files: the path a user takes.
    paths, texts = [s["image_path"] for s in chosen], [s["text"] for s in chosen]
    pred_main = models["gl-msin"].predict(paths, texts, batch_size=len(paths))
    pred_ctrl = models["control"].predict(paths, texts, batch_size=len(paths))
    transform = ResizeNormalize(cfg.size)
    rows = []
    for s, pm, pc in zip(chosen, pred_main, pred_ctrl):
        gt = s["mask"]
        pm, pc = (resize_mask(torch.from_numpy(p), cfg.size).numpy() for p in (pm, pc))
        caption = f"\"{s['text']}\"  IoU GL-MSIN {_iou(pm, gt):.2f}, control {_iou(pc, gt):.2f}"
        rows.append((transform.denormalize(s["pixel_values"]), gt.numpy().astype(bool), [pm, pc], caption))
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
    atomic_write(out / "metrics.json", json_text(report, indent=2, allow_nan=False) + "\n")
    print()
    print(f"validation ({len(val)} expressions, {cfg.size}x{cfg.size} synthetic scenes):")
    print(format_metrics({"GL-MSIN": results["gl-msin"], "shuffled-text control": results["control"]}))
    print(f"mIoU gap (text used): {gap * 100:+.2f} points; total {times['total_s'] / 60:.1f} min "
          f"on {torch.get_num_threads()} thread(s)")
    written = ["predictions.png"] + (["training.png"] if plot else []) + ["metrics.json"]
    print(f"outputs in {out}: {', '.join(written)}, gl-msin/final (the model)")
    images = sorted((data_dir / "rrsisd" / "JPEGImages").iterdir())
    if images:
        print(f"try: rrsis predict --model {out / 'gl-msin' / 'final'} --image {images[0]} "
              f"--text \"the red building\" --out pred")
    return report
