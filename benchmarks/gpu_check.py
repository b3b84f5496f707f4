"""Everything a GPU (H100/H200) lease should run first, in one call of at most 8 minutes.

    python benchmarks/gpu_check.py              # on the GPU machine: writes benchmarks/results/<gpu>.json/.md
    python benchmarks/gpu_check.py --dry-run --out DIR   # CPU, toy sizes: every step once (tested)

Steps, each in its own process group with its own time limit (a step that overruns is killed
with what it started and recorded as ``timeout``; what it wrote before is kept, and the others
still run). Together they get ``TOTAL`` = 450 s: a step starts with at most what is left, and is
recorded as skipped once nothing is:

1. ``tests``: the fused-ELSA, tile-config and dispatcher tests with compiled kernels on the GPU;
2. ``dispatch``: every candidate of every kernel op at the models' shapes, ELSA's tile shapes
   among them (``benchmarks/dispatch_table.py --install``): fills
   ``rrsis/kernels/dispatch_table.json`` for this GPU (a copy lands beside the results as
   ``<gpu-slug>-dispatch_table.json``: commit it as the package's table), so the steps after it
   run with the measured choices;
3. ``profile``: GL-MSIN-B, 480², batch 8, bf16 autocast, default kernels
   (``benchmarks/profile_step.py --what model``): train and forward step time, images/s, MFU
   (FLOPs counted by the script: see that file), a ``torch.profiler`` table of the top kernels
   by self CUDA time, time per part (text, each stage's local attention / PWAM / GEM / gate,
   head, loss, backward, optimizer), GPU-busy ÷ wall, launches per step, and the A/B switches
   of the cheap wins (fused AdamW, ghost parameters in the autocast dtype, the refinement head
   channels-last and its 514-channel block inputs padded to 520, all of them together);
4. ``swin``: a plain timm Swin-B at 480², batch 8, bf16: the backbone's ceiling;
5. ``train-torch``: the same model with ``RRSIS_KERNELS=torch`` (PyTorch references), eager;
6. ``train-compiled``: that model under ``rrsis.kernels.compile_model`` (``torch.compile``,
   fullgraph) — the baseline the fused kernels must beat by 1.3×;
7. ``attention``: ``benchmarks/attention.py`` at batch 8, bf16, fwd+bwd (per-op %HBM);
8. ``grad-checkpointing``: GL-MSIN-B, 480², batch 8, bf16, default kernels, AdamW: peak memory
   and median train-step time without and with ``model.set_grad_checkpointing()`` (2 warm-up and
   4 timed steps each, one process, 30 s). Last, so it takes only what the others leave: it is
   skipped, not the others cut, when the run's total is spent.

``--only model scene train-triton`` runs the older steps (``benchmarks/model.py``, whole-scene
throughput, 50 train steps with the kernels), which no longer fit the default 8 minutes.

All results go to one ``<gpu-slug>.json`` + ``.md`` in the results folder, with the GPU, driver,
CUDA, torch and triton versions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as C  # first: puts the checkout on sys.path

HERE = Path(__file__).resolve().parent

# Seconds per step on the GPU; together under 8 minutes with the start-up of each process.
LIMITS = {"tests": 45, "profile": 110, "swin": 40, "train-torch": 45, "train-compiled": 120,
          "dispatch": 70, "attention": 50, "model": 75, "train-triton": 70, "scene": 90,
          "grad-checkpointing": 30}
# The whole run, steps together: a step gets what is left when it would overrun it, and is
# skipped when less than MIN_STEP seconds are left.
TOTAL, MIN_STEP = 450, 5.0
# The choice table is measured (and installed) before the model steps, so they run with the
# providers and tile shapes it picked: what a user gets once the table is committed.
DEFAULT_STEPS = ("tests", "dispatch", "profile", "swin", "train-torch", "train-compiled",
                 "attention", "grad-checkpointing")
DRY_LIMITS = {**dict.fromkeys(LIMITS, 600), "tests": 1200, "attention": 1200, "model": 1200,
              "train-compiled": 1200}


def _steps(dry: bool, out: Path) -> list[tuple[str, list[str], dict[str, str]]]:
    py = sys.executable
    if dry:
        tests = [py, "-m", "pytest", "-q", "-x", "-n", "0", "-p", "no:cacheprovider",
                 str(C.ROOT / "tests" / "kernels" / "test_kernels.py"), "-k", "dispatcher"]
        # torch.compile / flex providers compile for minutes on a CPU: eager and Triton only.
        attention = [py, str(HERE / "attention.py"), "--smoke", "--providers", "eager", "triton",
                     "--out", str(out)]
        model = [py, str(HERE / "model.py"), "--smoke", "--modes", "train", "--out", str(out)]
        interp = {"TRITON_INTERPRET": "1"}
    else:
        tests = [py, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
                 str(C.ROOT / "tests" / "kernels" / "test_kernels.py"), "-k",
                 "elsa_attention or dispatcher or tile or low_precision"]
        # The acceptance targets are bf16 fwd+bwd at batch 8; fp32 and fwd fit no lease.
        attention = [py, str(HERE / "attention.py"), "--batch", "8", "--dtypes", "bf16",
                     "--modes", "fwd+bwd", "--warmup", "5", "--rep", "20", "--out", str(out)]
        model = [py, str(HERE / "model.py"), "--batch", "8", "--precisions", "bf16",
                 "--warmup", "2", "--iters", "5", "--out", str(out)]
        interp = {"TRITON_INTERPRET": "0"}
    train = [py, str(Path(__file__).resolve()), "--train-one", "--out", str(out)]
    if dry:
        train.append("--dry-run")
    # Dry-run training goes through the kernels' custom ops, which on CPU without the
    # interpreter run the reference: the interpreter would take many minutes for 3 steps.
    train_env = {"TRITON_INTERPRET": "0"}
    dry_flag = ["--dry-run"] if dry else []
    prof = [py, str(HERE / "profile_step.py"), "--out", str(out), *dry_flag]
    dispatch = [py, str(HERE / "dispatch_table.py"), "--out", str(out), "--budget",
                "60", *dry_flag] + ([] if dry else ["--install"])
    return [
        ("tests", tests, interp),
        ("dispatch", dispatch, train_env),
        ("profile", prof + ["--what", "model"], train_env),
        ("swin", prof + ["--what", "swin"], train_env),
        ("train-torch", train + ["--kernels", "torch"], {**train_env, "RRSIS_KERNELS": "torch"}),
        ("train-compiled", train + ["--kernels", "torch", "--compile"],
         {**train_env, "RRSIS_KERNELS": "torch"}),
        ("attention", attention, interp),
        ("grad-checkpointing", [py, str(Path(__file__).resolve()), "--ckpt-one", "--out", str(out),
                                *dry_flag], train_env),
        ("model", model, interp),
        ("train-triton", train + ["--kernels", "triton"], {**train_env, "RRSIS_KERNELS": "triton"}),
        ("scene", [py, str(Path(__file__).resolve()), "--scene-one", "--out", str(out)]
         + (["--dry-run"] if dry else []), {"TRITON_INTERPRET": "0"}),
    ]


def _run_step(name, cmd, env_extra, limit, out: Path) -> dict[str, Any]:
    env = {**os.environ, **env_extra,
           "PYTHONPATH": os.pathsep.join([str(C.ROOT), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    log = out / f"{name}.log"
    if limit < MIN_STEP:
        log.write_text("")
        status = "skipped: the run's total time was spent"
    else:
        with open(log, "w") as f:
            # Its own process group, so a timeout also ends what the step started (pytest,
            # torch.compile's worker processes).
            proc = subprocess.Popen(cmd, cwd=C.ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                status = "ok" if proc.wait(timeout=limit) == 0 else f"exit {proc.returncode}"
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                status = f"timeout after {limit:.0f} s"
    text = log.read_text(errors="replace")
    print(f"[{name}] {status} in {time.perf_counter() - t0:.0f} s", flush=True)
    return {"step": name, "status": status, "seconds": round(time.perf_counter() - t0, 1),
            "command": " ".join(cmd[1:]), "tail": text[-3000:]}


# ----------------------------------------------------------------------------- one train run


def train_one(kernels: str, dry: bool, out: Path, compiled: bool = False) -> dict[str, Any]:
    """GL-MSIN train steps on random data; writes ``train-<kernels>[-compiled].json``."""
    import torch

    import rrsis

    device = "cpu" if dry else "cuda"
    name, size, batch, steps = ("gl-msin-tiny", 64, 2, 3) if dry else ("gl-msin", 480, 8, 25)
    torch.manual_seed(0)
    model = rrsis.create_model(name, image_size=size).to(device).train()
    if compiled:
        rrsis.kernels.compile_model(model, backend="aot_eager" if dry else "inductor")
    loss_fn = rrsis.ReferringLoss().to(device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-5,
                            weight_decay=1e-2)
    g = torch.Generator().manual_seed(0)
    vocab = model.text_encoder.config.vocab_size
    pixels = torch.randn(batch, 3, size, size, generator=g).to(device)
    ids = torch.randint(1, vocab, (batch, 20), generator=g).to(device)
    mask = torch.ones(batch, 20, dtype=torch.long)
    mask[:, 12:] = 0
    mask = mask.to(device)
    target = (torch.rand(batch, size, size, generator=g) > 0.7).long().to(device)
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=not dry)
    times, losses = [], []
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(steps):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        t0 = time.perf_counter()
        with autocast:
            loss = loss_fn(model(pixels, ids, mask), target)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device == "cuda":
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            times.append(time.perf_counter() - t0)
        losses.append(float(loss.detach()))
    timed = times[5:] if len(times) > 5 else times
    row = {"model": name, "size": size, "batch": batch, "steps": steps,
           "kernels": kernels + (" + torch.compile" if compiled else ""),
           "precision": "fp32" if dry else "bf16-autocast",
           "backend_used": rrsis.kernels.backend(pixels),
           "median_step_s": statistics.median(timed), "images_per_s": batch / statistics.median(timed),
           "first_loss": losses[0], "last_loss": losses[-1],
           "finite": all(math.isfinite(x) for x in losses),
           "peak_bytes": torch.cuda.max_memory_allocated() if device == "cuda" else None}
    (out / f"train-{kernels}{'-compiled' if compiled else ''}.json").write_text(
        json.dumps(row, indent=1))
    return row


def ckpt_one(dry: bool, out: Path) -> list[dict[str, Any]]:
    """GL-MSIN train steps without and with gradient checkpointing: peak memory and median step
    time of each; writes ``grad-checkpointing.json``."""
    import torch

    import rrsis

    device = "cpu" if dry else "cuda"
    name, size, batch, warm, steps = ("gl-msin-tiny", 64, 2, 1, 2) if dry else ("gl-msin", 480, 8, 2, 4)
    torch.manual_seed(0)
    model = rrsis.create_model(name, image_size=size).to(device).train()
    loss_fn = rrsis.ReferringLoss().to(device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-5)
    g = torch.Generator().manual_seed(0)
    vocab = model.text_encoder.config.vocab_size
    pixels = torch.randn(batch, 3, size, size, generator=g).to(device)
    ids = torch.randint(1, vocab, (batch, 20), generator=g).to(device)
    mask = torch.ones(batch, 20, dtype=torch.long, device=device)
    target = (torch.rand(batch, size, size, generator=g) > 0.7).long().to(device)
    rows = []
    for on in (False, True):
        model.set_grad_checkpointing(on)
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        times, losses = [], []
        for i in range(warm + steps):
            t0 = time.perf_counter()
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=not dry):
                loss = loss_fn(model(pixels, ids, mask), target)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if device == "cuda":
                torch.cuda.synchronize()
            if i >= warm:
                times.append(time.perf_counter() - t0)
            losses.append(float(loss.detach()))
        rows.append({"model": name, "size": size, "batch": batch, "grad_checkpointing": on,
                     "precision": "fp32" if dry else "bf16-autocast", "timed_steps": steps,
                     "median_step_s": statistics.median(times),
                     "peak_bytes": torch.cuda.max_memory_allocated() if device == "cuda" else None,
                     "finite": all(math.isfinite(x) for x in losses)})
        print(json.dumps(rows[-1]), flush=True)
    (out / "grad-checkpointing.json").write_text(json.dumps({"rows": rows}, indent=1))
    return rows


def _ckpt_lines(bench: dict) -> list[str]:
    rows = (bench.get("grad-checkpointing") or {}).get("rows") or []
    if not rows:
        return []
    r = rows[0]
    lines = ["", f"## Gradient checkpointing: {r['model']} {r['size']}², B = {r['batch']}, {r['precision']}, AdamW",
             "", "| grad_checkpointing | median step ms | peak GiB |", "|---|---|---|"]
    lines += [f"| {row['grad_checkpointing']} | {row['median_step_s'] * 1e3:.1f} | "
              f"{C.fmt(row['peak_bytes'] / 2**30 if row.get('peak_bytes') else None, '.2f')} |" for row in rows]
    return lines


# ----------------------------------------------------------------------------- whole scenes


def scene_one(dry: bool, out: Path) -> list[dict[str, Any]]:
    """``segment_scene`` throughput and memory on random scenes; writes ``scene.jsonl``."""
    import resource

    import numpy as np
    import torch

    import rrsis
    from rrsis.data.synthetic import vocabulary
    from rrsis.scene import segment_scene
    from rrsis.text import Tokenizer

    device = "cpu" if dry else "cuda"
    name, sizes = ("gl-msin-tiny", (128, 256)) if dry else ("gl-msin", (2048, 8192, 20480))
    tok = Tokenizer.from_words(vocabulary())
    torch.manual_seed(0)
    model = rrsis.create_model(name, text_vocab_size=len(tok)).to(device).eval()
    model.tokenizer = tok
    rng = np.random.default_rng(0)
    rows = []
    path = out / "scene.jsonl"
    # Warm-up (kernel compilation, cuDNN plans) outside the timed calls.
    with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=not dry):
        segment_scene(model, np.zeros((2 * model.image_size,) * 2 + (3,), np.uint8) + 127,
                      "the red building", mode="global-local", return_mask=False)
    for size in sizes:
        # Smooth random fields (not white noise), so the model sees image-like input.
        small = rng.integers(0, 256, (size // 32 + 1, size // 32 + 1, 3), dtype=np.uint8)
        scene = np.repeat(np.repeat(small, 32, axis=0), 32, axis=1)[:size, :size]
        # The largest scene in tiles mode only: both modes there overrun the step's time limit.
        for mode in ("tiles",) if size == sizes[-1] else ("tiles", "global-local"):
            if device == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=not dry):
                res = segment_scene(model, scene, "the largest red building in the north",
                                    mode=mode, batch_size=8, return_mask=False)
            if device == "cuda":
                torch.cuda.synchronize()
            sec = time.perf_counter() - t0
            row = {"model": name, "size": size, "mode": mode,
                   "precision": "fp32" if dry else "bf16-autocast", "seconds": round(sec, 3),
                   "mpx_per_s": round(size * size / 1e6 / sec, 4),
                   "foreground_fraction": round(res[0].area_px / (size * size), 4),
                   "peak_cuda_bytes": torch.cuda.max_memory_allocated() if device == "cuda" else None,
                   "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
            rows.append(row)
            with open(path, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
        del scene, small
    return rows


# ----------------------------------------------------------------------------- report


def _load(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _f(x, spec=".1f"):
    return C.fmt(x, spec) if x is not None else "–"


def _profile_lines(bench: dict, trains: dict) -> list[str]:
    """The profile, the Swin-B ceiling, the compiled baseline and the choice table, as markdown."""
    prof, swin, disp = bench.get("profile-model"), bench.get("profile-swin"), bench.get(
        "dispatch-table")
    lines: list[str] = []
    if prof and prof.get("timing"):
        t = prof["timing"]
        fl = prof.get("flops", {})
        title = (f"## {prof['model']} {prof['size']}², B = {prof['batch']}, {prof['precision']}, "
                 f"kernels {prof['kernels']} (benchmarks/profile_step.py)")
        train = (f"| train | {_f(t.get('train_step_ms'))} | {_f(t.get('train_images_per_s'))} | "
                 f"{_f(t.get('train_mfu'), '.1%')} | {_f(fl.get('train_step', 0) / 1e12, '.2f')} T |")
        fwd = (f"| forward | {_f(t.get('forward_ms'))} | {_f(t.get('forward_images_per_s'))} | "
               f"{_f(t.get('forward_mfu'), '.1%')} | {_f(fl.get('forward', 0) / 1e12, '.2f')} T |")
        lines += ["", title, "", "| step | ms | images/s | MFU | FLOPs (counted) |",
                  "|---|---|---|---|---|", train, fwd]
        comp = trains.get("torch-compiled")
        if comp and t.get("train_images_per_s"):
            lines += ["", (f"Default kernels / references under torch.compile, train step: "
                           f"**{t['train_images_per_s'] / comp['images_per_s']:.2f}×** (target "
                           "≥ 1.3×); target ≥ 100 img/s train, ≥ 300 img/s forward on an H100.")]
        if swin and swin.get("train_images_per_s"):
            lines += ["", (f"Ceiling, {swin['model']} at {swin['size']}², B = {swin['batch']}: "
                           f"train {swin['train_images_per_s']:.1f} img/s, forward "
                           f"{_f(swin.get('forward_images_per_s'))} img/s.")]
        for kind in ("train", "forward"):
            pr = prof.get(f"profile_{kind}")
            if not pr:
                continue
            lines += ["", (f"### Profile, {kind} step (per step: wall "
                           f"{pr['wall_ms_per_step']:.1f} ms, GPU busy "
                           f"{pr['gpu_busy_ms_per_step']:.1f} ms = "
                           f"{_f(pr['gpu_busy_over_wall'], '.0%')} of wall, "
                           f"{pr['launches_per_step']:.0f} kernel launches)"), "",
                      "| part | CUDA ms | CPU ms | calls |", "|---|---|---|---|"]
            lines += [f"| {k} | {v['cuda_ms_per_step']:.2f} | {v['cpu_ms_per_step']:.2f} | "
                      f"{v['calls_per_step']:.0f} |" for k, v in pr["parts"].items()]
            lines += ["", "| top kernels by self CUDA time | ms | calls |", "|---|---|---|"]
            lines += [f"| `{k['name'][:90]}` | {k['self_cuda_ms_per_step']:.2f} | "
                      f"{k['calls_per_step']:.0f} |" for k in pr["top_kernels"][:15]]
        if prof.get("ab"):
            lines += ["", "### Cheap wins, A/B against the default train step", "",
                      "| switch | train ms | images/s | vs default |", "|---|---|---|---|"]
            for k, v in prof["ab"].items():
                rel = (t["train_step_ms"] / v["train_step_ms"]) if t.get("train_step_ms") else None
                lines.append(f"| {k} | {v['train_step_ms']:.1f} | {v['train_images_per_s']:.1f} | "
                             f"{_f(rel, '.2f')}× |")
    if disp and disp.get("rows"):
        lines += ["", f"## Choice table ({disp['device']}; seconds per fwd+bwd, median)", "",
                  "| shape key | triton | compiled | eager | sdpa | triton, other tiles | chosen |",
                  "|---|---|---|---|---|---|---|"]
        for r in disp["rows"]:
            cell = [(_f(r["seconds"][p] * 1e3, ".2f") + " ms") if p in r["seconds"] else "–"
                    for p in ("triton", "compiled", "eager", "sdpa")]
            tiles = ", ".join(f"{p.split(':', 1)[1]} {_f(t * 1e3, '.2f')} ms"
                              for p, t in r["seconds"].items() if p.startswith("triton:")) or "–"
            lines.append(f"| `{r['key']}` | {' | '.join(cell)} | {tiles} | {r.get('choice', '–')} |")
    return lines


def report(env: dict[str, Any], steps: list[dict], work: Path, dest: Path, dry: bool) -> Path:
    bench = {p.stem: _load(p) for p in work.glob("*.json") if not p.stem.startswith("train-")}
    trains = {k: _load(work / f"train-{k}.json") for k in ("triton", "torch", "torch-compiled")}
    scene_path = work / "scene.jsonl"
    scenes = ([json.loads(x) for x in scene_path.read_text().splitlines() if x.strip()]
              if scene_path.exists() else [])
    data = {"environment": env, "dry_run": dry, "steps": steps, "train": trains,
            "scene": scenes, "benchmarks": bench}
    name = C.slug(env.get("gpu") or "cpu") + ("-dry-run" if dry else "")
    dest.mkdir(parents=True, exist_ok=True)
    json_path, md_path = dest / f"{name}.json", dest / f"{name}.md"
    lines = [
        f"# GPU check: {env.get('gpu') or 'CPU (dry run)'}",
        "",
        (f"Driver {env.get('driver')}, CUDA {env.get('cuda')}, torch {env.get('torch')}, "
        f"triton {env.get('triton')}; {env.get('timestamp')}. Produced by "
        f"`benchmarks/gpu_check.py{' --dry-run' if dry else ''}`."),
        "",
        "| step | status | seconds |",
        "|---|---|---|",
        *[f"| {s['step']} | {s['status']} | {s['seconds']} |" for s in steps],
        "",
        "## Train steps (random data, AdamW)",
        "",
        ("| model | image | B | precision | kernels | steps | median step ms | images/s | "
        "peak GiB | loss first → last |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in trains.values():
        if row:
            peak = C.fmt(row["peak_bytes"] / 2**30 if row.get("peak_bytes") else None, ".2f")
            lines.append(f"| {row['model']} | {row['size']} | {row['batch']} | {row['precision']} "
                         f"| {row['kernels']} | {row['steps']} | {row['median_step_s'] * 1e3:.1f} "
                         f"| {row['images_per_s']:.2f} | {peak} | {row['first_loss']:.4f} → "
                         f"{row['last_loss']:.4f} |")
    if trains["triton"] and trains["torch"]:
        ratio = trains["triton"]["images_per_s"] / trains["torch"]["images_per_s"]
        lines += ["", (f"Fused kernels / reference kernels, train step: **{ratio:.2f}×** "
                      "(target ≥ 1.3×).")]
    lines += _profile_lines(bench, trains)
    lines += _ckpt_lines(bench)
    if scenes:
        lines += ["", "## Whole scenes (`segment_scene`, random weights, tile = the model's input size, overlap 0.25, batch 8)",
                  "", "| model | scene | mode | precision | seconds | Mpx/s | peak CUDA GiB | peak RSS GiB |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in scenes:
            cuda = C.fmt(r["peak_cuda_bytes"] / 2**30 if r.get("peak_cuda_bytes") else None, ".2f")
            lines.append(f"| {r['model']} | {r['size']}² | {r['mode']} | {r['precision']} | "
                         f"{r['seconds']:.2f} | {r['mpx_per_s']:.1f} | {cuda} | "
                         f"{r['peak_rss_bytes'] / 2**30:.2f} |")
        lines += ["", ("With random weights the global pass marks an arbitrary share of the scene, "
                       "so global-local timings depend on how many tiles its gate keeps; tiles "
                       "mode runs every tile.")]
    for md in sorted(work.glob("*.md")):
        # The benchmarks' own tables, one heading level down.
        text = md.read_text()
        lines += [""] + [("#" + line) if line.startswith("#") else line
                         for line in text.splitlines()]
    data_text = json.dumps(data, indent=1, default=str) + "\n"
    for path, text in ((json_path, data_text), (md_path, "\n".join(lines) + "\n")):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return json_path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="CPU, toy sizes, every step once")
    p.add_argument("--out", type=Path, default=None,
                   help="results folder (default benchmarks/results; dry run: required)")
    p.add_argument("--only", nargs="+", default=None, help="run only these steps")
    p.add_argument("--train-one", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--kernels", default="triton", help=argparse.SUPPRESS)
    p.add_argument("--scene-one", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--ckpt-one", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.train_one:
        train_one(args.kernels, args.dry_run, args.out, args.compile)
        return 0
    if args.scene_one:
        scene_one(args.dry_run, args.out)
        return 0
    if args.ckpt_one:
        ckpt_one(args.dry_run, args.out)
        return 0
    if args.dry_run and args.out is None:
        p.error("--dry-run needs --out (dry-run results never go to benchmarks/results)")
    if not args.dry_run:
        C.require_cuda_or_exit("benchmarks/gpu_check.py")
    dest = args.out or C.RESULTS
    # Step outputs (logs, the benchmarks' own files) stay outside the results folder: their
    # contents go into the one JSON written there.
    work = Path(tempfile.mkdtemp(prefix="rrsis-gpu-check-"))
    env = C.environment("cpu" if args.dry_run else "cuda")
    print(f"# {env.get('gpu')} | driver {env.get('driver')} | torch {env['torch']} | "
          f"triton {env['triton']}", flush=True)
    limits = DRY_LIMITS if args.dry_run else LIMITS
    end = time.monotonic() + (math.inf if args.dry_run else TOTAL)
    steps = []
    for name, cmd, extra in _steps(args.dry_run, work):
        if name not in (args.only or DEFAULT_STEPS):
            continue
        steps.append(_run_step(name, cmd, extra, min(limits[name], end - time.monotonic()), work))
    path = report(env, steps, work, dest, args.dry_run)
    shutil.rmtree(work, ignore_errors=True)
    installed = C.ROOT / "rrsis" / "kernels" / "dispatch_table.json"
    if not args.dry_run and any(s["step"] == "dispatch" for s in steps) and installed.exists():
        copy = path.with_name(f"{path.stem}-dispatch_table.json")
        shutil.copyfile(installed, copy)
        print(f"copied the installed choice table to {copy}")
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0 if all(s["status"] == "ok" for s in steps) else 1


if __name__ == "__main__":
    raise SystemExit(main())
