"""``benchmarks/cpu_inference.py``: its scene arithmetic, and one smoke run end to end."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def ci(benchmark_module):
    return benchmark_module("cpu_inference")


def test_scene_tiles_follow_the_default_overlap(ci):
    from rrsis.scene.infer import SceneOptions

    opt = SceneOptions()
    assert opt.pixel_ratio == "auto" and opt.overlap == 0.25  # auto: 1 on a scene without a georeference
    # Independent count: a tile every 360 px (480 at 25 % overlap), the last flush with the end.
    starts = list(range(0, 4096 - 480, 360)) + [4096 - 480]
    assert ci.scene_tiles(4096, 480) == len(starts) ** 2 == 144
    assert ci.scene_tiles(480, 480) == 1 and ci.scene_tiles(300, 480) == 1


def test_a_failed_configuration_is_a_row_not_a_crash(ci):
    meta = {"command": "x", "cpu": "c", "cores": 2, "timestamp": "t", "torch": "2", "batch": 1,
            "words": 20, "iters": 5, "warmup": 2, "scene": 4096}
    good = {"model": "m", "threads": 1, "variant": "eager", "size": 480, "params_m": 1.0,
            "median_s": 2.0, "min_s": 1.5, "max_s": 3.0, "first_call_s": 4.0, "scene_min": 4.8,
            "scene_tiles": 144, "peak_rss_mib": 900.0, "load_before": 0.5}
    text = ci.markdown([good, {"model": "m", "threads": 2, "variant": "compile", "error": "boom"}], meta)
    assert "| m | 1.0 | 480² | 1 | eager | 2.00 | 1.50–3.00 | 4.0 | 4.8 min (144) | 900 | 0.50 |" in text
    assert "| m | | | 2 | compile | error: boom |" in text


@pytest.mark.slow
def test_smoke_run_writes_results(ci, tmp_path):
    assert ci.main(["--smoke", "--out", str(tmp_path / "r")]) == 0
    data = json.loads((tmp_path / "r.json").read_text())
    (row,) = data["rows"]
    assert row["model"] == "gl-msin-tiny" and row["variant"] == "eager" and row["size"] == 64
    assert 0 < row["min_s"] <= row["median_s"] <= row["max_s"]
    assert (tmp_path / "r.md").read_text().count("| gl-msin-tiny |") == 1


def test_a_configuration_past_its_time_limit_is_an_error_row(ci, monkeypatch):
    import subprocess

    def too_slow(cmd, **kw):
        raise subprocess.TimeoutExpired(cmd, kw["timeout"])

    monkeypatch.setattr(subprocess, "run", too_slow)
    args = ci.argparse.Namespace(batch=1, warmup=1, iters=1, words=20, size=None, timeout=7.0, scene=4096)
    row = ci._run_one(args, "gl-msin", 2, "bf16")
    assert row["error"] == "not done after 7 s (--timeout)" and row["variant"] == "bf16"
