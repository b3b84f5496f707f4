"""Settings of ``rrsis demo``, apart from the demo itself (:mod:`rrsis.demo.run`) so that
``rrsis demo --help`` can show them without importing torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEMO_KIND_WEIGHTS", "DEMO_MODEL", "DEMO_OUTPUTS", "DEMO_THREADS", "DemoConfig"]

# The demo model: gl-msin-tiny's layout, wider, with the small BERT fully trainable (from
# scratch there are no pretrained layers worth freezing), refining its mask once instead of
# twice: a step costs about 10 % less (interleaved on one thread), and the time goes into
# steps, which is what the small model's accuracy follows (README, "The demo").
DEMO_MODEL: dict[str, Any] = {
    "embed_dim": 32,
    "num_heads": [1, 2, 4, 8],
    "head_hidden": 32,
    "refine_steps": 1,
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

# torch threads of each of the demo's two trainings, which run side by side in two processes:
# a constant, so the figures do not depend on the machine's core count or load. Measured on
# 2 cores (benchmarks/results/cpu-threads.md): one process on 2 threads is 1.4x faster per
# step than on 1 thread when the machine is quiet, but 3.8x slower than on 1 thread as soon as
# another busy process competes for a core (1 thread: unchanged); the two trainings side by
# side, one thread each, take 9-9.5 minutes on a quiet machine (800 scenes).
DEMO_THREADS = 1

# What a demo writes into its folder (``overwrite=True`` removes these, nothing else).
DEMO_OUTPUTS = ("data", "gl-msin", "control", "metrics.json", "predictions.png", "training.png")


@dataclass
class DemoConfig:
    """Settings of :func:`run_demo` (the defaults are the measured README run).

    Args:
        out: output folder.
        seed: seed of the data, the initialisation and the data order.
        steps: optimiser steps of each of the two trainings.
        threads: torch CPU threads of each training (default :data:`DEMO_THREADS`; the
            figures are reproducible for a given seed and thread count).
        parallel: train GL-MSIN and the control at the same time, in two processes (CPU only);
            the figures are the same either way.
        scenes: generated scenes (80 % train, 10 % val, 10 % test). 800 rather than 400: at
            1,100 steps the model saw each training expression ~3.4 times instead of ~6.9,
            and generalises better (README, "Ablation and learning efficiency").
        size: scene side in pixels (also the model input size; a multiple of 32).
        expressions_per_scene: expressions per scene.
        batch_size: samples per step.
        lr, warmup_steps, weight_decay: AdamW (torch's fused one) and its linear warm-up, then
            poly 0.9 decay.
        clip_grad_norm: gradient clipping.
        kind_weights: expression-kind weights for the generator (see ``DEMO_KIND_WEIGHTS``).
        model: ``gl-msin-tiny`` overrides (see ``DEMO_MODEL``).
        examples: validation samples drawn in ``predictions.png``.
        device: ``"cpu"`` (the demo's measured setting), ``"auto"`` or a device.
        progress: progress bars.
        overwrite: replace a previous demo in ``out`` (without it a folder holding files is
            refused, so a finished demo is never destroyed by accident).
    """

    out: str = "rrsis-demo"
    seed: int = 0
    steps: int = 1400
    threads: int = DEMO_THREADS
    parallel: bool = True
    scenes: int = 800
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
    overwrite: bool = False
