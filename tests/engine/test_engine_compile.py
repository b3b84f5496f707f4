"""``train.compile``: the trainer compiles the model in place with the kernels inside and checks
batch values once on the host (never inside the compiled step)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from _fixtures import recipe

import rrsis
from rrsis.engine import Trainer, load_config
from rrsis.engine import trainer as trainer_module
from rrsis.kernels import compile_model


@pytest.fixture(scope="module")
def synthetic_root(synthetic_rrsisd):
    return synthetic_rrsisd(8)


def _config(root: str, out: Path, **train) -> dict:
    return recipe(root, out, "data.val_split=null", **{"log_every": 1, "checkpoint_every": None, **train})


def test_compile_is_a_checked_recipe_switch():
    assert load_config("gl-msin-tiny-synthetic")["train"]["compile"] is False
    with pytest.raises(rrsis.ConfigError, match="train.compile"):
        load_config("gl-msin-tiny-synthetic", ["train.compile=3"])


@pytest.mark.slow  # compiling forward and backward (and the eval graph) takes minutes on 2 cores
def test_compiled_training_runs_the_compiled_model_and_saves_plain_keys(synthetic_root, tmp_path, monkeypatch):
    calls = []

    def fast_compile(model):  # the real function, with the CPU-cheap backend of the kernel tests
        calls.append(model)
        return compile_model(model, backend="aot_eager")

    monkeypatch.setattr(trainer_module, "compile_model", fast_compile)
    threads = torch.get_num_threads()
    try:
        trainer = Trainer(_config(synthetic_root, tmp_path / "run", max_steps=2, compile=True))
        assert calls == [trainer.model] and trainer.host_checks
        summary = trainer.fit()
    finally:
        torch.set_num_threads(threads)
    assert summary["steps"] == 2
    saved = rrsis.from_pretrained(tmp_path / "run" / "final")
    plain = set(trainer.model.state_dict())
    assert set(saved.state_dict()) == plain and not any("_orig_mod" in k for k in plain)
    assert all(math.isfinite(float(p.detach().sum())) for p in saved.parameters())


def test_host_checks_reject_bad_values_before_the_forward(synthetic_root, tmp_path, monkeypatch):
    trainer = Trainer(_config(synthetic_root, tmp_path / "run", max_steps=1))
    assert not trainer.host_checks  # CPU, eager: the forward itself reads the values
    trainer.host_checks = True  # as on a GPU or compiled
    forwards = []
    monkeypatch.setattr(trainer.net, "forward", lambda *a: forwards.append(a))
    batch = next(iter(trainer._loader(0)))
    batch["pixel_values"][0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        trainer._micro_step(batch, sync=True)
    assert forwards == []
