"""``rrsis demo``: train GL-MSIN and a shuffled-text control on generated scenes, on the CPU."""

from __future__ import annotations

import argparse

from .argtypes import workers
from .model_limits import add_model_limits, model_limits


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..demo.settings import DemoConfig

    d = DemoConfig()
    p = sub.add_parser(
        "demo", help="train a small GL-MSIN on synthetic scenes and show that it reads the text",
        description="Generates synthetic aerial scenes with referring expressions, trains a small "
                    "GL-MSIN from scratch and the same model on shuffled expressions (a control "
                    "that cannot use the text), evaluates both on the validation split, and writes "
                    "predictions.png, training.png and metrics.json. The two trainings run side by side "
                    "(one thread each); about 9 minutes on 2 CPU cores. The same seed gives the same "
                    "figures on the same machine, whatever its load.",
    )
    p.add_argument("--out", default=d.out, help=f"output folder (default: {d.out})")
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimiser steps per training (default: {d.steps})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"seed of data, init and order (default: {d.seed})")
    p.add_argument("--threads", type=workers("--threads"), default=d.threads,
                   help=f"CPU threads of each training (default: {d.threads}, fixed so that the figures "
                        "do not depend on the machine's core count or load)")
    p.add_argument("--sequential", action="store_true",
                   help="train GL-MSIN and the control one after the other instead of side by side "
                        "(same figures; e.g. with --threads 2 on an otherwise idle 2-core machine)")
    p.add_argument("--scenes", type=int, default=d.scenes, help=f"scenes to generate (default: {d.scenes})")
    p.add_argument("--size", type=int, default=d.size, help=f"scene and model input side (default: {d.size})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"(default: {d.batch_size})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak AdamW learning rate (default: {d.lr})")
    p.add_argument("--device", default=d.device, help="cpu (default), auto, cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a previous demo in --out (without it a non-empty folder is refused)")
    add_model_limits(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import DemoConfig, run_demo

    cfg = DemoConfig(
        out=args.out, steps=args.steps, seed=args.seed, threads=args.threads,
        scenes=args.scenes, size=args.size, batch_size=args.batch_size, lr=args.lr, device=args.device,
        progress=not args.no_progress, overwrite=args.overwrite, parallel=not args.sequential,
    )
    cfg.model.update(model_limits(args))  # create_model keywords of the demo's two models
    run_demo(cfg)
    return 0
