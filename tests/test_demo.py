"""``rrsis demo`` on tiny settings (outputs and their structure), and its control set."""

from __future__ import annotations

import json

import pytest
import torch

from rrsis.cli import main
from rrsis.demo import DemoConfig, run_demo, shuffled_texts
from rrsis.engine.logs import have_matplotlib


def test_shuffled_texts_is_a_derangement_that_keeps_images():
    samples = [{"text": f"t{i}", "input_ids": torch.tensor([i]), "attention_mask": torch.tensor([1]),
                "pixel_values": torch.full((1,), float(i)), "mask": torch.tensor([i])} for i in range(9)]
    control = shuffled_texts(samples, seed=0)
    assert sorted(s["text"] for s in control) == sorted(s["text"] for s in samples)
    for i, (a, b) in enumerate(zip(samples, control)):
        assert b["text"] != a["text"]
        assert b["pixel_values"] is a["pixel_values"] and b["mask"] is a["mask"]
        assert int(b["input_ids"][0]) == int(b["text"][1:])
    assert shuffled_texts(samples, seed=0) == control
    with pytest.raises(ValueError):
        shuffled_texts(samples[:1], seed=0)


def test_demo_tiny_run_writes_every_output(tmp_path, capsys):
    out = tmp_path / "demo"
    threads = torch.get_num_threads()
    try:
        report = run_demo(DemoConfig(out=str(out), steps=3, scenes=10, size=64, batch_size=4, examples=2,
                                     threads=1, progress=False, warmup_steps=1))
    finally:
        torch.set_num_threads(threads)
    names = ["predictions.png", "metrics.json", "gl-msin/final/model.safetensors",
             "control/final/model.safetensors", "gl-msin/log.jsonl"]
    if have_matplotlib():  # the optional `plot` extra
        names.append("training.png")
    for name in names:
        assert (out / name).is_file(), name
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved["validation"]) == {"GL-MSIN", "shuffled-text control"}
    assert saved["mIoU_gap"] == pytest.approx(report["mIoU_gap"])
    for row in saved["validation"].values():
        assert {"oIoU", "mIoU", "P@0.5", "P@0.9", "n"} <= set(row)
    text = capsys.readouterr().out
    assert "GL-MSIN" in text and "shuffled-text control" in text and "mIoU gap" in text


def test_demo_command_line_options(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = capsys.readouterr().out
    for opt in ("--out", "--steps", "--seed", "--threads"):
        assert opt in text


@pytest.mark.slow
def test_demo_acceptance(tmp_path):
    """The README claim: GL-MSIN >= 0.5 validation mIoU and >= 0.15 above the shuffled-text
    control, in under 10 minutes on 2 CPU cores (wall time depends on the machine's load)."""
    report = run_demo(DemoConfig(out=str(tmp_path / "demo"), threads=2, progress=False))
    main_row = report["validation"]["GL-MSIN"]
    assert main_row["mIoU"] >= 0.5
    assert report["mIoU_gap"] >= 0.15
