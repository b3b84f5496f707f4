"""Strict configuration nodes: unknown keys, wrong types and out-of-range values raise.

A part owns a small dataclass of its knobs (``BackboneConfig``, ``TextConfig``, ...) whose
``__post_init__`` checks each value with the helpers below; :func:`node_from_dict` builds one
from JSON-able data, refusing unknown keys with the closest valid one. The model config is a
tree of such nodes (:mod:`rrsis.models.config`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

__all__ = [
    "DEFAULT_MAX_ACTIVATION_GIB",
    "DEFAULT_MAX_PARAMS",
    "MAX_WORKERS",
    "SIZE_LIMITS",
    "ConfigError",
    "check_bool",
    "check_float",
    "check_int",
    "check_keys",
    "check_list",
    "check_mapping",
    "check_size",
    "check_str",
    "check_workers",
    "node_from_dict",
    "node_to_dict",
    "per_stage",
    "resource_limits",
    "usable_cpus",
]

T = TypeVar("T")

# Upper bounds of every size-like config value, by the name the config uses. Each lies far
# beyond any model that fits a GPU (Swin-B: embed_dim 128, depths 2-2-18-2, window 12;
# BERT-large: hidden 1024, 24 layers); they exist so that a typo or a hostile config.json
# (depths=[10**6, ...], embed_dim=10**9) is refused at once instead of filling the memory
# while the model is built. What a config's parameters and activations cost together is
# checked separately, against limits the user can raise (rrsis.registry.estimate_model).
SIZE_LIMITS = {
    "image_size": 8192,
    # backbone
    "embed_dim": 4096, "stages": 8, "depths": 64, "num_heads": 256, "window_size": 64, "patch_size": 64,
    "mlp_ratio": 16, "in_chans": 1024, "elsa.kernel": 31, "elsa.dilation": 16, "elsa.group_width": 4096,
    # fusion
    "fusion.heads": 256, "gem.pool": 64, "gem.heads": 256,
    # text
    "text.vocab_size": 1_000_000, "text.hidden_size": 8192, "text.num_layers": 128, "text.num_heads": 256,
    "text.intermediate_size": 65536, "text.max_positions": 8192, "text.type_vocab_size": 1024,
    "max_tokens": 8192,
    # heads and necks
    "head.hidden": 4096, "head.refine_steps": 32, "head.upscale": 16, "head.kernel_number": 64,
    "neck.grid": 256, "neck.num_blocks": 64, "neck.mlp_ratio": 16,
}


# Upper bound of every count of worker processes or threads (data.num_workers, train.threads,
# --threads, --num-workers, rrsis synth --workers, rrsis app --concurrency): far beyond any
# machine's useful parallelism, low enough that a typo (1000000) is refused before a thousand
# processes fill the memory. A count above the CPUs this process may use is allowed, with a warning.
MAX_WORKERS = 256


class ConfigError(ValueError, KeyError):
    """A configuration key or value that cannot be used; the message names the key.

    A ``ValueError`` (bad value) and a ``KeyError`` (bad key) at once, so callers catching
    either keep working.
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_keys(given: Iterable[str], known: Iterable[str], where: str) -> None:
    """Raise :class:`ConfigError` for the first key of ``given`` not in ``known``."""
    known = list(known)
    for key in given:
        if key not in known:
            raise ConfigError(
                f"unknown key {key!r} in {where}{suggest(key, known)} (valid: {', '.join(sorted(known))})"
            )


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if low is not None and value < low:
        raise ConfigError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ConfigError(f"{name} must be <= {high}, got {value}")
    return value


# What one model may cost, checked on an estimate before anything is allocated: parameters, and
# activation memory of one training image at the model's image_size (float32). Raised per call
# (max_params=, max_activation_gib=) or for a whole process by the environment variables below.
DEFAULT_MAX_PARAMS = 2_000_000_000
DEFAULT_MAX_ACTIVATION_GIB = 64.0
MAX_PARAMS_ENV = "RRSIS_MAX_PARAMS"
MAX_ACTIVATION_ENV = "RRSIS_MAX_ACTIVATION_GIB"


def resource_limits(max_params: Any = None, max_activation_gib: Any = None) -> tuple[float, float]:
    """``(max_params, max_activation_gib)``: the values given, else the environment's
    (``RRSIS_MAX_PARAMS``, ``RRSIS_MAX_ACTIVATION_GIB``), else the defaults."""
    import os

    out = []
    for name, value, env, default in (("max_params", max_params, MAX_PARAMS_ENV, DEFAULT_MAX_PARAMS),
                                      ("max_activation_gib", max_activation_gib, MAX_ACTIVATION_ENV,
                                       DEFAULT_MAX_ACTIVATION_GIB)):
        where = name
        if value is None and os.environ.get(env):
            value, where = os.environ[env], f"${env}"
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{where} must be a number, got {os.environ[env]!r}") from None
        if value is None:
            value = default
        out.append(check_float(where, value, low=0.0, low_open=True) if value != math.inf else value)
    return out[0], out[1]


def check_size(name: str, value: Any, limit: str | None = None, *, low: int = 1) -> int:
    """An integer size in ``low..SIZE_LIMITS[limit]`` (``limit`` defaults to ``name``)."""
    high = SIZE_LIMITS[limit or name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ConfigError(f"{name} must be >= {low}, got {value}")
    if value > high:
        raise ConfigError(
            f"{name}={value} is above rrsis's upper bound {high} for it (rrsis.registry.SIZE_LIMITS): a "
            "value this large exhausts memory while the model is built; check the config for a typo"
        )
    return value


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity where the system tells it, else ``os.cpu_count()``."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def check_workers(name: str, value: Any, *, low: int = 0) -> int:
    """A worker or thread count in ``low..MAX_WORKERS``; warns (``UserWarning``) when it is above
    the CPUs this process may use (:func:`usable_cpus`): it runs, slower than fewer would. Two
    are never warned of (the recipes' default data workers, on a one-CPU machine too)."""
    check_int(name, value, low=low)
    if value > MAX_WORKERS:
        raise ConfigError(f"{name}={value} is above rrsis's upper bound {MAX_WORKERS} for a count of workers or "
                          "threads: each is a process or thread of its own; check for a typo")
    cpus = usable_cpus()
    if value > max(cpus, 2):
        import warnings

        warnings.warn(f"{name}={value} is more than the {cpus} CPU(s) this process may use: the "
                      "extra workers compete for them and slow each other down", UserWarning, stacklevel=2)
    return value


def check_float(
    name: str, value: Any, *, low: float | None = None, high: float | None = None, high_open: bool = False,
    low_open: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be finite, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        raise ConfigError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value >= high if high_open else value > high):
        raise ConfigError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")
    return value


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value


def check_str(name: str, value: Any, choices: Iterable[str] | None = None, *, empty: bool = True) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise ConfigError(f"{name} must be a {'' if empty else 'non-empty '}string, got {value!r}")
    if choices is not None:
        choices = list(choices)
        if value not in choices:
            raise ConfigError(f"{name}={value!r} is not one of {choices}{suggest(value, choices)}")
    return value


def check_list(name: str, value: Any, check, n: int | None = None) -> list:
    """A list (or tuple) whose entries pass ``check(f"{name}[i]", entry)``; ``n`` entries when given."""
    if not isinstance(value, (list, tuple)) or (n is not None and len(value) != n):
        raise ConfigError(f"{name} must be a list{'' if n is None else f' of {n} entries'}, got {value!r}")
    return [check(f"{name}[{i}]", v) for i, v in enumerate(value)]


def check_mapping(name: str, value: Any) -> Mapping:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be a mapping of keys to values, got {value!r}")
    return value


def per_stage(name: str, value: Any, n: int, check) -> Any:
    """Check a value given once for all stages or as a list of ``n``; returns it list-normalised
    (a list stays a list, a scalar a scalar)."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ConfigError(f"{name} has {len(value)} entries; expected one per stage ({n})")
        return [check(f"{name}[{i}]", v) for i, v in enumerate(value)]
    return check(name, value)


def node_from_dict(cls: type[T], data: Any, where: str) -> T:
    """Build the dataclass ``cls`` from a mapping, strictly.

    Nested dataclass fields (``metadata={"node": Cls}``) are built recursively; ``None`` is kept
    for optional nodes. Unknown keys raise with the closest valid key.
    """
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping of keys to values, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    check_keys(data, fields, where)
    kwargs = {}
    for key, value in data.items():
        sub = fields[key].metadata.get("node")
        if sub is not None and value is not None:
            value = node_from_dict(sub, value, f"{where}.{key}")
        kwargs[key] = list(value) if isinstance(value, tuple) else value
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def node_to_dict(node: Any) -> Any:
    """A config node (or tree of nodes) as JSON-able data."""
    if dataclasses.is_dataclass(node):
        return {f.name: node_to_dict(getattr(node, f.name)) for f in dataclasses.fields(node)}
    if isinstance(node, (list, tuple)):
        return [node_to_dict(v) for v in node]
    if isinstance(node, Mapping):
        return {str(k): node_to_dict(v) for k, v in node.items()}
    return node
