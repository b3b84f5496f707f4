"""Training a many-band model: a recipe that sets ``model.in_chans`` without statistics, or none on
many-band images, is told what to set (first, before the dataset's own band rule); ``model.mean
auto`` / ``model.std auto`` measure the statistics on the training split, as numpy does."""

import json

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
from _fixtures import fit, four_band_folder, recipe

import rrsis
from rrsis._config import ConfigError
from rrsis.data import measure_statistics
from rrsis.engine.trainer import build_datasets


def _numpy_statistics(root, bands=(1, 2, 3, 4)):
    with open(f"{root}/output_phrase_train.txt") as fh:
        ids = sorted({line.split()[0] for line in fh if line.strip()})
    x = np.stack([rasterio.open(f"{root}/images/{i}.tif").read(list(bands)) for i in ids]).astype(np.float64) / 65535
    return x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))


def test_in_chans_without_statistics_is_told_how_to_get_them(tmp_path):
    root = four_band_folder(tmp_path / "d", n=2)
    cfg = recipe(root, tmp_path / "run", "data.dataset=risbench", 'data.options={"scale": "dtype"}', "model.in_chans=4")
    with pytest.raises(ConfigError) as info:
        build_datasets(cfg["data"], cfg["model"])
    said = str(info.value)
    assert said.startswith("model.in_chans=4 needs per-band normalisation statistics")
    assert "--model.mean auto --model.std auto" in said and "channels (bands)" not in said


def test_many_band_images_without_in_chans_are_told_to_set_it(tmp_path):
    root = four_band_folder(tmp_path / "d", n=2)
    cfg = recipe(root, tmp_path / "run", "data.dataset=risbench", 'data.options={"scale": "dtype"}')
    with pytest.raises(ConfigError) as info:
        build_datasets(cfg["data"], cfg["model"])
    said = str(info.value)
    assert "the images have 4 bands but the model reads 3" in said
    assert "--model.in_chans 4" in said and "--model.mean auto --model.std auto" in said
    assert """--data.options '{"scale": "dtype", "bands": [4, 3, 2]}'""" in said
    assert "use a model built with" not in said


def test_auto_statistics_are_numpys_on_the_training_split_and_recorded(tmp_path):
    root = four_band_folder(tmp_path / "d", n=3)
    mean, std = _numpy_statistics(root)
    cfg = recipe(root, tmp_path / "run", "data.dataset=risbench", 'data.options={"scale": "dtype"}',
                 "model.in_chans=4", "model.mean=auto", "model.std=auto", max_steps=1, batch_size=2, log_every=1)
    train, val = build_datasets(cfg["data"], cfg["model"])
    got = train.measured_statistics
    np.testing.assert_allclose(got[0], mean, rtol=1e-5)
    np.testing.assert_allclose(got[1], std, rtol=1e-5)
    np.testing.assert_allclose(val.transform.mean.flatten().numpy(), got[0], rtol=1e-6)
    np.testing.assert_allclose(train.transform.std.flatten().numpy(), got[1], rtol=1e-6)
    out = fit(cfg)["output_dir"]
    model = rrsis.from_pretrained(f"{out}/final")
    assert list(model.pixel_mean) == got[0] and list(model.pixel_std) == got[1]
    with open(f"{out}/config.json") as fh:
        run = json.load(fh)["model"]
    assert (run["mean"], run["std"]) == tuple(got)  # numbers: the run reruns without measuring
    with pytest.raises(ConfigError, match="set both to auto"):
        build_datasets(cfg["data"], {**cfg["model"], "std": [0.2] * 4})


def test_measure_statistics_reads_the_datasets_bands_once_per_image(tmp_path):
    root = four_band_folder(tmp_path / "d", n=3)
    ds = rrsis.data.build_dataset("risbench", root, "train", scale="dtype", bands=(4, 2), mean=[0.5] * 2, std=[0.5] * 2)
    mean, std = measure_statistics(ds)
    np.testing.assert_allclose(mean, _numpy_statistics(root, (4, 2))[0], rtol=1e-5)
    np.testing.assert_allclose(std, _numpy_statistics(root, (4, 2))[1], rtol=1e-5)
