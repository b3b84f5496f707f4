"""What a weight load did (:class:`LoadReport`) and the all-or-nothing copy into a model."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .files import CheckpointError

__all__ = ["LoadReport", "alias_groups", "apply_tensors", "format_keys", "shape_mismatches"]

Shape = tuple[int, ...]


@dataclass
class LoadReport:
    """Which model tensors a load set, and what it left out.

    Attributes:
        loaded: part (``"model"``, ``"swin"``, ``"text"``) → rrsis state-dict keys set from it.
        missing: rrsis keys no checkpoint set; they keep their initial values (for part
            weights: ELSA-only, fusion, GEM, gates, per-stage norms, head...).
        unexpected: part → checkpoint keys that were not used (e.g. timm's final ``norm``
            and ``head``, a Swin block's ``attn`` where the stage uses ELSA, BERT's pooler).
        resized: rrsis key → (checkpoint shape, model shape) for tensors that were
            resampled to fit (relative-position bias tables of another window size).
        sources: part → the file the weights came from.
    """

    loaded: dict[str, list[str]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unexpected: dict[str, list[str]] = field(default_factory=dict)
    resized: dict[str, tuple[Shape, Shape]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def num_loaded(self) -> int:
        return sum(len(v) for v in self.loaded.values())

    def summary(self) -> str:
        """A few lines for a log: counts per part and the missing keys grouped by module."""
        lines = []
        for part, keys in self.loaded.items():
            extra = len(self.unexpected.get(part, []))
            lines.append(
                f"{part}: loaded {len(keys)} tensors from {self.sources.get(part, '?')}"
                + (f"; {extra} checkpoint tensors unused ({_grouped(self.unexpected[part], 4)})" if extra else "")
            )
        if self.resized:
            lines.append(f"resized to fit: {_grouped(self.resized, 4)}")
        if self.missing:
            lines.append(f"left at initial values: {len(self.missing)} tensors ({_grouped(self.missing, 8)})")
        return "\n".join(lines) if lines else "nothing loaded"


def _pattern(key: str) -> str:
    # Collapse indices so 18 identical blocks read as one line.
    return re.sub(r"\.\d+(?=\.|$)", ".*", key.rsplit(".", 1)[0] if "." in key else key)


def _grouped(keys: Iterable[str], limit: int) -> str:
    counts = Counter(_pattern(k) for k in keys)
    items = [f"{p} ×{n}" if n > 1 else p for p, n in counts.most_common(limit)]
    if len(counts) > limit:
        items.append(f"… {len(counts) - limit} more groups")
    return ", ".join(items)


def format_keys(keys: Sequence[str], limit: int = 20) -> str:
    """Keys one per line, indented, truncated after ``limit``."""
    shown = [f"  {k}" for k in keys[:limit]]
    if len(keys) > limit:
        shown.append(f"  … and {len(keys) - limit} more")
    return "\n".join(shown)


def alias_groups(state: Mapping[str, torch.Tensor]) -> dict[str, frozenset]:
    """key → the keys that are the same tensor (tied weights share one storage and view)."""
    by_view: dict[tuple, list[str]] = {}
    for k, v in state.items():
        by_view.setdefault(_view_id(v), []).append(k)
    return {k: frozenset(group) for group in by_view.values() for k in group}


def _view_id(t: torch.Tensor) -> tuple:
    ptr = t.untyped_storage().data_ptr() if t.numel() else id(t)
    return (t.device, ptr, t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)


def shape_mismatches(
    tensors: Mapping[str, torch.Tensor], model_state: Mapping[str, torch.Tensor]
) -> list[tuple[str, Shape, Shape]]:
    return [
        (k, tuple(v.shape), tuple(model_state[k].shape))
        for k, v in tensors.items()
        if k in model_state and tuple(v.shape) != tuple(model_state[k].shape)
    ]


def format_mismatches(mismatches: Sequence[tuple[str, Shape, Shape]], limit: int = 20) -> str:
    lines = [f"  {k}: checkpoint {list(a)} vs model {list(b)}" for k, a, b in mismatches[:limit]]
    if len(mismatches) > limit:
        lines.append(f"  … and {len(mismatches) - limit} more")
    return "\n".join(lines)


@torch.no_grad()
def apply_tensors(model: nn.Module, tensors: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy ``tensors`` (a subset of ``model``'s state-dict keys) into ``model``, all or nothing.

    Every key and shape is checked before the first copy, so an error leaves the model as it was.
    """
    state = model.state_dict()
    unknown = sorted(k for k in tensors if k not in state)
    if unknown:
        raise CheckpointError(f"{source}: keys not in the model:\n{format_keys(unknown)}")
    bad = shape_mismatches(tensors, state)
    if bad:
        raise CheckpointError(f"{source}: tensors with the wrong shape:\n{format_mismatches(bad)}")
    result = model.load_state_dict(dict(tensors), strict=False)
    # load_state_dict(strict=False) only reports; anything it did not take would be a bug here.
    assert not result.unexpected_keys, result.unexpected_keys
