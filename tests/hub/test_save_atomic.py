"""save_pretrained replaces a directory with one rename swap, recovers leftovers, keeps the mode."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
import torch

import rrsis
from rrsis.hub import save as save_mod


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return rrsis.create_model("gl-msin-tiny")


def test_the_target_is_a_complete_model_after_every_rename(model, tmp_path, monkeypatch):
    target = tmp_path / "m"
    model.save_pretrained(target)
    checked = []
    real_rename = os.rename

    def spy(src, dst, *args, **kwargs):
        real_rename(src, dst, *args, **kwargs)
        assert (target / "model.safetensors").is_file() and (target / "config.json").is_file()
        checked.append(dst)

    monkeypatch.setattr(save_mod.os, "rename", spy)
    monkeypatch.setattr(save_mod.os, "replace", spy)
    model.save_pretrained(target)
    rrsis.from_pretrained(target)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a leftover beside the target"


def test_a_leftover_old_copy_is_recovered_on_load_and_save(model, tmp_path):
    target = tmp_path / "m"
    model.save_pretrained(target)
    # What a crash between the two renames of a replace leaves: no target, the old copy aside.
    aside = tmp_path / ".m.old-1234abcd"
    os.rename(target, aside)
    loaded = rrsis.from_pretrained(target)
    assert loaded.arch == model.arch and target.is_dir() and not aside.exists()
    # A leftover next to a complete target is removed by the next save.
    shutil.copytree(target, aside)
    model.save_pretrained(target)
    assert not aside.exists() and (target / "model.safetensors").is_file()


def test_resaving_keeps_the_directory_mode(model, tmp_path):
    target = tmp_path / "private"
    model.save_pretrained(target)
    os.chmod(target, 0o700)
    model.save_pretrained(target)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o700


def test_without_an_atomic_exchange_the_fallback_still_replaces(model, tmp_path, monkeypatch):
    target = tmp_path / "m"
    model.save_pretrained(target)
    (target / "notes.txt").write_text("mine")
    monkeypatch.setattr(save_mod, "_exchange", lambda a, b: False)
    model.save_pretrained(target)
    assert (target / "notes.txt").read_text() == "mine"
    assert rrsis.from_pretrained(target).arch == model.arch
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


# ---------------------------------------------------------------- the one atomic write (rrsis._atomic)
def test_a_failure_mid_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    from rrsis._atomic import atomic_open, atomic_write

    path = tmp_path / "metrics.json"
    atomic_write(path, '{"old": 1}\n')
    with pytest.raises(RuntimeError, match="killed"), atomic_open(path) as fh:
        fh.write('{"new": ')
        fh.flush()
        raise RuntimeError("killed mid-write")
    assert path.read_text() == '{"old": 1}\n'
    assert os.listdir(tmp_path) == ["metrics.json"]
    # And a complete write replaces the content, bytes as well as text.
    atomic_write(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01" and os.listdir(tmp_path) == ["metrics.json"]


def test_a_failed_rename_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    from rrsis import _atomic

    path = tmp_path / "a.png"
    path.write_bytes(b"old")

    def no_rename(src, dst):
        raise OSError("read-only file system")

    monkeypatch.setattr(_atomic.os, "replace", no_rename)
    with pytest.raises(OSError, match="read-only"), _atomic.atomic_path(path, keep_suffix=True) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".a.png.") and tmp.suffix == ".png"
        tmp.write_bytes(b"new")  # a writer that wants a path (PIL, rasterio, matplotlib)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["a.png"]


def test_durable_writes_fsync_the_folder_and_bulk_writes_do_not(tmp_path, monkeypatch):
    from rrsis import _atomic

    synced = []
    monkeypatch.setattr(_atomic, "_fsync_dir", lambda d: synced.append(Path(d)))
    _atomic.atomic_write(tmp_path / "sub" / "x.txt", "x")
    assert synced == [tmp_path / "sub"] and (tmp_path / "sub" / "x.txt").read_text() == "x"
    _atomic.atomic_write(tmp_path / "y.txt", "y", durable=False)
    assert synced == [tmp_path / "sub"] and (tmp_path / "y.txt").read_text() == "y"


def test_the_atomic_write_refuses_what_it_cannot_write(tmp_path):
    from rrsis._atomic import atomic_open, atomic_write

    with pytest.raises(TypeError, match="str or bytes, got dict"):
        atomic_write(tmp_path / "x", {"a": 1})
    with pytest.raises(ValueError, match="mode 'w' or 'wb', got 'a'"), atomic_open(tmp_path / "x", "a"):
        pass
    assert os.listdir(tmp_path) == []
