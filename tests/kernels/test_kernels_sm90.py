"""The Triton kernels compile for Hopper (sm_90) without register spills, on a CPU machine.

``python -m rrsis.kernels.aot`` plans every launch the models make from meta tensors, compiles
each distinct specialisation with the ptxas shipped in the triton wheel, and reads registers
and spill bytes from ptxas's report. It runs in a subprocess with ``TRITON_INTERPRET=0`` (this
test session has the interpreter on) and a fresh ``TRITON_CACHE_DIR``, so nothing is reused
between runs. The default suite compiles the heaviest variant of every kernel at the Swin-B
stage-1 shapes; ``-m slow`` compiles the whole envelope (every model size, stage and mode).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")

from _fixtures import REPO

from rrsis.kernels import support

ROOT = REPO
KERNELS = {"window_fwd", "window_bwd_dq", "window_bwd_dkdv", "elsa_fwd", "elsa_bwd", "pwam_fwd",
           "pwam_bwd", "elsa_fused_fwd", "elsa_fused_bwd", "elsa_fused_ghost"}


def _compile(tmp: Path, level: str, timeout: int):
    out = tmp / f"sm90-{level}.json"
    env = {**os.environ, "TRITON_INTERPRET": "0", "TRITON_CACHE_DIR": str(tmp / "triton-cache"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "rrsis.kernels.aot", "--arch", "90", "--jobs", "2",
         "--level", level, "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )
    assert out.exists(), f"aot wrote no results (rc {proc.returncode}):\n{proc.stderr[-3000:]}"
    return json.loads(out.read_text()), proc


def _failures(rows: list[dict]) -> list[str]:
    bad = []
    for row in rows:
        where = f"{row['kernel']} [{row['where'][0]}]"
        if "error" in row:
            bad.append(f"{where}: does not compile for sm_90: {row['error'][:600]}")
        elif row["spill_stores"] > support.spill_budget(row["kernel"], row["prec"]):
            bad.append(f"{where}: {row['spill_stores']} B of spill stores, {row['regs']} registers "
                       f"(budget {support.spill_budget(row['kernel'], row['prec'])} B)")
    return bad


@pytest.fixture(scope="module")
def suite_rows(tmp_path_factory):
    rows, proc = _compile(tmp_path_factory.mktemp("sm90"), "suite", timeout=1800)
    return rows, proc


def test_sm90_every_kernel_compiles_without_spills(suite_rows):
    rows, proc = suite_rows
    assert {r["kernel"] for r in rows} == KERNELS, "a kernel was not compiled"
    failures = _failures(rows)
    assert not failures, "\n".join(failures)
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_sm90_compiles_the_model_layouts(suite_rows):
    rows, _ = suite_rows
    wheres = [w for r in rows for w in r["where"]]
    # Both splits of ELSA's pre_proj output, the float32 and autocast-bf16 modes, SW-MSA.
    for word in ("v=nhwc", "v=nchw", "autocast-bf16", "fp32", "shift=6", "float32", "bfloat16"):
        assert any(word in w for w in wheres), word
    # The compiled report has ptxas's numbers for every group.
    assert all(isinstance(r.get("regs"), int) and 0 < r["regs"] <= 255 for r in rows)


def test_sm90_fused_elsa_fits_two_programs_per_sm(suite_rows):
    rows, _ = suite_rows
    fused = [r for r in rows if r["kernel"].startswith("elsa_fused") and "error" not in r]
    assert fused
    low = [f"{r['kernel']} [{r['where'][0]}]: {r['ctas_per_sm']} CTAs/SM at {r['regs']} registers"
           for r in fused if r["ctas_per_sm"] < 2]
    assert not low, "\n".join(low)


def test_occupancy_follows_the_sm90_limits():
    from rrsis.kernels.aot_report import occupancy

    assert occupancy(255, 4, 0) == 2  # 256 registers × 128 threads = half the register file
    assert occupancy(128, 4, 0) == 4
    assert occupancy(96, 4, 0) == 5  # 96·32 = 3072 per warp, 12 288 per program
    assert occupancy(32, 4, 100 * 1024) == 2  # shared memory binds first
    assert occupancy(16, 1, 0) == 32  # the block limit


@pytest.mark.slow
def test_sm90_whole_envelope_compiles_without_spills(tmp_path):
    rows, proc = _compile(tmp_path, "full", timeout=3600)
    failures = _failures(rows)
    assert not failures, "\n".join(failures)
    assert proc.returncode == 0


@pytest.mark.slow
def test_sm90_elsa_tile_candidates_compile_without_spills_at_two_programs_per_sm(tmp_path):
    """The tile shapes the choice table may pick (``ELSA_FUSED_CANDIDATES``) at the Swin-B ELSA
    stages, bf16 under autocast, as the dispatch step times them."""
    from rrsis.kernels.tiles import ELSA_FUSED_CANDIDATES

    rows, proc = _compile(tmp_path, "tiles", timeout=1800)
    failures = _failures(rows)
    assert not failures, "\n".join(failures)
    assert proc.returncode == 0
    labels = {w.rsplit("tiles=", 1)[1] for r in rows for w in r["where"]}
    assert labels == {c.label for c in ELSA_FUSED_CANDIDATES[1:]}
    assert {r["kernel"] for r in rows} == {"elsa_fused_fwd", "elsa_fused_bwd", "elsa_fused_ghost"}
    low = [f"{r['kernel']} [{r['where'][0]}]: {r['ctas_per_sm']} CTAs/SM" for r in rows
           if r["ctas_per_sm"] < 2]
    assert not low, "\n".join(low)
