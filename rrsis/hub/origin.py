"""Where a saved model's weights come from, carried from one save to the next.

A model card's "Source" section (``rrsis convert`` writes one naming the official checkpoint and
its licence) is read by :func:`rrsis.from_pretrained` into ``model.origin``, with a digest of the
weights as loaded. :func:`rrsis.hub.save_pretrained` writes it again when it is given no
``origin``: as it was while the weights are the loaded ones, under a line saying they were changed
once they differ (fine-tuned, edited, cast to another dtype).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import torch
from huggingface_hub.errors import LocalEntryNotFoundError
from torch import nn

__all__ = ["card_origin", "carried_origin", "remember_origin"]

_SECTION = re.compile(r"^## Source[ \t]*\n(.*?)(?=^## |^\| |\Z)", re.S | re.M)


def card_origin(card: str) -> str | None:
    """The text of a model card's ``## Source`` section, or ``None``."""
    match = _SECTION.search(card)
    text = match.group(1).strip() if match else ""
    return text or None


def _digest(model: nn.Module) -> list[float]:
    # A float64 sum per tensor: any training step or edit changes at least one (a cast changes many).
    state = model.state_dict()
    with torch.no_grad():
        return [float(t.detach().to(torch.float64).sum()) for t in state.values() if t.is_floating_point()] \
            + [float(len(state))]


def remember_origin(model: nn.Module, card: Callable[[], Path | None]) -> None:
    """Set ``model.origin`` from the card ``card()`` finds (``None`` without one or without a Source
    section; a card missing from an offline cache is no error)."""
    try:
        path = card()
        text = card_origin(path.read_text(encoding="utf-8", errors="replace")) if path is not None else None
    except (LocalEntryNotFoundError, OSError):
        text = None
    model.origin = text
    model._origin_digest = _digest(model) if text else None


_CHANGED = ("These weights were changed (trained, edited or cast) after they were loaded from a model "
            "whose card gave this source:")


def carried_origin(model: nn.Module) -> str | None:
    """The Source text a save of ``model`` carries: its loaded card's, marked when the weights changed
    (a text that says so already is carried as it is: one mark however many times they change)."""
    text = getattr(model, "origin", None)
    if not text:
        return None
    if getattr(model, "_origin_digest", None) == _digest(model) or text.startswith(_CHANGED):
        return text
    quoted = "\n".join(("> " + line).rstrip() for line in text.splitlines())
    return f"{_CHANGED}\n\n{quoted}"
