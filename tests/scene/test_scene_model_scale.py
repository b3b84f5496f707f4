"""A model records the value scaling of its training data (``backbone.scale``, which ``rrsis
train`` sets from ``data.options.scale``), and ``predict``, ``segment_scene``, ``rrsis predict``
and the app read 16-bit scenes with it when given no ``scale``/``stretch``: the pixels a model
sees at inference are the pixels it was trained on, not a percentile stretch of them."""

import numpy as np
import pytest
import torch

rasterio = pytest.importorskip("rasterio")

import rrsis
from rrsis.app import run as app_run
from rrsis.cli import main

MEAN, STD = [0.485, 0.456, 0.406, 0.5], [0.229, 0.224, 0.225, 0.25]


@pytest.fixture(scope="module")
def model(tiny_tokenizer):
    torch.manual_seed(0)
    m = rrsis.create_model("gl-msin-tiny", in_chans=4, mean=MEAN, std=STD, scale="dtype", image_size=64,
                           text_vocab_size=len(tiny_tokenizer)).eval()
    m.tokenizer = tiny_tokenizer
    return m


def _tif(path, data):
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[1], width=data.shape[2], count=data.shape[0],
                       dtype=data.dtype, photometric="MINISBLACK", crs="EPSG:32633",
                       transform=rasterio.transform.from_origin(5e5, 4e6, 0.5, 0.5)) as ds:
        ds.write(data)
    return str(path)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    u8 = np.random.default_rng(2).integers(0, 200, (4, 64, 64), dtype=np.uint8)
    u16 = u8.astype(np.uint16) * 257  # the same values at 16 bits: "dtype" maps both to u8 / 255
    return {"u8": _tif(root / "u8.tif", u8), "u16": _tif(root / "u16.tif", u16), "raw": u16}


def test_the_scale_is_part_of_the_config_and_survives_saving(model, tmp_path):
    assert model.pixel_scale == "dtype" and model.config["backbone"]["scale"] == "dtype"
    model.save_pretrained(tmp_path / "m")
    assert rrsis.from_pretrained(tmp_path / "m").pixel_scale == "dtype"
    assert rrsis.create_model("gl-msin-tiny").pixel_scale is None
    with pytest.raises(rrsis.ConfigError, match="scale must be 'dtype', 'max', 'minmax', a positive divisor"):
        rrsis.create_model("gl-msin-tiny", scale="dtypes")


def test_predict_reads_16_bit_values_with_the_models_scale(model, scenes):
    hwc = np.moveaxis(scenes["raw"], 0, -1)
    seen, _ = model.preprocess([hwc])
    ref = (torch.from_numpy(scenes["raw"].astype(np.float64) / 65535.0) - torch.tensor(MEAN).double().view(4, 1, 1)) \
        / torch.tensor(STD).double().view(4, 1, 1)
    torch.testing.assert_close(seen[0].double(), ref, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(model.predict(hwc, "the red building")[0],
                                  model.predict(hwc, "the red building", scale="dtype")[0])


def _probability(model, path, out, **kw):
    r = rrsis.segment_scene(model, path, "the red building", mode="global", probabilities=True, out=out, **kw)[0]
    with rasterio.open(r.files["mask"]) as ds:
        return ds.read(1)


def test_the_scene_path_cli_and_app_read_with_the_models_scale(model, scenes, tmp_path):
    want = _probability(model, scenes["u16"], str(tmp_path / "dtype"), scale="dtype")
    np.testing.assert_array_equal(_probability(model, scenes["u16"], str(tmp_path / "default")), want)
    np.testing.assert_array_equal(_probability(model, scenes["u8"], str(tmp_path / "u8")), want)
    # an explicit stretch still wins (and is a different reading of the same file)
    stretched = _probability(model, scenes["u16"], str(tmp_path / "stretch"), stretch=(2, 98))
    assert not np.array_equal(stretched, want)

    model.save_pretrained(tmp_path / "m")
    assert main(["predict", "--model", str(tmp_path / "m"), "--image", scenes["u16"], "--text", "the red building",
                 "--mode", "global", "--probabilities", "--quiet", "--out", str(tmp_path / "cli")]) == 0
    with rasterio.open(tmp_path / "cli_mask.tif") as ds:
        np.testing.assert_array_equal(ds.read(1), want)

    mask = _probability(model, scenes["u16"], str(tmp_path / "binary"), scale="dtype") >= 128
    (tmp_path / "app").mkdir()
    r = app_run(model, scenes["u16"], ["the red building"], workdir=tmp_path / "app", mode="global")[0]
    with rasterio.open(r.mask_tif) as ds:
        np.testing.assert_array_equal(ds.read(1) > 0, mask)
