"""save_pretrained replaces a directory with one rename swap, recovers leftovers, keeps the mode."""

from __future__ import annotations

import os
import shutil
import stat

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
