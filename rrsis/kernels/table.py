"""Which implementation runs each op at each shape: a measured, committed choice table.

Like an autotune cache: ``benchmarks/gpu_check.py`` times every candidate of every op at the
shapes the models launch, on one GPU, and writes the fastest into ``dispatch_table.json`` beside
this file (per device name). A call looks up ``(device, op, dtype, shape)``; the candidates are

- ``"triton"``: the fused kernel (custom op),
- ``"compiled"``: ``torch.compile`` of the PyTorch reference,
- ``"eager"``: the PyTorch reference as written,
- ``"sdpa"``: ``F.scaled_dot_product_attention`` (window attention and PWAM only; PyTorch picks
  its backend, cuDNN or memory-efficient with the additive mask).

For ELSA the Triton entry may name its tile shape, ``"triton:8x16w8"`` (one of
:data:`rrsis.kernels.tiles.ELSA_FUSED_CANDIDATES`, by its ``label``); plain ``"triton"`` is the
default shape. The tile shape is measured like a provider, per shape and GPU.

A shape (or device) not in the table uses the op's **default** (:data:`DEFAULTS`) inside the
envelope the kernels were compiled for (:mod:`.support`), and the reference outside it. The
defaults follow the last measurement of each op on a GPU: the Triton kernel for window attention
and ELSA; the eager reference for PWAM, whose kernel was slower than eager at all four Swin-B
stages on the H100 (``benchmarks/results/nvidia-h100-80gb-hbm3-attention.md``, bf16 fwd+bwd,
batch 8: 0.69 vs 0.54 ms at S1, 1.39 vs 1.00, 0.85 vs 0.52, 0.71 vs 0.63). With
``RRSIS_KERNELS=triton`` the default of every op is the kernel (an explicit request; the kernel
tests use it), and the table still applies. ``RRSIS_KERNEL_TABLE``
names another table file (tests, or a fresh measurement before it is committed). The table is
read once per process; under ``torch.compile`` the dispatcher only reads what was loaded before
(``compile_model`` loads it), since finding the device's name is no traceable operation.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import torch

from .tiles import ELSA_FUSED_CANDIDATES, TileConfig

__all__ = ["DEFAULTS", "PROVIDERS", "TILES", "choose", "key", "load", "reset", "split"]

PROVIDERS = ("triton", "compiled", "eager", "sdpa")
APPLIES = {"window_attention": PROVIDERS, "pixel_word_attention": PROVIDERS,
           "elsa_attention": ("triton", "compiled", "eager")}
# Per op, from the last GPU measurement of each (see the module docstring).
DEFAULTS = {"window_attention": "triton", "pixel_word_attention": "eager", "elsa_attention": "triton"}
# Tile shapes a "triton:<label>" entry may name, per op.
TILES: dict[str, dict[str, TileConfig]] = {
    "elsa_attention": {c.label: c for c in ELSA_FUSED_CANDIDATES}}
PATH = Path(__file__).with_name("dispatch_table.json")

_loaded: dict[str, dict[str, str]] | None = None
_names: dict[tuple[str, int | None], str] = {}


def key(op: str, dtype: torch.dtype, shape) -> str:
    """``"op:dtype:d0xd1x…"``: the op, the compute dtype and the shape that matter to it."""
    return f"{op}:{str(dtype).removeprefix('torch.')}:{'x'.join(str(int(s)) for s in shape)}"


def _check(table: dict, where: str) -> dict[str, dict[str, str]]:
    if not isinstance(table, dict):
        raise TypeError(f"{where}: expected {{device: {{key: provider}}}}, got {type(table).__name__}")
    for device, entries in table.items():
        for k, provider in entries.items():
            op = k.split(":", 1)[0]
            if op not in APPLIES:
                raise ValueError(f"{where}: unknown op {op!r} in {k!r} (ops: {', '.join(APPLIES)})")
            base, _, label = str(provider).partition(":")
            if base not in APPLIES[op]:
                raise ValueError(f"{where}: provider {provider!r} for {k!r} on {device!r}; "
                                 f"{op} has {', '.join(APPLIES[op])}")
            if label and (base != "triton" or label not in TILES.get(op, {})):
                known = list(TILES.get(op, {})) if base == "triton" else []
                close = difflib.get_close_matches(label, known, n=1)
                hint = f"; did you mean 'triton:{close[0]}'?" if close else ""
                shapes = (f"tile shapes of {op}: {', '.join(known)}" if known else
                          f"{op}'s {base} provider names no tile shape")
                raise ValueError(f"{where}: unknown tile shape {label!r} in {provider!r} for {k!r} "
                                 f"on {device!r}{hint} ({shapes})")
    return table


def split(op: str, provider: str) -> tuple[str, TileConfig | None]:
    """``("triton", tiles)`` for ``"triton:<label>"``; ``(provider, None)`` otherwise."""
    base, _, label = provider.partition(":")
    return base, (TILES[op][label] if label else None)


def load(path: str | os.PathLike | None = None) -> dict[str, dict[str, str]]:
    """The table (``RRSIS_KERNEL_TABLE``, else the committed file), validated, cached."""
    global _loaded
    if path is None and _loaded is not None:
        return _loaded
    env = None if path else os.environ.get("RRSIS_KERNEL_TABLE")
    path = Path(path or env or PATH)
    named = f"RRSIS_KERNEL_TABLE={path}" if env else f"kernel table {path}"
    if not path.exists() and path != PATH:  # a table asked for by name is never replaced by none
        raise FileNotFoundError(f"{named}: no such file; name an existing table (the committed one is {PATH})"
                                + (" or unset the variable" if env else ""))
    try:
        data = json.loads(path.read_text()) if path.exists() else {"devices": {}}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{named}: not a kernel table, the file is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{named}: not a kernel table, a JSON object with \"devices\" expected")
    _loaded = _check(data.get("devices", {}), named)
    return _loaded


def reset() -> None:
    """Forget the loaded table (tests; after writing a new one)."""
    global _loaded
    _loaded = None


def device_name(device: torch.device) -> str | None:
    """``"cpu"`` or the CUDA device's name; ``None`` when it is unknown while compiling."""
    if device.type != "cuda":
        return device.type
    idx = device.index
    if (device.type, idx) not in _names:
        if torch.compiler.is_compiling() or not torch.cuda.is_available():
            return None  # (fake CUDA tensors on a machine without one: the default)
        _names[(device.type, idx)] = torch.cuda.get_device_name(idx)
    return _names[(device.type, idx)]


def choose(op: str, device: torch.device, dtype: torch.dtype, shape, default: str | None = None) -> str:
    """The provider for one call: the table's entry, else ``default`` (the op's
    :data:`DEFAULTS` entry when ``None``)."""
    if op not in APPLIES:
        raise ValueError(f"unknown op {op!r} (ops: {', '.join(APPLIES)})")
    default = DEFAULTS[op] if default is None else default
    if _loaded is None and torch.compiler.is_compiling():
        return default
    name = device_name(device)
    if name is None:
        return default
    return load().get(name, {}).get(key(op, dtype, shape), default)
