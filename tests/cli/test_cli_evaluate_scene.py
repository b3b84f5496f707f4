"""``rrsis evaluate --scene`` (in-process): the table, the JSON, and which flags go with which side."""

from __future__ import annotations

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
from rasterio.features import rasterize
from shapely.geometry import box

import rrsis
from rrsis.cli import main
from rrsis.scene import SceneEvaluation

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
    labels = saved_labels(out)
    write_vector(str(out / "labels.gpkg"), np.array([shapely.to_wkb(g) for g, _ in labels], dtype=object),
                 [np.array([t for _, t in labels], dtype=object)], ["expression"], driver="GPKG",
                 crs="EPSG:32633", geometry_type="Polygon")
    return out


def saved_labels(_folder):
    """The labels' polygons (in the scene's CRS) and expressions."""
    pix = [(box(10, 10, 40, 30), "the red building"), (box(50, 5, 90, 60), "the gray road")]
    return [(shapely.affinity.affine_transform(g, [T.a, T.b, T.d, T.e, T.c, T.f]), t) for g, t in pix]


def _base(saved):
    return ["evaluate", "--model", str(saved / "model"), "--scene", str(saved / "scene.tif"),
            "--labels", str(saved / "labels.gpkg"), "--text-field", "expression", "--quiet"]


def test_prints_the_table_and_writes_what_the_masks_hold(saved, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [*_base(saved), "--modes", "tiles", "--threshold", "0.2", "--overlap", "0.5", "--keep-predictions", "keep"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] in (["tiles"], ["naive"])}
    assert set(rows) == {"tiles", "naive"} and "wrote eval-scene-scene.json" in out
    assert sorted(os.listdir(tmp_path)) == ["eval-scene-scene.json", "keep"]
    got = SceneEvaluation.read_json(tmp_path / "eval-scene-scene.json")
    assert got.model == str(saved / "model") and [m.mode for m in got.modes] == ["tiles", "naive"]
    assert got.options["overlap"] == 0.5 and got.options["threshold"] == 0.2
    truth = {t: rasterize([(g, 1)], out_shape=(64, 96), transform=T).astype(bool) for g, t in saved_labels(saved)}
    for m in got.modes:
        assert sorted(os.listdir(tmp_path / "keep" / m.mode))[:2] == ["scene_1.geojson", "scene_1_mask.tif"]
        for k, e in enumerate(m.expressions, 1):
            assert e.files["mask"] == os.path.join("keep", m.mode, f"scene_{k}_mask.tif")  # as predict names them
            with rasterio.open(tmp_path / e.files["mask"]) as ds:
                pred = ds.read(1) > 0
            g = truth[e.text]
            assert (e.intersection_px, e.union_px) == (int((pred & g).sum()), int((pred | g).sum()))
        assert rows[m.mode][2:5] == [f"{100 * m.miou:.2f}", f"{100 * m.oiou:.2f}", f"{100 * m.precision_at_05:.2f}"]
    assert main(argv) == 2  # an existing metrics file is refused without --overwrite, before any work
    assert ("eval-scene-scene.json exists (the metrics of an earlier evaluation): pass --overwrite to replace it"
            in capsys.readouterr().err)
    assert main([*argv, "--out", "again.json"]) == 2  # so are existing predictions, naming this command's
    err = capsys.readouterr().err
    assert ("already exist(s): pass overwrite=True (rrsis evaluate --overwrite) to replace, or choose another "
            "keep_predictions folder (--keep-predictions)") in err and "rrsis predict" not in err


@pytest.mark.parametrize(("extra", "message"), [
    (["--dataset", "folder"], "--dataset applies to --data, not to --scene"),
    (["--modes", "tile"], "did you mean 'tiles'"),
    (["--text-field", "name"], "its fields: expression"),
])
def test_scene_errors_are_one_line(saved, tmp_path, capsys, extra, message):
    argv = _base(saved)
    argv[argv.index("--model") + 1] = str(tmp_path / "no-model")  # checked before the model loads
    if "--text-field" in extra:
        argv = argv[:argv.index("--text-field")] + argv[argv.index("--text-field") + 2:]
        # The labels' fields are read once --model is checked (a folder with its vocabulary) and
        # before the model loads (this one has no weights: loading it would fail).
        unloadable = tmp_path / "unloadable"
        unloadable.mkdir()
        for name in ("config.json", "vocab.txt"):
            (unloadable / name).write_bytes((saved / "model" / name).read_bytes())
        argv[argv.index("--model") + 1] = str(unloadable)
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


def test_a_scene_note_is_said_once_whatever_the_number_of_modes(saved, tmp_path, capsys):
    """Each mode reads the scene again; a note on how it is read (here: four bands, none declared
    red, green or blue) is printed once."""
    with rasterio.open(saved / "scene.tif") as src:
        data, profile = src.read(), dict(src.profile, count=4)
    four = tmp_path / "four.tif"
    with rasterio.open(four, "w", **profile) as ds:
        ds.write(np.concatenate([data, data[:1]]))
        ds.colorinterp = [rasterio.enums.ColorInterp.undefined] * 4
    args = _base(saved)
    args[args.index("--scene") + 1] = str(four)
    assert main(args + ["--modes", "tiles", "global", "--out", str(tmp_path / "e.json")]) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if line.startswith("rrsis evaluate: warning: ") and "four.tif" in line]
    assert len(notes) == len(set(notes)) >= 1, err
