"""Worker and thread counts: refused above rrsis's bound, warned about above the usable CPUs
(checked on values only: no worker is started here)."""

from __future__ import annotations

import json
import warnings

import pytest

from rrsis._config import MAX_WORKERS, ConfigError, check_workers, usable_cpus
from rrsis.cli import main


def test_bound_refused_with_the_key_named():
    with pytest.raises(ConfigError, match=rf"data.num_workers=1000000 is above rrsis's upper bound {MAX_WORKERS}"):
        check_workers("data.num_workers", 1_000_000)
    with pytest.raises(ConfigError, match="must be >= 1"):
        check_workers("train.threads", 0, low=1)


def test_above_the_cpus_warns_naming_key_and_count(monkeypatch):
    monkeypatch.setattr("rrsis._config.usable_cpus", lambda: 2)
    with pytest.warns(UserWarning, match=r"data.num_workers=24 is more than the 2 CPU\(s\)"):
        assert check_workers("data.num_workers", 24) == 24
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_workers("data.num_workers", 2) == 2
    monkeypatch.setattr("rrsis._config.usable_cpus", lambda: 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_workers("data.num_workers", 2) == 2  # the default, on one CPU: not worth a warning
    with pytest.warns(UserWarning, match=r"data.num_workers=3 is more than the 1 CPU\(s\)"):
        check_workers("data.num_workers", 3)


def test_usable_cpus_is_the_affinity():
    import os

    if hasattr(os, "sched_getaffinity"):
        assert usable_cpus() == len(os.sched_getaffinity(0))
    assert usable_cpus() >= 1


def test_recipe_refuses_a_huge_num_workers(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"base": "gl-msin-tiny-synthetic", "data": {"num_workers": 1_000_000}}))
    assert main(["train", "--config", str(cfg), "--print-config"]) == 2
    assert "data.num_workers=1000000 is above rrsis's upper bound" in capsys.readouterr().err
    assert main(["train", "--config", "gl-msin-tiny-synthetic", "--print-config", "--train.threads", "100000"]) == 2
    assert "train.threads=100000 is above" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["synth", "--workers", "300", "unused"], ["predict", "--threads", "1000"],
                                  ["app", "--concurrency", "257"], ["evaluate", "--num-workers", "99999"]])
def test_flags_refuse_a_huge_count(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"{argv[1]}={argv[2]} is above rrsis's upper bound {MAX_WORKERS}" in err


def test_python_api_counts_are_bounded():
    from rrsis.app.limits import Limits
    from rrsis.data.synthetic import generate

    with pytest.raises(ValueError, match="concurrency=1000 is above"):
        Limits(concurrency=1000)
    with pytest.raises(ValueError, match="workers=100000 is above"):
        generate("/nonexistent-never-written", 1, workers=100_000)
