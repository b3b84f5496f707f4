"""Large georeferenced synthetic scenes (rrsis/data/synthetic/large.py) and ``rrsis synth --large``."""

import json

import numpy as np
import pytest

from rrsis.cli import main
from rrsis.data.synthetic.large import write_large_scene

rasterio = pytest.importorskip("rasterio")


def test_large_scene_is_georeferenced_and_expressions_name_one_object(tmp_path):
    meta = write_large_scene(tmp_path, 320, seed=3, render_size=160, block=100, n_expressions=4)
    with rasterio.open(tmp_path / meta["image"]) as ds, rasterio.open(tmp_path / meta["labels"]) as dl:
        assert (ds.count, ds.dtypes[0], ds.width, ds.height) == (4, "uint16", 320, 320)
        assert ds.crs.to_epsg() == 32633 and ds.transform.a == 0.5 and ds.nodata == 0
        data, labels = ds.read(), dl.read(1)
        valid = ds.dataset_mask() > 0
    collar = meta["nodata_collar_px"]
    assert collar > 0 and not valid[:, :collar].any() and valid[:, collar:].all()
    assert not labels[:, :collar].any()
    # The scene is the render upsampled 2× (nearest): every 2×2 block is constant.
    assert (data[:, ::2, ::2] == data[:, 1::2, 1::2]).all()
    ids = {o["id"] for o in meta["objects"]}
    assert set(np.unique(labels)) - {0} <= ids
    assert meta["expressions"] and len({e["object"] for e in meta["expressions"]}) == len(meta["expressions"])
    for e in meta["expressions"]:
        assert e["object"] in ids and (labels == e["object"]).any() and e["text"].strip()
    # same arguments, same files
    again = write_large_scene(tmp_path / "again", 320, seed=3, render_size=160, block=64, n_expressions=4)
    assert again == meta
    with rasterio.open(tmp_path / "again" / meta["image"]) as ds:
        assert (ds.read() == data).all()


def test_large_scene_bad_render_size(tmp_path):
    with pytest.raises(ValueError, match="render_size"):
        write_large_scene(tmp_path, 128, render_size=256)


def test_synth_large_cli(tmp_path, capsys):
    assert main(["synth", str(tmp_path), "--large", "--size", "192", "--n-scenes", "2", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert out.count("wrote") == 2 and "->" in out
    for k in range(2):
        meta = json.loads((tmp_path / f"scene{k}.json").read_text())
        assert (tmp_path / meta["image"]).is_file() and meta["size"] == 192
    capsys.readouterr()
    assert main(["synth", str(tmp_path / "w"), "--large", "--size", "192", "--workers", "2"]) == 2
    assert "--workers" in capsys.readouterr().err
