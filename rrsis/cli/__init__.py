"""The ``rrsis`` console command: one module per subcommand, each with ``add_parser``."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

# Each module defines ``add_parser(subparsers)`` which registers its subcommand and sets
# ``func`` (called with the parsed namespace, returns an exit code).
_COMMANDS = ["models", "convert", "synth", "train", "evaluate", "predict", "demo", "app"]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="rrsis", description="Referring remote sensing image segmentation."
    )
    parser.add_argument("--version", action="version", version=f"rrsis {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError, OSError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"rrsis {args.command}: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
