"""``--revision REV`` on the commands that load a model by Hub id (predict, evaluate, app, and train's
model.init): passed to from_pretrained; with a local folder or file it is an error saying so. The
Hub is a cache laid out on disk with two branches of one repo, read offline; no network."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
import torch
from huggingface_hub import constants as hf_constants
from PIL import Image

import rrsis
import rrsis.hub
from rrsis.cli import build_parser, main

COMMANDS = {
    "predict": ["--model", "org/m", "--image", "i", "--text", "t", "--out", "o"],
    "evaluate": ["--model", "org/m", "--data", "d", "--dataset", "folder"],
    "app": ["--model", "org/m"],
    "train": ["--config", "c"],
}


def _snapshot(cache: Path, repo: str, ref: str, commit: str, folder: Path) -> None:
    """One commit of ``repo`` in huggingface_hub's cache layout: blobs, a snapshot of links, refs/REF."""
    root = cache / f"models--{repo.replace('/', '--')}"
    snap = root / "snapshots" / commit
    snap.mkdir(parents=True)
    (root / "blobs").mkdir(exist_ok=True)
    for f in folder.iterdir():
        data = f.read_bytes()
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, snap), snap / f.name)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / ref).write_text(commit)


@pytest.fixture(scope="module")
def two_branches(tmp_path_factory, tiny_tokenizer):
    """Hub repo org/m: ``main`` (seed 0) and ``dev`` (seed 1), and each one's commit."""
    root = tmp_path_factory.mktemp("revision")
    commits = {"main": "a" * 40, "dev": "b" * 40}
    for seed, (ref, commit) in enumerate(commits.items()):
        torch.manual_seed(seed)
        model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tiny_tokenizer))
        model.tokenizer = tiny_tokenizer
        _snapshot(root / "hub", "org/m", ref, commit, model.save_pretrained(root / ref))
    return root / "hub", commits


@pytest.fixture()
def hub_cache(two_branches, monkeypatch):
    """The cache as the default one, offline; records the weights each from_pretrained loaded."""
    cache, commits = two_branches
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    assert huggingface_hub.is_offline_mode()
    loaded = []
    real = rrsis.hub.from_pretrained

    def spy(*args, **kwargs):
        model = real(*args, **kwargs)
        loaded.append(model.load_report.sources["model"])
        return model

    monkeypatch.setattr(rrsis.hub, "from_pretrained", spy)
    return commits, loaded


def test_every_command_that_loads_a_hub_model_takes_revision_with_help(capsys):
    parser = build_parser()
    for cmd, words in COMMANDS.items():
        assert parser.parse_args([cmd, *words, "--revision", "v1.0"]).revision == "v1.0", cmd
        assert parser.parse_args([cmd, *words]).revision is None, cmd
        with pytest.raises(SystemExit):
            parser.parse_args([cmd, "--help"])
        assert "--revision REV" in capsys.readouterr().out, cmd


@pytest.mark.parametrize("revision", [None, "dev", "b" * 40])
def test_predict_loads_the_revision_asked_for(hub_cache, tmp_path, revision):
    commits, loaded = hub_cache
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "i.png")
    flag = [] if revision is None else ["--revision", revision]
    code = main(["predict", "--model", "org/m", *flag, "--image", str(tmp_path / "i.png"), "--text", "the ship",
                 "--out", str(tmp_path / "p"), "--quiet"])
    assert code == 0
    want = commits["main"] if revision is None else commits["dev"]
    assert len(loaded) == 1 and f"/snapshots/{want}/" in loaded[0]


@pytest.mark.parametrize("cmd", ["predict", "evaluate", "app"])
def test_revision_with_a_local_model_folder_is_an_error_saying_so(saved_model, tmp_path, capsys, cmd):
    (tmp_path / "d").mkdir()
    words = {"predict": ["--image", str(tmp_path / "i.png"), "--text", "t", "--out", str(tmp_path / "o")],
             "evaluate": ["--data", str(tmp_path / "d"), "--dataset", "folder", "--out", str(tmp_path / "e.json")],
             "app": []}[cmd]
    if cmd == "predict":
        Image.new("RGB", (64, 64)).save(tmp_path / "i.png")
    assert main([cmd, "--model", str(saved_model), "--revision", "dev", *words]) == 2
    err = capsys.readouterr().err
    says = f"rrsis {cmd}: error: --revision dev chooses a revision of a Hub repo, but --model {saved_model} is a local"
    assert f"{says} folder" in err


def test_app_revision_without_model_is_an_error(capsys):
    assert main(["app", "--revision", "dev"]) == 2
    assert "give --model ORG/NAME too" in capsys.readouterr().err


def test_app_passes_the_revision_to_serve(monkeypatch):
    import rrsis.app

    seen = {}
    monkeypatch.setattr(rrsis.app, "serve", lambda ref, **kw: seen.update(ref=ref, **kw) or 0)
    assert main(["app", "--model", "org/m", "--revision", "dev"]) == 0
    assert seen["ref"] == "org/m" and seen["revision"] == "dev"


def test_train_revision_is_the_revision_of_model_init(hub_cache, saved_model):
    from rrsis.engine.inputs import check_init_revision
    from rrsis.engine.trainer import build_model

    commits, _ = hub_cache
    model = build_model({"init": "org/m", "revision": "dev"})
    assert f"/snapshots/{commits['dev']}/" in model.load_report.sources["model"]
    with pytest.raises(ValueError, match=r"model.revision='dev' \(--revision\) is the Hub revision .* give model.init"):
        check_init_revision({"name": "gl-msin-tiny", "revision": "dev"})
    with pytest.raises(ValueError, match=rf"model.init {saved_model} is a local folder"):
        check_init_revision({"init": str(saved_model), "revision": "dev"})


def test_train_cli_refuses_revision_without_a_hub_init_before_training(capsys):
    code = main(["train", "--config", "gl-msin-tiny-synthetic", "--revision", "dev", "--print-config"])
    assert code == 2
    assert "is the Hub revision of the model to fine-tune from" in capsys.readouterr().err
