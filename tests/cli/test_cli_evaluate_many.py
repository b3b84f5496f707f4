"""``rrsis evaluate --scene`` over several scenes (in-process): the pooled and per-scene tables, the
JSON, the errors before the model loads."""

from __future__ import annotations

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
from rrsis.scene import SceneEvaluation

UTM = "EPSG:32633"


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_tokenizer):
    from rrsis.hub import save_pretrained

    out = tmp_path_factory.mktemp("evalmany_cli")
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tiny_tokenizer))
    model.tokenizer = tiny_tokenizer
    save_pretrained(model, out / "model")
    (out / "tiles").mkdir()
    polys = []
    for k in range(2):  # two 64 x 64 tiles side by side, a building on each and a road over both
        t = Affine(0.5, 0, 400000.0 + 32 * k, 0, -0.5, 4600032.0)
        data = np.random.default_rng(k).integers(60, 120, (3, 64, 64)).astype(np.uint8)
        with rasterio.open(out / "tiles" / f"t{k}.tif", "w", driver="GTiff", height=64, width=64, count=3,
                           dtype="uint8", crs=UTM, transform=t) as ds:
            ds.write(data)
        polys.append((shapely.affinity.affine_transform(box(10, 10, 30, 30), [t.a, 0, 0, t.e, t.c, t.f]),
                      "the red building"))
    polys.append((box(400010.0, 4600000.0, 400050.0, 4600010.0), "the gray road"))
    write_vector(str(out / "labels.gpkg"), np.array([shapely.to_wkb(g) for g, _ in polys], dtype=object),
                 [np.array([t for _, t in polys], dtype=object)], ["expression"], driver="GPKG", crs=UTM,
                 geometry_type="Polygon")
    return out


def _base(saved, scene):
    return ["evaluate", "--model", str(saved / "model"), "--scene", scene, "--labels", str(saved / "labels.gpkg"),
            "--text-field", "expression", "--quiet"]


def test_pooled_and_per_scene_rows_and_the_json(saved, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*_base(saved, str(saved / "tiles" / "*.tif")), "--modes", "naive", "--per-scene"]) == 0
    out = capsys.readouterr().out
    assert "2 scene(s): 4 (scene, expression) queries from" in out and "wrote eval-scenes.json" in out
    got = SceneEvaluation.read_json(tmp_path / "eval-scenes.json")
    assert [s.id for s in got.scenes] == ["t0", "t1"] and [m.mode for m in got.modes] == ["naive"]
    lines = [line.split() for line in out.splitlines()]
    pooled = {r[0]: r for r in lines if r[:1] == ["naive"]}
    per = {(r[0], r[1]): r for r in lines if r[:1] in (["t0"], ["t1"])}
    for m in got.modes:  # one pooled row per mode, from the pooled counts
        inter = sum(e.intersection_px for e in m.expressions)
        union = sum(e.union_px for e in m.expressions)
        assert pooled[m.mode][2:6] == [f"{100 * m.miou:.2f}", f"{100 * inter / union:.2f}",
                                       f"{100 * m.precision_at_05:.2f}", "4"]
    assert sorted(per) == [("t0", "naive"), ("t1", "naive")]
    for s in got.scenes:
        for m in s.modes:
            assert per[s.id, m.mode][3:7] == [f"{100 * m.miou:.2f}", f"{100 * m.oiou:.2f}",
                                              f"{100 * m.precision_at_05:.2f}", "2"]


@pytest.mark.parametrize(("scene", "labels", "message"), [
    ("nowhere/*.tif", None, "nowhere/*.tif: the pattern matches no file"),
    ("tiles/*.tif", "per/{stem}.gpkg", "labels per/t0.gpkg (for scene"),
    ("tiles/t0.tif", "missing.gpkg", "--labels missing.gpkg: file not found"),  # one scene: as before
    ("tiles/t0.tif", "per/{stem}.gpkg", "labels per/t0.gpkg (for scene"),  # a template for one scene too
])
def test_errors_are_one_line_before_the_model_loads(saved, tmp_path, capsys, monkeypatch, scene, labels, message):
    monkeypatch.chdir(saved)
    argv = _base(saved, scene)
    argv[argv.index("--model") + 1] = str(tmp_path / "no-model")
    if labels is not None:
        argv[argv.index("--labels") + 1] = labels
    assert main([*argv, "--out", str(tmp_path / "e.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rrsis evaluate: error:") and message in err[0]
