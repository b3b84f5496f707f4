"""``rrsis convert``: official LAVT / RMSIN checkpoint → rrsis pretrained directory."""

from __future__ import annotations

import argparse

from .argtypes import positive_int as _positive_int
from .model_limits import add_model_limits, model_limits


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert an official LAVT/RMSIN checkpoint into an rrsis model directory",
        description=(
            "Read an official LAVT or RMSIN train.py checkpoint (weights-only loading), infer "
            "its architecture from the tensors, map every key to rrsis names and write "
            "OUT_DIR (config.json + model.safetensors [+ tokenizer]) atomically. Nothing is "
            "written unless every official key is consumed and every rrsis key is filled."
        ),
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT.pth", help="official checkpoint file")
    p.add_argument("out_dir", metavar="OUT_DIR", help="directory to create")
    p.add_argument(
        "--arch", required=True,
        help="official checkpoint format: a model that registers one (lavt, rmsin)",
    )
    p.add_argument(
        "--text-heads", type=_positive_int, default=None, metavar="N",
        help="BERT attention heads (not stored in the weights; default hidden size / 64, the head size of "
             "every released BERT: 12 for BERT-base; the value assumed is printed)",
    )
    p.add_argument("--vocab", default=None, metavar="vocab.txt", help="BERT vocabulary to save as the tokenizer")
    p.add_argument("--max-tokens", type=_positive_int, default=None, help="tokenizer length (default: the model's text.max_tokens)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT_DIR")
    add_model_limits(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..convert import convert_checkpoint

    out = convert_checkpoint(
        args.checkpoint, args.out_dir, arch=args.arch, text_heads=args.text_heads,
        vocab=args.vocab, max_tokens=args.max_tokens, overwrite=args.overwrite, **model_limits(args),
    )
    print(f"wrote {out} ({args.arch}):")
    for f in sorted(out.iterdir()):
        print(f"  {f.name:<24} {f.stat().st_size / 1e6:9.2f} MB")
    if args.text_heads is None:
        print(assumed_heads(out))
    return 0


def assumed_heads(out) -> str:
    """The line saying which BERT head count a conversion without ``--text-heads`` assumed: the
    weights do not hold it, and a wrong count loads without error but changes every output."""
    from ..hub.load import read_config
    from ..hub.save import CONFIG_NAME

    text = read_config(out / CONFIG_NAME)["model_args"].get("text") or {}
    hidden, heads = text.get("hidden_size"), text.get("num_heads")
    return (f"note: BERT attention heads: {heads}, assumed (not stored in the checkpoint): hidden size {hidden} / 64, "
            "the head size of every released BERT (12 for BERT-base, 16 for BERT-large); if this BERT has "
            "another count, convert again with --text-heads N (a wrong count loads but changes the outputs)")
