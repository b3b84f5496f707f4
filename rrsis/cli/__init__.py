"""The ``rrsis`` console command: one module per subcommand, each with ``add_parser``.

Parsing imports nothing heavy (``rrsis --help`` stays fast); a subcommand's own imports are
paid when it runs. Expected errors (bad input, missing files, refused checkpoints, bad config
values, a device that is not there) end as one line on stderr and exit code 2 (with the lines
that follow it when it ends in a colon, so that what is wrong is printed); ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import importlib
import signal
import sys

from .._version import __version__
from .argtypes import WarningLines

# Each module defines ``add_parser(subparsers)`` which registers its subcommand and sets
# ``func`` (called with the parsed namespace, returns an exit code).
_COMMANDS = ["models", "convert", "synth", "chips", "train", "evaluate", "predict", "demo", "app"]
# Errors that describe the user's input or environment, not a bug in rrsis.
_EXPECTED = (ValueError, LookupError, OSError, ImportError, RuntimeError, AssertionError)
_EXPECTED_NAMES = ("DecompressionBombError",)
EXIT_USAGE = 2
# Lines printed after an error's first line when that line ends in a colon (it names no fault).
_DETAIL_LINES = 8
EXIT_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a command whose reader closed the pipe
EXIT_TERM = 143  # 128 + SIGTERM: what Slurm, Airflow, systemd and docker stop send


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that it is cleaned up as a Ctrl-C is (temporary
    files removed, locks released) before the command exits 143."""


def _terminate(signum, frame) -> None:
    raise Terminated


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM raises :class:`Terminated` inside the block (main thread only; a handler someone
    else installed is kept)."""
    installed = False
    with contextlib.suppress(ValueError, OSError):  # not the main thread: signals are left alone
        previous = signal.getsignal(signal.SIGTERM)
        if previous in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _terminate)
            installed = True
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rrsis", description="Referring remote sensing image segmentation.",
        epilog="Add --debug anywhere to see the full traceback of an error.",
    )
    parser.add_argument("--version", action="version", version=f"rrsis {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    parser.set_defaults(_commands=sub.choices)
    return parser


def _expected(exc: BaseException) -> bool:
    return isinstance(exc, _EXPECTED) or type(exc).__name__ in _EXPECTED_NAMES


def _one_line(exc: BaseException) -> str:
    """The error as printed: its first line, and when that line only introduces what follows
    (it ends in a colon: "corrupted checkpoint:", "3 keys not in the model:"), the lines that say
    what is wrong too, up to :data:`_DETAIL_LINES` of them."""
    msg = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    lines = [line.rstrip() for line in msg.strip().splitlines() if line.strip()] or [type(exc).__name__]
    shown = lines[:1 + _DETAIL_LINES] if lines[0].endswith(":") else lines[:1]
    more = f" (+{len(lines) - len(shown)} more lines; --debug for all)" if len(lines) > len(shown) else ""
    return "\n".join(shown) + more


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of the closed pipe says nothing."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real stdout (captured): nothing to flush
        pass


def _printable_stdout() -> None:
    """Under a locale that is not UTF-8 (``LC_ALL=C``) stdout cannot encode an expression's
    non-ASCII characters: they are printed as ``\\u`` escapes, as stderr prints them, instead of
    the command failing once its files are written."""
    with contextlib.suppress(AttributeError, LookupError, TypeError, ValueError):
        if codecs.lookup(sys.stdout.encoding).name != "utf-8" and sys.stdout.errors in ("strict", "surrogateescape"):
            sys.stdout.reconfigure(errors="backslashreplace")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _printable_stdout()
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # argparse reports a subcommand's unknown flag as the top-level parser's ("rrsis: error")
        # with the top-level usage; the subcommand's own usage is the one that helps.
        parser = args._commands.get(getattr(args, "command", None), parser)
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    with _sigterm_as_interrupt(), WarningLines(args.command):
        return _call(args, debug)


def _call(args: argparse.Namespace, debug: bool) -> int:
    try:
        # What a subcommand can check without the model stack (its files and flags), before that
        # stack is imported: a typo must not wait for torch.
        if getattr(args, "precheck", None) is not None:
            args.precheck(args)
        # Registers the built-in models and tags for every subcommand that looks one up; a
        # subcommand that can answer without them (``train --list``) imports the factory itself.
        if getattr(args, "needs_registry", True):
            importlib.import_module("rrsis.factory")
            importlib.import_module("rrsis.plugins").import_plugins(getattr(args, "plugin", None) or ())
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        if isinstance(exc, Terminated):
            print(f"rrsis {args.command}: terminated", file=sys.stderr)
            return EXIT_TERM
        print(f"rrsis {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout closed by its reader (| head): end quietly, as other CLIs do
        _quiet_stdout()
        return EXIT_PIPE
    except Exception as exc:
        if debug or not _expected(exc):
            raise
        print(f"rrsis {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
