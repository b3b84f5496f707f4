"""Ahead-of-time compile of every kernel specialisation the shipped models launch, for one GPU.

``python -m rrsis.kernels.aot [--arch 90] [--jobs 2] [--json out.json]`` builds the launch plans
of :mod:`rrsis.kernels` from meta tensors laid out exactly as the models pass them (Swin-B and
Swin-S/T stage shapes of a 480×480 input, training batch 8 and inference batch 1, float32 /
autocast bfloat16 / bfloat16 weights, shift on/off, ghost terms on/off, the channels-last and
NCHW splits of ELSA's ``pre_proj``), groups them by what Triton would compile (signature,
constants, alignment attributes, options), compiles each group for ``GPUTarget("cuda", arch, 32)``
with the ptxas shipped in the triton wheel, and reports registers and spill bytes. No GPU is needed;
it must run with ``TRITON_INTERPRET=0``. The set it compiles is :data:`rrsis.kernels.support`'s
envelope, so the dispatcher never launches a configuration this did not compile.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import torch

from .._atomic import atomic_open
from . import support
from .aot_report import occupancy, write_markdown

__all__ = ["Spec", "compile_groups", "specialisations"]

META = torch.device("meta")


@dataclass
class Spec:
    """One launch the models make: where it comes from and its plan."""

    kernel: str
    where: str
    plan: object = field(repr=False)


def _t(shape, dtype, strides=None):
    if strides is None:
        return torch.empty(shape, dtype=dtype, device=META)
    return torch.empty_strided(shape, strides, dtype=dtype, device=META)


def _window_specs(model, stage, hp, heads, batch, shift, dtype, train, sms):
    from .triton_window import DEFAULT, plan_window_fwd
    from .triton_window_bwd import dq_tiles, n_chunks, plan_window_bwd

    d, win = support.WINDOW_HEAD_DIM, support.WINDOW
    n = win * win
    # q, k, v: views of the qkv Linear output [B, Hp, Wp, 3·heads·d].
    qkv = _t((batch, hp, hp, 3 * heads * d), dtype).view(batch, hp, hp, 3, heads, d)
    q, k, v = qkv.unbind(3)
    rb = _t((heads, n, n), dtype)
    o = _t(q.shape, dtype)
    lse = _t((batch, hp, hp, heads), torch.float32)
    where = f"{model} stage {stage} B={batch} {str(dtype)[6:]} shift={shift}"
    specs = [Spec("window_fwd", where, plan_window_fwd(q, k, v, rb, o, lse, win, shift,
                                                      d**-0.5, DEFAULT))]
    if train:
        total = batch * (hp // win) ** 2
        dq_bm = dq_tiles(DEFAULT, n)[0]
        chunks = n_chunks(DEFAULT, total, -(-n // dq_bm) * heads, sms)
        part = _t((chunks, heads, n, n), torch.float32)
        g = [_t(q.shape, dtype) for _ in range(4)]
        a, b = plan_window_bwd(q, k, v, rb, o, g[0], lse, _t(lse.shape, torch.float32), g[1],
                               g[2], g[3], part, win, shift, d**-0.5, DEFAULT, True, chunks)
        specs += [Spec("window_bwd_dq", where, a), Spec("window_bwd_dkdv", where, b)]
    return specs


def _elsa_specs(model, stage, hw, channels, heads, batch, mode, ghost, layout, train, sms):
    from .triton_elsa import DEFAULT, _block_p, elsa_chunks, out_dtype, plan_elsa_bwd, plan_elsa_fwd

    ks = support.ELSA_KERNEL
    k2 = ks * ks
    # Autocast: pre_proj (a conv) runs in bf16, the softmax of the generated map in float32,
    # and the ghost parameters stay float32.
    vdt, adt, gdt = {"fp32": (torch.float32,) * 3, "bf16": (torch.bfloat16,) * 3,
                     "autocast-bf16": (torch.bfloat16, torch.float32, torch.float32),
                     "autocast-fp16": (torch.float16, torch.float32, torch.float32)}[mode]
    qk = -(-(channels // 3 * 2) // 8) * 8
    wide = 2 * qk + channels
    if layout == "nhwc":  # pre_proj applied to x.permute(0, 3, 1, 2): channels-last output
        pre = _t((batch, wide, hw, hw), vdt, (hw * hw * wide, 1, hw * wide, wide))
    else:
        pre = _t((batch, wide, hw, hw), vdt)
    v = pre[:, 2 * qk:]
    attn = _t((batch, heads, k2, hw, hw), adt)
    has_mul, has_add = ghost in ("both",), ghost in ("add", "both")
    mul = _t((channels, k2), gdt) if has_mul else v
    add = _t((channels, k2), gdt) if has_add else v
    y = _t((batch, channels, hw, hw), out_dtype(v, attn, mul if has_mul else None,
                                               add if has_add else None))
    where = f"{model} stage {stage} B={batch} {mode} ghost={ghost} v={layout}"
    specs = [Spec("elsa_fwd", where, plan_elsa_fwd(v, attn, mul, add, y, ks, 1, DEFAULT,
                                                  has_mul, has_add))]
    if train:
        # dy arrives through y.permute(0, 2, 3, 1) and the output Linear: channels-last.
        dy = _t((batch, channels, hw, hw), y.dtype, (hw * hw * channels, 1, hw * channels, channels))
        bp = _block_p(DEFAULT, 32, hw * hw)
        num_p = -(-hw * hw // bp)
        chunks = elsa_chunks(DEFAULT, num_p, batch * heads, has_mul or has_add, sms)
        part = _t((batch * chunks, channels, k2), torch.float32)
        plan = plan_elsa_bwd(v, attn, mul, add, dy, _t(v.shape, vdt), _t(attn.shape, adt),
                             part if has_mul else v, part if has_add else v, ks, 1, DEFAULT,
                             has_mul, has_add, has_mul, has_add, chunks)
        specs.append(Spec("elsa_bwd", where, plan))
    return specs


def _elsa_fused_specs(model, stage, hw, channels, heads, batch, mode, ghost, layout, train, sms):
    from .triton_elsa_fused import (
        DEFAULT,
        _tiles,
        fused_out_dtype,
        ghost_chunks,
        plan_fused_bwd,
        plan_fused_fwd,
        plan_fused_ghost,
    )

    ks = support.ELSA_KERNEL
    k2 = ks * ks
    # Autocast: pre_proj and the generator (convs) run in bf16 and so do the logits; the ghost
    # parameters stay float32.
    vdt, gdt = {"fp32": (torch.float32,) * 2, "bf16": (torch.bfloat16,) * 2,
                "autocast-bf16": (torch.bfloat16, torch.float32),
                "autocast-fp16": (torch.float16, torch.float32)}[mode]
    qk = -(-(channels // 3 * 2) // 8) * 8
    wide = 2 * qk + channels
    if layout == "nhwc":  # pre_proj applied to x.permute(0, 3, 1, 2): channels-last outputs
        pre = _t((batch, wide, hw, hw), vdt, (hw * hw * wide, 1, hw * wide, wide))
        gen = heads * k2
        logits = _t((batch, heads, k2, hw, hw), vdt,
                    (hw * hw * gen, k2, 1, hw * gen, gen))
    else:
        pre = _t((batch, wide, hw, hw), vdt)
        logits = _t((batch, heads, k2, hw, hw), vdt)
    v = pre[:, 2 * qk:]
    has_mul, has_add = ghost in ("both",), ghost in ("add", "both")
    mul = _t((channels, k2), gdt) if has_mul else v
    add = _t((channels, k2), gdt) if has_add else v
    y = _t((batch, hw, hw, channels), fused_out_dtype(v, logits))
    lse = _t((batch, heads, hw, hw), torch.float32)
    where = f"{model} stage {stage} B={batch} {mode} ghost={ghost} v={layout}"
    specs = [Spec("elsa_fused_fwd", where, plan_fused_fwd(v, logits, mul, add, y, lse, ks, 1,
                                                         DEFAULT, has_mul, has_add))]
    if train:
        dy = _t(y.shape, y.dtype)  # the output Linear's input gradient: [B, H, W, C] dense
        dv = _t(v.shape, vdt, (hw * hw * channels, 1, hw * channels, channels)
                if layout == "nhwc" else None)
        dl = _t((batch, heads, k2, hw, hw), vdt)
        specs.append(Spec("elsa_fused_bwd", where, plan_fused_bwd(
            v, logits, mul, add, dy, lse, dv, dl, ks, 1, DEFAULT, has_mul, has_add)))
        if has_mul or has_add:
            bh, bw = _tiles(DEFAULT, hw, hw)
            chunks = ghost_chunks(DEFAULT, -(-hw // bh) * -(-hw // bw), batch * heads, sms)
            part = _t((batch * chunks, channels, k2), torch.float32)
            specs.append(Spec("elsa_fused_ghost", where, plan_fused_ghost(
                v, logits, dy, lse, part, part, ks, 1, DEFAULT, has_mul, has_add, chunks)))
    return specs


def _pwam_specs(model, stage, hw, channels, batch, dtype, train, sms):
    from .triton_pwam import DEFAULT, _blocks, plan_pwam_bwd, plan_pwam_fwd, pwam_chunks

    n, L = hw * hw, support.PWAM_WORDS
    # LAVT's single-head PWAM: q = f_query(x).view(B, 1, C, N).transpose(-1, -2), k, v alike.
    q = _t((batch, 1, n, channels), dtype, (channels * n, channels * n, 1, n))
    k = _t((batch, 1, L, channels), dtype, (channels * L, channels * L, 1, L))
    v = _t((batch, 1, L, channels), dtype, (channels * L, channels * L, 1, L))
    m = _t((batch, L), torch.float32)
    lse = _t((batch, 1, n), torch.float32)
    where = f"{model} stage {stage} B={batch} {str(dtype)[6:]} C={channels}"
    specs = [Spec("pwam_fwd", where, plan_pwam_fwd(q, k, v, m, _t((batch, 1, n, channels), dtype),
                                                  lse, channels**-0.5, DEFAULT))]
    if train:
        bm, bl, _, _ = _blocks(DEFAULT, n, L, channels, channels, dtype)
        chunks = pwam_chunks(DEFAULT, -(-n // bm), batch, sms)
        pk = _t((batch, chunks, bl, channels), torch.float32)
        plan = plan_pwam_bwd(q, k, v, m, _t(q.shape, dtype, q.stride()), lse, _t(q.shape, dtype),
                             pk, pk, channels**-0.5, DEFAULT, chunks)
        specs.append(Spec("pwam_bwd", where, plan))
    return specs


LEVELS = ("suite", "stage1", "full")


def specialisations(sms: int = 132, level: str = "full") -> list[Spec]:
    """The launches of the envelope in :mod:`rrsis.kernels.support`.

    ``level``: ``"full"`` (every model size, stage, batch, dtype mode, shift, ghost and layout);
    ``"stage1"`` (all of those at the Swin-B stage-1 shapes, training batch); ``"suite"`` (the
    default test suite's share: Swin-B stage 1, float32 and bfloat16, shift on, both ghost
    terms on, both ELSA layouts: each kernel's heaviest variants).
    """
    if level not in LEVELS:
        raise ValueError(f"level {level!r}; expected one of {LEVELS}")
    specs: list[Spec] = []
    full = level == "full"
    models = support.MODELS if full else {"swin-b": support.MODELS["swin-b"]}
    stages = range(4) if full else range(1)
    shifts = (support.WINDOW // 2,) if level == "suite" else (0, support.WINDOW // 2)
    ghosts = ("both",) if level == "suite" else ("add", "none", "both")
    modes = ("fp32", "autocast-bf16") if level == "suite" else ("fp32", "autocast-bf16", "bf16")
    for model, (embed, heads) in models.items():
        for stage in stages:
            hw = support.IMAGE // 4 // 2**stage
            hp = -(-hw // support.WINDOW) * support.WINDOW
            c, h = embed * 2**stage, heads[stage]
            for batch, train in ((8, True), (1, False)) if full else ((8, True),):
                for dtype in (torch.float32, torch.bfloat16):
                    for shift in shifts:
                        specs += _window_specs(model, stage + 1, hp, h, batch, shift, dtype,
                                               train, sms)
                    specs += _pwam_specs(model, stage + 1, hw, c, batch, dtype, train, sms)
                if stage < 3:  # GL-MSIN: ELSA in stages 1-3
                    for mode in modes:
                        for ghost in ghosts:
                            for layout in ("nhwc", "nchw"):
                                specs += _elsa_specs(model, stage + 1, hw, c, h, batch, mode,
                                                     ghost, layout, train, sms)
                                specs += _elsa_fused_specs(model, stage + 1, hw, c, h, batch,
                                                           mode, ghost, layout, train, sms)
    if level == "suite":
        return specs
    # float16 autocast and TF32-allowed float32: the Swin-B stage-1 shapes.
    specs += _window_specs("swin-b", 1, 120, 4, 8, 6, torch.float16, True, sms)
    specs += _pwam_specs("swin-b", 1, 120, 128, 8, torch.float16, True, sms)
    specs += _elsa_specs("swin-b", 1, 120, 128, 4, 8, "autocast-fp16", "add", "nhwc", True, sms)
    specs += _elsa_fused_specs("swin-b", 1, 120, 128, 4, 8, "autocast-fp16", "add", "nhwc", True,
                               sms)
    with _tf32():
        specs += [Spec(s.kernel, s.where + " tf32", s.plan) for s in
                  _window_specs("swin-b", 1, 120, 4, 8, 6, torch.float32, True, sms)
                  + _pwam_specs("swin-b", 1, 120, 128, 8, torch.float32, True, sms)]
    return specs


@contextlib.contextmanager
def _tf32():
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def _job(plan, target):
    """What Triton would compile for ``plan`` on ``target``: (key, picklable job)."""
    from triton.compiler import make_backend
    from triton.runtime.jit import create_function_from_signature

    kernel = plan.kernel
    backend = make_backend(target)
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    bound, spec, opts = binder(*plan.args, **plan.kwargs)
    options, signature, constexprs, attrs = kernel._pack_args(backend, plan.kwargs, bound, spec,
                                                              opts)
    job = (kernel.fn.__module__, kernel.fn.__name__, signature, constexprs, attrs, options.__dict__)
    return repr(job), job


_PTXAS = {
    "regs": re.compile(r"Used (\d+) registers"),
    "stack": re.compile(r"(\d+) bytes stack frame"),
    "spill_stores": re.compile(r"(\d+) bytes spill stores"),
    "spill_loads": re.compile(r"(\d+) bytes spill loads"),
}


def _compile(job, arch):
    import importlib

    import triton
    from triton import knobs
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    module, name, signature, constexprs, attrs, options = job
    kernel = getattr(importlib.import_module(module), name)
    knobs.nvidia.dump_ptxas_log = True
    log = io.StringIO()
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(log):
            compiled = triton.compile(ASTSource(kernel, signature, constexprs, attrs),
                                      target=GPUTarget("cuda", arch, 32), options=options)
    except Exception as exc:  # noqa: BLE001  (reported, not raised: every group is compiled)
        return {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    out = {"seconds": round(time.perf_counter() - t0, 2), "shared": compiled.metadata.shared,
           "num_warps": compiled.metadata.num_warps}
    text = log.getvalue()
    for key, rx in _PTXAS.items():
        match = rx.search(text)
        out[key] = int(match.group(1)) if match else None
    if out["regs"] is None:
        out["error"] = f"no ptxas report in: {text[:500]!r}"
    else:
        out["ctas_per_sm"] = occupancy(out["regs"], out["num_warps"], out["shared"])
    return out


def compile_groups(specs: list[Spec], arch: int = 90, jobs: int = 2) -> list[dict]:
    """Compile each distinct specialisation once; one result row per group."""
    from triton.backends.compiler import GPUTarget

    if os.environ.get("TRITON_INTERPRET", "0") not in ("0", ""):
        raise RuntimeError("rrsis.kernels.aot compiles kernels: run it with TRITON_INTERPRET=0")
    target = GPUTarget("cuda", arch, 32)
    groups: dict[str, dict] = {}
    for spec in specs:
        key, job = _job(spec.plan, target)
        group = groups.setdefault(key, {"kernel": spec.kernel, "job": job, "where": []})
        group["where"].append(spec.where)
    rows = list(groups.values())
    for row in rows:
        row["prec"] = row["job"][3].get(_const_index(row["job"], "PREC"))
    ctx = __import__("multiprocessing").get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=ctx) as pool:
        results = list(pool.map(_compile, [g["job"] for g in rows], [arch] * len(rows)))
    return [{"kernel": g["kernel"], "prec": g["prec"], "where": g["where"], **r}
            for g, r in zip(rows, results)]


def _const_index(job, name):
    module, kernel, *_ = job
    import importlib

    fn = getattr(importlib.import_module(module), kernel)
    return (fn.arg_names.index(name),) if name in fn.arg_names else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, default=90, help="compute capability ×10 (90: Hopper)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel compiler processes")
    parser.add_argument("--level", choices=LEVELS, default="full",
                        help="which launches (see specialisations)")
    parser.add_argument("--only", default="", help="keep launches whose kernel or origin "
                        "contains each comma-separated word")
    parser.add_argument("--json", help="write the result rows here")
    parser.add_argument("--markdown", help="write a table of the result rows here")
    args = parser.parse_args(argv)
    specs = specialisations(level=args.level)
    for word in filter(None, args.only.split(",")):
        specs = [s for s in specs if word in f"{s.kernel} {s.where}"]
    rows = compile_groups(specs, args.arch, args.jobs)
    failed = 0
    for row in sorted(rows, key=lambda r: (r["kernel"], r["where"][0])):
        budget = support.spill_budget(row["kernel"], row.get("prec"))
        bad = "error" in row or row["spill_stores"] > budget
        failed += bad
        state = row.get("error", "")[:200] if "error" in row else (
            f"regs {row['regs']:3d} spill {row['spill_stores']:5d}/{row['spill_loads']:5d} B "
            f"stack {row['stack']} smem {row['shared']} CTAs/SM {row['ctas_per_sm']} "
            f"({row['seconds']} s)")
        more = f" +{len(row['where']) - 1} more" if len(row["where"]) > 1 else ""
        print(f"{'FAIL' if bad else 'ok  '} {row['kernel']:16s} {state}  [{row['where'][0]}{more}]")
    if args.markdown:
        write_markdown(rows, args.markdown, args.arch, args.level, args.only)
    if args.json:
        with atomic_open(args.json) as f:
            json.dump(rows, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
