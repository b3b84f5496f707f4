"""Convert an official RMSIN checkpoint to an rrsis model directory and evaluate it.

    python examples/convert_and_evaluate.py --checkpoint RMSIN_rrsisd.pth --vocab bert-vocab.txt \
        --data refer/data/rrsisd --dataset rrsisd --split test

Without ``--data`` the converted model is scored on a small generated set (meaningless
numbers, but every step runs: conversion, strict loading, the dataset reader, the metrics).
A checkpoint without a BERT vocabulary gets a whole-word stand-in vocabulary for that run.
"""

from __future__ import annotations

import argparse
import os

import rrsis
from rrsis.data import build_dataset
from rrsis.engine import evaluate
from rrsis.metrics import format_metrics


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="official RMSIN (or LAVT) .pth file")
    p.add_argument("--arch", default="rmsin", choices=["rmsin", "lavt"])
    p.add_argument("--vocab", help="the BERT vocab.txt to ship with the model")
    p.add_argument("--text-heads", type=int, help="BERT attention heads (default: hidden / 64)")
    p.add_argument("--out", default="converted", help="model directory to write")
    p.add_argument("--data", help="dataset folder (default: a generated synthetic set)")
    p.add_argument("--dataset", default="rrsisd", choices=["rrsisd", "refsegrs", "risbench"])
    p.add_argument("--split", default="test")
    p.add_argument("--image-size", type=int, default=480, help="evaluation size (anchors: 480)")
    p.add_argument("--tiny", action="store_true", help="smallest settings (tests)")
    args = p.parse_args(argv)

    from rrsis.convert import convert_checkpoint

    directory = convert_checkpoint(args.checkpoint, args.out, arch=args.arch, text_heads=args.text_heads,
                                   vocab=args.vocab, overwrite=True)
    model = rrsis.from_pretrained(directory)
    print(f"converted {args.checkpoint} -> {directory} ({model.arch}, "
          f"{sum(t.numel() for t in model.state_dict().values()) / 1e6:.2f} M values, strict load)")
    size = 64 if args.tiny else args.image_size
    root = args.data
    if root is None:
        from rrsis.data.synthetic import generate

        gen = os.path.join(args.out + "-data")
        generate(gen, 4 if args.tiny else 40, seed=0, size=size, layout="rrsisd")
        root, args.dataset = os.path.join(gen, "rrsisd"), "rrsisd"
    tokenizer = model.tokenizer
    if tokenizer is None:
        from rrsis.data.synthetic import vocabulary

        tokenizer = rrsis.Tokenizer.from_words(vocabulary())
        print("the checkpoint has no vocabulary: using a whole-word stand-in (pass --vocab for real use)")
    opts = {"size": size, "tokenizer": tokenizer}
    if args.dataset == "rrsisd":
        opts["mode"] = "eval"
    dataset = build_dataset(args.dataset, root, args.split, **opts)
    metrics = evaluate(model, dataset, batch_size=4, progress=False)
    print(format_metrics({f"{args.arch} {args.split}": metrics}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
