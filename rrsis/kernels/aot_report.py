"""What the ahead-of-time compile reports: occupancy from ptxas's numbers, a markdown table."""

from __future__ import annotations

import torch

from .._atomic import atomic_write

__all__ = ["SM90", "occupancy", "write_markdown"]

# sm_90 per-SM limits (CUDA occupancy rules): 64 Ki registers allocated per warp in units of
# 256, 228 KiB shared memory (1 KiB of it reserved per block), 64 warps, 32 blocks.
SM90 = {"regs": 65536, "reg_unit": 256, "smem": 228 * 1024, "smem_reserved": 1024, "warps": 64,
        "blocks": 32}


def occupancy(regs: int, num_warps: int, shared: int, limits: dict = SM90) -> int:
    """Resident programs (CTAs) per SM for a kernel of ``regs`` registers per thread."""
    per_warp = -(-regs * 32 // limits["reg_unit"]) * limits["reg_unit"]
    by_regs = limits["regs"] // (per_warp * num_warps)
    by_smem = limits["smem"] // (shared + limits["smem_reserved"])
    return int(min(by_regs, by_smem, limits["warps"] // num_warps, limits["blocks"]))


def write_markdown(rows: list[dict], path: str, arch: int, level: str, only: str) -> None:
    """A markdown table of :func:`rrsis.kernels.aot.compile_groups` rows, written atomically."""
    import triton

    cmd = f"python -m rrsis.kernels.aot --arch {arch} --level {level}" + (
        f" --only {only}" if only else "")
    title = (f"# sm_{arch} ahead-of-time compile (ptxas from the triton {triton.__version__} "
             f"wheel, torch {torch.__version__})")
    intro = (f"`{cmd}`, compiled on a CPU machine (no GPU). CTAs/SM: resident programs per SM "
             "from registers, warps and shared memory under sm_90's limits "
             "(`rrsis.kernels.aot_report.occupancy`).")
    header = ("| kernel | launch (first of group) | groups' launches | warps | registers | "
              "spill st/ld B | shared B | CTAs/SM | warps/SM |")
    lines = [title, "", intro, "", header, "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["kernel"], r["where"][0])):
        if "error" in r:
            lines.append(f"| {r['kernel']} | {r['where'][0]} | {len(r['where'])} | | "
                         f"does not compile | | | | |")
            continue
        lines.append(f"| {r['kernel']} | {r['where'][0]} | {len(r['where'])} | {r['num_warps']} | "
                     f"{r['regs']} | {r['spill_stores']}/{r['spill_loads']} | {r['shared']} | "
                     f"{r['ctas_per_sm']} | {r['ctas_per_sm'] * r['num_warps']} |")
    atomic_write(path, "\n".join(lines) + "\n")
