"""benchmarks/nir.py: the expression-kind split, the acceptance check and the --quick smoke run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rrsis.data.synthetic import candidates, sample_scene


@pytest.fixture
def nir(benchmark_module):
    return benchmark_module("nir")


def test_expression_kind_is_nir_exactly_for_the_state_expressions(nir):
    seen = set()
    for i in range(20):
        rng = np.random.default_rng([4, i])
        scene = sample_scene(rng, 96, nir=True)
        for e in candidates(scene, rng):
            assert nir.expression_kind(e.text) == ("nir" if e.kind == "nir" else "other"), e.text
            seen.add(e.kind)
    assert "nir" in seen and len(seen) > 3


def _run(nir_miou, other):
    return {"kinds": {"nir": nir_miou, "other": other}}


def test_verdict_needs_the_margin_on_every_seed(nir):
    rgb = [_run(0.45, 0.50), _run(0.47, 0.52)]
    ok = nir.verdict({"rgb": rgb, "rgb+nir": [_run(0.60, 0.50), _run(0.58, 0.515)]}, 10.0)
    assert ok["met"] and ok["nir_gain_points"] == pytest.approx([15.0, 11.0])
    short = nir.verdict({"rgb": rgb, "rgb+nir": [_run(0.60, 0.50), _run(0.55, 0.52)]}, 10.0)
    assert not short["met"]  # seed 1 gains 8 points only
    worse = nir.verdict({"rgb": rgb, "rgb+nir": [_run(0.90, 0.48), _run(0.90, 0.52)]}, 10.0)
    assert not worse["met"] and worse["other_gain_points"][0] == pytest.approx(-2.0)


@pytest.mark.slow
def test_quick_mode_writes_a_table(tmp_path, nir):
    out = tmp_path / "nir"
    assert nir.main(["--quick", "--jobs", "1", "--work", str(tmp_path / "w"), "--out", str(out)]) == 0
    data = json.loads(out.with_suffix(".json").read_text())
    assert set(data["table"]) == {"rgb", "rgb+nir"} and data["runs"]["rgb+nir"][0]["bands"] == 4
    assert "| rgb+nir | 4 |" in out.with_suffix(".md").read_text()
