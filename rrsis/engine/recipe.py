"""Training recipes: JSON files with defaults, ``base`` inheritance and command-line overrides.

A recipe has five sections::

    model   name (registry key), pretrained, swin_weights, text_weights, init, and any
            architecture keyword of the model (embed_dim, gem, refine_steps, max_tokens, ...)
    data    dataset, root, train_split, val_split, image_size, num_workers, tokenizer, options
    optim   lr, weight_decay, betas, eps, amsgrad, fused, text_lr, no_decay_keywords,
            poly_power, warmup_steps, warmup_start
    loss    ce_weight, dice_weight, class_weights, dice_reduction, aux_weight
    train   epochs, max_steps, batch_size, eval_batch_size, grad_accum_steps, clip_grad_norm,
            amp, seed, deterministic, device, threads, flush_denormal, output_dir, checkpoint_every,
            keep_checkpoints, log_every, eval_every, progress, find_unused_parameters, compile,
            grad_checkpointing

Every field can be overridden: ``--lr 1e-4`` (a key that names one field of one section),
``--optim.lr 1e-4`` / ``--optim.lr=1e-4`` (dotted path), or ``--set optim.lr=1e-4``. Values are
read as JSON where possible (``1e-4``, ``true``, ``[2, 2, 6, 2]``, ``null``), ``None`` means
``null``, anything else is a string. ``--model.use_gem false`` turns GEM off. Unlike
``create_model``, explicit ``null`` model arguments are passed on to the model
(``--model.head_hidden None`` means the head's own default).

The tokenizer length is the model's: ``model.max_tokens`` (``model.text.max_tokens`` in the
model's config tree), saved with the model. Recipes written for rrsis 0.1 set it as
``data.max_tokens``; :func:`load_config` moves that value to ``model.max_tokens`` with a warning.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from .._config import ConfigError, suggest
from .validate import validate_config

__all__ = [
    "DEFAULTS",
    "apply_overrides",
    "list_configs",
    "load_config",
    "merge",
    "migrate_recipe",
    "parse_override_args",
    "parse_value",
]

DEFAULTS: dict[str, Any] = {
    "recipe": None,
    "description": "",
    "model": {"name": "gl-msin", "pretrained": False},
    "data": {
        "dataset": "rrsisd",
        "root": None,
        "train_split": "train",
        "val_split": "val",
        "image_size": 480,
        "num_workers": 2,
        # null: the model's tokenizer (pretrained BERT vocabulary) or, for a model without one,
        # a whole-word vocabulary of the training expressions; or a vocab.txt / model directory.
        "tokenizer": None,
        "options": {},
    },
    "optim": {
        "lr": 3e-5,
        "weight_decay": 1e-2,
        "betas": [0.9, 0.999],
        "eps": 1e-8,
        "amsgrad": False,
        "fused": False,
        "text_lr": None,
        "no_decay_keywords": ["norm", "absolute_pos_embed", "relative_position_bias_table"],
        "poly_power": 0.9,
        "warmup_steps": 0,
        "warmup_start": 0.0,
    },
    "loss": {
        "ce_weight": 0.9,
        "dice_weight": 0.1,
        "class_weights": [0.9, 1.1],
        "dice_reduction": "sum",
        "aux_weight": 1.0,
    },
    "train": {
        "epochs": 40,
        "max_steps": None,
        "batch_size": 8,
        "eval_batch_size": None,
        "grad_accum_steps": 1,
        "clip_grad_norm": None,
        "amp": "auto",
        "seed": 2401,
        "deterministic": False,
        "device": "auto",
        "threads": None,
        "flush_denormal": True,
        "output_dir": "runs/{recipe}",
        "checkpoint_every": 1000,
        "keep_checkpoints": 3,
        "log_every": 10,
        "eval_every": 1,
        "progress": "auto",  # bars when stderr is a terminal; true / false: always / never
        "find_unused_parameters": False,
        # torch.compile of the whole model with the kernels inside (rrsis.kernels.compile_model);
        # input values are then checked once per batch on the host, never inside the step.
        "compile": False,
        # Recompute activations in the backward pass (RRSISModel.set_grad_checkpointing): less
        # memory, the same gradients, one more forward pass of the recomputed parts per step.
        "grad_checkpointing": False,
    },
}

# Sections whose keys are open (model keywords; dataset constructor options).
_OPEN = {("model",), ("data", "options")}


def list_configs() -> list[str]:
    """Names of the recipes shipped in ``rrsis/configs``."""
    folder = resources.files("rrsis") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``update`` wins, nested dicts are merged key by key."""
    out = copy.deepcopy(dict(base))
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _read(name_or_path: str | os.PathLike, seen: tuple[str, ...]) -> dict[str, Any]:
    text_ref = os.fspath(name_or_path)
    path = Path(text_ref)
    if path.suffix == ".json" or os.sep in text_ref or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        raw = path.read_text(encoding="utf-8")
        where = str(path)
        folder = path.parent
    else:
        res = resources.files("rrsis") / "configs" / f"{text_ref}.json"
        if not res.is_file():
            raise FileNotFoundError(
                f"unknown config {text_ref!r}: not a file and not a shipped recipe "
                f"({', '.join(list_configs())})"
            )
        raw = res.read_text(encoding="utf-8")
        where = f"rrsis/configs/{text_ref}.json"
        folder = None
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: invalid JSON ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{where}: invalid config: its JSON is nested too deeply to read") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{where}: a config must be a JSON object, got a JSON {type(cfg).__name__}")
    base = cfg.pop("base", None)
    if base is None:
        return cfg
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{where}: 'base' must be a recipe name or a JSON file, got {base!r}")
    if base in seen:
        raise ConfigError(f"{where}: circular 'base' chain {' -> '.join(seen + (base,))}")
    # A relative base path is relative to the file that names it; a bare name is a recipe.
    if folder is not None and (folder / base).is_file():
        base = str(folder / base)
    return merge(_read(base, seen + (str(base),)), cfg)


def _hint(key: str, known: Sequence[str]) -> str:
    """How to place a key a section does not have: the section that does (``train.lr`` →
    ``optim.lr``), else the closest key of this section, else of the whole recipe schema."""
    homes: dict[str, list[str]] = {}
    for section, fields in DEFAULTS.items():
        if isinstance(fields, Mapping):
            for name in fields:
                homes.setdefault(name, []).append(f"{section}.{name}")
    if key in homes:
        return f"; it belongs in another section: {' or '.join(homes[key])}"
    near = suggest(key, known)
    if near:
        return near
    close = difflib.get_close_matches(key, list(homes), n=1, cutoff=0.7)
    return f"; did you mean {homes[close[0]][0]!r}?" if close else ""


def _check_keys(cfg: Mapping[str, Any], defaults: Mapping[str, Any], path: tuple[str, ...], where: str) -> None:
    for k, v in cfg.items():
        here = path + (k,)
        if path and path in _OPEN:
            continue
        if isinstance(defaults, Mapping) and k in defaults and not isinstance(defaults[k], Mapping):
            continue
        if k not in defaults:
            known = ", ".join(sorted(defaults))
            raise ConfigError(f"{where}: unknown config key {'.'.join(here)!r}{_hint(k, list(defaults))} "
                              f"(known here: {known})")
        if isinstance(defaults[k], Mapping) and here not in _OPEN:
            if not isinstance(v, Mapping):
                raise ConfigError(f"{where}: {'.'.join(here)} must be an object")
            _check_keys(v, defaults[k], here, where)


def load_config(name_or_path: str | os.PathLike, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """A complete recipe: defaults ← file (with its ``base`` chain) ← ``overrides``.

    Args:
        name_or_path: a shipped recipe name (``"gl-msin-rrsisd"``, see :func:`list_configs`) or a
            JSON file; a file may name a ``"base"`` recipe or file it extends.
        overrides: command-line style items, see :func:`apply_overrides`.

    Raises:
        FileNotFoundError: no such recipe or file.
        ConfigError: a key that no section has (typos are errors, not silently ignored), or a
            value of the wrong type or out of range; the message names the key. It is both a
            ``KeyError`` and a ``ValueError``.
    """
    where = os.fspath(name_or_path)
    cfg = merge(DEFAULTS, migrate_recipe(_read(name_or_path, (where,)), where))
    _check_keys(cfg, DEFAULTS, (), where)
    cfg = migrate_recipe(apply_overrides(cfg, overrides), "the overrides")
    if not cfg.get("recipe"):
        cfg["recipe"] = Path(os.fspath(name_or_path)).stem
    validate_config(cfg)
    return cfg


def migrate_recipe(cfg: Mapping[str, Any], where: str = "recipe") -> dict[str, Any]:
    """Move settings an older recipe keeps elsewhere to their place: ``data.max_tokens`` (rrsis
    0.1) → ``model.max_tokens``, the model's tokenizer length. Warns; a conflict raises."""
    out = dict(cfg)
    data = out.get("data")
    if not isinstance(data, Mapping) or "max_tokens" not in data:
        return out
    data = dict(data)
    value = data.pop("max_tokens")
    model = dict(out.get("model") or {})
    text = model.get("text")
    current = model.get("max_tokens", text.get("max_tokens") if isinstance(text, Mapping) else None)
    if current is not None and current != value:
        raise ConfigError(f"{where}: data.max_tokens={value!r} and model.max_tokens={current!r} disagree; the "
                          "tokenizer length is the model's: keep model.max_tokens only")
    warnings.warn(f"{where}: data.max_tokens is the model's tokenizer length now; read as model.max_tokens "
                  "(write it there)", DeprecationWarning, stacklevel=3)
    if current is None:
        model["max_tokens"] = value
    out["data"], out["model"] = data, model
    return out


def parse_value(text: str) -> Any:
    """Command-line text → value: JSON when it parses, ``None``/``none`` → ``None``,
    ``True``/``False`` → bool, otherwise the string itself."""
    if text in ("None", "none", "null"):
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _resolve(cfg: Mapping[str, Any], key: str) -> tuple[str, ...]:
    if "." in key:
        path = tuple(key.split("."))
        if path == ("data", "max_tokens"):
            return path  # rrsis 0.1's place of model.max_tokens; migrate_recipe moves it
        if path[0] not in DEFAULTS:
            raise ConfigError(f"unknown config section {path[0]!r} in {key!r}{suggest(path[0], DEFAULTS)} "
                              f"(sections: {', '.join(DEFAULTS)})")
        node: Any = DEFAULTS
        for i, part in enumerate(path):
            if path[:i] in _OPEN:
                return path
            if not isinstance(node, Mapping) or part not in node:
                known = list(node) if isinstance(node, Mapping) else []
                raise ConfigError(f"unknown config key {key!r}{_hint(part, known) if i == 1 else suggest(part, known)}")
            node = node[part]
        return path
    if key in DEFAULTS and not isinstance(DEFAULTS[key], Mapping):
        return (key,)
    if key == "max_tokens":
        return ("model", "max_tokens")  # the model's tokenizer length (data.max_tokens in rrsis 0.1)
    hits = [(section,) + (key,) for section, fields in DEFAULTS.items()
            if isinstance(fields, Mapping) and key in fields]
    if not hits and key in cfg.get("model", {}):
        hits = [("model", key)]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        hint = _hint(key, [])
        raise ConfigError(f"unknown config key {key!r}{hint}" if hint else
                          f"unknown config key {key!r}; use section.key (e.g. model.{key} for a model argument)")
    raise ConfigError(f"config key {key!r} is ambiguous ({', '.join('.'.join(h) for h in hits)}); "
                      "use section.key")


def apply_overrides(cfg: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key=value`` items (``key`` bare or dotted, see the module docstring).

    Args:
        cfg: a config.
        overrides: e.g. ``["lr=1e-4", "model.gem=None", "train.epochs=2"]``.
    """
    out = copy.deepcopy(dict(cfg))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value")
        key, _, raw = item.partition("=")
        key = key.strip().lstrip("-")
        path = _resolve(out, key)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = parse_value(raw.strip())
    return out


def parse_override_args(extra: Sequence[str]) -> list[str]:
    """Turn leftover command-line words into ``key=value`` items.

    Accepts ``--key value``, ``--key=value`` and ``--set key=value`` (repeatable).

    Args:
        extra: the words ``argparse.parse_known_args`` did not consume.
    """
    out: list[str] = []
    words = list(extra)
    i = 0
    while i < len(words):
        w = words[i]
        if w == "--set":
            if i + 1 >= len(words):
                raise ConfigError("--set needs key=value")
            out.append(words[i + 1])
            i += 2
            continue
        if not w.startswith("--") or len(w) < 3:
            raise ConfigError(f"unexpected argument {w!r}; overrides look like --key value or --set key=value")
        if "=" in w:
            out.append(w[2:])
            i += 1
            continue
        if i + 1 >= len(words) or (words[i + 1].startswith("--") and not _is_number(words[i + 1])):
            raise ConfigError(f"override {w} needs a value (--key value)")
        out.append(f"{w[2:]}={words[i + 1]}")
        i += 2
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
