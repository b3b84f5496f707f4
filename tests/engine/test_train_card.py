"""``rrsis train``'s best/ and final/ cards: where their metrics were measured (split, step of
total, image size) and the recipe that trained them (absolute data root, the init's sha256)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import yaml
from _fixtures import fit, recipe

import rrsis
from rrsis.hub.card import card_metrics


def _section(card: str, name: str) -> str:
    return card.split(f"## {name}\n\n")[1].split("\n## ")[0]


def test_best_and_final_cards_say_where_their_metrics_come_from_and_the_recipe(synthetic_rrsisd, tmp_path,
                                                                               monkeypatch):
    root = synthetic_rrsisd(16)
    monkeypatch.chdir(tmp_path)
    fit(recipe(root, Path("init"), "data.val_split=null", max_steps=1))  # a model folder to fine-tune from
    rel = os.path.relpath(root, Path.cwd())  # paths as typed: relative to the folder the run starts in
    summary = fit(recipe(rel, Path("run"), "model.init=init/final", max_steps=2))
    here = Path.cwd()
    sha = hashlib.sha256((here / "init" / "final" / "model.safetensors").read_bytes()).hexdigest()
    best = (here / "run" / "best" / "README.md").read_text()
    step = summary["best"]["step"]
    assert _section(best, "Metrics").startswith(
        f"Measured on the `val` split of rrsisd, at training step {step} of 2, with images and masks resized "
        "to 64 × 64 pixels. These weights were chosen as the best oIoU on this split")
    (result,) = yaml.safe_load(best.split("---\n")[1])["model-index"][0]["results"]
    assert result["dataset"]["split"] == "val"
    assert result["dataset"]["args"] == {"step": step, "total_steps": 2, "image_size": 64, "chosen_by": "oIoU"}
    assert card_metrics(best) == {k: v for k, v in summary["best"].items() if k not in ("step", "epoch")}
    training = _section(best, "Training")
    assert f"- initial weights: `{here / 'init' / 'final'}` (`model.init`), `model.safetensors` sha256 `{sha}`" \
        in training
    assert f"- data: rrsisd at `{os.path.abspath(rel)}` (`data.root`): trained on its `train` split" in training
    assert "- image size: 64 (`data.image_size`)" in training
    assert "- optimiser: AdamW, lr 0.002, weight decay 0.01" in training
    assert "- steps: 2 (`train.max_steps` 2;" in training and "- batch size: 4 per step" in training
    assert "- seed: 5 (`train.seed`)" in training and f"- rrsis: {rrsis.__version__}" in training
    assert f"- full recipe: `{here / 'run' / 'config.json'}`" in training
    final = (here / "run" / "final" / "README.md").read_text()
    assert _section(final, "Metrics").startswith("Measured on the `val` split of rrsisd, at training step 2 of 2, "
                                                 "with images and masks resized to 64 × 64 pixels.\n")
    assert "chosen as the best" not in final and _section(final, "Training") == training
    assert card_metrics(final) == {k: v for k, v in summary["final"].items() if isinstance(v, (int, float))}
    rrsis.from_pretrained(here / "run" / "best")  # the card is all that changed: it loads
    # A run from scratch says so, and its data root as given (absolute already).
    init = _section((here / "init" / "final" / "README.md").read_text(), "Training")
    assert "- initial weights: `gl-msin-tiny`, randomly initialised (`model.pretrained` false)" in init
    assert f"- data: rrsisd at `{root}` (`data.root`): trained on its `train` split, no validation" in init


def test_a_resumed_run_states_the_init_weights_it_started_from(synthetic_rrsisd, tmp_path):
    root = synthetic_rrsisd(16)
    fit(recipe(root, tmp_path / "init", "data.val_split=null", max_steps=1))
    init = tmp_path / "init" / "final"
    sha = hashlib.sha256((init / "model.safetensors").read_bytes()).hexdigest()
    cfg = recipe(root, tmp_path / "run", f"model.init={init}", "data.val_split=null", max_steps=2, checkpoint_every=1)
    fit(cfg)
    # The init folder is trained on in place afterwards: other weights under the same path.
    fit(recipe(root, tmp_path / "init", "data.val_split=null", max_steps=2), overwrite=True)
    assert hashlib.sha256((init / "model.safetensors").read_bytes()).hexdigest() != sha
    fit(cfg, resume="auto")
    card = (tmp_path / "run" / "final" / "README.md").read_text()
    assert f"`model.safetensors` sha256 `{sha}`" in _section(card, "Training")
