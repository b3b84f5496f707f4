"""``--threads N``: the CPU threads torch computes with in the commands that run a model (predict,
evaluate, app), a positive integer; left out, torch's own default stays."""

import numpy as np
import pytest
import torch
from PIL import Image

from rrsis.cli import build_parser, main

COMMANDS = {
    "predict": ["predict", "--model", "m", "--image", "i.png", "--text", "x", "--out", "o"],
    "evaluate": ["evaluate", "--model", "m", "--data", "d", "--dataset", "folder"],
    "app": ["app"],
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_threads_takes_a_positive_integer(name, capsys):
    parser = build_parser()
    assert parser.parse_args([*COMMANDS[name], "--threads", "3"]).threads == 3
    assert parser.parse_args(COMMANDS[name]).threads is None
    for bad in ("0", "-2", "two"):
        with pytest.raises(SystemExit):
            parser.parse_args([*COMMANDS[name], "--threads", bad])
        err = capsys.readouterr().err
        assert f"argument --threads: {bad!r}: expected a positive integer" in err


def _record_threads(monkeypatch, module, name, seen, result=None):
    def fake(*args, **kwargs):
        seen.append(torch.get_num_threads())
        if isinstance(result, BaseException):
            raise result
        return result

    monkeypatch.setattr(module, name, fake)


def test_predict_computes_on_the_threads_asked(saved_model, tmp_path, monkeypatch):
    import rrsis.scene

    image = tmp_path / "scene.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(image)
    seen = []
    _record_threads(monkeypatch, rrsis.scene, "segment_scene", seen)
    before = torch.get_num_threads()
    argv = ["predict", "--model", str(saved_model), "--image", str(image), "--text", "the tank",
            "--out", str(tmp_path / "p"), "--quiet"]
    assert main([*argv, "--threads", str(before + 1)]) == 0
    assert main(argv) == 0  # torch's count as it was: nothing set
    assert seen == [before + 1, before + 1]


def test_evaluate_and_app_set_the_threads_before_their_work(saved_model, tmp_path, monkeypatch, capsys):
    import rrsis.app
    import rrsis.engine.distributed

    before = torch.get_num_threads()
    seen = []
    _record_threads(monkeypatch, rrsis.engine.distributed, "resolve_device", seen, RuntimeError("stop here"))
    assert main(["evaluate", "--model", str(saved_model), "--data", str(tmp_path), "--dataset", "folder",
                 "--out", str(tmp_path / "eval.json"), "--threads", str(before + 1)]) == 2
    assert "stop here" in capsys.readouterr().err
    _record_threads(monkeypatch, rrsis.app, "serve", seen, 0)
    assert main(["app", "--model", str(saved_model), "--threads", str(before + 2)]) == 0
    assert seen == [before + 1, before + 2]
