"""``rrsis evaluate --data``: an existing metrics file needs --overwrite (refused before any work,
as every rrsis output), and --quiet silences the progress bar."""

from __future__ import annotations

import json

import pytest
import torch

import rrsis
from rrsis.cli import main


@pytest.fixture(scope="module")
def data_and_model(tmp_path_factory):
    from rrsis.data.synthetic import generate, vocabulary
    from rrsis.hub import save_pretrained

    out = tmp_path_factory.mktemp("eval_outputs")
    generate(str(out), 4, seed=2, size=64, layout="rrsisd")
    torch.manual_seed(0)
    tok = rrsis.Tokenizer.from_words(vocabulary())
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tok))
    model.tokenizer = tok
    save_pretrained(model, out / "model")
    return out / "rrsisd", out / "model"


@pytest.fixture
def calls(monkeypatch):
    """The keyword arguments of each evaluation the command runs."""
    import rrsis.engine.evaluation as evaluation

    seen, real = [], evaluation.evaluate

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate", spy)
    return seen


def test_a_second_run_needs_overwrite_and_quiet_applies_to_data(data_and_model, tmp_path, capsys, monkeypatch, calls):
    root, model = data_and_model
    monkeypatch.chdir(tmp_path)
    argv = ["evaluate", "--model", str(model), "--data", str(root), "--dataset", "rrsisd", "--split", "val",
            "--num-workers", "0"]
    assert main([*argv, "--quiet"]) == 0
    assert calls[-1]["progress"] is False
    assert "wrote eval-rrsisd-val.json" in capsys.readouterr().out
    first = (tmp_path / "eval-rrsisd-val.json").read_text()
    assert json.loads(first)["resolution"] == "64x64"

    assert main([*argv, "--native-resolution"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [("rrsis evaluate: error: eval-rrsisd-val.json exists (the metrics of an earlier evaluation): "
                    "pass --overwrite to replace it, or choose another --out")]
    assert len(calls) == 1 and (tmp_path / "eval-rrsisd-val.json").read_text() == first  # nothing ran

    assert main([*argv, "--native-resolution", "--overwrite"]) == 0
    assert calls[-1]["progress"] is True  # the bar by default
    assert json.loads((tmp_path / "eval-rrsisd-val.json").read_text())["resolution"] == "native"
