"""``rrsis chips`` end to end: a GeoTIFF and a GeoPackage in, a folder ``rrsis train`` trains on out."""

from __future__ import annotations

import json

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
shapely = pytest.importorskip("shapely")
pytest.importorskip("pyogrio")

from affine import Affine
from PIL import Image
from pyogrio.raw import write
from shapely.geometry import box

from rrsis.cli import main

T = Affine(0.5, 0, 400000.0, 0, -0.5, 4600064.0)


def _scene(folder):
    """A 128² RGB scene whose four 64² quadrants each hold one coloured square, and their labels."""
    data = np.full((3, 128, 128), 60, np.uint8)
    colours = {"red": (200, 40, 40), "white": (250, 250, 250), "blue": (40, 40, 200), "green": (40, 180, 40)}
    geoms, texts = [], []
    for (name, rgb), (r, c) in zip(colours.items(), [(0, 0), (0, 64), (64, 0), (64, 64)], strict=True):
        data[:, r + 16:r + 48, c + 16:c + 48] = np.array(rgb, np.uint8)[:, None, None]
        # The labelled area is the whole quadrant, so every chip is its quadrant (no overlap, no border drop).
        geoms.append(shapely.affinity.affine_transform(box(c, r, c + 64, r + 64), [T.a, T.b, T.d, T.e, T.c, T.f]))
        texts.append(f"the {name} square")
    with rasterio.open(folder / "scene.tif", "w", driver="GTiff", height=128, width=128, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=T) as ds:
        ds.write(data)
    write(str(folder / "labels.gpkg"), np.array([shapely.to_wkb(g) for g in geoms], dtype=object),
          [np.array(texts, dtype=object)], ["expression"], driver="GPKG", crs="EPSG:32633", geometry_type="Polygon")
    return data


def test_rrsis_chips_then_two_training_steps(tmp_path, capsys):
    data = _scene(tmp_path)
    out = tmp_path / "mine"
    args = ["chips", "--image", str(tmp_path / "scene.tif"), "--labels", str(tmp_path / "labels.gpkg"),
            "--text-field", "expression", "--out", str(out), "--size", "64", "--val", "0.25", "--test", "0",
            "--block", "1"]
    assert main(args) == 0
    said = capsys.readouterr().out
    assert "wrote 4 chips (png)" in said and f"--data.root {out}" in said
    meta = json.loads((out / "chips.json").read_text())
    assert meta["counts"]["val"] >= 1 and meta["counts"]["train"] >= 1
    for c in meta["chips"]:
        r0, c0, r1, c1 = c["window"]
        assert (r1 - r0, c1 - c0) == (64, 64) and r0 % 64 == 0 and c0 % 64 == 0
        with Image.open(out / "images" / f"{c['id']}.png") as im:
            np.testing.assert_array_equal(np.asarray(im), data[:, r0:r1, c0:c1].transpose(1, 2, 0))
    # A second run into the folder is refused without --overwrite, with one line naming it.
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    # A missing text field is a one-line error naming the fields there are.
    assert main([*args[:5], "--text-field", "expresion", *args[7:], "--overwrite"]) == 2
    assert "did you mean 'expression'" in capsys.readouterr().err
    run = tmp_path / "run"
    assert main(["train", "--config", "gl-msin-tiny-synthetic", "--data.dataset", "risbench", "--data.root", str(out),
                 "--train.max_steps", "2", "--train.batch_size", "2", "--train.output_dir", str(run), "--train.progress", "false"]) == 0
    assert (run / "final" / "model.safetensors").is_file()
    steps = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert any(s.get("step") == 2 for s in steps)


def test_chips_prints_its_own_warnings_not_a_librarys_deprecations(tmp_path, capsys):
    """A chip larger than the scene is a boundless read: rasterio computes its window's transform
    with affine's ``*`` (a PendingDeprecationWarning under affine 3). Not the user's business: only
    rrsis's own warnings are printed (here: the scene's 8-bit values are all dark, 0-3)."""
    data = np.zeros((3, 48, 48), np.uint8)
    data[:, 16:32, 16:32] = 3  # a 0/3 class layer
    with rasterio.open(tmp_path / "scene.tif", "w", driver="GTiff", height=48, width=48, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=T) as ds:
        ds.write(data)
    square = shapely.affinity.affine_transform(box(16, 16, 32, 32), [T.a, T.b, T.d, T.e, T.c, T.f])
    write(str(tmp_path / "labels.gpkg"), np.array([shapely.to_wkb(square)], dtype=object),
          [np.array(["the square"], dtype=object)], ["expression"], driver="GPKG", crs="EPSG:32633",
          geometry_type="Polygon")
    args = ["chips", "--image", str(tmp_path / "scene.tif"), "--labels", str(tmp_path / "labels.gpkg"),
            "--text-field", "expression", "--out", str(tmp_path / "chips"), "--size", "64", "--val", "0",
            "--test", "0"]
    assert main(args) == 0
    said = capsys.readouterr()
    (chip,) = json.loads((tmp_path / "chips" / "chips.json").read_text())["chips"]
    r0, c0, r1, c1 = chip["window"]
    assert r0 < 0 or c0 < 0 or r1 > 48 or c1 > 48  # reaches past the scene: a boundless read
    assert "values span only 0-3 of 0-255" in said.out  # rrsis's own warning, still printed
    assert "matmul" not in said.out + said.err and "Deprecat" not in said.out + said.err
