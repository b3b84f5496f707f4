"""Value checks of a training recipe: every field's type and range, with the key named.

``load_config`` and :class:`~rrsis.engine.Trainer` call :func:`validate_config`, so a typo such
as ``--lr abc`` or ``--train.batch_size 0`` stops before anything is built, with a message like
``optim.lr must be a number, got 'abc'``. The checks are the model config's own
(:mod:`rrsis._config`) and raise the same :class:`~rrsis.ConfigError` (a ``ValueError``). The
``model`` section and ``data.options`` are checked against the model builder and the dataset
class, which own those keys.
"""

from __future__ import annotations

import re
import string
import sys
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from .._config import (
    ConfigError,
    check_bool,
    check_float,
    check_int,
    check_keys,
    check_list,
    check_mapping,
    check_size,
    check_str,
    check_workers,
)

__all__ = [
    "DEVICE_PATTERN",
    "OUTPUT_DIR_FIELDS",
    "TRAINER_OPTIONS",
    "check_image_sizes",
    "check_model_name",
    "check_trainer_options",
    "format_output_dir",
    "validate_config",
]

# auto, cpu, cuda, cuda:N, mps (what torch.device accepts and rrsis runs on).
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")

Check = Callable[[str, Any], Any]


def optional(check: Check) -> Check:
    """``check``, or ``None`` (meaning "not set")."""
    return lambda key, v: None if v is None else check(key, v)


def integer(low: int) -> Check:
    return partial(check_int, low=low)


def number(**bounds: Any) -> Check:
    return partial(check_float, **bounds)


def choice(*options: Any) -> Check:
    def check(key: str, v: Any) -> Any:
        if v not in options:
            shown = ", ".join(str(o) for o in options if isinstance(o, str))
            raise ConfigError(f"{key}={v!r} is not one of {shown}")
        return v
    return check


def _progress(key: str, v: Any) -> Any:
    if (v == "auto" and isinstance(v, str)) or isinstance(v, bool):
        return v
    raise ConfigError(f"{key}={v!r}: use true (always bars), false (never) or \"auto\" (bars when stderr is a terminal)")


def show_progress(value: Any) -> bool:
    """``train.progress`` resolved: ``"auto"`` draws bars only when stderr is a terminal (a batch
    job's log file gets none), ``true`` / ``false`` always / never."""
    if value == "auto":
        isatty = getattr(sys.stderr, "isatty", None)
        return bool(isatty is not None and isatty())
    return bool(value)


def device(key: str, v: Any) -> str:
    if not isinstance(v, str) or not DEVICE_PATTERN.match(v):
        raise ConfigError(f"{key}={v!r} is not a device (auto, cpu, cuda, cuda:N, mps)")
    return v


# Placeholders train.output_dir may hold: the recipe's name, and the local date and time the run
# starts (``runs/{recipe}-{date}-{time}`` → ``runs/gl-msin-rrsisd-2026-12-06-081502``).
OUTPUT_DIR_FIELDS = ("recipe", "date", "time")


def format_output_dir(template: str, recipe: str, now: float | None = None, key: str = "train.output_dir") -> str:
    """``train.output_dir`` with its placeholders filled (:data:`OUTPUT_DIR_FIELDS`).

    Raises:
        ConfigError: an unknown placeholder or a malformed one (an unmatched brace).
    """
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ConfigError(f"{key}={template!r} is not a valid template ({exc}); write a literal brace "
                          "as {{ or }}") from None
    for field in fields:
        if field not in OUTPUT_DIR_FIELDS:
            raise ConfigError(
                f"{key}={template!r} has the placeholder {{{field}}}, which rrsis does not fill; "
                f"known: {', '.join('{' + f + '}' for f in OUTPUT_DIR_FIELDS)} (write a literal brace as {{{{ or }}}})")
    t = time.localtime(now)
    try:
        return template.format(recipe=recipe, date=time.strftime("%Y-%m-%d", t), time=time.strftime("%H%M%S", t))
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"{key}={template!r} is not a valid template ({exc})") from None


def _output_dir(key: str, v: Any) -> str:
    check_str(key, v, empty=False)
    format_output_dir(v, "recipe", key=key)
    return v


def _moved(key: str, to: str) -> None:
    raise ConfigError(f"{key} is not a recipe setting any more: set {to}; load_config migrates old files")


def _image_size(key: str, v: Any) -> int:
    """A side every model's rule can accept (a multiple of 32); the model's own smallest side
    (64 for the zoo's models) is checked by the trainer against the model it builds."""
    check_size(key, v, "image_size")
    if v % 32:
        raise ConfigError(f"{key} must be a multiple of 32 (64 or more for the zoo's models), got {v}")
    return v


TEXT = partial(check_str, empty=False)
POSITIVE = number(low=0.0, low_open=True)
NON_NEGATIVE = number(low=0.0)

SPEC: dict[str, dict[str, Check]] = {
    "data": {
        "dataset": TEXT, "root": optional(check_str), "train_split": TEXT,
        "val_split": optional(check_str),
        "image_size": _image_size, "num_workers": partial(check_workers, low=0),
        "tokenizer": optional(check_str), "options": optional(check_mapping),
        "max_tokens": lambda k, v: _moved(k, "model.max_tokens (the model's text.max_tokens)"),
    },
    "optim": {
        "lr": POSITIVE, "weight_decay": NON_NEGATIVE,
        "betas": lambda k, v: check_list(k, v, number(low=0.0, high=1.0, high_open=True), n=2),
        "eps": POSITIVE, "amsgrad": check_bool, "fused": check_bool, "text_lr": optional(POSITIVE),
        "no_decay_keywords": lambda k, v: check_list(k, v, check_str), "poly_power": NON_NEGATIVE,
        "warmup_steps": integer(0), "warmup_start": number(low=0.0, high=1.0),
    },
    "loss": {
        "ce_weight": NON_NEGATIVE, "dice_weight": NON_NEGATIVE,
        "class_weights": lambda k, v: check_list(k, v, NON_NEGATIVE, n=2),
        "dice_reduction": choice("sum", "mean"), "aux_weight": NON_NEGATIVE,
    },
    "train": {
        "epochs": integer(1), "max_steps": optional(integer(1)), "batch_size": integer(1),
        "eval_batch_size": optional(integer(1)), "grad_accum_steps": integer(1),
        "clip_grad_norm": optional(POSITIVE),
        "amp": choice("auto", "bf16", "fp16", "off", "none", "fp32", True, False, None),
        "seed": integer(0), "deterministic": check_bool, "device": device,
        "threads": optional(partial(check_workers, low=1)), "flush_denormal": check_bool, "output_dir": _output_dir,
        "checkpoint_every": optional(integer(0)), "keep_checkpoints": integer(0),
        "log_every": integer(1), "eval_every": optional(integer(0)), "progress": _progress,
        "find_unused_parameters": check_bool, "compile": check_bool, "grad_checkpointing": check_bool,
    },
}


def validate_config(cfg: Mapping[str, Any]) -> None:
    """Check every known field of ``cfg`` (a merged recipe); raise :class:`~rrsis.ConfigError`
    (a ``ValueError``) naming the first bad one (``section.key``) and what it should be."""
    for section, checks in SPEC.items():
        values = cfg.get(section) or {}
        check_mapping(section, values)
        for key, check in checks.items():
            if key in values:
                check(f"{section}.{key}", values[key])
    data = cfg.get("data") or {}
    check_image_sizes(cfg)
    if data.get("options") and data.get("dataset"):
        check_trainer_options(data["dataset"], data["options"])


# Dataset options the trainer sets itself, and what sets each instead.
TRAINER_OPTIONS = {
    "size": "data.image_size (the size the run trains and validates at, recorded by its model)",
    "tokenizer": "data.tokenizer (null: the model's tokenizer, or a whole-word vocabulary of the training "
                 "expressions; or a vocab.txt or model folder)",
    "transform": "data.image_size and the model's statistics (model.mean, model.std), from which the trainer "
                 "builds it; a transform of your own: pass ready-made datasets, Trainer(cfg, "
                 "train_dataset=..., val_dataset=...)",
    "train": "data.train_split and data.val_split (the train split is read for training, with its "
             "augmentation; the val split for validation)",
    "mode": "data.train_split and data.val_split (the train split is read in train mode, the val split in "
            "eval mode)",
}


def check_trainer_options(dataset: str, options: Mapping[str, Any]) -> None:
    """Refuse a ``data.options`` key the trainer sets itself (:data:`TRAINER_OPTIONS`, naming the
    recipe key to use instead), and one the dataset does not take, with the closest valid one
    (the dataset class owns its option names; asked here, a misspelt one stops before the model
    is built, not at the dataset's constructor)."""
    from ..data.base import dataset_options  # here: the recipes load without torch

    for key in options:
        if key in TRAINER_OPTIONS:
            raise ConfigError(f"data.options.{key} is set by the trainer, not by the recipe's options: "
                              f"set {TRAINER_OPTIONS[key]}")
    known = dataset_options(dataset)
    if known is not None:
        check_keys(options, [k for k in known if k not in TRAINER_OPTIONS], f"data.options (dataset {dataset!r})")


def check_model_name(model: Mapping[str, Any]) -> None:
    """Refuse a ``model.name`` that is no registered model, or names an unknown pretrained tag (or,
    with ``model.pretrained``, an architecture without one), as the build would, before it: so
    ``rrsis train --print-config`` says it too. A model to fine-tune (``model.init``) names its own.
    Not part of :func:`validate_config` (a recipe loads without torch; the registry's built-ins
    import it): the Trainer and ``rrsis train`` call it after it."""
    if model.get("init") or model.get("name") is None:
        return  # a missing name: build_model says what to give
    name = check_str("model.name", model["name"], empty=False)
    # Here, not at the module's import: the built-in models register (with torch) at the first lookup.
    from ..registry import model_entrypoint, pretrained_cfg

    try:
        model_entrypoint(name)
        if model.get("pretrained") and model.get("swin_weights") is None and model.get("text_weights") is None:
            pretrained_cfg(name)
    except ConfigError as exc:
        raise ConfigError(f"model.name={name!r}: {exc}") from None


def check_image_sizes(cfg: Mapping[str, Any]) -> None:
    """Refuse a ``model.image_size`` other than ``data.image_size``: the run trains and validates
    at ``data.image_size`` but the model would record the other size as its default, so
    ``rrsis evaluate`` and ``predict`` would then work at a size it never trained at."""
    model_size = (cfg.get("model") or {}).get("image_size")
    data_size = (cfg.get("data") or {}).get("image_size")
    if model_size is None or data_size is None or model_size == data_size:
        return
    raise ConfigError(
        f"model.image_size={model_size!r} and data.image_size={data_size!r} disagree: the run trains and "
        f"validates at data.image_size, which the model records as its size (evaluate and predict use it), "
        f"so it would train at {data_size} and be scored at {model_size}. Set data.image_size={model_size} "
        f"(--data.image_size {model_size}) to train at {model_size}, and leave model.image_size unset")
