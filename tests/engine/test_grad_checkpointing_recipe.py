"""``train.grad_checkpointing``: a checked recipe switch the trainer applies to the model; it trains
the same run (same losses), so a resume may change it."""

from __future__ import annotations

import json
import math

import pytest
import torch
from _fixtures import fit, recipe

import rrsis
from rrsis.engine import Trainer, load_config, read_jsonl


@pytest.fixture(scope="module")
def synthetic_root(synthetic_rrsisd):
    return synthetic_rrsisd(8)


def _config(root, out, **train) -> dict:
    return recipe(root, out, "data.val_split=null",
                  **{"max_steps": 4, "checkpoint_every": 2, "log_every": 1, **train})


def _losses(out) -> list[float]:
    return [r["loss"] for r in read_jsonl(out / "log.jsonl") if r["type"] == "train"]


def test_grad_checkpointing_is_a_checked_recipe_switch():
    assert load_config("gl-msin-tiny-synthetic")["train"]["grad_checkpointing"] is False
    assert load_config("gl-msin-tiny-synthetic", ["train.grad_checkpointing=true"])["train"]["grad_checkpointing"] is True
    with pytest.raises(rrsis.ConfigError, match="train.grad_checkpointing"):
        load_config("gl-msin-tiny-synthetic", ["train.grad_checkpointing=3"])


def test_training_with_grad_checkpointing_trains_the_same_run_and_may_be_resumed_with_it(synthetic_root, tmp_path):
    plain_out, ck_out = tmp_path / "plain", tmp_path / "ck"
    fit(_config(synthetic_root, plain_out))
    threads = torch.get_num_threads()
    try:
        trainer = Trainer(_config(synthetic_root, ck_out, grad_checkpointing=True))
        assert trainer.model.grad_checkpointing
        assert all(stage.grad_checkpointing for stage in trainer.model.backbone.layers)
        assert trainer.fit()["steps"] == 4
    finally:
        torch.set_num_threads(threads)
    plain = _losses(plain_out)
    assert len(plain) == 4 and all(math.isfinite(x) for x in plain)
    assert _losses(ck_out) == pytest.approx(plain, abs=1e-5)
    # The saved model does not carry the switch.
    assert not rrsis.from_pretrained(ck_out / "final").grad_checkpointing
    # A resume may switch it on (it changes memory and time, not what is trained).
    for path in (plain_out / "checkpoints").glob("step-*.pt"):
        if int(path.stem[5:]) > 2:
            path.unlink()
    assert fit(_config(synthetic_root, plain_out, grad_checkpointing=True), resume="auto")["steps"] == 4
    assert json.loads((plain_out / "config.json").read_text())["train"]["grad_checkpointing"] is True
    assert _losses(plain_out)[-2:] == pytest.approx(plain[-2:], abs=1e-5)
