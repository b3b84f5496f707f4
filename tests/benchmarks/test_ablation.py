"""benchmarks/ablation.py: the expression-kind reader and the --quick smoke run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rrsis.data.synthetic import candidates, sample_scene


@pytest.fixture
def ab(benchmark_module):
    return benchmark_module("ablation")


def test_expression_kind_reads_back_the_grammar_rule(ab):
    want = {"extreme": "position", "region": "position"}
    seen = set()
    for i in range(30):
        rng = np.random.default_rng([3, i])
        scene = sample_scene(rng, 96)
        for e in candidates(scene, rng):
            got = ab.expression_kind(e.text, bool(e.targets))
            assert got == want.get(e.kind, e.kind), (e.text, e.kind, got)
            seen.add(got)
    assert {"colour", "relation", "position", "size", "category", "absent"} <= seen


def test_summary_is_mean_and_spread(ab):
    runs = [{"mIoU": 0.5, "oIoU": 0.4, "P@0.5": 0.6, "P@0.9": 0.0, "kinds": {"colour": 0.7}, "params_M": 1.0,
             "train_s": 10.0},
            {"mIoU": 0.7, "oIoU": 0.5, "P@0.5": 0.8, "P@0.9": 0.1, "kinds": {"colour": 0.9}, "params_M": 1.0,
             "train_s": 20.0}]
    s = ab.summarise(runs)
    assert s["mIoU"]["mean"] == pytest.approx(0.6) and s["mIoU"]["spread"] == pytest.approx(0.2)
    assert s["colour"]["mean"] == pytest.approx(0.8)
    assert np.isnan(s["size"]["mean"])  # a kind absent from every run stays NaN, not 0


def test_oversampled_repeats_the_named_kinds(ab):
    mask = np.ones((4, 4), bool)
    samples = [{"text": "the leftmost car", "mask": mask}, {"text": "the red car", "mask": mask},
               {"text": "the car north of the pond", "mask": mask}] * 200
    out = ab.oversampled(samples, {"position": 2.0, "relation": 1.5}, seed=0)
    counts = {t: sum(s["text"] == t for s in out) for t in ("the leftmost car", "the red car",
                                                          "the car north of the pond")}
    assert counts["the leftmost car"] == 400 and counts["the red car"] == 200
    assert 250 < counts["the car north of the pond"] < 350  # half of them drawn twice
    assert ab.oversampled(samples, {"position": 2.0, "relation": 1.5}, seed=0) == out  # seeded


@pytest.mark.slow
def test_quick_mode_writes_a_table(tmp_path, ab):
    out = tmp_path / "abl"
    assert ab.main(["--quick", "--jobs", "1", "--work", str(tmp_path / "w"), "--out", str(out)]) == 0
    data = json.loads((out.with_suffix(".json")).read_text())
    assert set(data["table"]) == {"gl-msin-tiny", "gl-msin: shuffled text"}
    assert "| gl-msin-tiny |" in out.with_suffix(".md").read_text()


def test_compare_runs_reports_agreement_per_kind(tmp_path, ab, benchmark_module, capsys):
    import torch

    import rrsis
    from rrsis.data.synthetic import generate, vocabulary
    from rrsis.text import Tokenizer

    generate(str(tmp_path / "data"), 20, seed=1, size=64, layout="rrsisd")
    vocab = len(Tokenizer.from_words(vocabulary()))
    for name, seed in (("a", 0), ("b", 1)):
        torch.manual_seed(seed)
        rrsis.create_model("gl-msin-tiny", image_size=64, text_vocab_size=vocab).save_pretrained(
            str(tmp_path / name))
    cmp = benchmark_module("experiments/compare_runs")
    assert cmp.main([str(tmp_path / "data" / "rrsisd"), str(tmp_path / "a"), str(tmp_path / "a"),
                     "--size", "64"]) == 0
    same = capsys.readouterr().out
    assert "B only 0" in same and "A only 0" in same  # a model agrees with itself everywhere
    assert cmp.main([str(tmp_path / "data" / "rrsisd"), str(tmp_path / "a"), str(tmp_path / "b"),
                     "--size", "64"]) == 0
    out = capsys.readouterr().out
    assert "| kind | n | mIoU A | mIoU B |" in out and "correlation" in out
