"""Run folders never overwrite another run; resume intent is explicit; recipe values are checked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from _fixtures import fit, recipe

from rrsis.cli import main
from rrsis.engine import Trainer, list_checkpoints, load_config, parse_override_args, read_jsonl
from rrsis.engine.checkpoint import prune_checkpoints


@pytest.fixture(scope="module")
def synthetic_root(synthetic_rrsisd):
    return synthetic_rrsisd(12)


def tiny_config(root: str, out: Path, **train) -> dict:
    return recipe(root, out, **{"log_every": 1, "max_steps": 2, "checkpoint_every": 1,
                                "keep_checkpoints": 0, **train})


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_second_run_into_the_same_folder_is_refused_and_the_first_kept(synthetic_root, tmp_path):
    out = tmp_path / "run"
    fit(tiny_config(synthetic_root, out))
    first = snapshot(out)
    assert {"log.jsonl", "config.json", "best/model.safetensors", "checkpoints/step-00000002.pt"} <= set(first)
    with pytest.raises(FileExistsError, match=r"--resume.*--overwrite"):
        fit(tiny_config(synthetic_root, out, seed=6))
    assert snapshot(out) == first
    # The command line says the same, and leaves the same files.
    argv = ["train", "--config", "gl-msin-tiny-synthetic", "--data.root", synthetic_root,
            "--train.output_dir", str(out), "--threads", "1", "--progress", "false", "--max_steps", "2"]
    assert main(argv) != 0
    assert snapshot(out) == first


def test_overwrite_replaces_the_previous_run_entirely(synthetic_root, tmp_path):
    out = tmp_path / "run"
    fit(tiny_config(synthetic_root, out, max_steps=3))
    assert [s for s, _ in list_checkpoints(out)] == [3, 2, 1]
    fit(tiny_config(synthetic_root, out, max_steps=2, seed=7), overwrite=True)
    # No checkpoint of the old run is left to be mistaken for this one's by --resume auto.
    assert [s for s, _ in list_checkpoints(out)] == [2, 1]
    assert max(r["step"] for r in read_jsonl(out / "log.jsonl")) == 2


def test_pruning_touches_only_this_runs_checkpoints(synthetic_root, tmp_path):
    other, out = tmp_path / "other", tmp_path / "run"
    fit(tiny_config(synthetic_root, other, max_steps=4))
    kept = out / "checkpoints" / "step-00000001.pt"  # a file this run did not write
    kept.parent.mkdir(parents=True)
    shutil.copy(other / "checkpoints" / "step-00000001.pt", kept)
    fit(tiny_config(synthetic_root, out, max_steps=4, keep_checkpoints=1),
        resume=other / "checkpoints" / "step-00000002.pt")
    assert kept.is_file()
    assert [s for s, _ in list_checkpoints(out)] == [4, 1]


def test_prune_checkpoints_only_among_owned(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    paths = [folder / f"step-{s:08d}.pt" for s in (1, 2, 3, 9)]
    for p in paths:
        p.write_bytes(b"x")
    prune_checkpoints(tmp_path, keep=1, owned=paths[:3])
    assert sorted(p.name for p in folder.iterdir()) == ["step-00000003.pt", "step-00000009.pt"]


def test_resume_auto_without_a_usable_checkpoint_fails(synthetic_root, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match="auto-or-new"):
        fit(tiny_config(synthetic_root, out), resume="auto")
    # The only checkpoint is unreadable: fail rather than train from scratch over it.
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "step-00000005.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(FileNotFoundError, match="no usable checkpoint"):
        fit(tiny_config(synthetic_root, out), resume="auto")
    with pytest.raises(FileNotFoundError, match="no usable checkpoint"):
        fit(tiny_config(synthetic_root, out), resume="auto-or-new")
    # Explicit intent: continue when possible, otherwise start a new run.
    fresh = tmp_path / "fresh"
    assert fit(tiny_config(synthetic_root, fresh), resume="auto-or-new")["steps"] == 2
    losses = [r["loss"] for r in read_jsonl(fresh / "log.jsonl") if r["type"] == "train"]
    # The second time it continues the finished run instead of starting over (a new run would
    # begin a new log), with its own recipe: another seed is refused, not a reason to start over.
    with open(fresh / "log.jsonl", "a") as fh:
        fh.write(json.dumps({"type": "note", "step": 1}) + "\n")
    with pytest.raises(ValueError, match=r"train.seed=5 \(now 9\)"):
        fit(tiny_config(synthetic_root, fresh, seed=9), resume="auto-or-new")
    assert fit(tiny_config(synthetic_root, fresh), resume="auto-or-new")["steps"] == 2
    records = read_jsonl(fresh / "log.jsonl")
    assert [r["loss"] for r in records if r["type"] == "train"] == losses
    assert {"type": "note", "step": 1} in records


@pytest.mark.parametrize("words, message", [
    ("--lr abc", r"optim\.lr.*number.*'abc'"),
    ("--train.batch_size 0", r"train\.batch_size.*>= 1.*0"),
    ("--epochs -1", r"train\.epochs.*>= 1"),
    ("--max_steps 2.5", r"train\.max_steps.*integer"),
    ("--amp fp8", r"train\.amp.*'fp8'"),
    ("--optim.betas [0.9]", r"optim\.betas"),
    ("--weight_decay -1", r"optim\.weight_decay.*>= 0"),
    ("--image_size 0", r"data\.image_size"),
    ("--progress maybe", r"train\.progress=.maybe.: use true \(always bars\), false \(never\) or \"auto\""),
    ("--device bogus", r"train\.device.*'bogus'"),
])
def test_bad_recipe_values_name_the_key(words, message):
    with pytest.raises(ValueError, match=message):
        load_config("gl-msin-tiny-synthetic", parse_override_args(words.split()))


def test_trainer_checks_values_of_a_config_dict(synthetic_root, tmp_path):
    cfg = tiny_config(synthetic_root, tmp_path / "run", batch_size=0)
    with pytest.raises(ValueError, match=r"train\.batch_size"):
        Trainer(cfg)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(synthetic_root, tmp_path):
    from rrsis.engine.distributed import resolve_device

    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="'bogus'"):
        resolve_device("bogus")
    with pytest.raises(ValueError, match="CUDA is not available"):
        Trainer(tiny_config(synthetic_root, tmp_path / "run", device="cuda"))
