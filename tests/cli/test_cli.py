"""``rrsis train|evaluate|predict`` through ``rrsis.cli.main`` (in-process)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import rrsis
from rrsis.cli import main


@pytest.fixture(scope="module")
def scene_set(tmp_path_factory):
    from rrsis.data.synthetic import generate, vocabulary

    out = tmp_path_factory.mktemp("cli_synthetic")
    generate(str(out), 6, seed=1, size=64, layout="rrsisd")
    model_dir = out / "model"
    torch.manual_seed(0)
    tok = rrsis.Tokenizer.from_words(vocabulary())
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tok))
    model.tokenizer = tok
    from rrsis.hub import save_pretrained

    save_pretrained(model, model_dir)
    images = sorted((out / "rrsisd" / "JPEGImages").iterdir())
    return {"root": out / "rrsisd", "model": model_dir, "image": images[0]}


def test_train_list_and_print_config(capsys):
    assert main(["train", "--list"]) == 0
    assert "gl-msin-rrsisd" in capsys.readouterr().out.split()
    assert main(["train", "--config", "rmsin-refsegrs", "--print-config", "--lr", "1e-4",
                 "--set", "train.epochs=3", "--model.use_gem=false"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["optim"]["lr"] == 1e-4 and cfg["train"]["epochs"] == 3 and cfg["model"]["use_gem"] is False


def test_train_rejects_unknown_keys_and_missing_data(capsys):
    assert main(["train", "--config", "gl-msin-rrsisd", "--optim.lrr", "1"]) == 2
    assert "unknown config key" in capsys.readouterr().err
    assert main(["train", "--config", "gl-msin-rrsisd"]) == 2
    assert "data.root" in capsys.readouterr().err


def test_predict_writes_mask_and_overlay(scene_set, tmp_path, capsys):
    prefix = tmp_path / "out" / "scene"
    assert main(["predict", "--model", str(scene_set["model"]), "--image", str(scene_set["image"]),
                 "--text", "the largest building", "--out", str(prefix)]) == 0
    mask = np.asarray(Image.open(f"{prefix}_mask.png"))
    over = np.asarray(Image.open(f"{prefix}_overlay.png"))
    src = np.asarray(Image.open(scene_set["image"]).convert("RGB"))
    assert mask.shape == src.shape[:2] and set(np.unique(mask)) <= {0, 255}
    assert over.shape == src.shape
    # Where the mask is empty the overlay is the image itself.
    assert np.array_equal(over[mask == 0][:50], src[mask == 0][:50]) or mask.all()
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["missing", "unreadable", "empty-text"])
def test_predict_bad_input_is_a_clear_error_and_writes_nothing(scene_set, tmp_path, capsys, case):
    image, text = str(scene_set["image"]), "the largest building"
    if case == "missing":
        image = str(tmp_path / "nope.png")
    elif case == "unreadable":
        image = str(tmp_path / "broken.png")
        Path(image).write_bytes(b"this is not a PNG")
    else:
        text = "   "
    out = tmp_path / "res"
    assert main(["predict", "--model", str(scene_set["model"]), "--image", image, "--text", text,
                 "--out", str(out / "x")]) == 2
    err = capsys.readouterr().err
    assert {"missing": "not found", "unreadable": "cannot read image", "empty-text": "empty"}[case] in err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("native", [False, True])
def test_evaluate_prints_table_and_writes_json(scene_set, tmp_path, capsys, native):
    out = tmp_path / "metrics.json"
    argv = ["evaluate", "--model", str(scene_set["model"]), "--data", str(scene_set["root"]),
            "--dataset", "rrsisd", "--split", "val", "--out", str(out), "--num-workers", "0"]
    if native:
        argv.append("--native-resolution")
    assert main(argv) == 0
    text = capsys.readouterr().out
    for col in ("oIoU", "mIoU", "P@0.5", "P@0.9"):
        assert col in text
    record = json.loads(out.read_text())
    assert record["split"] == "val" and record["metrics"]["n"] > 0
    assert record["resolution"] == ("native" if native else "64x64")


def test_evaluate_missing_data_folder(scene_set, capsys):
    assert main(["evaluate", "--model", str(scene_set["model"]), "--data", "/no/such/folder",
                 "--dataset", "rrsisd"]) == 2
    assert "not found" in capsys.readouterr().err


def test_train_then_evaluate_round_trip(scene_set, tmp_path, capsys):
    threads = torch.get_num_threads()
    out = tmp_path / "run"
    try:
        rc = main(["train", "--config", "gl-msin-tiny-synthetic", "--data.root", str(scene_set["root"]),
                   "--train.output_dir", str(out), "--max_steps", "2", "--batch_size", "2",
                   "--progress", "false", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    said = capsys.readouterr().out
    assert "outputs in" in said
    # The closing line is the next step, runnable as printed: the run's best model on the test split.
    line = [w for w in said.splitlines() if w.startswith("evaluate: ")][-1][len("evaluate: "):]
    words = shlex.split(line)
    assert words[:4] == ["rrsis", "evaluate", "--model", str(out / "best")]
    assert main([*words[1:], "--quiet"]) == 0
    record = json.loads((out / "eval-test.json").read_text())
    assert record["split"] == "test" and record["dataset"] == "rrsisd" and record["data"] == str(scene_set["root"])


def test_evaluate_passes_dataset_options(scene_set, tmp_path, capsys):
    base = ["evaluate", "--model", str(scene_set["model"]), "--data", str(scene_set["root"]),
            "--dataset", "rrsisd", "--split", "val", "--num-workers", "0", "--out", str(tmp_path / "m.json"),
            "--overwrite"]
    images = scene_set["root"] / "JPEGImages"
    assert main([*base, "--data-option", f"image_dir={images}"]) == 0
    assert main([*base, "--data-option", "image_dir=/no/such/images"]) == 2
    assert "not found" in capsys.readouterr().err
    assert main([*base, "--data-option", "image_dir"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "rrsis", "models"], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "gl-msin" in proc.stdout and "lavt" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "rrsis", "no-such-command"], check=False, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode != 0 and "no-such-command" in bad.stderr
