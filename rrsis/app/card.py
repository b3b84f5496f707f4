"""The model-card panel: name, size, training data and metrics, read from a saved model's card.

Metrics come from the card's YAML header (``model-index``, :func:`rrsis.hub.card.card_metrics`);
a card written by an earlier rrsis has them only as a markdown table, which is read instead.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..hub.card import card_metrics, metric_text

__all__ = ["CardSummary", "read_card", "summarise"]

_ROW = re.compile(r"^\|\s*(.*?)\s*\|\s*(.*?)\s*\|\s*$")


@dataclass
class CardSummary:
    """What the panel shows.

    Args:
        name: the architecture (``model.arch``).
        source: the directory or Hub repo the model came from.
        parameters: parameter count.
        training_data: the dataset named in the card, if any.
        metrics: ``name → value`` as the card's table shows it.
        facts: other ``name → value`` rows of the card's table (backbone, text encoder, ...).
    """

    name: str
    source: str
    parameters: int
    training_data: str | None = None
    metrics: dict[str, str] = field(default_factory=dict)
    facts: dict[str, str] = field(default_factory=dict)

    def markdown(self) -> str:
        lines = [f"### {self.name}", "", f"from `{self.source}`", "",
                 f"- **parameters**: {self.parameters:,} ({self.parameters / 1e6:.2f} M)",
                 f"- **training data**: {_md(self.training_data or 'not recorded in the model card')}"]
        lines += [f"- **{_md(k)}**: {_md(v)}" for k, v in self.facts.items()]
        if self.metrics:
            lines += ["", "**Metrics (from the model card)**", "", "| metric | value |", "|---|---|"]
            lines += [f"| {_md(k)} | {_md(v)} |" for k, v in self.metrics.items()]
        else:
            lines += ["", "No metrics recorded in the model card."]
        return "\n".join(lines)


def _md(text: str) -> str:
    # "P@0.5" would become a mail link, and "|" would end a table cell.
    return str(text).replace("@", "&#64;").replace("|", "\\|")


def read_card(text: str) -> tuple[dict[str, str], dict[str, str], str | None]:
    """``(facts, metrics, dataset)`` from a model card's markdown (rrsis's layout: a two-column
    facts table, a ``## Metrics`` table, ``datasets:`` in the YAML header).

    The metrics read here are the table's text: :func:`summarise` takes them from the header's
    ``model-index`` when the card has one, and from this table only for older cards."""
    facts: dict[str, str] = {}
    metrics: dict[str, str] = {}
    dataset = None
    section = ""
    in_header = text.startswith("---")
    header_key = ""
    for i, line in enumerate(text.splitlines()):
        if in_header:
            if i > 0 and line.strip() == "---":
                in_header = False
            elif re.match(r"^\w", line):
                header_key = line.split(":", 1)[0]
                value = line.split(":", 1)[1].strip() if ":" in line else ""
                if header_key == "datasets" and value and value != "[]":
                    dataset = value.strip("[]'\" ")
            elif header_key == "datasets" and line.strip().startswith("- ") and dataset is None:
                dataset = line.strip()[2:].strip("'\" ")
            continue
        if line.startswith("#"):
            section = line.lstrip("#").strip().lower()
            continue
        m = _ROW.match(line)
        if not m or set(m.group(1)) <= {"-", " "} or (m.group(1), m.group(2)) in (("", ""),
                                                                                ("metric", "value")):
            continue
        key, value = m.group(1), m.group(2).replace("`", "")
        if section == "metrics":
            metrics[key] = value
        else:
            facts[key] = value
    dataset = facts.pop("training data", None) or dataset
    return facts, metrics, dataset


def _card_text(source: str) -> str | None:
    path = Path(source) / "README.md"
    if not path.is_file():
        try:  # a Hub repo: only what is already in the local cache, never the network
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(source, "README.md")
        except Exception:  # noqa: BLE001  (not a repo id, no cache: no card)
            cached = None
        if not isinstance(cached, (str, os.PathLike)):
            return None
        path = Path(cached)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def summarise(model, source: str | os.PathLike) -> CardSummary:
    """The panel's content for ``model`` loaded from ``source``."""
    text = _card_text(str(source))
    facts, metrics, dataset = read_card(text) if text else ({}, {}, None)
    stored = card_metrics(text) if text else None
    if stored is not None:
        metrics = {k: metric_text(v) for k, v in stored.items()}
    for key in ("architecture", "parameters", "tokenizer"):  # shown from the model itself
        facts.pop(key, None)
    return CardSummary(
        name=getattr(model, "arch", "") or type(model).__name__,
        source=str(source),
        parameters=sum(p.numel() for p in model.parameters()),
        training_data=dataset,
        metrics=metrics,
        facts=facts,
    )
