"""Ahead-of-time compile of every kernel specialisation the shipped models launch, for one GPU.

``python -m rrsis.kernels.aot [--arch 90] [--jobs 2] [--json out.json]`` builds the launch plans
of :mod:`rrsis.kernels` from meta tensors laid out exactly as the models pass them (Swin-B and
Swin-S/T stage shapes of a 480×480 input, training batch 8 and inference batch 1, float32 /
autocast bfloat16 / bfloat16 weights, shift on/off, ghost terms on/off, the channels-last and
NCHW splits of ELSA's ``pre_proj``; :mod:`.aot_specs`), groups them by what Triton would compile (signature,
constants, alignment attributes, options), compiles each group for ``GPUTarget("cuda", arch, 32)``
with the ptxas shipped in the triton wheel, and reports registers and spill bytes. No GPU is needed;
it must run with ``TRITON_INTERPRET=0``. The set it compiles is :data:`rrsis.kernels.support`'s
envelope, so the dispatcher never launches a configuration this did not compile.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from .._atomic import atomic_open, json_text
from . import support
from .aot_report import occupancy, write_markdown
from .aot_specs import LEVELS, Spec, specialisations

__all__ = ["Spec", "compile_groups", "specialisations"]


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
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().partition("\n")[0] or None)
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
    print(f"compiling {len(specs)} launch(es) for sm_{args.arch} in {args.jobs} process(es); the table follows "
          "when all are done (minutes on a laptop CPU)", file=sys.stderr, flush=True)
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
            f.write(json_text(rows, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
