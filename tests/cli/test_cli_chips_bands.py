"""``rrsis chips --bands``: chips of the chosen bands, and the ``rrsis train`` / ``rrsis predict`` lines to match."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
shapely = pytest.importorskip("shapely")
pytest.importorskip("pyogrio")

from affine import Affine
from pyogrio.raw import write
from shapely.geometry import box

from rrsis.cli import main

T = Affine(0.5, 0, 400000.0, 0, -0.5, 4600064.0)


@pytest.fixture
def scene(tmp_path):
    """A 96² five-band uint16 scene and two labelled squares."""
    data = np.random.default_rng(0).integers(1, 3000, (5, 96, 96)).astype(np.uint16)
    tif = tmp_path / "s2 scene.tif"  # a space: the printed command quotes the path
    with rasterio.open(tif, "w", driver="GTiff", height=96, width=96, count=5, dtype="uint16", crs="EPSG:32633",
                       transform=T, photometric="MINISBLACK") as ds:
        ds.write(data)
    geoms = [shapely.affinity.affine_transform(b, [T.a, T.b, T.d, T.e, T.c, T.f])
             for b in (box(8, 8, 24, 24), box(60, 60, 80, 80))]
    write(str(tmp_path / "l.gpkg"), np.array([shapely.to_wkb(g) for g in geoms], dtype=object),
          [np.array(["the tank", "the roof"], dtype=object)], ["text"], driver="GPKG", crs="EPSG:32633",
          geometry_type="Polygon")
    return data, ["chips", "--image", str(tif), "--labels", str(tmp_path / "l.gpkg"), "--size", "32",
                  "--val", "0", "--test", "0"]


def test_bands_flag_prints_matching_train_and_predict_lines(scene, tmp_path, capsys):
    data, args = scene
    out = tmp_path / "four"
    assert main([*args, "--out", str(out), "--bands", "4, 3,2,5"]) == 0
    said = capsys.readouterr().out.splitlines()
    train = next(ln for ln in said if ln.startswith("train: "))
    assert "--model.in_chans 4 " in train and '"scale": "dtype"' in train
    predict = next(ln for ln in said if ln.startswith("predict: "))
    words = shlex.split(predict.removeprefix("predict: "))
    assert words[words.index("--image") + 1] == args[2] and words[words.index("--bands") + 1] == "4,3,2,5"
    meta = json.loads((out / "chips.json").read_text())
    assert (meta["bands"], meta["scene_band_count"]) == ([4, 3, 2, 5], 5)
    c = meta["chips"][0]
    r0, c0, r1, c1 = c["window"]
    with rasterio.open(out / "images" / f"{c['id']}.tif") as ds:
        np.testing.assert_array_equal(ds.read(), data[[3, 2, 1, 4], r0:r1, c0:c1])
    # Three bands: no in_chans to set. Without --bands: every band, and no predict line.
    assert main([*args, "--out", str(tmp_path / "three"), "--bands", "4,3,2"]) == 0
    said = capsys.readouterr().out
    assert "in_chans" not in said and "--bands 4,3,2 " in said
    # ImageNet's stay on the line for an RGB model; the measured ones are printed beside it.
    measured = next(ln for ln in said.splitlines() if ln.startswith("measured on the train chips"))
    stats = json.loads((tmp_path / "three" / "chips.json").read_text())["statistics"]
    np.testing.assert_allclose(json.loads(shlex.split(measured)[-3]), stats["mean"], rtol=1e-5)
    assert main([*args, "--out", str(tmp_path / "all")]) == 0
    said = capsys.readouterr().out
    assert "--model.in_chans 5 " in said and "predict:" not in said
    # A bad list: exit 2, one line naming the scene's band count, no folder.
    assert main([*args, "--out", str(tmp_path / "bad"), "--bands", "4,6,2"]) == 2
    err = capsys.readouterr().err
    assert "bands [6] out of range; the raster has 5 band(s)" in err and not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_a_model_trained_on_band_chips_predicts_with_the_printed_line(scene, tmp_path, capsys):
    """Chips of bands 4,3,2,5 → two training steps of a 4-band model → the printed predict line runs
    on the five-band scene; without --bands the same model refuses it, naming both counts."""
    _, args = scene
    out = tmp_path / "chips"
    assert main([*args, "--out", str(out), "--bands", "4,3,2,5"]) == 0
    said = capsys.readouterr().out.splitlines()
    train = shlex.split(next(ln for ln in said if ln.startswith("train: ")).removeprefix("train: rrsis "))
    run = tmp_path / "run"
    assert main([*train, "--config", "gl-msin-tiny-synthetic", "--data.val_split", "null", "--train.max_steps", "2",
                 "--train.batch_size", "2", "--train.output_dir", str(run), "--train.progress", "false"]) == 0
    predict = shlex.split(next(ln for ln in said if ln.startswith("predict: ")).removeprefix("predict: rrsis "))
    predict = [str(run / "final") if w == "MODEL" else "the tank" if w == "TEXT" else w for w in predict]
    assert main([*predict, "--mode", "global", "--out", str(tmp_path / "pred"), "--quiet"]) == 0
    with rasterio.open(next(tmp_path.glob("pred*.tif"))) as ds:
        assert (ds.count, ds.height, ds.width) == (1, 96, 96)
    capsys.readouterr()
    without = [w for i, w in enumerate(predict) if "--bands" not in (w, predict[i - 1])]
    assert main([*without, "--mode", "global", "--out", str(tmp_path / "none"), "--quiet"]) == 2
    assert "5 band(s)" in capsys.readouterr().err


def test_the_printed_train_line_runs_as_printed(scene, tmp_path, capsys):
    """The train line carries the chips' measured statistics, shell-quoted (the folder's name holds
    a space): split as a shell splits it, it trains a 4-band model with them."""
    _, args = scene
    out = tmp_path / "s2 chips"
    assert main([*args, "--out", str(out), "--bands", "4,3,2,5"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("train: "))
    train = shlex.split(line.removeprefix("train: rrsis "))
    assert train[:5] == ["train", "--data.dataset", "risbench", "--data.root", str(out)]
    mean = json.loads(train[train.index("--model.mean") + 1])
    stats = json.loads((out / "chips.json").read_text())["statistics"]
    np.testing.assert_allclose(mean, stats["mean"], rtol=1e-5)
    run = tmp_path / "run"
    assert main([*train, "--config", "gl-msin-tiny-synthetic", "--data.val_split", "null", "--train.max_steps", "1",
                 "--train.batch_size", "2", "--train.output_dir", str(run), "--train.progress", "false"]) == 0
    config = json.loads((run / "final" / "config.json").read_text())["model_args"]["backbone"]
    assert (config["in_chans"], config["scale"]) == (4, "dtype")
    np.testing.assert_allclose(config["mean"], stats["mean"], rtol=1e-5)
    np.testing.assert_allclose(config["std"], stats["std"], rtol=1e-5)
