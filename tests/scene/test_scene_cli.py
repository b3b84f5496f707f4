"""``rrsis predict`` on georeferenced rasters (in-process): files, CRS, flags, clear errors."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import rrsis
from rrsis.cli import main

rasterio = pytest.importorskip("rasterio")
from test_scene import CRS, TRANSFORM, write_scene


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_tokenizer):
    from rrsis.hub import save_pretrained

    out = tmp_path_factory.mktemp("scene_cli")
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tiny_tokenizer))
    model.tokenizer = tiny_tokenizer
    save_pretrained(model, out / "model")
    write_scene(out / "scene.tif")
    return out


@pytest.mark.parametrize("extra", [[], ["--mode", "global-local", "--tile", "64", "--overlap", "0.5",
                                        "--bands", "4,3,2", "--probabilities", "--geojson-crs", "native"]])
def test_predict_on_geotiff_writes_gis_outputs(saved, tmp_path, capsys, extra):
    prefix = tmp_path / "o" / "pred"
    assert main(["predict", "--model", str(saved / "model"), "--image", str(saved / "scene.tif"),
                 "--text", "the red building", "--out", str(prefix), "--quiet", *extra]) == 0
    with rasterio.open(f"{prefix}_mask.tif") as ds:
        assert ds.crs == rasterio.crs.CRS.from_user_input(CRS) and ds.transform == TRANSFORM
        vals = np.unique(ds.read(1))
    if "--probabilities" not in extra:
        assert set(vals) <= {0, 255}
    fc = json.loads(Path(f"{prefix}.geojson").read_text())
    assert fc["type"] == "FeatureCollection" and (("crs" in fc) == ("native" in extra))
    assert (tmp_path / "o" / "pred_overlay.png").is_file()
    out = capsys.readouterr().out
    assert "m²" in out and out.count("wrote") == 5  # mask, GeoJSON, overlay + its .pgw and .aux.xml


def test_predict_several_texts_and_bad_flags(saved, tmp_path, capsys):
    prefix = tmp_path / "m"
    argv = ["predict", "--model", str(saved / "model"), "--image", str(saved / "scene.tif"),
            "--out", str(prefix), "--quiet", "--mode", "global"]
    assert main([*argv, "--text", "the red building", "--text", "the largest tank"]) == 0
    assert (tmp_path / "m_1_mask.tif").is_file() and (tmp_path / "m_2.geojson").is_file()
    assert main([*argv, "--text", "a", "--bands", "9,3,2"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main([*argv, "--text", "a", "--stretch", "x"]) == 2
    assert "--stretch" in capsys.readouterr().err
    assert main([*argv, "--text", "a", "--bands", "0,1,2"]) == 2
    assert "count from 1" in capsys.readouterr().err
    assert main([*argv, "--text", " "]) == 2
    assert "--text 1 is empty" in capsys.readouterr().err  # counted from 1, as bands are
    # m_1_* exist: without --overwrite they are refused first (checked before the model stack is imported)
    assert main([*argv, "--text", "a", "--text", "", "--overwrite"]) == 2
    assert "--text 2 is empty" in capsys.readouterr().err


def test_predict_value_scaling_and_pixel_ratio(saved, tmp_path, capsys):
    from PIL import Image

    argv = ["predict", "--model", str(saved / "model"), "--out", str(tmp_path / "v"), "--quiet",
            "--text", "the red building"]
    # 16-bit raster: value scaling with predict's meaning; the tiled pass at 2 scene px per model px.
    assert main([*argv, "--image", str(saved / "scene.tif"), "--scale", "dtype", "--mode", "tiles",
                 "--tile", "64", "--pixel-ratio", "2"]) == 0
    assert (tmp_path / "v_mask.tif").is_file()
    capsys.readouterr()
    png = tmp_path / "plain.png"
    Image.fromarray(np.full((40, 50, 3), 200, np.uint8)).save(png)
    # The old meaning of --scale (pixel ratio) on 8-bit data is an error that names the new flag (with
    # --overwrite: v_* exist, which is refused first, before the model stack is imported).
    assert main([*argv, "--image", str(png), "--scale", "2", "--overwrite"]) == 2
    assert "--pixel-ratio" in capsys.readouterr().err
    assert main([*argv, "--image", str(saved / "scene.tif"), "--scale", "2", "--overwrite"]) == 2  # 16-bit too
    assert "--pixel-ratio" in capsys.readouterr().err


def test_predict_geotiff_without_rasterio_names_the_extra(saved, tmp_path, capsys, monkeypatch):
    for name in [m for m in sys.modules if m == "rasterio" or m.startswith("rasterio.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "rasterio", None)
    assert main(["predict", "--model", str(saved / "model"), "--image", str(saved / "scene.tif"),
                 "--text", "the red building", "--out", str(tmp_path / "x")]) == 2  # the one exit-code map
    assert 'pip install "rrsis[geo]"' in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
