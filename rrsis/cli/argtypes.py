"""Argument types shared by the scene commands (``rrsis predict``, ``rrsis evaluate --scene``):
numbers in range, ``--objects``, ``--scale`` and ``--stretch``, each refusing what it cannot take;
and ``--threads``, of every command that runs a model on the CPU."""

from __future__ import annotations

import argparse

__all__ = ["add_threads", "fraction", "non_negative", "number", "objects", "positive_float", "positive_int", "scale",
           "set_threads", "stretch", "unit_interval", "workers"]


def number(cast, ok, expected: str):
    """An argparse type: ``cast(text)`` when it satisfies ``ok``, else an error saying ``expected``
    (no silent default for an out-of-range value)."""

    def parse(text: str):
        try:
            v = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {expected}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"{text!r}: expected {expected}")
        return v

    return parse


positive_int = number(int, lambda v: v > 0, "a positive integer (leave the flag out for the default)")
non_negative = number(float, lambda v: 0 <= v < float("inf"), "a finite number >= 0")
fraction = number(float, lambda v: 0 < v < 1, "a number in (0, 1)")
unit_interval = number(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")
positive_float = number(float, lambda v: 0 < v < float("inf"), "a positive number")


def workers(flag: str, low: int = 1):
    """An argparse type: a worker or thread count for ``flag``, in ``low..MAX_WORKERS`` (rrsis's
    bound), with a warning when it is above the CPUs this process may use."""
    from .._config import ConfigError, check_workers

    count = positive_int if low == 1 else number(int, lambda v: v >= low, f"an integer >= {low}")

    def parse(text: str) -> int:
        try:
            return check_workers(flag, count(text), low=low)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def objects(text: str):
    if text in ("auto", "all"):
        return text
    return number(int, lambda v: v > 0, "a positive integer, auto or all")(text)


def pixel_ratio(text: str):
    if text.strip().lower() == "auto":
        return "auto"
    return number(float, lambda v: True, "a number >= 1 or auto")(text)  # SceneOptions checks the range


def scale(text: str):
    if text in ("dtype", "max", "minmax"):
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected dtype, max, minmax or a number") from None


def stretch(text: str | None):
    if text is None:
        return "auto"
    if text.strip().lower() == "none":
        return None
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--stretch {text!r}: expected LOW,HIGH percentiles (e.g. 2,98) or none") from None
    return (lo, hi)


def add_threads(p: argparse.ArgumentParser) -> None:
    """``--threads N``: torch's CPU threads (``rrsis demo --threads`` sets its trainings' the same way)."""
    p.add_argument("--threads", type=workers("--threads"), metavar="N",
                   help="CPU threads torch computes with, a positive integer (default: torch's, "
                        "$OMP_NUM_THREADS or one per core); on a busy machine fewer are often faster")


def set_threads(args: argparse.Namespace) -> None:
    """Apply ``--threads`` (nothing when it was left out: torch's default stays). Intra-op threads
    only: the models run no inter-op parallel work, and torch allows setting that pool only once."""
    if getattr(args, "threads", None) is not None:
        import torch

        torch.set_num_threads(args.threads)


def stderr_line(text: str) -> None:
    """Print ``text`` as one line of its own on stderr, also while a progress bar is drawn there:
    through ``tqdm.write`` (the bar is cleared and drawn again below it), and in a file or pipe
    (no terminal to clear) after a newline, so it is not glued to the bar's last fragment."""
    import sys

    bars = sys.modules.get("tqdm.std")  # a bar exists only once tqdm is imported
    active = bars is not None and any(not getattr(b, "disable", True) for b in list(bars.tqdm._instances))
    if not active:
        print(text, file=sys.stderr, flush=True)
        return
    isatty = getattr(sys.stderr, "isatty", None)
    bars.tqdm.write(text if isatty is not None and isatty() else "\n" + text, file=sys.stderr)


class WarningLines:
    """While a command runs, the warnings rrsis logs (``logging``: the Hub unreachable, a strict=False
    load) read as the command's own, ``rrsis COMMAND: warning: ...``, unless logging was set up
    (``rrsis train``'s ``basicConfig``: its format then)."""

    def __init__(self, command: str) -> None:
        import logging

        class _Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if logging.getLogger().handlers:  # the root logger prints it, in its format
                    return
                try:
                    text = record.getMessage()
                except Exception:  # noqa: BLE001 - logging's own rule: report, never raise
                    self.handleError(record)
                    return
                stderr_line(f"rrsis {command}: {'warning' if record.levelno < logging.ERROR else 'error'}: {text}")

        self.logger, self.handler = logging.getLogger("rrsis"), _Handler(logging.WARNING)

    def __enter__(self) -> WarningLines:
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)
