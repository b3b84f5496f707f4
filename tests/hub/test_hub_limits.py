"""from_pretrained / save_pretrained against hostile or broken inputs: limits checked before
building, the weights' header checked against the config, empty paths and symlink loops named,
killed saves cleaned up, file modes consistent (issue 30)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap

import pytest
import torch
from _limits import REPO, _env, run_limited

import rrsis
from rrsis.hub import load as load_mod
from rrsis.hub.files import CheckpointError

WORDS = "the a of left right north south red blue tank tanks building plane ship road".split()  # noqa: SIM905


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny")
    model.tokenizer = rrsis.Tokenizer.from_words(WORDS, max_tokens=model.config["text"]["max_tokens"])
    path = tmp_path_factory.mktemp("saved") / "m"
    model.save_pretrained(path)
    return path


def _copy(saved, tmp_path):
    import shutil

    out = tmp_path / "m"
    shutil.copytree(saved, out)
    return out


def _edit_config(path, **backbone):
    cfg = json.loads((path / "config.json").read_text())
    for key, value in backbone.items():
        node, _, name = key.rpartition("__")
        cfg["model_args"][node or "backbone"][name] = value
    (path / "config.json").write_text(json.dumps(cfg))


def test_empty_path_is_refused(tmp_path, monkeypatch, saved):
    # an empty setting must not read (or, for save, replace) the current folder
    monkeypatch.chdir(saved)
    with pytest.raises(ValueError, match="path or Hub repo id is empty"):
        rrsis.from_pretrained("")
    model = rrsis.create_model("gl-msin-tiny")
    with pytest.raises(ValueError, match="target directory is empty"):
        model.save_pretrained("")


def test_symlink_loop_is_named(tmp_path):
    loop = tmp_path / "loop"
    os.symlink(loop, loop)
    for ref in (loop, loop / "inner"):
        with pytest.raises(ValueError, match=r"symbolic link .*loop -> .*loop is a loop"):
            rrsis.from_pretrained(ref)


HOSTILE_EDITS = {"depths": {"depths": [10**6, 1, 1, 1]}, "embed_dim": {"embed_dim": 10**9},
                 "window_size": {"window_size": 10**6},
                 "refine_steps": {"head__refine_steps": 10**6}}


def test_hostile_config_json_refused_quickly(saved, tmp_path):
    # One child loads every edited copy (one interpreter start, not one per edit): a regression
    # to building before checking fails within the harness's memory and time limits.
    paths = {}
    for name, edit in HOSTILE_EDITS.items():
        paths[name] = _copy(saved, tmp_path / name)
        _edit_config(paths[name], **edit)
    code = ("import json, sys, rrsis\nout = {}\n"
            "for name, path in json.loads(sys.argv[1]).items():\n"
            "    try:\n        rrsis.from_pretrained(path)\n        out[name] = 'loaded'\n"
            "    except rrsis.hub.CheckpointError as exc:\n        out[name] = str(exc)\n"
            "print(json.dumps(out))\n")
    r = run_limited(code, args=[json.dumps({k: str(v) for k, v in paths.items()})], timeout=20.0)
    assert not r.timed_out and r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out.keys() == HOSTILE_EDITS.keys()
    for name, message in out.items():
        assert "config.json" in message and "upper bound" in message, (name, message)


def test_param_limit_applies_to_from_pretrained(saved, monkeypatch):
    monkeypatch.delenv("RRSIS_MAX_PARAMS", raising=False)
    with pytest.raises(CheckpointError, match=r"config.json .*max_params=1,000"):
        rrsis.from_pretrained(saved, max_params=1000)
    assert rrsis.from_pretrained(saved, max_params=10**6) is not None


def test_header_is_checked_before_reading_or_building(saved, tmp_path, monkeypatch):
    path = _copy(saved, tmp_path)
    _edit_config(path, head__hidden=24)  # a valid config whose head no longer fits the weights

    def no(*args, **kwargs):
        raise AssertionError("read or built before the header was checked")

    monkeypatch.setattr(load_mod, "read_weights", no)
    monkeypatch.setattr(load_mod, "_build_checked", no)
    with pytest.raises(CheckpointError, match=r"tensors have other shapes \(read from its header, before"):
        rrsis.from_pretrained(path)


def test_header_dtype_checked(saved, tmp_path):
    from safetensors.torch import load_file, save_file

    path = _copy(saved, tmp_path)
    tensors = load_file(path / "model.safetensors")
    key = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[key] = tensors[key].to(torch.int32)
    save_file(tensors, path / "model.safetensors")
    with pytest.raises(CheckpointError, match=f"stored as other types: {key} \\(I32\\)"):
        rrsis.from_pretrained(path)


@pytest.mark.parametrize("value", [1, "20", 10**4, 2.5])  # 10**9: under the memory limit below
def test_tokenizer_max_tokens_checked_against_the_model(saved, tmp_path, value):
    path = _copy(saved, tmp_path)
    cfg = json.loads((path / "tokenizer_config.json").read_text())
    cfg["max_tokens"] = value
    (path / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"tokenizer_config.json: max_tokens=.* does not fit the model"):
        rrsis.from_pretrained(path)


def test_tokenizer_max_tokens_under_memory_limit(saved, tmp_path):
    path = _copy(saved, tmp_path)
    (path / "tokenizer_config.json").write_text(json.dumps({"max_tokens": 10**9}))
    code = ("import sys, rrsis\ntry:\n    m = rrsis.from_pretrained(sys.argv[1])\n"
            "    m.predict([__import__('numpy').zeros((64, 64, 3), 'uint8')], ['the tank'])\n"
            "except rrsis.hub.CheckpointError as exc:\n    print(exc); sys.exit(3)\n")
    r = run_limited(code, args=[str(path)])
    assert not r.timed_out and r.returncode == 3, r.stderr[-2000:]


def test_weights_file_has_the_mode_of_the_other_files(tmp_path):
    model = rrsis.create_model("gl-msin-tiny")
    for umask in (0o022, 0o077, 0o002):
        old = os.umask(umask)
        try:
            out = model.save_pretrained(tmp_path / f"m{umask:o}")
        finally:
            os.umask(old)
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
        assert modes["model.safetensors"] == modes["config.json"] == 0o666 & ~umask, modes


def _killed_save(target) -> None:
    """Run save_pretrained in a child and SIGKILL it after the files are written, before the
    rename that publishes them (where kill -9 would leave the .saving folder)."""
    code = textwrap.dedent(f"""
        import os, signal, rrsis
        from rrsis.hub import save
        def die(directory):
            os.kill(os.getpid(), signal.SIGKILL)
        save._fsync_tree = die
        rrsis.create_model("gl-msin-tiny").save_pretrained({str(target)!r})
    """)
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(), capture_output=True, text=True,
                       check=False)
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]


@pytest.fixture(scope="module")
def killed_save_leftover(tmp_path_factory):
    """The ``.saving`` folder a save of ``m`` killed before its rename left (one child for the
    tests below; each copies it beside its own ``m``)."""
    where = tmp_path_factory.mktemp("killed")
    _killed_save(where / "m")
    left = [p for p in where.iterdir() if p.name.endswith(".saving")]
    assert len(left) == 1 and (left[0] / "model.safetensors").is_file()
    assert not (where / "m").exists()
    return left[0]


@pytest.mark.parametrize("then", ["save", "load"])
def test_killed_save_leftover_is_removed_by_the_next_save_or_load(saved, tmp_path, then,
                                                                   killed_save_leftover):
    import shutil

    from rrsis.hub.save import _host

    target = tmp_path / "m"
    if then == "load":
        _copy(saved, tmp_path)
    shutil.copytree(killed_save_leftover, tmp_path / killed_save_leftover.name)
    # a save in progress (its process alive: this one) is never touched
    live = tmp_path / f".m.{_host()}-{os.getpid()}-0000abcd.saving"
    live.mkdir()
    if then == "save":
        rrsis.create_model("gl-msin-tiny").save_pretrained(target)
    else:
        rrsis.from_pretrained(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m", live.name])
    assert (target / "config.json").is_file()


def test_ownerless_leftover_removed_only_when_old(tmp_path):
    from rrsis.hub.save import STALE_SAVE_SECONDS, recover_interrupted_save

    old, new = tmp_path / ".m.1a2b3c4d.saving", tmp_path / ".m.other-host-12-1a2b3c4e.saving"
    for p in (old, new):
        p.mkdir()
    t = os.stat(old).st_mtime - STALE_SAVE_SECONDS - 60
    os.utime(old, (t, t))
    recover_interrupted_save(tmp_path / "m")
    assert not old.exists() and new.exists()
