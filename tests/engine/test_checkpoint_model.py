"""A mid-run checkpoint of ``rrsis train`` (``RUN/checkpoints/step-N.pt``) evaluates: its weights
in the model of its run's ``best/`` (``rrsis.engine.model_from_checkpoint``, ``rrsis evaluate
--model FILE``); ``from_pretrained`` on the file says so."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from _fixtures import fit, recipe

import rrsis
from rrsis.cli import main
from rrsis.engine import load_checkpoint, model_from_checkpoint
from rrsis.hub import CheckpointError


@pytest.fixture(scope="module")
def run(synthetic_rrsisd, tmp_path_factory):
    root = synthetic_rrsisd(16)
    out = tmp_path_factory.mktemp("ckpt_run") / "run"
    fit(recipe(root, out, max_steps=4, checkpoint_every=2, keep_checkpoints=0, log_every=2))
    return root, out


def test_a_checkpoint_loads_its_weights_into_the_runs_model(run):
    _, out = run
    step2 = out / "checkpoints" / "step-00000002.pt"
    model = model_from_checkpoint(step2)
    state = load_checkpoint(step2)["model"]
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    best = rrsis.from_pretrained(out / "best")
    assert any(not torch.equal(state[k], v) for k, v in best.state_dict().items())  # best/ is step 4's
    assert model.config == best.config and model.image_size == 64 and not model.training
    assert len(model.tokenizer) == len(best.tokenizer)


def test_rrsis_evaluate_takes_the_checkpoint_file(run, tmp_path, capsys):
    root, out = run
    step2 = out / "checkpoints" / "step-00000002.pt"
    metrics = tmp_path / "m.json"
    assert main(["evaluate", "--model", str(step2), "--data", root, "--dataset", "rrsisd", "--split", "val",
                 "--num-workers", "0", "--quiet", "--out", str(metrics)]) == 0
    record = json.loads(metrics.read_text())
    assert record["model"] == str(step2) and record["metrics"]["n"] > 0


def test_from_pretrained_on_the_file_says_how_it_loads(run):
    _, out = run
    with pytest.raises(CheckpointError) as err:
        rrsis.from_pretrained(out / "checkpoints" / "step-00000002.pt")
    msg = str(err.value)
    assert "is a checkpoint of rrsis train (step 2)" in msg
    assert "rrsis.engine.model_from_checkpoint(path)" in msg and "rrsis evaluate --model takes the file" in msg
    assert "read_state_dict" not in msg  # the route for bare weight files, which fails on this one


def test_a_run_without_a_model_folder_says_how_to_write_one(run, tmp_path):
    _, out = run
    (tmp_path / "killed" / "checkpoints").mkdir(parents=True)
    copy = tmp_path / "killed" / "checkpoints" / "step-00000002.pt"
    shutil.copy(out / "checkpoints" / "step-00000002.pt", copy)
    with pytest.raises(ValueError, match=r"has neither; run the command that started the run again with "
                                         r"--resume auto"):
        model_from_checkpoint(copy)
    bogus = tmp_path / "bogus.pt"
    torch.save({"model": {}}, bogus)
    with pytest.raises(ValueError, match=r"not an rrsis training checkpoint"):
        model_from_checkpoint(bogus)
