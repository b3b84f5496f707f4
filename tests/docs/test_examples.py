"""Every script in examples/ runs end to end on its tiny settings."""

from __future__ import annotations

import runpy
import sys

import pytest
import torch
from _fixtures import FIXTURES, REPO

EXAMPLES = REPO / "examples"
RMSIN_FIXTURE = FIXTURES / "rmsin" / "checkpoint.pth"


def run_example(name: str, *args: str, monkeypatch) -> None:
    """Run ``examples/<name>`` as ``__main__`` in this process (no interpreter start-up cost)."""
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / name), *args])
    threads = torch.get_num_threads()
    try:
        with pytest.raises(SystemExit) as done:
            runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    finally:
        torch.set_num_threads(threads)
    assert done.value.code == 0


def test_quickstart(tmp_path, monkeypatch, capsys):
    out = tmp_path / "overlay.png"
    run_example("quickstart.py", "--tiny", "--out", str(out), monkeypatch=monkeypatch)
    assert out.stat().st_size > 0
    assert "overlay in" in capsys.readouterr().out


def test_custom_model(monkeypatch, capsys):
    run_example("custom_model.py", "--tiny", monkeypatch=monkeypatch)
    text = capsys.readouterr().out
    assert "custom 'light' head" in text and "swin + gem-linear + simple head" in text


def test_train_synthetic(tmp_path, monkeypatch, capsys):
    run_example("train_synthetic.py", "--tiny", "--out", str(tmp_path / "run"), monkeypatch=monkeypatch)
    text = capsys.readouterr().out
    assert "test" in text and "mIoU" in text
    assert (tmp_path / "run" / "run" / "final" / "model.safetensors").is_file()


def test_convert_and_evaluate(tmp_path, monkeypatch, capsys):
    pytest.importorskip("rrsis.convert", reason="rrsis.convert (checkpoint conversion) is not available")
    if not RMSIN_FIXTURE.is_file():
        pytest.skip(f"the official RMSIN fixture checkpoint is not here ({RMSIN_FIXTURE})")
    run_example("convert_and_evaluate.py", "--tiny", "--checkpoint", str(RMSIN_FIXTURE),
                "--out", str(tmp_path / "converted"), monkeypatch=monkeypatch)
    text = capsys.readouterr().out
    assert "strict load" in text and "rmsin test" in text
    assert (tmp_path / "converted" / "model.safetensors").is_file()
