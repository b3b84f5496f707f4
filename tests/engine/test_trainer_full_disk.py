"""A full disk at the trainer's other writes (best/ and final/ through save_pretrained, the
log.jsonl appends): a clear error naming the path and the space, nothing half-written, and a run
that ``--resume auto`` finishes. Simulated, as tests/engine/test_engine_limits.py simulates it
for checkpoints: the writers fail the way they fail on a real full disk."""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import pytest
import torch
from _fixtures import fit, recipe
from safetensors import SafetensorError
from safetensors.torch import load_file

import rrsis.hub.save as hub_save
from rrsis.engine import JsonlLogger, latest_checkpoint, load_checkpoint, read_jsonl
from rrsis.hub import from_pretrained

ENOSPC = os.strerror(errno.ENOSPC)


@pytest.fixture(scope="module")
def synthetic_root(synthetic_rrsisd):
    return synthetic_rrsisd(12)


def tiny_config(root: str, out: Path) -> dict:
    # 12 samples, batch 4, 2 steps: checkpoints at steps 1 and 2, one validation at the end.
    return recipe(root, out, log_every=1, max_steps=2, checkpoint_every=1, keep_checkpoints=0)


def full_disk_for(folder_name: str, monkeypatch):
    """Make ``save_pretrained``'s weights file fail as safetensors fails on a full disk (part of
    the file written, then its error text with the OS code) when saving into ``folder_name``."""
    real = hub_save.save_file

    def save_file(tensors, filename, metadata=None):
        if not Path(filename).parent.name.startswith(f".{folder_name}."):
            return real(tensors, filename, metadata=metadata)
        real(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as fh:
            fh.truncate(os.path.getsize(filename) // 2)
        raise SafetensorError(f"Error while serializing: I/O error: {ENOSPC} (os error {errno.ENOSPC})")

    monkeypatch.setattr(hub_save, "save_file", save_file)


def leftovers(out: Path) -> list[str]:
    return [p.name for p in out.rglob(".*") if p.name.endswith((".saving", ".tmp")) or ".tmp" in p.name]


def whole_lines(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]  # every line parses: none torn


@pytest.mark.parametrize("folder", ["best", "final"])
def test_full_disk_at_a_model_folder_names_it_and_the_run_resumes(synthetic_root, tmp_path, monkeypatch, folder):
    out = tmp_path / "run"
    full_disk_for(folder, monkeypatch)
    with pytest.raises(OSError) as info:
        fit(tiny_config(synthetic_root, out))
    monkeypatch.undo()
    msg = str(info.value)
    assert msg.startswith(f"could not write the {folder} model folder {out / folder}: {ENOSPC} (about ")
    assert " free there). " in msg and "checkpoints are intact" in msg and "--resume auto" in msg
    assert info.value.errno == errno.ENOSPC
    assert not (out / folder).exists() and not leftovers(out)  # no half-written folder
    assert (out / "best").is_dir() == (folder == "final")
    whole_lines(out / "log.jsonl")
    last = latest_checkpoint(out)
    assert last is not None and last.name == ("step-00000001.pt" if folder == "best" else "step-00000002.pt")

    summary = fit(tiny_config(synthetic_root, out), resume="auto")
    assert summary["steps"] == 2 and summary["best"]["step"] == 2
    trained = load_checkpoint(out / "checkpoints" / "step-00000002.pt")["model"]
    for name in ("best", "final"):  # both hold the step-2 weights, complete
        saved = load_file(out / name / "model.safetensors")
        assert saved and all(torch.equal(t, trained[k]) for k, t in saved.items())
    records = whole_lines(out / "log.jsonl")
    assert [r["step"] for r in records if r["type"] == "train"] == [1, 2]  # as an uninterrupted run's
    # The space it said it needed: the weights (what the folder it now wrote holds, give or take).
    needed = sum(t.numel() * t.element_size() for t in from_pretrained(out / folder).state_dict().values())
    weights = (out / folder / "model.safetensors").stat().st_size
    assert 0.9 * weights < needed <= weights
    size = f"{needed / 2**20:.1f} MiB" if needed >= 2**20 else f"{needed / 2**10:.1f} KiB"
    assert f"(about {size} needed, " in msg


def log_fd_fails(path: Path, monkeypatch, fails) -> None:
    """``os.write`` on ``path`` takes 5 bytes of a write that ``fails(data)`` names, then the disk
    is full (ENOSPC); every other write goes through."""
    real_write = os.write
    full = []

    def write(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}") != str(path) or not (full or fails(bytes(data))):
            return real_write(fd, data)
        if full:
            raise OSError(errno.ENOSPC, ENOSPC)
        full.append(True)
        return real_write(fd, bytes(data[:5]))

    monkeypatch.setattr(os, "write", write)


def test_full_disk_at_a_log_append_leaves_no_torn_line(tmp_path, monkeypatch):
    path = tmp_path / "log.jsonl"
    log = JsonlLogger(path)
    log.log({"type": "train", "step": 1, "loss": 0.5})
    before = path.read_bytes()
    log_fd_fails(path, monkeypatch, lambda data: True)
    record = {"type": "val", "step": 1, "oIoU": 0.25}
    with pytest.raises(OSError) as info:
        log.log(record)
    monkeypatch.undo()
    line = json.dumps(record) + "\n"
    assert str(info.value).startswith(f"could not write the log {path}: {ENOSPC} (about {len(line)} bytes needed, ")
    assert "every record before this one" in str(info.value) and "--resume auto" in str(info.value)
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == before  # the bytes that got in were cut off again
    log.log(record)
    assert read_jsonl(path) == [{"type": "train", "step": 1, "loss": 0.5}, record] == whole_lines(path)


def test_full_disk_at_a_log_append_during_training_resumes(synthetic_root, tmp_path, monkeypatch):
    out = tmp_path / "run"
    log_fd_fails(out / "log.jsonl", monkeypatch, lambda data: data.startswith(b'{"type": "train", "step": 2,'))
    with pytest.raises(OSError, match=f"could not write the log {re.escape(str(out / 'log.jsonl'))}: {ENOSPC}"):
        fit(tiny_config(synthetic_root, out))
    monkeypatch.undo()
    assert latest_checkpoint(out).name == "step-00000001.pt" and not leftovers(out)
    assert [r["step"] for r in whole_lines(out / "log.jsonl")] == [1]
    summary = fit(tiny_config(synthetic_root, out), resume="auto")
    assert summary["steps"] == 2 and (out / "final" / "model.safetensors").is_file()
    assert [r["step"] for r in whole_lines(out / "log.jsonl") if r["type"] == "train"] == [1, 2]
