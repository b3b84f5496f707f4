"""``rrsis train``: train a recipe, with any field overridden on the command line."""

from __future__ import annotations

import argparse

from .model_limits import add_model_limits, model_limits

EPILOG = """\
overrides (any config field; values are read as JSON, None = null):
  --lr 1e-4                 a key that names one field of one section
  --optim.lr 1e-4           a dotted path (also --optim.lr=1e-4)
  --model.use_gem false     a model argument (here: GEM off)
  --set train.epochs=2      the same, spelled out (repeatable)
examples:
  rrsis train --config gl-msin-rrsisd --data.root data/rrsisd
  rrsis train --config gl-msin-rrsisd --data.root data/rrsisd --resume auto
  rrsis train --config gl-msin-rrsisd --data.root data/rrsisd --overwrite      # replace the previous run
  torchrun --nproc_per_node 4 --no-python rrsis train --config gl-msin-rrsisd --data.root data/rrsisd
"""


class _OverrideParser(argparse.ArgumentParser):
    """Keeps unknown ``--key value`` words as config overrides instead of rejecting them."""

    def parse_known_args(self, args=None, namespace=None):
        ns, extra = super().parse_known_args(args, namespace)
        ns.overrides = list(getattr(ns, "overrides", None) or []) + list(extra)
        return ns, []


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a model from a recipe (see --list)", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
        description="Train with the anchors' recipe: AdamW (no decay on norms and position tables), "
                    "per-iteration poly 0.9, best checkpoint on validation oIoU, resumable atomic "
                    "checkpoints, JSONL log and plot. Under torchrun it trains with DDP.",
    )
    # Turns unknown options into overrides; rrsis.cli.main rejects unknown words otherwise.
    p.__class__ = _OverrideParser
    p.add_argument("--config", help="a shipped recipe name (see --list) or a JSON file")
    p.add_argument("--resume", metavar="PATH|auto|auto-or-new",
                   help="continue from a checkpoint file; 'auto': the newest good one in the output "
                        "folder (an error when there is none); 'auto-or-new': the same, or a new run "
                        "when the folder holds no checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the previous run in the output folder (without it, a new run refuses "
                        "a folder that holds one)")
    p.add_argument("--list", action="store_true", help="list the shipped recipes and exit")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--revision", metavar="REV",
                   help="the branch, tag or commit of the Hub repo --model.init names, the model to fine-tune from "
                        "(default: its main branch; sets model.revision); an error with a local --model.init folder")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bars (train.progress false; by default they are drawn only when "
                        "stderr is a terminal)")
    add_model_limits(p)
    p.set_defaults(func=run, overrides=[], needs_registry=False)


def run(args: argparse.Namespace) -> int:
    import json
    import logging

    from ..engine.recipe import list_configs

    if args.list:  # before the model stack is imported: listing takes a fraction of a second
        print("\n".join(list_configs()))
        return 0

    import importlib

    importlib.import_module("rrsis.factory")  # the built-in models and tags (rrsis.cli.main)
    from ..allocator import keep_freed_memory
    from ..engine import Trainer, load_config, parse_override_args
    from ..engine.inputs import check_init_revision
    from ..engine.validate import check_model_name
    from ..metrics import format_metrics

    if not args.config:
        raise ValueError("--config NAME_OR_PATH is required (rrsis train --list shows the recipes)")
    cfg = load_config(args.config, parse_override_args(args.overrides))
    # The model section's keywords reach create_model / from_pretrained (model.init) as they are.
    cfg["model"].update(model_limits(args))
    if args.revision is not None:
        cfg["model"]["revision"] = args.revision
    check_init_revision(cfg["model"])  # before any data is read: a revision needs a Hub repo id as model.init
    check_model_name(cfg["model"])  # --print-config too: an unknown model or tag is no config to print
    if args.quiet:
        cfg["train"]["progress"] = False
    if args.print_config:
        print(json.dumps(cfg, indent=2))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # This process exists to train: keep freed host memory for the next step (rrsis.allocator).
    keep_freed_memory()
    trainer = Trainer(cfg)
    try:
        summary = trainer.fit(resume=args.resume, overwrite=args.overwrite)
    finally:
        trainer.close()
    if trainer.info.is_main:
        rows = {}
        if summary["best"]:
            best = {k: v for k, v in summary["best"].items() if k not in ("step", "epoch")}
            rows[f"best (step {summary['best'].get('step')})"] = best
        if summary["final"]:
            rows["final"] = summary["final"]
        if rows:
            print(format_metrics(rows))
        print(f"outputs in {summary['output_dir']} ({summary['steps']} steps, "
              f"{summary['train_seconds']:.0f} s)")
        line = evaluate_line(cfg, summary, args.plugin)
        if line:
            print(f"evaluate: {line}")
    return 0


def evaluate_line(cfg: dict, summary: dict, plugins=()) -> str | None:
    """The ``rrsis evaluate`` command, runnable as printed, that scores a finished run's ``best/``
    (else ``final/``) on its data's test split (else its val split), with the run's dataset
    options, device, workers, model limits and plugins; ``None`` when there is no model folder,
    no held-out split, or a dataset layout ``rrsis evaluate`` does not read."""
    import json
    import os
    import shlex
    from pathlib import Path

    from ..engine.recipe import parse_value
    from .evaluate import DATASETS

    data, out = cfg["data"], Path(summary["output_dir"])
    folders = [out / name for name in ("best", "final") if (out / name / "config.json").is_file()]
    split = _held_out_split(data) if data.get("root") and data.get("dataset") in DATASETS else None
    if not folders or not split:
        return None
    words = ["rrsis", "evaluate", "--model", str(folders[0]), "--data", str(data["root"]), "--dataset",
             data["dataset"], "--split", split]
    for key, value in (data.get("options") or {}).items():
        if key not in ("mean", "std", "scale"):  # the model records these, and evaluate reads them there
            text = value if isinstance(value, str) and parse_value(value) == value else json.dumps(value)
            words += ["--data-option", f"{key}={text}"]
    if data.get("num_workers") != 2:
        words += ["--num-workers", str(data.get("num_workers"))]
    if cfg["train"].get("device") not in (None, "auto"):
        words += ["--device", str(cfg["train"]["device"])]
    for key in ("max_params", "max_activation_gib"):
        if cfg["model"].get(key) is not None:
            words += [f"--{key.replace('_', '-')}", str(cfg["model"][key])]
    for plugin in plugins or ():
        words += ["--plugin", plugin]
    words += ["--out", os.path.join(str(out), f"eval-{split}.json")]
    return shlex.join(words)


def _held_out_split(data: dict) -> str | None:
    """``"test"`` when the data has a test split, else ``data.val_split``: a phrase file for a
    folder layout, refs of a ``test*`` split (as the RRSIS-D loader matches them) for RRSIS-D."""
    import os

    root, options = str(data["root"]), data.get("options") or {}
    if data["dataset"] == "rrsisd":
        from ..data.files import load_plain_pickle

        try:
            refs = load_plain_pickle(os.path.join(root, options.get("refs_file", "refs(unc).p")))
        except (OSError, ValueError):
            refs = []
        has_test = any(isinstance(r, dict) and "test" in str(r.get("split")) for r in (refs if isinstance(refs, list) else []))
    else:
        pattern = str(options.get("phrase_file", "output_phrase_{split}.txt"))
        has_test = os.path.isfile(os.path.join(root, pattern.format(split="test")))
    return "test" if has_test else data.get("val_split")
