"""``--max-params`` and ``--max-activation-gib``: the two cost limits of a model, and
``--plugin`` (:mod:`rrsis.plugins`), for every command that builds or loads one
(``create_model`` / ``from_pretrained``'s ``max_params=`` and ``max_activation_gib=``). Left
out, the environment's ``$RRSIS_MAX_PARAMS`` / ``$RRSIS_MAX_ACTIVATION_GIB`` apply, then the
defaults."""

from __future__ import annotations

import argparse
import math
from typing import Any

from .._config import (
    DEFAULT_MAX_ACTIVATION_GIB,
    DEFAULT_MAX_PARAMS,
    MAX_ACTIVATION_ENV,
    MAX_PARAMS_ENV,
)

__all__ = ["add_model_limits", "model_limits"]


def _limit(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number (e.g. 5e9, or inf)") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number (e.g. 5e9, or inf)")
    return int(v) if math.isfinite(v) and v.is_integer() else v


def add_model_limits(p: argparse.ArgumentParser) -> None:
    """Add the two flags, and ``--plugin``, to a command's parser."""
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE first, for the custom parts or models it registers (repeatable; "
                        "also $RRSIS_PLUGINS=MOD1,MOD2 and the 'rrsis.plugins' entry points)")
    p.add_argument("--max-params", type=_limit, metavar="N",
                   help="refuse a model with more than N parameters, counted before any memory is "
                        f"allocated (default: ${MAX_PARAMS_ENV}, else {DEFAULT_MAX_PARAMS:,})")
    p.add_argument("--max-activation-gib", type=_limit, metavar="GIB",
                   help="refuse a model whose estimated activation memory for one training image at "
                        "its image_size is above GIB GiB, estimated before it is built (default: "
                        f"${MAX_ACTIVATION_ENV}, else {DEFAULT_MAX_ACTIVATION_GIB:g})")


def model_limits(args: argparse.Namespace) -> dict[str, Any]:
    """``max_params=`` / ``max_activation_gib=`` keywords of the flags given (none for a flag
    left out, so that the environment's value applies)."""
    given = {"max_params": args.max_params, "max_activation_gib": args.max_activation_gib}
    return {k: v for k, v in given.items() if v is not None}
