"""``benchmarks/gpu_check.py``: the one-call GPU lease script, checked on CPU with ``--dry-run``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from _fixtures import REPO

pytest.importorskip("triton")

ROOT = REPO
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
STEPS = ["tests", "dispatch", "profile", "swin", "train-torch", "train-compiled", "attention",
         "grad-checkpointing"]


def _run(*args, timeout=900):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RRSIS_KERNELS", None)
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env, timeout=timeout,
                          capture_output=True, text=True, check=False)


@pytest.mark.slow  # minutes on a 2-core CPU: the benchmarks' smoke runs go through the interpreter
def test_gpu_check_dry_run_runs_every_step_and_writes_results(tmp_path):
    proc = _run("--dry-run", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (json_path,) = tmp_path.glob("*-dry-run.json")
    data = json.loads(json_path.read_text())
    assert [s["step"] for s in data["steps"]] == STEPS
    assert all(s["status"] == "ok" for s in data["steps"]), data["steps"]
    env = data["environment"]
    for key in ("torch", "triton", "cuda", "driver", "gpu"):
        assert key in env
    # The default steps train the references, eager and compiled; the kernels' own 50-step train
    # (train-triton) is an --only step since the profile times the default kernels.
    assert data["train"]["triton"] is None
    for kern in ("torch", "torch-compiled"):
        row = data["train"][kern]
        assert row["steps"] == 3 and row["finite"] and row["images_per_s"] > 0
        assert row["backend_used"] == "torch"
    # attention.py's rows (its file is named after the device): ELSA timed by each provider run
    attention = [v for v in data["benchmarks"].values() if isinstance(v, dict) and "rows" in v
                 and any(isinstance(r, dict) and r.get("op") == "elsa" for r in v["rows"])]
    assert attention, data["benchmarks"].keys()
    assert {r["provider"] for r in attention[0]["rows"] if r["op"] == "elsa"} >= {"eager", "triton"}
    md = json_path.with_suffix(".md").read_text()
    assert "| train-torch | ok |" in md and "Default kernels / references under torch.compile" in md
    assert "head_channels_last" in md  # the cheap wins' A/B rows
    # Nothing but the two result files is left in the results folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([json_path.name, json_path.stem + ".md"])


@pytest.mark.slow  # 80 s on 2 cores: the profile, Swin-B, compiled and choice-table steps at toy size
def test_gpu_check_dry_run_profile_baselines_and_choice_table(tmp_path):
    # The script's own parts (profile, ceiling, baselines, choice table, the merged report), in
    # the default suite; the kernel tests and attention.py are the slow test's share.
    steps = ["dispatch", "profile", "swin", "train-torch", "train-compiled"]
    proc = _run("--dry-run", "--out", str(tmp_path), "--only", *steps)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (json_path,) = tmp_path.glob("*-dry-run.json")
    data = json.loads(json_path.read_text())
    assert [s["step"] for s in data["steps"]] == steps
    assert all(s["status"] == "ok" for s in data["steps"]), data["steps"]
    rows = data["train"]
    assert rows["torch"]["backend_used"] == "torch" and rows["torch"]["kernels"] == "torch"
    assert rows["torch-compiled"]["kernels"] == "torch + torch.compile"
    for row in (rows["torch"], rows["torch-compiled"]):
        assert row["finite"] and row["steps"] == 3 and row["size"] == 64
    # Same seed and data: compiled and eager start from the same loss.
    assert abs(rows["torch"]["first_loss"] - rows["torch-compiled"]["first_loss"]) < 1e-4
    prof = data["benchmarks"]["profile-model"]
    # FLOPs: the counter's share plus ELSA's 2·B·C·H·W·k² per block (tiny: 2 blocks × 3 stages).
    assert prof["flops"]["forward_counted"] > 0 and prof["flops"]["forward_elsa_aggregation"] > 0
    assert prof["flops"]["train_step"] == 3 * prof["flops"]["forward"]
    parts = set(prof["profile_train"]["parts"])
    assert {"text", "head", "loss", "backward", "optimizer", "s1.local-attn", "s1.pwam",
            "s1.gem", "s1.gate", "s4.pwam"} <= parts
    assert prof["profile_train"]["parts"]["s1.local-attn"]["calls_per_step"] == 2  # depth 2
    assert {"ghost_in_autocast_dtype", "head_channels_padded_to_8", "head_channels_last",
            "all_cheap_wins"} <= set(prof["ab"])
    assert data["benchmarks"]["profile-swin"]["train_images_per_s"] > 0
    disp = data["benchmarks"]["dispatch-table"]
    chosen = disp["devices"]["cpu"]
    assert {k.split(":")[0] for k in chosen} == {"window_attention", "pixel_word_attention",
                                                 "elsa_attention"}
    for r in disp["rows"]:
        assert r["choice"] == min(r["seconds"], key=r["seconds"].get)
    # ELSA's other tile shapes are candidates of their own (on the CPU they fail: no GPU).
    from rrsis.kernels.tiles import ELSA_FUSED_CANDIDATES

    tiles = {f"triton:{c.label}" for c in ELSA_FUSED_CANDIDATES[1:]}
    elsa = [r for r in disp["rows"] if r["op"] == "elsa_attention"]
    assert elsa and all(tiles <= set(r["seconds"]) | set(r["errors"]) for r in elsa)
    md = json_path.with_suffix(".md").read_text()
    for text in ("| train-compiled | ok |", "### Profile, train step", "## Choice table",
                 "Ceiling, timm", "references under torch.compile"):
        assert text in md, text
    # Nothing but the two result files is left in the results folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([json_path.name, json_path.stem + ".md"])


def test_gpu_check_dry_run_scene_step(tmp_path):
    # Whole-scene throughput: both modes on the smaller scene, tiles only on the largest.
    proc = _run("--dry-run", "--out", str(tmp_path), "--only", "scene")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (json_path,) = tmp_path.glob("*-dry-run.json")
    rows = json.loads(json_path.read_text())["scene"]
    assert [(r["size"], r["mode"]) for r in rows] == [(128, "tiles"), (128, "global-local"), (256, "tiles")]
    for r in rows:
        assert r["seconds"] > 0 and r["mpx_per_s"] > 0 and 0 <= r["foreground_fraction"] <= 1
        assert r["peak_rss_bytes"] > 0 and r["peak_cuda_bytes"] is None
    md = json_path.with_suffix(".md").read_text()
    assert "## Whole scenes" in md and "| gl-msin-tiny | 256² | tiles | fp32 |" in md


def test_gpu_check_dry_run_grad_checkpointing_step(tmp_path):
    # Peak memory and step time without and with model.set_grad_checkpointing(), one process.
    proc = _run("--dry-run", "--out", str(tmp_path), "--only", "grad-checkpointing")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (json_path,) = tmp_path.glob("*-dry-run.json")
    data = json.loads(json_path.read_text())
    assert [s["step"] for s in data["steps"]] == ["grad-checkpointing"]
    rows = data["benchmarks"]["grad-checkpointing"]["rows"]
    assert [r["grad_checkpointing"] for r in rows] == [False, True]
    for r in rows:
        assert r["model"] == "gl-msin-tiny" and r["finite"] and r["median_step_s"] > 0
        assert r["peak_bytes"] is None  # measured on a GPU only
    md = json_path.with_suffix(".md").read_text()
    assert "## Gradient checkpointing: gl-msin-tiny 64², B = 2, fp32" in md and "| True |" in md


def test_gpu_check_needs_a_gpu_or_dry_run(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    proc = _run("--out", str(tmp_path), timeout=300)
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr
    assert not list(tmp_path.iterdir())


def test_a_step_over_its_limit_is_killed_with_what_it_started(tmp_path, benchmark_module):
    """A step past its limit ends with its children (pytest, compile workers): no process of a
    killed step keeps the GPU; a step with no time left is skipped, not started."""
    import time

    gc = benchmark_module("gpu_check")
    pid_file = tmp_path / "grandchild.pid"
    spawn = ("import subprocess, sys, time; "
             "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
             f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    t0 = time.monotonic()
    row = gc._run_step("sleepy", [sys.executable, "-c", spawn], {}, 6, tmp_path)
    assert row["status"] == "timeout after 6 s" and time.monotonic() - t0 < 30
    pid = int(pid_file.read_text())
    for _ in range(50):  # the kill is immediate; give the kernel a moment to reap
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        with open(f"/proc/{pid}/stat") as f:
            if f.read().split()[2] == "Z":  # a zombie waiting for init is gone too
                break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the step's child {pid} outlived the timeout")
    skipped = gc._run_step("late", [sys.executable, "-c", "raise SystemExit(3)"], {}, gc.MIN_STEP - 1, tmp_path)
    assert skipped["status"].startswith("skipped")
    assert gc._run_step("fails", [sys.executable, "-c", "raise SystemExit(3)"], {}, 30, tmp_path)["status"] == "exit 3"
    # The default steps' limits, and the run's total, fit the 8 minutes of a lease.
    assert gc.TOTAL <= 480 and all(gc.LIMITS[s] <= gc.TOTAL for s in gc.DEFAULT_STEPS)
