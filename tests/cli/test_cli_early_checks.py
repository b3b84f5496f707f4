"""What ``rrsis predict`` / ``evaluate`` / ``app`` can tell without the model stack is told before
it is imported (a missing model folder or image, outputs already there, a saved model without its
vocabulary); a model that loads is announced (``loading MODEL ...``) unless ``--quiet``."""

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
from _fixtures import REPO
from PIL import Image

from rrsis.cli import main

CASES = """
import contextlib, io, json, sys
from rrsis.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    out.append({"code": code, "err": err.getvalue()})
print(json.dumps({"results": out, "torch": "torch" in sys.modules, "timm": "timm" in sys.modules}))
"""


@pytest.fixture()
def scene(tmp_path):
    image = tmp_path / "scene.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    return image


@pytest.fixture(scope="module")
def no_vocab(tmp_path_factory, saved_model):
    """The saved tiny model less its vocabulary (as save_pretrained writes a model without a tokenizer)."""
    import shutil

    folder = tmp_path_factory.mktemp("novocab") / "model"
    shutil.copytree(saved_model, folder)
    (folder / "vocab.txt").unlink()
    (folder / "tokenizer_config.json").unlink(missing_ok=True)
    return folder


def _without_model_stack(argvs, cwd):
    done = subprocess.run([sys.executable, "-c", CASES, json.dumps(argvs)], cwd=cwd, capture_output=True, text=True,
                          check=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_cheap_mistakes_are_refused_before_torch_is_imported(tmp_path, scene, saved_model, no_vocab):
    (tmp_path / "done_overlay.png").write_bytes(b"an earlier run's")
    (tmp_path / "eval.json").write_text("{}")
    predict = ["predict", "--image", str(scene), "--text", "the tank"]
    argvs = [
        [*predict, "--model", "./nope", "--out", "p"],
        ["predict", "--model", str(saved_model), "--image", "nope.png", "--text", "the tank", "--out", "p"],
        [*predict, "--model", str(saved_model), "--out", "done"],
        [*predict, "--model", str(no_vocab), "--out", "p"],
        ["predict", "--image", str(scene), str(scene), "--text", "x", "--model", str(no_vocab), "--out", "r"],  # a region
        ["evaluate", "--model", "./nope", "--data", ".", "--dataset", "folder"],
        ["evaluate", "--model", str(saved_model), "--data", ".", "--dataset", "folder", "--out", "eval.json"],
        ["evaluate", "--model", str(no_vocab), "--data", ".", "--dataset", "folder"],
        ["app", "--model", str(no_vocab)],
    ]
    got = _without_model_stack(argvs, tmp_path)
    assert not got["torch"] and not got["timm"]
    errors = [r["err"].strip() for r in got["results"]]
    assert [r["code"] for r in got["results"]] == [2] * len(argvs)
    assert errors[0] == "rrsis predict: error: model directory not found: nope"
    assert errors[1] == "rrsis predict: error: --image nope.png: file not found"
    assert errors[2].startswith("rrsis predict: error: done_overlay.png already exist(s): pass ")
    assert "--overwrite" in errors[2]
    vocab = (f"{no_vocab} has no vocab.txt: rrsis {{}} needs the model's vocabulary to read the expressions; put "
             "the vocabulary it was trained with (vocab.txt, and tokenizer_config.json if there is one) in the "
             "model's folder, or save the model again with model.tokenizer set")
    assert errors[3] == errors[4] == "rrsis predict: error: " + vocab.format("predict")
    assert errors[5] == "rrsis evaluate: error: model directory not found: nope"
    assert errors[6].startswith("rrsis evaluate: error: eval.json exists (the metrics of an earlier evaluation)")
    assert errors[7] == "rrsis evaluate: error: " + vocab.format("evaluate")
    assert errors[8] == "rrsis app: error: " + vocab.format("app")


def test_a_mistyped_model_folder_is_told_with_the_folders_beside_it_before_torch(tmp_path, scene):
    (tmp_path / "runs" / "t1" / "best").mkdir(parents=True)
    argvs = [["predict", "--image", str(scene), "--text", "x", "--model", ref, "--out", "p"]
             for ref in ("./runs/t1/bset", "runs/t1/bset/")]
    got = _without_model_stack(argvs, tmp_path)
    assert not got["torch"]
    assert [r["err"].strip() for r in got["results"]] == [
        "rrsis predict: error: model directory not found: runs/t1/bset; did you mean 'runs/t1/best'?"] * 2


def test_save_pretrained_warns_of_a_model_without_a_tokenizer(tmp_path, tiny_model, caplog):
    from rrsis.hub import save_pretrained

    with caplog.at_level(logging.WARNING, logger="rrsis.hub.save"):
        save_pretrained(tiny_model, tmp_path / "with")
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    tokenizer, tiny_model.tokenizer = tiny_model.tokenizer, None
    try:
        with caplog.at_level(logging.WARNING, logger="rrsis.hub.save"):
            save_pretrained(tiny_model, tmp_path / "without")
    finally:
        tiny_model.tokenizer = tokenizer
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(said) == 1 and not (tmp_path / "without" / "vocab.txt").exists()
    assert f"gl-msin-tiny has no tokenizer, so {tmp_path / 'without'} has no vocab.txt" in said[0]
    assert "model.tokenizer = rrsis.Tokenizer('vocab.txt')" in said[0]


def test_predict_says_which_model_it_loads_unless_quiet(saved_model, scene, tmp_path, monkeypatch, capsys):
    """A model whose files are large is announced before it loads (not with --quiet); a small one
    loads at once, and nothing is said."""
    import rrsis.cli.model_ref
    import rrsis.scene

    monkeypatch.setattr(rrsis.scene, "segment_scene", lambda *a, **k: None)
    argv = ["predict", "--model", str(saved_model), "--image", str(scene), "--text", "the tank",
            "--out", str(tmp_path / "p")]
    assert main(argv) == 0
    assert capsys.readouterr().err == ""
    size = sum(f.stat().st_size for f in saved_model.iterdir())
    monkeypatch.setattr(rrsis.cli.model_ref, "SLOW_LOAD_BYTES", size)  # as large as a full-size model's
    assert main(argv) == 0
    assert capsys.readouterr().err == f"loading {saved_model} ...\n"
    assert main([*argv, "--quiet"]) == 0
    assert capsys.readouterr().err == ""
