"""benchmarks/convert_parity.py: the measured errors are the converted model's against the fixtures."""

from __future__ import annotations

import pytest
from _fixtures import find_fixtures


def test_rmsin_parity_is_measured_against_the_official_outputs(benchmark_module, monkeypatch):
    folder = find_fixtures()
    if not (folder / "rmsin" / "io.safetensors").exists():
        pytest.skip("official-format fixtures not found (set RRSIS_FIXTURES)")
    bench = benchmark_module("convert_parity")
    monkeypatch.setenv("RRSIS_FIXTURES", str(folder))
    assert bench.fixtures() == folder
    row = bench.measure("rmsin", folder, threads=1)
    assert row["image"] == [2, 3, 480, 480] and len(row["stages"]) == 4
    assert 0 < row["logits"] < 1e-5 and 0 < row["text_features"] < 1e-5 and max(row["stages"]) < 1e-4
    monkeypatch.setenv("RRSIS_FIXTURES", str(folder / "nowhere"))
    monkeypatch.setattr(bench, "ROOT", folder / "nowhere")
    with pytest.raises(SystemExit, match="set RRSIS_FIXTURES"):
        bench.fixtures()
