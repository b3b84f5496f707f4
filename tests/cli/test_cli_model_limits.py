"""``--max-params`` / ``--max-activation-gib`` on every command that builds or loads a model:
passed to create_model / from_pretrained, with ``$RRSIS_MAX_PARAMS`` /
``$RRSIS_MAX_ACTIVATION_GIB`` still applying when a flag is left out."""

from __future__ import annotations

import re

import numpy as np
import pytest
from _fixtures import find_fixtures
from PIL import Image

from rrsis.cli import build_parser, main

# Commands that build or load a model, and the rest.
WITH_MODEL = ["models", "convert", "train", "evaluate", "predict", "demo", "app"]
WITHOUT = ["synth"]


@pytest.fixture(scope="module")
def saved(tiny_model, tmp_path_factory):
    from rrsis.hub import save_pretrained

    out = tmp_path_factory.mktemp("limits") / "model"
    save_pretrained(tiny_model, out)
    return out


@pytest.fixture(scope="module")
def n_params(tiny_model):
    return sum(p.numel() for p in tiny_model.parameters())


@pytest.fixture()
def no_env(monkeypatch):
    monkeypatch.delenv("RRSIS_MAX_PARAMS", raising=False)
    monkeypatch.delenv("RRSIS_MAX_ACTIVATION_GIB", raising=False)


def refused_params(capsys, command: str, n: int, limit: str) -> None:
    """The API's error, one line, exit code already checked by the caller."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"rrsis {command}: error: ")
    assert f"this configuration has {n:,} parameters" in err[0]
    assert f"above the limit max_params={limit}" in err[0] and "--max-params" in err[0]


def test_every_model_command_has_both_flags_with_help(capsys):
    parser = build_parser()
    for cmd in WITH_MODEL:
        extra = {"predict": ["--model", "m", "--image", "i", "--text", "t", "--out", "o"],
                 "evaluate": ["--model", "m", "--data", "d", "--dataset", "folder"],
                 "convert": ["c.pth", "out", "--arch", "lavt"]}.get(cmd, [])
        args = parser.parse_args([cmd, *extra, "--max-params", "5e9", "--max-activation-gib", "0.5"])
        assert (args.max_params, args.max_activation_gib) == (5_000_000_000, 0.5), cmd
        args = parser.parse_args([cmd, *extra])
        assert (args.max_params, args.max_activation_gib) == (None, None), cmd
        with pytest.raises(SystemExit):
            parser.parse_args([cmd, "--help"])
        help_text = " ".join(capsys.readouterr().out.split())
        assert "--max-params N refuse a model with more than N parameters" in help_text, cmd
        assert "$RRSIS_MAX_PARAMS, else 2,000,000,000" in help_text
        assert "--max-activation-gib GIB refuse a model whose estimated activation memory" in help_text
        assert "$RRSIS_MAX_ACTIVATION_GIB, else 64" in help_text
    for cmd in WITHOUT:
        with pytest.raises(SystemExit):
            parser.parse_args([cmd, "out", "--max-params", "5"])
    for bad in ("0", "-3", "nan", "many"):
        with pytest.raises(SystemExit):
            parser.parse_args(["models", "--max-params", bad])
        assert "expected a positive number" in capsys.readouterr().err


def test_predict_passes_the_flags_and_keeps_the_environment(saved, n_params, tmp_path, capsys, monkeypatch,
                                                            no_env):
    image = tmp_path / "s.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(image)
    base = ["predict", "--quiet", "--model", str(saved), "--image", str(image), "--text", "the ship",
            "--mode", "global"]
    assert main([*base, "--out", str(tmp_path / "a"), "--max-params", "1000"]) == 2
    refused_params(capsys, "predict", n_params, "1,000")
    assert not list(tmp_path.glob("a*"))
    # The environment applies when the flag is left out; a flag given wins over it.
    monkeypatch.setenv("RRSIS_MAX_PARAMS", "1000")
    assert main([*base, "--out", str(tmp_path / "b")]) == 2
    refused_params(capsys, "predict", n_params, "1,000")
    assert main([*base, "--out", str(tmp_path / "c"), "--max-params", str(n_params)]) == 0
    assert (tmp_path / "c_mask.png").is_file()
    monkeypatch.setenv("RRSIS_MAX_ACTIVATION_GIB", "1e-9")
    assert main([*base, "--out", str(tmp_path / "d"), "--max-params", "1e9"]) == 2
    err = capsys.readouterr().err
    assert "above the limit max_activation_gib=1e-09" in err and "--max-activation-gib" in err
    assert main([*base, "--out", str(tmp_path / "e"), "--max-params", "1e9", "--max-activation-gib", "inf"]) == 0
    # A region (several images) loads the model through the same flags.
    assert main(["predict", "--quiet", "--model", str(saved), "--image", str(image), str(image),
                 "--text", "the ship", "--out", str(tmp_path / "region"), "--max-params", "1000"]) == 2
    refused_params(capsys, "predict", n_params, "1,000")


def test_train_passes_the_flags_to_the_recipes_model(tmp_path, capsys, monkeypatch, no_env):
    import torch

    from rrsis.data.synthetic import generate

    generate(str(tmp_path / "data"), 6, seed=1, size=64, layout="rrsisd")
    out = tmp_path / "run"
    base = ["train", "--config", "gl-msin-tiny-synthetic", "--data.root", str(tmp_path / "data" / "rrsisd"),
            "--train.output_dir", str(out), "--max_steps", "1", "--batch_size", "2", "--progress", "false",
            "--threads", "1"]
    threads = torch.get_num_threads()
    try:
        assert main([*base, "--max-params", "1000"]) == 2
        err = capsys.readouterr().err
        assert re.search(r"rrsis train: error: gl-msin-tiny: this configuration has [\d,]+ parameters .* above "
                         r"the limit max_params=1,000", err) and "--max-params" in err
        assert not (out / "checkpoints").exists()
        # The environment applies when the flag is left out; a flag given wins over it.
        monkeypatch.setenv("RRSIS_MAX_ACTIVATION_GIB", "1e-9")
        assert main(base) == 2
        assert "above the limit max_activation_gib=1e-09" in capsys.readouterr().err
        assert main([*base, "--max-activation-gib", "64", "--max-params", "1e9"]) == 0
    finally:
        torch.set_num_threads(threads)
    assert (out / "final" / "model.safetensors").is_file()


def test_the_other_model_commands_pass_the_flags(saved, n_params, tmp_path, capsys, monkeypatch, no_env):
    assert main(["models", "--info", "gl-msin-tiny", "--max-params", "1000"]) == 2
    assert re.search(r"this configuration has [\d,]+ parameters .* above the limit max_params=1,000",
                     capsys.readouterr().err)
    assert main(["evaluate", "--model", str(saved), "--data", str(tmp_path), "--dataset", "folder",
                 "--out", str(tmp_path / "e.json"), "--max-params", "1000"]) == 2
    refused_params(capsys, "evaluate", n_params, "1,000")
    pytest.importorskip("gradio")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))  # serve() sets it: restored after
    assert main(["app", "--model", str(saved), "--examples", "0", "--max-params", "1000"]) == 2
    refused_params(capsys, "app", n_params, "1,000")
    fixtures = find_fixtures()
    checkpoint = fixtures / "rmsin" / "checkpoint.pth"
    if checkpoint.exists():
        assert main(["convert", "--arch", "rmsin", str(checkpoint), str(tmp_path / "conv"),
                     "--max-params", "1000"]) == 2
        assert "above the limit max_params=1,000" in capsys.readouterr().err
        assert not (tmp_path / "conv").exists()
