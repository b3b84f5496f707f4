"""Value checks of a training recipe: every field's type and range, with the key named.

``load_config`` and :class:`~rrsis.engine.Trainer` call :func:`validate_config`, so a typo such
as ``--lr abc`` or ``--train.batch_size 0`` stops before anything is built, with a message like
``optim.lr: expected a number, got 'abc'``. The ``model`` section and ``data.options`` are
checked by the model builder and the dataset class, which own those keys.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["DEVICE_PATTERN", "validate_config"]

# auto, cpu, cuda, cuda:N, mps (what torch.device accepts and rrsis runs on).
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")

Check = Callable[[str, Any], None]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def integer(lo: int | None = None, optional: bool = False) -> Check:
    def check(key: str, v: Any) -> None:
        if v is None and optional:
            return
        if not _is_int(v):
            raise ValueError(f"{key}: expected an integer, got {v!r}")
        if lo is not None and v < lo:
            raise ValueError(f"{key} must be >= {lo}, got {v}")
    return check


def number(lo: float | None = None, hi: float | None = None, positive: bool = False,
           optional: bool = False) -> Check:
    def check(key: str, v: Any) -> None:
        if v is None and optional:
            return
        if not _is_number(v):
            raise ValueError(f"{key}: expected a number, got {v!r}")
        if positive and v <= 0:
            raise ValueError(f"{key} must be > 0, got {v}")
        if lo is not None and v < lo:
            raise ValueError(f"{key} must be >= {lo:g}, got {v}")
        if hi is not None and v > hi:
            raise ValueError(f"{key} must be <= {hi:g}, got {v}")
    return check


def boolean(key: str, v: Any) -> None:
    if not isinstance(v, bool):
        raise ValueError(f"{key}: expected true or false, got {v!r}")  # noqa: TRY004


def text(optional: bool = False) -> Check:
    def check(key: str, v: Any) -> None:
        if v is None and optional:
            return
        if not isinstance(v, str) or (not optional and not v):
            raise ValueError(f"{key}: expected a non-empty string, got {v!r}")
    return check


def choice(*options: Any) -> Check:
    def check(key: str, v: Any) -> None:
        if v not in options:
            shown = ", ".join(str(o) for o in options if isinstance(o, str))
            raise ValueError(f"{key}: {v!r} is not one of {shown}")
    return check


def numbers(n: int, lo: float, hi: float, hi_open: bool = False) -> Check:
    def check(key: str, v: Any) -> None:
        ok = isinstance(v, (list, tuple)) and len(v) == n and all(_is_number(x) for x in v)
        ok = ok and all(lo <= x and (x < hi if hi_open else x <= hi) for x in v)
        if not ok:
            bracket = ")" if hi_open else "]"
            raise ValueError(f"{key}: expected a list of {n} numbers in [{lo:g}, {hi:g}{bracket}, got {v!r}")
    return check


def strings(key: str, v: Any) -> None:
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"{key}: expected a list of strings, got {v!r}")


def device(key: str, v: Any) -> None:
    if not isinstance(v, str) or not DEVICE_PATTERN.match(v):
        raise ValueError(f"{key}: {v!r} is not a device (auto, cpu, cuda, cuda:N, mps)")


def mapping(key: str, v: Any) -> None:
    if v is not None and not isinstance(v, Mapping):
        raise ValueError(f"{key}: expected an object, got {v!r}")


SPEC: dict[str, dict[str, Check]] = {
    "data": {
        "dataset": text(), "root": text(optional=True), "train_split": text(),
        "val_split": text(optional=True), "image_size": integer(1), "num_workers": integer(0),
        "tokenizer": text(optional=True), "max_tokens": integer(2), "options": mapping,
    },
    "optim": {
        "lr": number(positive=True), "weight_decay": number(lo=0), "betas": numbers(2, 0, 1, hi_open=True),
        "eps": number(positive=True), "amsgrad": boolean, "fused": boolean, "text_lr": number(positive=True, optional=True),
        "no_decay_keywords": strings, "poly_power": number(lo=0), "warmup_steps": integer(0),
        "warmup_start": number(lo=0, hi=1),
    },
    "loss": {
        "ce_weight": number(lo=0), "dice_weight": number(lo=0), "class_weights": numbers(2, 0, math.inf),
        "dice_reduction": choice("sum", "mean"), "aux_weight": number(lo=0),
    },
    "train": {
        "epochs": integer(1), "max_steps": integer(1, optional=True), "batch_size": integer(1),
        "eval_batch_size": integer(1, optional=True), "grad_accum_steps": integer(1),
        "clip_grad_norm": number(positive=True, optional=True),
        "amp": choice("auto", "bf16", "fp16", "off", "none", "fp32", True, False, None),
        "seed": integer(0), "deterministic": boolean, "device": device,
        "threads": integer(1, optional=True), "flush_denormal": boolean, "output_dir": text(),
        "checkpoint_every": integer(0, optional=True), "keep_checkpoints": integer(0),
        "log_every": integer(1), "eval_every": integer(0, optional=True), "progress": boolean,
        "find_unused_parameters": boolean,
    },
}


def validate_config(cfg: Mapping[str, Any]) -> None:
    """Check every known field of ``cfg`` (a merged recipe); raise ``ValueError`` naming the
    first bad one (``section.key``) and what it should be."""
    for section, checks in SPEC.items():
        values = cfg.get(section) or {}
        if not isinstance(values, Mapping):
            raise ValueError(f"{section}: expected an object, got {values!r}")  # noqa: TRY004
        for key, check in checks.items():
            if key in values:
                check(f"{section}.{key}", values[key])
