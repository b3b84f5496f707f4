"""``rrsis evaluate --scene --read/--objects``: the object mode's reading chosen from the command
line, as ``rrsis predict`` takes it, so that readings can be compared on a user's own scene."""

from __future__ import annotations

import pytest

pytest.importorskip("rasterio")
pytest.importorskip("shapely")
pytest.importorskip("pyogrio")

from test_cli_evaluate_scene import _base, saved  # noqa: F401  (the module's fixture)

from rrsis.cli import main
from rrsis.scene import SceneEvaluation, evaluate_scene


def test_read_and_objects_reach_the_object_mode(saved, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    argv = [*_base(saved), "--modes", "object", "--threshold", "0.2", "--read", "none", "--objects", "all",
            "--out", "all.json"]
    assert main(argv) == 0
    got = SceneEvaluation.read_json(tmp_path / "all.json")
    assert got.options["read"] == "none" and got.options["objects"] == "all"
    want = evaluate_scene(str(saved / "model"), str(saved / "scene.tif"), str(saved / "labels.gpkg"),
                          text_field="expression", modes="object", threshold=0.2, read="none", objects="all")
    for g, w in zip(got.modes, want.modes, strict=True):
        assert [(e.text, e.intersection_px, e.union_px) for e in g.expressions] == \
            [(e.text, e.intersection_px, e.union_px) for e in w.expressions]
    # Every component kept is the tiles mask at the threshold: more predicted pixels than one object.
    assert main([*_base(saved), "--modes", "object", "--threshold", "0.2", "--objects", "1", "--out", "one.json"]) == 0
    one = SceneEvaluation.read_json(tmp_path / "one.json")
    assert sum(e.predicted_px for e in got.modes[0].expressions) >= sum(e.predicted_px for e in one.modes[0].expressions)


def test_a_bad_reading_is_refused_before_the_model(saved, tmp_path, monkeypatch, capsys):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    argv = _base(saved)
    argv[argv.index("--model") + 1] = str(tmp_path / "no-such-model")  # never reached
    assert main([*argv, "--modes", "object", "--read", "place,hue"]) == 2
    err = capsys.readouterr().err
    assert "expected some of place, extreme, relation, colour" in err and "no-such-model" not in err
