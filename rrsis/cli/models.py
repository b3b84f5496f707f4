"""``rrsis models``: list the registry, or describe one model."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list registered models, or show one model's config")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'gl-msin*'")
    p.add_argument("--info", metavar="NAME", help="print NAME's config and parameter counts")
    p.set_defaults(func=run)


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def run(args: argparse.Namespace) -> int:
    import torch

    import rrsis

    if not args.info:
        names = rrsis.list_models(args.pattern)
        if not names:
            print(f"no model matches {args.pattern!r}")
            return 1
        print("\n".join(names))
        return 0
    # Shapes only: build on the meta device so the full-size models cost no memory or time.
    with torch.device("meta"):
        model = rrsis.create_model(args.info)
    total = _count(model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"model: {args.info}")
    print("config:")
    print(json.dumps(model.config, indent=2, sort_keys=True))
    print("parameters:")
    parts = [("text_encoder", model.text_encoder), ("backbone", model.backbone)]
    if model.neck is not None:
        parts.append(("neck", model.neck))
    parts.append(("head", model.classifier))
    for name, mod in parts:
        print(f"  {name:<13} {_count(mod) / 1e6:10.2f} M")
    print(f"  {'total':<13} {total / 1e6:10.2f} M  ({total:,})")
    print(f"  {'trainable':<13} {trainable / 1e6:10.2f} M")
    return 0
