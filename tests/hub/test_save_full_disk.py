"""``save_pretrained`` called directly (a notebook, not the trainer) on a full disk: one ``OSError``
naming the folder, the cause and the space, the old folder as it was, nothing left behind.
Simulated as safetensors fails on a real full disk: part of the file written, then its error
text with the OS code (a ``SafetensorError``, not an ``OSError``)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch
from safetensors import SafetensorError

import rrsis
import rrsis.hub.save as hub_save

ENOSPC = os.strerror(errno.ENOSPC)


def test_a_full_disk_names_the_folder_and_keeps_the_old_one(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny")
    target = tmp_path / "my-model"
    model.save_pretrained(target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    real = hub_save.save_file

    def save_file(tensors, filename, metadata=None):
        real(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as fh:
            fh.truncate(os.path.getsize(filename) // 2)
        raise SafetensorError(f"Error while serializing: I/O error: {ENOSPC} (os error {errno.ENOSPC})")

    monkeypatch.setattr(hub_save, "save_file", save_file)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    with pytest.raises(OSError) as info:
        model.save_pretrained(target)
    msg = str(info.value)
    assert msg.startswith(f"could not write the model folder {target}: {ENOSPC} (about ")
    assert " free there). " in msg and msg.endswith(f"{target} is as it was before (or absent)")
    assert info.value.errno == errno.ENOSPC
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before  # the old model, untouched
    assert [p.name for p in Path(tmp_path).iterdir()] == ["my-model"]  # no .saving folder left
    with pytest.raises(OSError, match=f"could not write the model folder {tmp_path / 'new'}: {ENOSPC}"):
        model.save_pretrained(tmp_path / "new")
    assert not (tmp_path / "new").exists()
