"""``rrsis evaluate --scene`` (in-process): the table, the JSON, and which flags go with which side."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import torch

rasterio = pytest.importorskip("rasterio")
shapely = pytest.importorskip("shapely")
pytest.importorskip("pyogrio")

from affine import Affine
from pyogrio.raw import write as write_vector
from shapely.geometry import box

import rrsis
from rrsis.cli import main
from rrsis.scene import SceneEvaluation, evaluate_scene

T = Affine(0.5, 0, 400000.0, 0, -0.5, 4600128.0)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_tokenizer):
    from rrsis.hub import save_pretrained

    out = tmp_path_factory.mktemp("evalscene_cli")
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tiny_tokenizer))
    model.tokenizer = tiny_tokenizer
    save_pretrained(model, out / "model")
    data = np.random.default_rng(1).integers(60, 120, (3, 64, 96)).astype(np.uint8)
    with rasterio.open(out / "scene.tif", "w", driver="GTiff", height=64, width=96, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=T) as ds:
        ds.write(data)
    geoms = [box(10, 10, 40, 30), box(50, 5, 90, 60)]
    world = [shapely.affinity.affine_transform(g, [T.a, T.b, T.d, T.e, T.c, T.f]) for g in geoms]
    write_vector(str(out / "labels.gpkg"), np.array([shapely.to_wkb(g) for g in world], dtype=object),
                 [np.array(["the red building", "the gray road"], dtype=object)], ["expression"], driver="GPKG",
                 crs="EPSG:32633", geometry_type="Polygon")
    return out


def _base(saved):
    return ["evaluate", "--model", str(saved / "model"), "--scene", str(saved / "scene.tif"),
            "--labels", str(saved / "labels.gpkg"), "--text-field", "expression", "--quiet"]


def test_prints_the_table_and_writes_the_api_s_numbers(saved, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*_base(saved), "--modes", "tiles", "--threshold", "0.2", "--overlap", "0.5"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] in (["tiles"], ["naive"])}
    assert set(rows) == {"tiles", "naive"} and "wrote eval-scene-scene.json" in out
    assert sorted(os.listdir(tmp_path)) == ["eval-scene-scene.json"]  # nothing else left behind
    got = SceneEvaluation.read_json(tmp_path / "eval-scene-scene.json")
    want = evaluate_scene(rrsis.from_pretrained(saved / "model"), saved / "scene.tif", saved / "labels.gpkg",
                          text_field="expression", modes=["tiles"], threshold=0.2, overlap=0.5, batch_size=8)
    assert got.model == str(saved / "model") and [m.mode for m in got.modes] == ["tiles", "naive"]
    for g, w in zip(got.modes, want.modes, strict=True):
        assert [(e.text, e.intersection_px, e.union_px, e.true_px) for e in g.expressions] == \
            [(e.text, e.intersection_px, e.union_px, e.true_px) for e in w.expressions]
        assert (g.miou, g.oiou, g.precision_at_05) == (w.miou, w.oiou, w.precision_at_05)
        assert rows[g.mode][2:5] == [f"{100 * g.miou:.2f}", f"{100 * g.oiou:.2f}", f"{100 * g.precision_at_05:.2f}"]
    assert json.loads((tmp_path / "eval-scene-scene.json").read_text())["options"]["overlap"] == 0.5


def test_keep_predictions_names_files_as_predict(saved, tmp_path, capsys):
    keep = tmp_path / "keep"
    argv = [*_base(saved), "--modes", "naive", "--keep-predictions", str(keep), "--out", str(tmp_path / "e.json")]
    assert main(argv) == 0
    assert sorted(os.listdir(keep)) == ["naive"]
    assert {"scene_1_mask.tif", "scene_1.geojson", "scene_2_mask.tif"} <= set(os.listdir(keep / "naive"))
    capsys.readouterr()
    assert main(argv) == 2  # existing predictions are refused without --overwrite
    assert "already exist" in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "message"), [
    (["--dataset", "folder"], "--dataset applies to --data, not to --scene"),
    (["--modes", "tile"], "did you mean 'tiles'"),
    (["--text-field", "name"], "its fields: expression"),
])
def test_scene_errors_are_one_line(saved, tmp_path, capsys, extra, message):
    argv = _base(saved)
    if "--text-field" in extra:
        argv = argv[:argv.index("--text-field")] + argv[argv.index("--text-field") + 2:]
    assert main([*argv, *extra, "--out", str(tmp_path / "e.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rrsis evaluate: error:") and message in err[0]


def test_data_and_scene_exclude_each_other(saved, tmp_path, capsys):
    model = ["evaluate", "--model", str(saved / "model")]
    with pytest.raises(SystemExit):
        main([*model, "--data", str(tmp_path), "--scene", str(saved / "scene.tif")])
    assert "not allowed with argument --data" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(model)
    assert "one of the arguments --data --scene is required" in capsys.readouterr().err
    assert main([*model, "--data", str(tmp_path), "--dataset", "folder", "--labels", "l.gpkg"]) == 2
    assert "--labels applies to --scene, not to --data" in capsys.readouterr().err
    assert main([*model, "--data", str(tmp_path)]) == 2
    assert "--data needs --dataset" in capsys.readouterr().err
    assert main([*model, "--scene", str(saved / "scene.tif")]) == 2
    assert "--scene needs --labels" in capsys.readouterr().err


def test_missing_geo_extra_is_named(saved, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "shapely", None)
    assert main([*_base(saved), "--out", str(tmp_path / "e.json")]) == 2
    assert 'pip install "rrsis[geo]"' in capsys.readouterr().err
