"""Model folders made to fail: each is one line naming the file and what is wrong with it."""

from __future__ import annotations

import os
import shutil

import pytest

from rrsis.cli import main

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def copy(saved_model, tmp_path):
    out = tmp_path / "model"
    shutil.copytree(saved_model, out)
    return out


def _predict(model, tmp_path) -> list[str]:
    import numpy as np
    from PIL import Image

    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "i.png")
    return ["predict", "--model", str(model), "--image", str(tmp_path / "i.png"), "--text", "red",
            "--out", str(tmp_path / "out/"), "--quiet"]


@pytest.mark.parametrize("name", ["config.json", "tokenizer_config.json"])
def test_deeply_nested_json_names_the_file(copy, name):
    import rrsis

    (copy / name).write_text(DEEP)
    with pytest.raises(ValueError, match=rf"^{copy / name}: not valid JSON \(maximum recursion depth"):
        rrsis.from_pretrained(copy)


def test_deeply_nested_tokenizer_config_alone(copy):
    from rrsis import Tokenizer

    (copy / "tokenizer_config.json").write_text(DEEP)
    with pytest.raises(ValueError, match=rf"^{copy / 'tokenizer_config.json'}: not valid JSON"):
        Tokenizer.from_pretrained(copy)
    (copy / "tokenizer_config.json").write_text("[1]")
    with pytest.raises(ValueError, match="expected a JSON object, got list"):
        Tokenizer.from_pretrained(copy)


def test_model_symlink_loop_named_by_the_cli(tmp_path, capsys):
    link = tmp_path / "self"
    os.symlink(link, link)
    assert main(_predict(link, tmp_path)) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"rrsis predict: error: --model: {link} cannot be opened: the symbolic link {link} -> {link} "
                   "is a loop (following it leads back to itself). Point the link at the model directory, or pass "
                   "the directory itself")


def test_config_symlink_loop_named(copy):
    import rrsis

    cfg = copy / "config.json"
    cfg.unlink()
    os.symlink(cfg, cfg)
    with pytest.raises(ValueError, match=rf"{cfg} cannot be opened: the symbolic link {cfg} -> {cfg} is a loop.*"
                                         r"Point the link at the model's config.json"):
        rrsis.from_pretrained(copy)
