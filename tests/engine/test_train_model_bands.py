"""A recipe's datasets read the bands the model takes, normalised with the model's statistics: a
4-band model trains on 4-band 16-bit GeoTIFFs with only the model's keys set, and the pixels it
trained on are the pixels ``model.preprocess`` (so ``predict`` and the scene path) gives it."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("rasterio")

from _fixtures import fit, four_band_folder, recipe

import rrsis
from rrsis.engine import load_config
from rrsis.engine.inputs import model_statistics
from rrsis.engine.trainer import build_datasets

MEAN, STD = [0.485, 0.456, 0.406, 0.5], [0.229, 0.224, 0.225, 0.25]
MODEL = ["model.in_chans=4", f"model.mean={json.dumps(MEAN)}", f"model.std={json.dumps(STD)}"]


def _data(root, *overrides):
    return load_config("gl-msin-tiny-synthetic", ["data.dataset=risbench", f"data.root={root}",
                                                  'data.options={"scale": "dtype"}', *MODEL, *overrides])


def test_the_datasets_take_the_models_statistics_and_band_count(tmp_path):
    cfg = _data(four_band_folder(tmp_path))
    assert model_statistics(cfg["model"]) == (MEAN, STD)
    train, val = build_datasets(cfg["data"], cfg["model"])
    for ds in (train, val):
        assert ds.channels == 4
        assert torch.allclose(ds.transform.mean.flatten(), torch.tensor(MEAN))
        assert ds[0]["pixel_values"].shape == (4, 64, 64)
    # without the model's section: an RGB model, told to set the band count or choose bands
    with pytest.raises(ValueError, match="the images have 4 bands but the model reads 3"):
        build_datasets(cfg["data"])
    # statistics the model does not have are refused, naming both
    bad = _data(tmp_path, 'data.options={"scale": "dtype", "mean": [0.5, 0.5, 0.5, 0.5], "std": [1, 1, 1, 1]}')
    with pytest.raises(ValueError, match=r"differ from the model's .*0\.485"):
        build_datasets(bad["data"], bad["model"])


def test_a_4_band_model_trains_on_4_band_geotiffs_and_sees_the_same_pixels_in_predict(tmp_path):
    (tmp_path / "data").mkdir()
    root = four_band_folder(tmp_path / "data")
    cfg = recipe(root, tmp_path / "run", "data.dataset=risbench", 'data.options={"scale": "dtype"}', *MODEL,
                 max_steps=1, batch_size=2, log_every=1)
    out = fit(cfg)["output_dir"]
    for kind in ("best", "final"):
        model = rrsis.from_pretrained(f"{out}/{kind}")
        assert (model.in_chans, list(model.pixel_mean), list(model.pixel_std)) == (4, MEAN, STD)
        assert model.pixel_scale == "dtype"  # data.options.scale, recorded for predict and the scene path
    train, _ = build_datasets(cfg["data"], cfg["model"])
    sample = train[0]
    image = train.entries[0].image_path
    seen, _ = model.preprocess([image], image_size=64)  # the model's own scale
    torch.testing.assert_close(seen[0], sample["pixel_values"])
    # an independent computation of the same normalisation
    import rasterio

    with rasterio.open(image) as ds:
        raw = torch.from_numpy(ds.read().astype(np.float64) / 65535.0)
    ref = (raw - torch.tensor(MEAN, dtype=torch.float64).view(4, 1, 1)) / torch.tensor(STD, dtype=torch.float64).view(4, 1, 1)
    torch.testing.assert_close(sample["pixel_values"].double(), ref, atol=1e-5, rtol=0)


def test_fine_tuning_a_saved_4_band_model_reads_its_statistics(tmp_path):
    model = rrsis.create_model("gl-msin-tiny", in_chans=4, mean=MEAN, std=STD, image_size=64)
    model.save_pretrained(tmp_path / "saved")
    assert model_statistics({"name": "gl-msin-tiny", "init": str(tmp_path / "saved")}) == (MEAN, STD)
    assert model_statistics({"name": "gl-msin-tiny"}) is None
    # a saved model's value scaling becomes the datasets' when the recipe gives none
    model = rrsis.create_model("gl-msin-tiny", in_chans=4, mean=MEAN, std=STD, scale=10000.0, image_size=64)
    model.save_pretrained(tmp_path / "scaled")
    assert model_statistics({"name": "gl-msin-tiny", "init": str(tmp_path / "scaled")}, "scale") == 10000.0
    (tmp_path / "data").mkdir()
    cfg = load_config("gl-msin-tiny-synthetic", ["data.dataset=risbench", f"data.root={four_band_folder(tmp_path / 'data', n=1)}",
                                                 f"model.init={tmp_path / 'scaled'}", "data.val_split=null"])
    train, _ = build_datasets(cfg["data"], cfg["model"])
    assert train.scale == 10000.0 and train.channels == 4


def test_statistics_equal_up_to_float32_are_the_models():
    """The dataset's float32 statistics and the model's config values agree up to float32: a value
    such as 0.0632605 (rrsis chips prints seven digits) rounds apart at six places in the two."""
    from types import SimpleNamespace

    from rrsis.engine.inputs import check_dataset_bands

    mean = [0.0327424, 0.0251129, 0.0174834, 0.0632605]
    model = rrsis.create_model("gl-msin-tiny", in_chans=4, mean=mean, std=STD, image_size=64)
    data = SimpleNamespace(transform=SimpleNamespace(mean=torch.tensor(mean).view(4, 1, 1),
                                                     std=torch.tensor(STD).view(4, 1, 1)))
    check_dataset_bands(data, model, "the training set")
    data.transform.mean = torch.tensor([*mean[:3], 0.0633]).view(4, 1, 1)
    with pytest.raises(ValueError, match=r"normalises 4 band\(s\) with mean \[0\.032742, .*0\.0633\]"):
        check_dataset_bands(data, model, "the training set")
