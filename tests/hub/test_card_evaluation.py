"""The model card says where its metrics were measured (split, step, image size), in the text and
in the ``model-index``, and lists the training facts it is given; saves without them are unchanged."""

from __future__ import annotations

import pytest
import torch
import yaml

import rrsis
from rrsis.hub.card import card_metrics


def _model():
    torch.manual_seed(0)
    return rrsis.create_model("gl-msin-tiny").eval()


def _header(card: str) -> dict:
    return yaml.safe_load(card.split("---\n")[1])


def test_metrics_say_their_split_step_and_size_in_text_and_model_index(tmp_path):
    metrics = {"oIoU": 0.61234567891, "mIoU": 0.58, "n": 40}
    evaluation = {"split": "test", "step": 10, "total_steps": 20, "image_size": [48, 64]}
    out = _model().save_pretrained(tmp_path / "m", metrics=metrics, dataset="RRSIS-D", evaluation=evaluation)
    card = (out / "README.md").read_text()
    table = card.split("## Metrics\n\n")[1]
    said = table.split("\n\n| metric | value |")[0]
    assert said == ("Measured on the `test` split of RRSIS-D, at training step 10 of 20, with images and masks "
                    "resized to 48 × 64 pixels.")
    (result,) = _header(card)["model-index"][0]["results"]
    assert result["dataset"]["split"] == "test"
    assert result["dataset"]["args"] == {"step": 10, "total_steps": 20, "image_size": [48, 64]}
    assert [m["name"] for m in result["metrics"]] == ["test oIoU", "test mIoU", "test n"]
    read = card_metrics(card)  # the values round-trip as before
    assert read == metrics and isinstance(read["n"], int)


def test_weights_chosen_on_the_split_say_so(tmp_path):
    out = _model().save_pretrained(tmp_path / "m", metrics={"oIoU": 0.5}, dataset="d",
                                   evaluation={"split": "val", "chosen_by": "oIoU"})
    card = (out / "README.md").read_text()
    assert "Measured on the `val` split of d. These weights were chosen as the best oIoU on this split" in card
    assert _header(card)["model-index"][0]["results"][0]["dataset"]["args"] == {"chosen_by": "oIoU"}


def test_a_save_without_evaluation_details_is_as_before(tmp_path):
    out = _model().save_pretrained(tmp_path / "m", metrics={"oIoU": 0.5, "n": 3}, dataset="d")
    card = (out / "README.md").read_text()
    assert "## Metrics\n\n| metric | value |" in card and "Measured" not in card and "## Training" not in card
    (result,) = _header(card)["model-index"][0]["results"]
    assert result["dataset"] == {"name": "d", "type": "d"}
    assert [m["name"] for m in result["metrics"]] == ["oIoU", "n"]
    assert card_metrics(card) == {"oIoU": 0.5, "n": 3}


def test_an_unknown_evaluation_key_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['spilt'\]; known: split, step"):
        _model().save_pretrained(tmp_path / "m", metrics={"oIoU": 0.5}, evaluation={"spilt": "val"})
    assert not (tmp_path / "m").exists()


def test_training_facts_are_a_section_of_the_card(tmp_path):
    facts = {"seed": "5 (`train.seed`)", "full recipe": "`/runs/x/config.json`"}
    out = _model().save_pretrained(tmp_path / "m", training=facts)
    card = (out / "README.md").read_text()
    section = card.split("## Training\n\n")[1].split("\n## ")[0]
    assert "- seed: 5 (`train.seed`)\n- full recipe: `/runs/x/config.json`\n" in section
    assert rrsis.from_pretrained(out) is not None  # nothing in the folder a load refuses
