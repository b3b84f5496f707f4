"""Attention hot spots of GL-MSIN, every provider side by side in one process.

Window attention (Swin-B stages of a 480×480 input), ELSA aggregation (stages 1–3, k = 7) and PWAM
pixel→word attention (L = 20): eager reference, ``torch.compile``, SDPA with forced backends,
``flex_attention`` and the Triton kernels; forward and forward+backward; bf16 and fp32.

    python benchmarks/attention.py                          # everything (~15-25 min on an H200)
    python benchmarks/attention.py --ops window --batch 8   # a subset; results merge per GPU
    python benchmarks/attention.py --smoke                  # CPU check of the script itself

Writes ``benchmarks/results/<gpu-slug>.json`` and ``.md`` (see benchmarks/README.md).
"""

from __future__ import annotations

import _common as C  # first: puts the checkout on sys.path

C.enable_interpreter_for_smoke()

import argparse
import json
import math
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rrsis.kernels import reference as ref

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}
WINDOW = 12
HEAD_DIM = 32

# Swin-B at 480×480: patch 4 → 120², then 60, 30 (padded to 36 for window 12), 15 (→ 24).
# (stage, map side, padded side, channels, heads)
WINDOW_STAGES = [("S1", 120, 120, 128, 4), ("S2", 60, 60, 256, 8), ("S3", 30, 36, 512, 16),
                 ("S4", 15, 24, 1024, 32)]
# ELSA runs in stages 1–3 on the unpadded map; G = heads.  (stage, side, channels, heads)
ELSA_STAGES = [("S1", 120, 128, 4), ("S2", 60, 256, 8), ("S3", 30, 512, 16)]
ELSA_K = 7
# PWAM is single-head in LAVT: d = C.  (stage, side, channels)
PWAM_STAGES = [("S1", 120, 128), ("S2", 60, 256), ("S3", 30, 512), ("S4", 15, 1024)]
WORDS = 20

SMOKE_WINDOW = [("tiny", 8, 8, 32, 2)]  # window 4 in smoke runs, d = 16
SMOKE_ELSA = [("tiny", 8, 16, 2)]  # k = 3
SMOKE_PWAM = [("tiny", 6, 32)]  # L = 5


# ----------------------------------------------------------------------------- providers


def _region_ids(hp: int, wp: int, window: int, shift: int, device) -> torch.Tensor:
    """[nW, N] region id of every window token of the rolled map (Swin's shift-mask regions)."""
    def axis(n):
        r = torch.arange(n, device=device)
        return torch.where(r >= n - shift, 2, torch.where(r >= n - window, 1, 0))

    img = axis(hp)[:, None] * 3 + axis(wp)[None, :]
    img = img.view(hp // window, window, wp // window, window).permute(0, 2, 1, 3)
    return img.reshape(-1, window * window).to(torch.int32).contiguous()


def window_sdpa(backend_name: str):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from rrsis.kernels import sdpa

    backend = {"efficient": SDPBackend.EFFICIENT_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
               "math": SDPBackend.MATH, "flash": SDPBackend.FLASH_ATTENTION}[backend_name]

    def run(q, k, v, rel_bias, window, shift, scale):
        # The library's SDPA path (what the dispatcher runs), one backend forced: raises
        # instead of falling back.
        with sdpa_kernel([backend]):
            return sdpa.window_attention(q, k, v, rel_bias, window, shift, scale)

    return run


def window_flex():
    from torch.nn.attention.flex_attention import flex_attention

    from rrsis.kernels import sdpa

    flex = torch.compile(flex_attention, dynamic=False)
    regions: dict = {}

    def run(q, k, v, rel_bias, window, shift, scale):
        b, hp, wp, h = q.shape[:4]
        if shift:
            q, k, v = (torch.roll(t, (-shift, -shift), (1, 2)) for t in (q, k, v))
        qw, kw, vw = (sdpa.partition_windows(t, window) for t in (q, k, v))
        key = (hp, wp, window, shift, q.device)
        if key not in regions:
            regions[key] = _region_ids(hp, wp, window, shift, q.device)
        reg = regions[key]

        # Bias gathered and the shift mask recomputed from region ids inside the kernel;
        # the bias gradient flows to the captured rel_bias.
        def score_mod(score, bi, hh, qi, ki):
            s = score + rel_bias[hh % h, qi, ki]
            if shift:
                w = hh // h
                s = s + torch.where(reg[w, qi] == reg[w, ki], 0.0, -100.0)
            return s

        o = flex(qw, kw, vw, score_mod=score_mod, scale=scale)
        o = sdpa.merge_windows(o, b, hp, wp, h, window)
        return torch.roll(o, (shift, shift), (1, 2)) if shift else o

    return run


def pwam_sdpa(backend_name: str):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from rrsis.kernels import sdpa

    backend = {"efficient": SDPBackend.EFFICIENT_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
               "math": SDPBackend.MATH}[backend_name]

    def run(q, k, v, mask, scale):
        with sdpa_kernel([backend]):
            return sdpa.pixel_word_attention(q, k, v, mask, scale)

    return run


def pwam_flex():
    from torch.nn.attention.flex_attention import flex_attention

    flex = torch.compile(flex_attention, dynamic=False)

    def run(q, k, v, mask, scale):
        m = mask.to(q.dtype)[:, None, :, None]
        word_bias = (1e4 * mask.float() - 1e4).contiguous()  # [B, L]

        def score_mod(score, bi, hh, qi, ki):
            return score + word_bias[bi, ki]

        return flex(q, k * m, v * m, score_mod=score_mod, scale=scale)

    return run


def triton_ops():
    from rrsis.kernels import triton_ops as ops

    return ops


def triton_provider(op: str, config: dict | None):
    """The Triton op, with a non-default tile configuration when one is given (for tuning)."""
    ops = triton_ops()
    fn = {"window": ops.window_attention, "elsa": ops.elsa_aggregate,
          "pwam": ops.pixel_word_attention}[op]
    if not config:
        return fn
    kind = {"window": ops.WindowConfig, "elsa": ops.ElsaTiles, "pwam": ops.PwamConfig}[op]
    cfg = kind.from_kwargs(**config)
    return lambda *a: fn(*a, config=cfg)


def providers(op: str, device: str, configs: dict | None = None) -> dict[str, Callable[[], Callable]]:
    """name -> factory of the callable (factories so a failing import only fails that row)."""
    configs = configs or {}

    def compiled(f):
        return lambda: torch.compile(f, dynamic=False)

    # A tuned Triton variant gets its own provider name, so its rows do not replace the default's.
    tri = "triton" + (json.dumps(configs[op], separators=(",", ":")) if configs.get(op) else "")
    if op == "window":
        return {
            "eager": lambda: ref.window_attention,
            "compile": compiled(ref.window_attention),
            "sdpa-efficient": lambda: window_sdpa("efficient"),
            "sdpa-cudnn": lambda: window_sdpa("cudnn"),
            "sdpa-math": lambda: window_sdpa("math"),
            "flex": window_flex,
            tri: lambda: triton_provider("window", configs.get("window")),
        }
    if op == "elsa":
        return {
            "eager": lambda: ref.elsa_aggregate,
            "unfold": lambda: ref.elsa_aggregate_unfold,
            "compile": compiled(ref.elsa_aggregate),
            tri: lambda: triton_provider("elsa", configs.get("elsa")),
        }
    return {
        "eager": lambda: ref.pixel_word_attention,
        "compile": compiled(ref.pixel_word_attention),
        "sdpa-efficient": lambda: pwam_sdpa("efficient"),
        "sdpa-cudnn": lambda: pwam_sdpa("cudnn"),
        "sdpa-math": lambda: pwam_sdpa("math"),
        "flex": pwam_flex,
        tri: lambda: triton_provider("pwam", configs.get("pwam")),
    }


# ----------------------------------------------------------------------------- cases


@dataclass
class Case:
    op: str
    stage: str
    batch: int
    dtype: str
    dims: dict[str, Any]
    shift: int = 0

    @property
    def shape(self) -> str:
        d = self.dims
        if self.op == "window":
            return (f"map {d['side']}→{d['hp']}² C{d['c']} h{d['heads']} win{d['window']} "
                    f"shift{self.shift}")
        if self.op == "elsa":
            return f"map {d['side']}² C{d['c']} G{d['g']} k{d['k']}"
        return f"N {d['n']} C{d['c']} L{d['L']}"


def make_inputs(case: Case, device: str, seed: int = 0):
    """(args for the op, leaves needing grad, grad-output) with fresh random data."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    dt = DTYPES[case.dtype]
    d = case.dims

    def rnd(*shape, dtype=dt, scale=1.0):
        return (torch.randn(*shape, generator=g) * scale).to(device=device, dtype=dtype)

    b = case.batch
    if case.op == "window":
        hp, h, c, win = d["hp"], d["heads"], d["c"], d["window"]
        # q, k, v as views of one qkv Linear output, as in the Swin block.
        qkv = rnd(b, hp, hp, 3 * c).requires_grad_()
        q, k, v = qkv.view(b, hp, hp, 3, h, c // h).unbind(3)
        rb = rnd(h, win * win, win * win, dtype=torch.float32).requires_grad_()
        args = (q, k, v, rb, win, case.shift, (c // h) ** -0.5)
        out_shape = (b, hp, hp, h, c // h)
        return args, [qkv, rb], rnd(*out_shape)
    if case.op == "elsa":
        s, c, gg, k = d["side"], d["c"], d["g"], d["k"]
        v = rnd(b, c, s, s).requires_grad_()
        attn = torch.randn(b, gg, k * k, s, s, generator=g).softmax(2).to(device, dt).requires_grad_()
        mul = rnd(c, k * k).requires_grad_()
        add = rnd(c, k * k, scale=0.02).requires_grad_()
        return (v, attn, mul, add, k, 1), [v, attn, mul, add], rnd(b, c, s, s)
    n, c, L = d["n"], d["c"], d["L"]
    q = rnd(b, 1, n, c).requires_grad_()
    k = rnd(b, 1, L, c).requires_grad_()
    v = rnd(b, 1, L, c).requires_grad_()
    mask = torch.zeros(b, L, dtype=torch.long, device=device)
    mask[:, : max(1, int(0.7 * L))] = 1  # about 30 % padded words
    return (q, k, v, mask, c**-0.5), [q, k, v], rnd(b, 1, n, c)


def reference_result(case: Case, args, leaves, dout):
    """float32 eager reference on the same (rounded) inputs: output and leaf gradients."""
    up = [t.detach().float().requires_grad_() for t in leaves]
    if case.op == "window":
        b, hp, _, h, dd = args[0].shape
        q, k, v = up[0].view(b, hp, hp, 3, h, dd).unbind(3)
        out = ref.window_attention(q, k, v, up[1], *args[4:])
    elif case.op == "elsa":
        out = ref.elsa_aggregate(*up, *args[4:])
    else:
        out = ref.pixel_word_attention(*up, args[3], args[4])
    grads = torch.autograd.grad(out, up, dout.float())
    return out.detach(), [gr.detach() for gr in grads]


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float(), b.float()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


GATE = {"fp32": 5e-4, "bf16": 5e-2, "fp16": 1e-2}


# ----------------------------------------------------------------------------- byte models


def byte_models(case: Case, provider: str, mode: str) -> tuple[float, float]:
    """(minimal bytes, modelled bytes of this provider) for one call of ``mode``.

    Minimal: every input read once and every output written once (what a perfectly fused kernel
    must move); %HBM is computed from it so providers compare on one scale. Modelled: an
    approximate count of the HBM traffic of the provider's algorithm (materialised score tensors,
    layout copies), documented in benchmarks/README.md; it explains *why* a provider is slow.
    """
    e = torch.finfo(DTYPES[case.dtype]).bits // 8
    d = case.dims
    b = case.batch
    fb = mode == "fwd+bwd"
    if case.op == "window":
        hp, h, c, win = d["hp"], d["heads"], d["c"], d["window"]
        n = win * win
        nw = (hp // win) ** 2
        X = b * hp * hp * c * e  # one of q, k, v, o
        S = b * nw * h * n * n * e  # one score/probability tensor
        T = h * n * n * e  # bias table
        stats = b * hp * hp * h * 4
        sh = 1 if case.shift else 0
        minimal = 4 * X + T + (8 * X + 2 * T if fb else 0)
        if provider == "triton":
            model = 4 * X + stats + T + (12 * X + 4 * stats + 2 * T if fb else 0)
        elif provider in ("eager", "sdpa-math"):
            fwd = (8 * sh + 13) * X + (6 + 2 * sh) * S
            model = fwd + ((20 + 8 * sh) * X + 8 * S if fb else 0)
        elif provider == "compile":
            model = 12 * X + 4 * S + (14 * X + 6 * S if fb else 0)
        elif provider.startswith("sdpa"):
            M = nw * h * n * n * e  # bias+mask tensor, read once per image
            fwd = 8 * X + 2 * M + 4 * X + b * M
            model = fwd + (16 * X + 3 * b * M + M if fb else 0)
        else:  # flex: layout copies + fused kernel; dbias atomics stay in L2
            model = 12 * X + (16 * X if fb else 0)
        return minimal, model
    if case.op == "elsa":
        s, c, g, k = d["side"], d["c"], d["g"], d["k"]
        k2 = k * k
        X = b * c * s * s * e
        A = b * g * k2 * s * s * e
        minimal = 2 * X + A + (3 * X + 2 * A if fb else 0)
        if provider == "triton":
            model = minimal
        elif provider == "eager":
            model = 9 * k2 * X + A + 2 * X + (12 * k2 * X + A if fb else 0)
        elif provider == "unfold":
            model = 8 * k2 * X + 2 * X + A + (10 * k2 * X + A if fb else 0)
        else:  # compile of the shift loop: roughly fused into few passes
            model = 4 * X + A + (8 * X + 3 * A if fb else 0)
        return minimal, model
    n, c, L = d["n"], d["c"], d["L"]
    Q = b * n * c * e
    S = b * n * L * e
    minimal = 2 * Q + (3 * Q if fb else 0)
    if provider == "triton":
        extra = Q if (fb and c > 128) else 0  # chunked channels re-read q in backward
        model = 2 * Q + b * n * 4 + (3 * Q + extra + b * n * 4 if fb else 0)
    elif provider in ("eager", "sdpa-math"):
        model = 2 * Q + 8 * S + (4 * Q + 9 * S if fb else 0)
    elif provider == "compile":
        model = 2 * Q + 3 * S + (4 * Q + 5 * S if fb else 0)
    else:
        model = 2 * Q + (4 * Q if fb else 0)
    return minimal, model


def flops(case: Case, mode: str) -> float | None:
    if case.op != "window":
        return None
    d = case.dims
    n = d["window"] ** 2
    nw = (d["hp"] // d["window"]) ** 2
    fwd = 4.0 * case.batch * nw * d["heads"] * n * n * (d["c"] // d["heads"])
    return fwd * (3.5 if mode == "fwd+bwd" else 1.0)  # backward ≈ 2.5 × forward


# ----------------------------------------------------------------------------- runner


def build_cases(args) -> list[Case]:
    cases: list[Case] = []
    for op in args.ops:
        for batch in args.batch:
            for dtype in args.dtypes:
                if op == "window":
                    stages = SMOKE_WINDOW if args.smoke else WINDOW_STAGES
                    win = 4 if args.smoke else WINDOW
                    for stage, side, hp, c, h in stages:
                        if args.stages and stage not in args.stages:
                            continue
                        for shift in ([win // 2] if args.smoke else args.shifts):
                            # Swin does not shift a map that fits in one window.
                            if shift and hp <= win:
                                continue
                            dims = {"side": side, "hp": hp, "c": c, "heads": h, "window": win}
                            cases.append(Case("window", stage, batch, dtype, dims, shift))
                elif op == "elsa":
                    k = 3 if args.smoke else ELSA_K
                    for stage, s, c, h in (SMOKE_ELSA if args.smoke else ELSA_STAGES):
                        if args.stages and stage not in args.stages:
                            continue
                        dims = {"side": s, "c": c, "g": h, "k": k}
                        cases.append(Case("elsa", stage, batch, dtype, dims))
                else:
                    L = 5 if args.smoke else WORDS
                    for stage, s, c in (SMOKE_PWAM if args.smoke else PWAM_STAGES):
                        if args.stages and stage not in args.stages:
                            continue
                        dims = {"n": s * s, "c": c, "L": L}
                        cases.append(Case("pwam", stage, batch, dtype, dims))
    return cases


def _failure(exc: BaseException, args) -> str:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return "oom"
    if args.verbose:
        traceback.print_exception(exc)
    msg = str(exc).strip().splitlines()
    return f"error: {type(exc).__name__}: {msg[0][:160] if msg else ''}"


def _gate(err: float, dtype: str) -> str:
    if math.isfinite(err) and err <= GATE[dtype]:
        return "ok"
    return f"gate-failed (rel err {err:.2e})"


def run_case(case: Case, args, device: str, bandwidth: float | None) -> list[dict[str, Any]]:
    rows = []
    base = {"op": case.op, "stage": case.stage, "shape": case.shape, "batch": case.batch,
            "dtype": case.dtype, "shift": case.shift}
    call_args, leaves, dout = make_inputs(case, device)
    ref_out, ref_grads = reference_result(case, call_args, leaves, dout)
    fwd_args = tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in call_args)
    for name, factory in providers(case.op, device, args.triton_config).items():
        if args.providers and name.split("{")[0] not in args.providers:
            continue
        status: dict[str, str] = {}
        err: dict[str, float | None] = {"fwd": None, "fwd+bwd": None}
        first_call_s = None
        fn = None
        # First calls compile (torch.compile, flex, Triton JIT) and are timed on their own; then
        # the correctness gate: no mode is timed unless its outputs match the reference.
        try:
            fn = factory()
            C.sync(device)
            t0 = time.perf_counter()
            # Smoke runs check the forward on detached inputs (flex refuses CPU inputs that
            # require grad, having no CPU backward).
            with torch.no_grad() if (args.smoke or "fwd+bwd" not in args.modes) else _null():
                out = fn(*(fwd_args if args.smoke else call_args))
            C.sync(device)
            first_call_s = time.perf_counter() - t0
            err["fwd"] = rel_err(out.detach(), ref_out)
            status["fwd"] = _gate(err["fwd"], case.dtype)
            del out
        except Exception as exc:  # noqa: BLE001  (one provider's failure must not stop the run)
            status["fwd"] = _failure(exc, args)
        if "fwd+bwd" in args.modes:
            if status["fwd"] != "ok" and fn is None:
                status["fwd+bwd"] = status["fwd"]
            else:
                try:
                    for t in leaves:
                        t.grad = None
                    out = fn(*call_args)
                    out.backward(dout)
                    C.sync(device)
                    errs = [rel_err(out.detach(), ref_out)]
                    errs += [rel_err(t.grad, r) for t, r in zip(leaves, ref_grads)]
                    err["fwd+bwd"] = max(errs)
                    status["fwd+bwd"] = _gate(err["fwd+bwd"], case.dtype)
                    del out
                except Exception as exc:  # noqa: BLE001
                    status["fwd+bwd"] = _failure(exc, args)
        for t in leaves:
            t.grad = None

        def fwd(fn=fn):
            if args.smoke:
                with torch.no_grad():
                    return fn(*fwd_args)
            return fn(*call_args)

        def fwd_bwd(fn=fn):
            fn(*call_args).backward(dout)

        for mode in args.modes:
            row = {**base, "provider": name, "mode": mode, "status": status[mode],
                   "rel_err": err[mode], "first_call_s": first_call_s}
            minimal, model = byte_models(case, name, mode)
            row.update(bytes_min=minimal, bytes_model=model)
            if status[mode] == "ok":
                f = fwd if mode == "fwd" else fwd_bwd
                try:
                    p50, p20, p80 = C.time_ms(f, device, grad_to_none=leaves, warmup=args.warmup,
                                              rep=args.rep)
                    row.update(p50_ms=p50, p20_ms=p20, p80_ms=p80)
                    row["peak_bytes"] = C.peak_bytes(f, device, leaves)
                    if bandwidth:
                        row["pct_hbm"] = 100 * minimal / (p50 * 1e-3) / bandwidth
                        row["pct_hbm_model"] = 100 * model / (p50 * 1e-3) / bandwidth
                    fl = flops(case, mode)
                    if fl:
                        row["tflops"] = fl / (p50 * 1e-3) / 1e12
                except Exception as exc:  # noqa: BLE001
                    row["status"] = _failure(exc, args)
                for t in leaves:
                    t.grad = None
            rows.append(row)
        _print_rows(rows[-len(args.modes):])
        if device == "cuda":
            torch.cuda.empty_cache()
    return rows


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _print_rows(rows):
    for r in rows:
        t = f"{r['p50_ms']:9.4f} ms" if "p50_ms" in r else " " * 12
        hbm = f"{r['pct_hbm']:5.1f}%HBM" if r.get("pct_hbm") is not None else ""
        print(f"{r['op']:6s} {r['stage']:4s} B{r['batch']:<2d} {r['dtype']:4s} {r['mode']:7s} "
              f"{r['provider']:15s} {t} {hbm:10s} {r['status']}", flush=True)


# ----------------------------------------------------------------------------- report


def markdown(data: dict[str, Any]) -> str:
    runs = data.get("runs", [])
    last = runs[-1] if runs else {}
    lines = [
        "# Attention kernels benchmark",
        "",
        (f"GPU: **{last.get('gpu')}** (driver {last.get('driver')}, CUDA {last.get('cuda')}, "
         f"cuDNN {last.get('cudnn')}), torch {last.get('torch')}, triton {last.get('triton')}."),
        "",
        ("Produced by `benchmarks/attention.py`; a row is timed only after its provider passed a "
         "correctness gate against a float32 eager reference (status column). Times: p50 "
         "(p20–p80) over `triton.testing.do_bench` repetitions with L2 flushed; peak: extra device "
         "memory of one call; %HBM: minimal bytes (inputs read once, outputs written once) ÷ p50 ÷ "
         "the device-to-device copy bandwidth measured in the same run; %HBM model: the "
         "provider's modelled traffic instead (see README)."),
        "",
        "Runs merged into this file:",
        "",
    ]
    for r in runs:
        bw = r.get("bandwidth_gbs")
        bw_text = f"copy bandwidth {bw:.0f} GB/s" if bw else "no bandwidth (CPU)"
        lines.append(f"- {r.get('timestamp')}: {r.get('gpu')}, args `{r.get('argv')}`, {bw_text}")
    rows = data.get("rows", [])
    lines += ["", "## Targets (bf16, fwd+bwd, stages 1–3)", ""]
    lines += _targets(rows)
    for op, title in (("window", "Window attention"), ("elsa", "ELSA aggregation"),
                      ("pwam", "PWAM pixel→word attention")):
        sub = [r for r in rows if r["op"] == op]
        if not sub:
            continue
        lines += ["", f"## {title}", "",
                  ("| stage | shape | B | dtype | mode | provider | p50 ms (p20–p80) | peak MiB | "
                   "%HBM | %HBM model | × eager | status |"),
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        groups: dict = {}
        for r in sub:
            groups.setdefault((r["stage"], r["shape"], r["batch"], r["dtype"], r["mode"]), []).append(r)
        for key in sorted(groups, key=lambda k: (k[0], k[2], k[3], k[1], k[4])):
            grp = groups[key]
            eager = next((r.get("p50_ms") for r in grp if r["provider"] == "eager"), None)
            for r in grp:
                p = r.get("p50_ms")
                speed = f"{eager / p:.2f}" if (p and eager) else "–"
                times = (f"{p:.4f} ({r['p20_ms']:.4f}–{r['p80_ms']:.4f})" if p is not None else "–")
                lines.append(
                    f"| {r['stage']} | {r['shape']} | {r['batch']} | {r['dtype']} | {r['mode']} | "
                    f"{r['provider']} | {times} | {C.fmt_bytes(r.get('peak_bytes'))} | "
                    f"{C.fmt(r.get('pct_hbm'), '.1f')} | {C.fmt(r.get('pct_hbm_model'), '.1f')} | "
                    f"{speed} | {r['status']} |")
    return "\n".join(lines) + "\n"


def _targets(rows) -> list[str]:
    out = ["| op | stage | B | metric | value | target |", "|---|---|---|---|---|---|"]
    sel = [r for r in rows if r["dtype"] == "bf16" and r["mode"] == "fwd+bwd"
           and r["stage"] in ("S1", "S2", "S3") and r.get("p50_ms")]

    def get(op, stage, b, prov, shift=None):
        for r in sel:
            if (r["op"], r["stage"], r["batch"], r["provider"]) == (op, stage, b, prov) and (
                    shift is None or r["shift"] == shift):
                return r
        return None

    keys = sorted({(r["op"], r["stage"], r["batch"], r["shift"]) for r in sel})
    for op, stage, b, shift in keys:
        tri = get(op, stage, b, "triton", shift)
        if tri is None:
            continue
        if op == "elsa":
            unf = get(op, stage, b, "unfold")
            if unf:
                out.append(f"| elsa | {stage} | {b} | speed-up vs unfold | "
                           f"{unf['p50_ms'] / tri['p50_ms']:.1f}× | ≥ 10× |")
                if unf.get("peak_bytes") and tri.get("peak_bytes"):
                    out.append(f"| elsa | {stage} | {b} | peak-memory reduction vs unfold | "
                               f"{unf['peak_bytes'] / tri['peak_bytes']:.1f}× | ≥ 20× |")
        elif op == "window":
            best = [get(op, stage, b, p, shift) for p in
                    ("sdpa-efficient", "sdpa-cudnn", "flex", "compile")]
            best = [r for r in best if r]
            if best:
                fastest = min(best, key=lambda r: r["p50_ms"])
                out.append(f"| window (shift {shift}) | {stage} | {b} | speed-up vs best of "
                           f"SDPA/flex/compile ({fastest['provider']}) | "
                           f"{fastest['p50_ms'] / tri['p50_ms']:.2f}× | ≥ 1.5× |")
        else:
            continue
        if tri.get("pct_hbm") is not None:
            out.append(f"| {op} | {stage} | {b} | Triton %HBM | {tri['pct_hbm']:.1f} % | ≥ 50 % |")
    return out if len(out) > 2 else ["No bf16 fwd+bwd rows for stages 1–3 yet."]


# ----------------------------------------------------------------------------- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true",
                   help="CPU: every provider once at tiny shapes (checks the script, times nothing)")
    p.add_argument("--ops", nargs="+", default=["window", "elsa", "pwam"],
                   choices=["window", "elsa", "pwam"])
    p.add_argument("--batch", nargs="+", type=int, default=None, help="default: 1 8")
    p.add_argument("--dtypes", nargs="+", default=["bf16", "fp32"], choices=list(DTYPES))
    p.add_argument("--modes", nargs="+", default=["fwd", "fwd+bwd"], choices=["fwd", "fwd+bwd"])
    p.add_argument("--stages", nargs="+", default=None, help="e.g. S1 S2 (default: all)")
    p.add_argument("--shifts", nargs="+", type=int, default=[6],
                   help="window shifts (default 6 = SW-MSA; add 0 for W-MSA)")
    p.add_argument("--providers", nargs="+", default=None, help="subset of provider names")
    p.add_argument("--warmup", type=int, default=25, help="do_bench warm-up (ms)")
    p.add_argument("--rep", type=int, default=100, help="do_bench repetitions (ms)")
    p.add_argument("--tf32", action="store_true", help="allow TF32 for fp32 matmuls (default off)")
    p.add_argument("--out", type=Path, default=None,
                   help="results folder (default benchmarks/results; smoke: /tmp/rrsis-bench-smoke)")
    p.add_argument("--triton-config", type=json.loads, default=None, metavar="JSON",
                   help='tile overrides per op, e.g. \'{"window": {"block_m": 32, "num_warps": 8}}\' '
                        "(fields of WindowConfig / ElsaTiles / PwamConfig)")
    p.add_argument("--verbose", action="store_true", help="print tracebacks of provider errors")
    args = p.parse_args(argv)
    if args.batch is None:
        args.batch = [1] if args.smoke else [1, 8]
    if args.out is None:
        args.out = Path("/tmp/rrsis-bench-smoke") if args.smoke else C.RESULTS
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.smoke:
        C.require_cuda_or_exit("benchmarks/attention.py")
    device = "cpu" if args.smoke else "cuda"
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    import torch._dynamo as dynamo

    # One compiled function serves every shape/dtype: lift the recompile limits so torch.compile
    # never silently falls back to eager.
    dynamo.config.cache_size_limit = 512
    dynamo.config.accumulated_cache_size_limit = 4096
    env = C.environment(device)
    bandwidth = C.measure_bandwidth(device)
    print(f"# {env['gpu']} | torch {env['torch']} | triton {env['triton']} | CUDA {env['cuda']} | "
          f"driver {env['driver']}"
          + (f" | copy bandwidth {bandwidth / 1e9:.0f} GB/s" if bandwidth else ""), flush=True)
    rows = []
    for case in build_cases(args):
        rows += run_case(case, args, device, bandwidth)
    json_path, md_path = C.results_paths(env, args.out, "")
    data = C.merge_rows(json_path, env, rows,
                        ("op", "stage", "batch", "dtype", "shift", "mode", "provider"),
                        {"argv": " ".join(sys.argv[1:]),
                         "bandwidth_gbs": bandwidth / 1e9 if bandwidth else None})
    md_path.write_text(markdown(data))
    print(f"\nwrote {json_path} and {md_path}")
    bad = [r for r in rows if r["status"] != "ok"]
    print(f"{len(rows)} rows, {len(rows) - len(bad)} ok, {len(bad)} not timed "
          "(gate failure, error, oom or unsupported)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
