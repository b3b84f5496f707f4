"""Training runs: output_dir placeholders, and a full disk that names the file and keeps the
previous checkpoint (issue 30)."""

from __future__ import annotations

import errno
import io
import time

import pytest
import torch

from rrsis._config import ConfigError
from rrsis.engine import checkpoint as ckpt
from rrsis.engine.recipe import load_config


def test_output_dir_placeholders_are_filled():
    from rrsis.engine.validate import format_output_dir

    now = time.mktime((2026, 12, 6, 8, 15, 2, 0, 0, -1))
    got = format_output_dir("runs/{recipe}/{date}-{time}", "lavt-rrsisd", now=now)
    assert got == "runs/lavt-rrsisd/2026-12-06-081502"
    assert format_output_dir("runs/{{literal}}", "x") == "runs/{literal}"


@pytest.mark.parametrize("template, why", [
    ("runs/{datum}", r"placeholder \{datum\}.*known: \{recipe\}, \{date\}, \{time\}"),
    ("runs/{0}", r"placeholder \{0\}"),
    ("runs/{date", r"not a valid template"),
    ("runs/{}", r"placeholder \{\}"),
])
def test_unknown_or_malformed_placeholder_is_a_config_error(template, why):
    with pytest.raises(ConfigError, match=why):
        load_config("gl-msin-tiny-synthetic", [f"train.output_dir={template}"])


def test_cli_train_names_the_placeholder(capsys):
    from rrsis.cli import main

    assert main(["train", "--config", "gl-msin-tiny-synthetic", "--train.output_dir", "runs/{when}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "placeholder {when}" in err[0], err


class _FullDisk(io.BufferedWriter):
    """A file on a disk that fills up after ``room`` bytes."""

    def __init__(self, raw, room: int) -> None:
        super().__init__(raw)
        self.room = room

    def write(self, b) -> int:
        self.room -= len(b)
        if self.room < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(b)


def test_disk_full_names_the_file_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    state = {"format": ckpt.FORMAT, "model": {"w": torch.arange(5000.0)}}
    first = ckpt.atomic_save(state, ckpt.checkpoint_path(tmp_path, 1))
    before = first.read_bytes()
    real_open = open

    def full_open(path, mode="r", *args, **kwargs):
        if "b" in mode and "w" in mode:
            return _FullDisk(real_open(path, mode, buffering=0), room=1000)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full_open)
    second = ckpt.checkpoint_path(tmp_path, 2)
    with pytest.raises(OSError, match=r"could not write checkpoint .*step-00000002.pt: No space left on device.*"
                                      r"previous checkpoints are intact") as info:
        ckpt.atomic_save(state, second)
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC
    assert "enforce fail" not in str(info.value)
    assert first.read_bytes() == before and not second.exists()
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [first.name]  # no temporary file left
    assert ckpt.latest_checkpoint(tmp_path) == first


def test_recipe_image_size_is_bounded():
    with pytest.raises(ConfigError, match=r"data.image_size=1000000 is above rrsis's upper bound 8192"):
        load_config("gl-msin-tiny-synthetic", ["data.image_size=1000000"])


@pytest.mark.parametrize("value", [10**9, 1, 2.0, True])
def test_tokenizer_max_tokens_bounded(value):
    from rrsis.text.tokenizer import Tokenizer

    with pytest.raises(ValueError, match=r"max_tokens must be an integer from 2 to 8192"):
        Tokenizer.from_words(["tank"], max_tokens=value)
