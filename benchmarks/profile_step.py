"""Where a GL-MSIN-B step spends its GPU time: one step of ``benchmarks/gpu_check.py``.

    python benchmarks/profile_step.py --what model --out DIR [--dry-run]   # GL-MSIN, profiled
    python benchmarks/profile_step.py --what swin --out DIR [--dry-run]    # timm Swin-B ceiling

``model``: GL-MSIN-B at 480², batch 8, bf16 autocast, the default kernels: timed train steps
(forward, the project's loss, backward, AdamW) and forward steps (CUDA events, no profiler), then
``torch.profiler`` over 3 train steps and 3 forward steps:

- the top kernels by self CUDA time;
- time per part: ``record_function`` ranges opened by forward hooks around the text encoder,
  each stage's local attention blocks / PWAM / GEM / gate, and the head, plus ranges around the
  loss, the backward and the optimizer step (a part's time is the CUDA time of the kernels its
  range launched; the backward's kernels are not split by part);
- GPU-busy ÷ wall (the summed kernel time over the profiled wall time) and kernel launches per
  step;
- the A/B switches of the cheap wins (fused AdamW, ghost parameters in the autocast dtype, the
  refinement head channels-last and its 514-channel inputs padded to 520, and all of them together),
  each timed against the default in the same process.

FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` over one forward with the PyTorch reference
ops (``RRSIS_KERNELS=torch``), which counts every matmul, convolution and SDPA; the ELSA
aggregation (an elementwise loop, invisible to the counter) is added as ``2·B·C·H·W·k²`` per
block. A train step is counted as 3× the forward (the backward as twice the forward: the usual
estimate, slightly high since BERT's frozen layers get no weight gradients). MFU = FLOPs per step
÷ step time ÷ the GPU's dense bf16 peak (H100 / H200 SXM: 989 TFLOP/s).

``swin``: a plain timm Swin-B (window 12) at 480², batch 8, bf16 autocast, train and forward
step: the ceiling for this backbone without language fusion, GEM or the refinement head.

Each writes ``profile-<what>.json`` (+ ``.md``) into ``--out``, part by part as it goes, so a
step killed by its time limit still leaves what it measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import time
from pathlib import Path
from typing import Any

import _common as C  # noqa: F401  (puts the checkout on sys.path)

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12}


def peak_flops(name: str | None) -> float | None:
    for key, value in PEAK_BF16.items():
        if name and key in name:
            return value
    return None


class Result:
    """A JSON file rewritten after every measurement."""

    def __init__(self, path: Path, **head):
        self.path, self.data = path, dict(head)
        self.save()

    def __setitem__(self, key, value):
        self.data[key] = value
        self.save()

    def save(self):
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        os.replace(tmp, self.path)


# ----------------------------------------------------------------------------- parts


def _label(name: str) -> str | None:
    if name == "text_encoder":
        return "text"
    if name == "classifier":
        return "head"
    m = re.fullmatch(r"backbone\.layers\.(\d+)\.(blocks\.\d+\.attn|fusion|gem|res_gate)", name)
    if not m:
        return None
    part = {"fusion": "pwam", "gem": "gem", "res_gate": "gate"}.get(m.group(2), "local-attn")
    return f"s{int(m.group(1)) + 1}.{part}"


def label_parts(model) -> list:
    """Forward hooks that open a ``record_function`` range per part; returns the handles."""
    import torch

    handles = []
    for name, module in model.named_modules():
        label = _label(name)
        if label is None:
            continue

        def pre(mod, args, label=label):
            mod._rrsis_range = torch.profiler.record_function(label)
            mod._rrsis_range.__enter__()

        def post(mod, args, out):
            mod._rrsis_range.__exit__(None, None, None)

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
        if hasattr(module, "inject"):  # the language gate is applied through .inject, not forward
            handles.append(_wrap_inject(module, label))
    return handles


class _Restore:
    def __init__(self, module):
        self.module = module

    def remove(self):
        del self.module.inject  # the instance attribute: the class's method shows again


def _wrap_inject(module, label: str) -> _Restore:
    import torch

    inject = module.inject

    def wrapped(*args, **kwargs):
        with torch.profiler.record_function(label):
            return inject(*args, **kwargs)

    module.inject = wrapped
    return _Restore(module)


# ----------------------------------------------------------------------------- FLOPs


def count_flops(model, inputs) -> dict[str, float]:
    """Forward FLOPs: the counter's matmuls/convs/SDPA with the reference ops, plus ELSA."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    elsa = 0.0
    hooks = []
    for _name, module in model.named_modules():
        if type(module).__name__ == "ELSAAttention":
            def hook(mod, args, out):
                nonlocal elsa
                b, h, w, c = args[0].shape
                elsa += 2.0 * b * c * h * w * mod.kernel_size**2
            hooks.append(module.register_forward_hook(hook))
    old = os.environ.get("RRSIS_KERNELS")
    os.environ["RRSIS_KERNELS"] = "torch"
    try:
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(*inputs)
    finally:
        for h in hooks:
            h.remove()
        if old is None:
            os.environ.pop("RRSIS_KERNELS")
        else:
            os.environ["RRSIS_KERNELS"] = old
    counted = float(counter.get_total_flops())
    return {"forward_counted": counted, "forward_elsa_aggregation": elsa,
            "forward": counted + elsa, "train_step": 3 * (counted + elsa)}


# ----------------------------------------------------------------------------- timing


def _timer(device: str):
    import torch

    if device == "cuda":
        def run(fn, n):
            times = []
            for _ in range(n):
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                fn()
                b.record()
                torch.cuda.synchronize()
                times.append(a.elapsed_time(b) / 1e3)
            return times
    else:
        def run(fn, n):
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            return times
    return run


def _steps(model, loss_fn, opt, inputs, target, autocast):
    import torch

    def train():
        with autocast:
            with torch.profiler.record_function("forward"):
                out = model(*inputs)
            with torch.profiler.record_function("loss"):
                loss = loss_fn(out, target)
        with torch.profiler.record_function("backward"):
            loss.backward()
        with torch.profiler.record_function("optimizer"):
            opt.step()
            opt.zero_grad(set_to_none=True)

    def forward():
        with torch.no_grad(), autocast:
            model(*inputs)

    return train, forward


def _profile(fn, steps: int, device: str) -> dict[str, Any]:
    import torch
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    with profile(activities=acts) as prof:
        for _ in range(steps):
            fn()
        if device == "cuda":
            torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    events = prof.key_averages()

    def dev_self(e):
        return getattr(e, "self_device_time_total", 0.0) or 0.0

    def dev_total(e):
        return getattr(e, "device_time_total", 0.0) or 0.0

    kernels = [e for e in events if str(getattr(e, "device_type", "")).endswith("CUDA")]
    busy_us = sum(dev_self(e) for e in kernels)
    top = sorted(kernels, key=dev_self, reverse=True)[:25]
    parts = {}
    for e in events:
        if _is_part(e.key):
            parts[e.key] = {"cuda_ms_per_step": dev_total(e) / 1e3 / steps,
                            "cpu_ms_per_step": e.cpu_time_total / 1e3 / steps,
                            "calls_per_step": e.count / steps}
    return {
        "steps": steps, "wall_ms_per_step": wall * 1e3 / steps,
        "gpu_busy_ms_per_step": busy_us / 1e3 / steps,
        "gpu_busy_over_wall": (busy_us / 1e6) / wall if device == "cuda" else None,
        "launches_per_step": sum(e.count for e in kernels) / steps,
        "top_kernels": [{"name": e.key[:120], "self_cuda_ms_per_step": dev_self(e) / 1e3 / steps,
                         "calls_per_step": e.count / steps} for e in top],
        "parts": dict(sorted(parts.items())),
    }


def _is_part(key: str) -> bool:
    return key in ("text", "head", "forward", "loss", "backward", "optimizer") or bool(
        re.fullmatch(r"s\d\.(local-attn|pwam|gem|gate)", key))


def profile_model(dry: bool, out: Path) -> dict[str, Any]:
    import torch

    import rrsis
    from rrsis.backbones.elsa import ELSAAttention

    device = "cpu" if dry else "cuda"
    name, size, batch = ("gl-msin-tiny", 64, 2) if dry else ("gl-msin", 480, 8)
    n_time, n_prof = (2, 1) if dry else (15, 3)
    gpu = torch.cuda.get_device_name() if device == "cuda" else None
    res = Result(out / "profile-model.json", model=name, size=size, batch=batch, gpu=gpu,
                 precision="fp32" if dry else "bf16-autocast",
                 kernels=os.environ.get("RRSIS_KERNELS", "auto"))
    torch.manual_seed(0)
    model = rrsis.create_model(name, image_size=size).to(device).train()
    g = torch.Generator().manual_seed(0)
    vocab = model.text_encoder.config.vocab_size
    inputs = (torch.randn(batch, 3, size, size, generator=g).to(device),
              torch.randint(1, vocab, (batch, 20), generator=g).to(device),
              torch.ones(batch, 20, dtype=torch.long).to(device))
    target = (torch.rand(batch, size, size, generator=g) > 0.7).long().to(device)
    flops = count_flops(model, inputs)
    res["flops"] = flops
    loss_fn = rrsis.ReferringLoss().to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=not dry)
    timer = _timer(device)
    peak = peak_flops(gpu)

    def measure(label, fused=False):
        kw = {"fused": True} if fused else {}
        opt = torch.optim.AdamW(params, lr=3e-5, weight_decay=1e-2, **kw)
        train, forward = _steps(model, loss_fn, opt, inputs, target, autocast)
        times = timer(train, n_time)
        step = statistics.median(times[2:] if len(times) > 4 else times)
        row = {"train_step_ms": step * 1e3, "train_images_per_s": batch / step,
               "train_mfu": flops["train_step"] / step / peak if peak else None}
        if label == "default":
            ftimes = timer(forward, n_time)
            fstep = statistics.median(ftimes[2:] if len(ftimes) > 4 else ftimes)
            row.update({"forward_ms": fstep * 1e3, "forward_images_per_s": batch / fstep,
                        "forward_mfu": flops["forward"] / fstep / peak if peak else None})
        return row, train, forward

    timing, train, forward = measure("default")
    res["timing"] = timing
    handles = label_parts(model)
    try:
        res["profile_train"] = _profile(train, n_prof, device)
        res["profile_forward"] = _profile(forward, n_prof, device)
    finally:
        for h in handles:
            h.remove()
    # Cheap wins, A/B in this process (defaults unchanged until these say otherwise); the file
    # is rewritten after each, so a step killed for time keeps the ones measured.
    ab = {}

    def record(label, **kw):
        ab[label] = measure(label, **kw)[0]
        res["ab"] = ab

    if device == "cuda":
        record("fused_adamw", fused=True)
    head = model.classifier
    with _switched(ELSAAttention, ghost_in_autocast_dtype=True):
        record("ghost_in_autocast_dtype")
    if hasattr(head, "use_channels_last"):  # the refinement head (GL-MSIN)
        with _switched(head, pad_channels_to=8):
            record("head_channels_padded_to_8")
        head.use_channels_last()
        try:
            record("head_channels_last")
            with _switched(head, pad_channels_to=8), \
                    _switched(ELSAAttention, ghost_in_autocast_dtype=True):
                record("all_cheap_wins", fused=device == "cuda")
        finally:
            head.use_channels_last(False)
    return res.data


class _switched:
    """Set attributes for the length of a ``with`` block, then put the old values back."""

    def __init__(self, obj, **values):
        self.obj, self.values = obj, values
        self.old = {k: getattr(obj, k) for k in values}

    def __enter__(self):
        for k, v in self.values.items():
            setattr(self.obj, k, v)

    def __exit__(self, *exc):
        for k, v in self.old.items():
            setattr(self.obj, k, v)


def swin_ceiling(dry: bool, out: Path) -> dict[str, Any]:
    import timm
    import torch

    device = "cpu" if dry else "cuda"
    size, batch, n = (64, 2, 2) if dry else (480, 8, 12)
    kw = {"embed_dim": 32, "depths": (1, 1, 1, 1), "num_heads": (1, 2, 4, 8), "window_size": 2} \
        if dry else {}
    model = timm.create_model("swin_base_patch4_window12_384", pretrained=False, img_size=size,
                              num_classes=0, **kw).to(device).train()
    gpu = torch.cuda.get_device_name() if device == "cuda" else None
    res = Result(out / "profile-swin.json", model="timm swin_base_patch4_window12_384" +
                 (" (dry-run toy sizes)" if dry else ""), size=size, batch=batch, gpu=gpu)
    x = torch.randn(batch, 3, size, size, device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=not dry)
    timer = _timer(device)

    def train():
        with autocast:
            loss = model(x).float().square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def forward():
        with torch.no_grad(), autocast:
            model(x)

    t = statistics.median(timer(train, n)[1:])
    res["train_step_ms"], res["train_images_per_s"] = t * 1e3, batch / t
    f = statistics.median(timer(forward, n)[1:])
    res["forward_ms"], res["forward_images_per_s"] = f * 1e3, batch / f
    return res.data


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--what", choices=("model", "swin"), required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--dry-run", action="store_true", help="CPU, toy sizes")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(KeyboardInterrupt):
        (profile_model if args.what == "model" else swin_ceiling)(args.dry_run, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
