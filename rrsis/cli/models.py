"""``rrsis models``: list the registry or its pretrained configurations, or describe one model."""

from __future__ import annotations

import argparse
import json

from .model_limits import add_model_limits, model_limits


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list registered models or pretrained tags, or show one model's config")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'gl-msin*'")
    p.add_argument("--pretrained", action="store_true",
                   help="list the pretrained configurations (arch.tag): weights, input, tokenizer, licence")
    p.add_argument("--info", metavar="NAME", help="print NAME's config and parameter counts")
    add_model_limits(p)
    # The names are listed without the model stack (timm, torchvision): run imports what each answer needs.
    p.set_defaults(func=run, needs_registry=False)


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _print_pretrained(pattern: str) -> int:
    from ..factory import list_pretrained, pretrained_cfg

    names = list_pretrained(pattern if "." in pattern or pattern.endswith("*") else pattern + ".*")
    if not names:
        print(f"no pretrained configuration matches {pattern!r}")
        return 1
    for name in names:
        cfg = pretrained_cfg(name)
        print(name)
        print(f"  backbone    {cfg.swin}")
        if cfg.text:
            print(f"  text        {cfg.text}   (tokenizer: {cfg.tokenizer})")
        print(f"  input       {cfg.image_size}x{cfg.image_size}, mean {list(cfg.mean)}, std {list(cfg.std)}")
        print(f"  licence     {cfg.license}")
        print(f"  notes       {cfg.notes}")
    return 0


def run(args: argparse.Namespace) -> int:
    from ..plugins import import_plugins
    from ..registry import list_models

    import_plugins(args.plugin)  # as cli._call does for the commands that need the whole registry
    if args.pretrained:
        return _print_pretrained(args.pattern)
    if not args.info:
        names = list_models(args.pattern)
        if not names:
            print(f"no model matches {args.pattern!r}")
            return 1
        print("\n".join(names))
        return 0
    import torch

    from ..factory import create_model

    # Shapes only: build on the meta device so the full-size models cost no memory or time.
    with torch.device("meta"):
        model = create_model(args.info, **model_limits(args))
    total = _count(model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"model: {args.info}")
    print("config:")
    print(json.dumps(model.config, indent=2))
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
