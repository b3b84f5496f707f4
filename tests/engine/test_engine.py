"""rrsis.engine: optimiser groups, schedule, recipes, checkpoints, the trainer and its resume."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from _fixtures import recipe

import rrsis
from rrsis.engine import (
    Trainer,
    apply_overrides,
    atomic_save,
    list_checkpoints,
    list_configs,
    load_checkpoint,
    load_config,
    param_groups,
    parse_override_args,
    poly_lambda,
    read_jsonl,
)
from rrsis.engine.checkpoint import capture_rng, restore_rng
from rrsis.engine.distributed import ResumableSampler, ShardSampler
from rrsis.engine.optim import build_optimizer, build_scheduler
from rrsis.pictures import have_matplotlib


@pytest.fixture(scope="module")
def synthetic_root(synthetic_rrsisd):
    return synthetic_rrsisd(16)


def tiny_config(root: str, out: Path, **train) -> dict:
    return recipe(root, out, **{"log_every": 2, **train})


# ----------------------------------------------------------------------------- optimiser
def test_param_groups_follow_the_anchors():
    model = rrsis.create_model("gl-msin-tiny", text_freeze_last_layers=1)
    groups = {g["name"]: g for g in param_groups(model, weight_decay=0.01)}
    ids = {name: {id(p) for p in g["params"]} for name, g in groups.items()}
    assert groups["decay"]["weight_decay"] == 0.01
    assert groups["no_decay"]["weight_decay"] == 0.0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            assert all(id(p) not in s for s in ids.values()), f"frozen {name} is optimised"
            continue
        keyword = any(k in name for k in ("norm", "absolute_pos_embed", "relative_position_bias_table"))
        assert (id(p) in ids["no_decay"]) == keyword, name
        assert (id(p) in ids["decay"]) != keyword, name
    # The anchors optimise BERT layers 0..L-2 here (last layer and embeddings frozen) and decay
    # BERT's LayerNorm: its name does not contain the lower-case "norm".
    names = {n for n, p in model.named_parameters() if id(p) in ids["decay"]}
    assert any(n.startswith("text_encoder.bert.encoder.layer.0.") for n in names)
    assert not any(n.startswith("text_encoder.bert.encoder.layer.1.") for n in names)
    assert not any(n.startswith("text_encoder.bert.embeddings.") for n in names)
    assert any("LayerNorm" in n for n in names)
    assert any("relative_position_bias_table" in n for n, p in model.named_parameters()
               if id(p) in ids["no_decay"])


def test_text_lr_gets_its_own_groups():
    model = rrsis.create_model("gl-msin-tiny")
    opt = build_optimizer(model, lr=1e-3, text_lr=1e-4)
    by_name = {g["name"]: g for g in opt.param_groups}
    assert by_name["text_decay"]["lr"] == 1e-4 and by_name["decay"]["lr"] == 1e-3


def test_fused_adamw_is_opt_in_and_takes_the_same_steps():
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny")
    twin = rrsis.create_model("gl-msin-tiny")
    twin.load_state_dict(model.state_dict())
    start = {k: v.clone() for k, v in model.state_dict().items()}
    fused = build_optimizer(model, lr=1e-2, weight_decay=0.05, fused=True)
    plain = build_optimizer(twin, lr=1e-2, weight_decay=0.05)
    assert all(g["fused"] for g in fused.param_groups)
    assert not any(g["fused"] for g in plain.param_groups)
    params = dict(model.named_parameters())
    for step in range(3):
        g = torch.Generator().manual_seed(step)
        for name, p in twin.named_parameters():
            grad = torch.randn(p.shape, generator=g)
            p.grad, params[name].grad = grad.clone(), grad.clone()
        fused.step()
        plain.step()
    for name, p in twin.named_parameters():
        torch.testing.assert_close(params[name], p, rtol=1e-5, atol=1e-6)
        if p.requires_grad:  # three steps of lr 1e-2 move every trainable tensor
            assert not torch.equal(params[name], start[name]), name

@pytest.mark.parametrize("warmup", [0, 5])
def test_poly_schedule_per_iteration(warmup):
    total, base = 40, 0.1
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    sched = build_scheduler(opt, total, power=0.9, warmup_steps=warmup)
    seen = []
    for _ in range(total):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    for s, lr in enumerate(seen):
        expect = base * (1 - s / total) ** 0.9
        if s < warmup:
            expect *= (s + 1) / warmup
        assert lr == pytest.approx(expect, rel=1e-12, abs=1e-15)
    assert poly_lambda(total)(total) == 0.0


# ----------------------------------------------------------------------------- recipes
def test_shipped_recipes_carry_the_anchor_hyperparameters():
    names = set(list_configs())
    assert {"lavt-rrsisd", "lavt-refsegrs", "rmsin-rrsisd", "rmsin-refsegrs",
            "gl-msin-rrsisd", "gl-msin-refsegrs"} <= names
    for arch in ("lavt", "rmsin", "gl-msin"):
        for ds, epochs in (("rrsisd", 40), ("refsegrs", 60)):
            cfg = load_config(f"{arch}-{ds}")
            assert cfg["model"]["name"] == arch and cfg["data"]["dataset"] == ds
            assert cfg["optim"]["lr"] == (5e-5 if arch == "lavt" else 3e-5)
            assert cfg["optim"]["weight_decay"] == 1e-2 and cfg["optim"]["poly_power"] == 0.9
            assert cfg["train"]["epochs"] == epochs and cfg["train"]["batch_size"] == 8
            assert cfg["data"]["image_size"] == 480
            assert cfg["loss"]["class_weights"] == [0.9, 1.1]
            assert cfg["loss"]["dice_weight"] == (0.0 if arch == "lavt" else 0.1)
            assert rrsis.is_model(cfg["model"]["name"])


def test_overrides_bare_dotted_set_and_null():
    extra = ["--lr", "1e-4", "--model.use_gem", "false", "--model.head_hidden", "None", "--set", "train.epochs=2", "--optim.betas=[0.8,0.9]",
             "--warmup_steps", "7", "--data.dataset", "risbench", "--data.options.mask_threshold", "0"]
    cfg = load_config("gl-msin-rrsisd", parse_override_args(extra))
    assert cfg["optim"]["lr"] == 1e-4
    assert cfg["model"]["use_gem"] is False
    assert "head_hidden" in cfg["model"] and cfg["model"]["head_hidden"] is None
    assert cfg["train"]["epochs"] == 2 and cfg["optim"]["betas"] == [0.8, 0.9]
    assert cfg["optim"]["warmup_steps"] == 7 and cfg["data"]["options"]["mask_threshold"] == 0
    with pytest.raises(KeyError, match="unknown config key"):
        apply_overrides(cfg, ["optim.lrr=1"])
    with pytest.raises(KeyError, match="model.refine_steps"):
        apply_overrides(cfg, ["refine_steps=1"])
    with pytest.raises(ValueError, match="needs a value"):
        parse_override_args(["--lr"])


def test_config_files_extend_a_base_and_reject_typos(tmp_path):
    child = tmp_path / "mine.json"
    child.write_text(json.dumps({"base": "rmsin-rrsisd", "train": {"epochs": 3}}))
    cfg = load_config(child)
    assert cfg["train"]["epochs"] == 3 and cfg["optim"]["lr"] == 3e-5 and cfg["recipe"] == "mine"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"train": {"epoch": 3}}))
    with pytest.raises(KeyError, match="train.epoch"):
        load_config(bad)
    loop = tmp_path / "loop.json"
    loop.write_text(json.dumps({"base": str(loop)}))
    with pytest.raises(ValueError, match="circular"):
        load_config(loop)
    with pytest.raises(FileNotFoundError, match="unknown config"):
        load_config("no-such-recipe")


# ----------------------------------------------------------------------------- checkpoints
def test_atomic_save_never_leaves_a_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "state.pt"
    atomic_save({"x": torch.arange(3)}, path)

    def broken_save(obj, fh):
        fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"x": torch.arange(5)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["x"], torch.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.pt"]


def test_rng_capture_restores_every_generator():
    state = capture_rng()
    first = (random.random(), np.random.rand(), torch.rand(3))
    torch.save(state, buf := __import__("io").BytesIO())
    buf.seek(0)
    restore_rng(torch.load(buf, weights_only=True))
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == second[0] and first[1] == second[1] and torch.equal(first[2], second[2])


def test_sampler_resumes_mid_epoch_and_shards():
    data = list(range(23))
    full = ResumableSampler(data, seed=4)
    full.set_epoch(2)
    order = list(full)
    assert sorted(order) == data
    part = ResumableSampler(data, seed=4)
    part.set_epoch(2)
    part.set_start(9)
    assert list(part) == order[9:] and len(part) == len(order) - 9
    other = ResumableSampler(data, seed=4)
    other.set_epoch(3)
    assert list(other) != order
    shards = [list(ResumableSampler(data, seed=4, rank=r, world_size=2)) for r in range(2)]
    assert set(shards[0]) | set(shards[1]) == set(data)
    evals = [list(ShardSampler(23, r, 3)) for r in range(3)]
    assert sorted(i for shard in evals for i in shard) == data


# ----------------------------------------------------------------------------- trainer
def test_trainer_writes_log_plot_best_and_final(synthetic_root, tmp_path):
    cfg = tiny_config(synthetic_root, tmp_path / "run", max_steps=4, checkpoint_every=2,
                      keep_checkpoints=2, clip_grad_norm=1.0, grad_accum_steps=2)
    threads = torch.get_num_threads()
    try:
        trainer = Trainer(cfg)
        summary = trainer.fit()
    finally:
        torch.set_num_threads(threads)
    out = tmp_path / "run"
    assert summary["steps"] == 4
    assert set(summary["final"]) >= {"oIoU", "mIoU", "P@0.5", "P@0.9", "n"}
    # The RRSIS-D layout's polygons: the decoder that rasterised them is recorded per split.
    from rrsis.data.coco import have_pycocotools
    decoder = "pycocotools" if have_pycocotools() else "numpy"
    assert json.loads((out / "summary.json").read_text())["coco_backend"] == {"train": decoder, "val": decoder}
    steps = [s for s, _ in list_checkpoints(out)]
    assert steps == [4, 2]
    records = read_jsonl(out / "log.jsonl")
    train = [r for r in records if r["type"] == "train"]
    assert [r["step"] for r in train] == [2, 4]
    assert all(math.isfinite(r["loss"]) and "grad_norm" in r for r in train)
    assert any(r["type"] == "val" for r in records)
    assert have_matplotlib()  # a base dependency
    assert (out / "training.png").stat().st_size > 0
    best = rrsis.from_pretrained(out / "best")
    final = rrsis.from_pretrained(out / "final")
    assert best.tokenizer is not None and len(final.tokenizer) == len(trainer.tokenizer)
    state = load_checkpoint(out / "checkpoints" / "step-00000004.pt")
    for k, v in final.state_dict().items():
        assert torch.equal(v, state["model"][k]), k


def test_resume_rejects_another_batch_size(synthetic_root, tmp_path):
    cfg = tiny_config(synthetic_root, tmp_path / "run", max_steps=2, checkpoint_every=1)
    threads = torch.get_num_threads()
    try:
        Trainer(cfg).fit()
        cfg["train"]["batch_size"] = 2
        with pytest.raises(ValueError, match="batch_size"):
            Trainer(cfg).fit(resume="auto")
        with pytest.raises(ValueError, match="not an rrsis training checkpoint"):
            bogus = tmp_path / "bogus.pt"
            torch.save({"model": {}}, bogus)
            Trainer(cfg).fit(resume=bogus)
    finally:
        torch.set_num_threads(threads)


def _train_cmd(root: str, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from rrsis.cli import main; sys.exit(main())",
            "train", "--config", "gl-msin-tiny-synthetic", "--data.root", root,
            "--train.output_dir", str(out), "--threads", "1", "--progress", "false", "--seed", "5",
            "--batch_size", "4", "--max_steps", str(KILL_TEST_STEPS), "--checkpoint_every", "3",
            "--keep_checkpoints", "0", "--log_every", "2", *extra]


KILL_TEST_STEPS = 18


def _kill_after_checkpoint(proc: subprocess.Popen, out: Path, min_step: int, report: dict) -> None:
    """Load every checkpoint the moment it appears; SIGKILL ``proc`` once one reaches ``min_step``."""
    deadline = time.time() + 300
    checked: set[Path] = set()
    try:
        while time.time() < deadline and proc.poll() is None:
            found = list_checkpoints(out)
            for _, path in found:
                if path not in checked:
                    load_checkpoint(path)  # a half-written file would fail to load here
                    checked.add(path)
            if found and found[0][0] >= min_step:
                os.kill(proc.pid, signal.SIGKILL)
                report["killed_at"] = found[0][0]
                return
            time.sleep(0.02)
    except Exception as exc:  # noqa: BLE001  (reported to the test thread)
        report["error"] = exc
    finally:
        if proc.poll() is None and "killed_at" not in report:
            proc.kill()


def test_sigkill_then_resume_matches_an_uninterrupted_run(synthetic_root, tmp_path):
    """Kill ``rrsis train`` with SIGKILL mid-run; every checkpoint on disk loads, and the
    resumed run ends with exactly the weights of a run that was never interrupted."""
    import threading

    ref_out, cut_out = tmp_path / "straight", tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(_train_cmd(synthetic_root, cut_out), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    report: dict = {}
    watcher = threading.Thread(target=_kill_after_checkpoint, args=(proc, cut_out, 6, report))
    watcher.start()
    # The uninterrupted reference trains here meanwhile (one thread each: 2 cores are enough).
    cfg = tiny_config(synthetic_root, ref_out, max_steps=KILL_TEST_STEPS, checkpoint_every=3,
                      keep_checkpoints=0)
    threads = torch.get_num_threads()
    try:
        Trainer(cfg).fit()
    finally:
        torch.set_num_threads(threads)
        watcher.join(timeout=300)
        proc.wait()
    reference = load_checkpoint(list_checkpoints(ref_out)[0][1])
    assert reference["step"] == KILL_TEST_STEPS
    if "error" in report:
        raise report["error"]
    assert "killed_at" in report, f"training ended before it could be killed: {proc.stderr.read()[-2000:]}"
    assert proc.returncode == -signal.SIGKILL
    on_disk = list_checkpoints(cut_out)
    assert on_disk and on_disk[0][0] < KILL_TEST_STEPS
    for _, path in on_disk:
        load_checkpoint(path)

    done = subprocess.run(_train_cmd(synthetic_root, cut_out, "--resume", "auto"), env=env, check=False,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = load_checkpoint(list_checkpoints(cut_out)[0][1])
    assert resumed["step"] == KILL_TEST_STEPS
    assert resumed["model"].keys() == reference["model"].keys()
    for k, v in reference["model"].items():
        assert torch.equal(v, resumed["model"][k]), f"{k} differs after resume"
    for a, b in zip(reference["optimizer"]["state"].values(), resumed["optimizer"]["state"].values()):
        assert torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])
    # The resumed log reads like the straight one (same losses at the same steps).
    straight = [(r["step"], r["loss"]) for r in read_jsonl(ref_out / "log.jsonl") if r["type"] == "train"]
    again = [(r["step"], r["loss"]) for r in read_jsonl(cut_out / "log.jsonl") if r["type"] == "train"]
    assert straight == again


@pytest.mark.slow
def test_torchrun_two_processes_gloo(synthetic_root, tmp_path):
    """``torchrun --nproc_per_node 2`` (Gloo, CPU) trains the tiny recipe to the end."""
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed next to this Python")
    out = tmp_path / "ddp"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2",
           "--no-python", str(Path(sys.executable).with_name("rrsis")),
           "train", "--config", "gl-msin-tiny-synthetic", "--data.root", synthetic_root,
           "--train.output_dir", str(out), "--threads", "1", "--progress", "false", "--batch_size", "2",
           "--epochs", "2", "--checkpoint_every", "4", "--device", "cpu"]
    if not Path(cmd[5]).exists():
        pytest.skip("the rrsis console script is not installed next to this Python")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    state = load_checkpoint(list_checkpoints(out)[0][1])
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    assert summary["steps"] == state["step"] == state["total_steps"]
    assert (out / "final" / "model.safetensors").is_file()


def test_plot_is_skipped_with_a_warning_without_matplotlib(tmp_path, monkeypatch):
    from rrsis import pictures

    records = [{"type": "train", "step": 1, "loss": 1.0}, {"type": "val", "step": 1, "oIoU": 0.5}]
    monkeypatch.setattr(pictures, "have_matplotlib", lambda: False)
    with pytest.warns(UserWarning, match="pip install matplotlib"):
        assert pictures.plot_history(records, tmp_path / "p.png") is None
    assert not (tmp_path / "p.png").exists()


def test_jsonl_log_ignores_a_torn_line_and_truncates(tmp_path):
    from rrsis.engine.logs import JsonlLogger

    log = JsonlLogger(tmp_path / "log.jsonl")
    for s in (1, 2, 3):
        log.log({"type": "train", "step": s, "loss": float("nan") if s == 2 else 1.0})
    with open(tmp_path / "log.jsonl", "a") as fh:
        fh.write('{"type": "train", "st')  # a writer killed mid-line
    records = read_jsonl(tmp_path / "log.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3] and records[1]["loss"] is None
    log.truncate_after(2)
    assert [r["step"] for r in read_jsonl(tmp_path / "log.jsonl")] == [1, 2]


@pytest.mark.parametrize("flush", [True, False])
def test_cpu_training_flushes_subnormals_only_while_it_runs(synthetic_root, tmp_path, flush):
    cfg = tiny_config(synthetic_root, tmp_path / "run", max_steps=2, flush_denormal=flush)
    seen = []
    trainer = Trainer(cfg)
    # 1e-39 is a float32 subnormal: flushed, the product is exactly zero.
    trainer.model.register_forward_pre_hook(
        lambda *_: seen.append(float(torch.tensor([1e-39]) * 1.0) == 0.0))
    trainer.fit()
    assert seen and all(s == flush for s in seen)
    assert float(torch.tensor([1e-39]) * 1.0) != 0.0  # restored afterwards


def test_flush_denormal_must_be_a_boolean(synthetic_root, tmp_path):
    with pytest.raises(ValueError, match="flush_denormal"):
        Trainer(tiny_config(synthetic_root, tmp_path / "run", max_steps=1, flush_denormal="yes"))


@pytest.mark.parametrize("fused", [True, False])
def test_recipe_optim_fused_picks_the_adamw_implementation(synthetic_root, tmp_path, fused):
    cfg = tiny_config(synthetic_root, tmp_path / "run", max_steps=1)
    cfg["optim"]["fused"] = fused
    trainer = Trainer(cfg)
    assert all(bool(g["fused"]) == fused for g in trainer.optimizer.param_groups)
    cfg["optim"]["fused"] = "yes"
    with pytest.raises(ValueError, match="optim.fused"):
        Trainer(cfg)


def test_native_resolution_evaluation_matches_an_independent_reference(tiny_tokenizer):
    """evaluate(resolution="native") resizes back through model.postprocess: the numbers equal
    an explicit forward, torch's bilinear resize to each native size and the argmax."""
    import torch.nn.functional as F

    from rrsis.engine.evaluation import evaluate

    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", image_size=64, text_vocab_size=len(tiny_tokenizer)).eval()
    tok = tiny_tokenizer(["the red building", "a plane", "the largest tank"])
    rng = np.random.default_rng(0)
    samples, inter, union = [], [], []
    for i, (h, w) in enumerate([(50, 70), (64, 64), (31, 90)]):
        pix = torch.randn(3, 64, 64)
        native = torch.from_numpy(rng.random((h, w)) < 0.5)
        samples.append({"pixel_values": pix, "input_ids": tok["input_ids"][i], "attention_mask": tok["attention_mask"][i],
                        "mask": torch.zeros(64, 64, dtype=torch.long), "native_mask": native})
        with torch.no_grad():
            logits = model(pix[None], tok["input_ids"][i:i + 1], tok["attention_mask"][i:i + 1]).logits
        pred = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False).argmax(1)[0].bool()
        inter.append(int((pred & native).sum()))
        union.append(int((pred | native).sum()))
    got = evaluate(model, samples, batch_size=2, device="cpu", amp="off", resolution="native", progress=False)
    ious = [a / b for a, b in zip(inter, union)]
    assert got["n"] == 3 and got["oIoU"] == pytest.approx(sum(inter) / sum(union), abs=0, rel=1e-12)
    assert got["mIoU"] == pytest.approx(float(np.mean(ious)), abs=0, rel=1e-12)


@pytest.mark.parametrize(("side", "why"), [(70, "is not a multiple of 32"), (32, "too small for this model")])
def test_evaluate_names_the_dataset_size_a_model_cannot_take(tiny_tokenizer, side, why):
    """A dataset built at a size the model cannot take is answered with the dataset's remedy
    (its ``size=``), not model.predict's advice."""
    from rrsis.engine.evaluation import evaluate

    model = rrsis.create_model("gl-msin-tiny", image_size=64, text_vocab_size=len(tiny_tokenizer)).eval()
    tok = tiny_tokenizer(["the red building"])
    samples = [{"pixel_values": torch.randn(3, side, side), "input_ids": tok["input_ids"][0],
                "attention_mask": tok["attention_mask"][0], "mask": torch.zeros(side, side, dtype=torch.long)}]
    with pytest.raises(ValueError) as info:
        evaluate(model, samples, device="cpu", amp="off", progress=False)
    message = str(info.value)
    assert f"the dataset's samples are {side}x{side}" in message and why in message
    assert "size= a multiple of 32 of at least 64 (the model's own image_size is 64)" in message
    assert "model.predict" not in message


def test_the_trainer_counts_unreadable_expressions_once_before_any_worker(synthetic_root, tmp_path, caplog):
    """A vocabulary that knows none of the data's words: each split's expressions are counted and
    told once when the trainer is built (in the main process, not in each DataLoader worker)."""
    import logging

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nzzz\n", encoding="utf-8")
    cfg = tiny_config(synthetic_root, tmp_path / "run", max_steps=1)
    cfg["data"]["tokenizer"] = str(vocab)
    cfg["model"]["text_vocab_size"] = 6
    with caplog.at_level(logging.WARNING, logger="rrsis"):
        trainer = Trainer(cfg)
    told = [r.getMessage() for r in caplog.records if "no word the model knows" in r.getMessage()]
    for ds in (trainer.train_dataset, trainer.val_dataset):
        n = sum(len(e.sentences) for e in ds.entries)
        assert sum(f"{n} of {n} expressions have no word the model knows" in t for t in told) >= 1
        ds[0]  # a sample read (as a worker reads it): not told again
    assert len([r for r in caplog.records if "no word the model knows" in r.getMessage()]) == len(told) == 2
