"""A model of four input bands through ``preprocess``, ``predict`` and ``segment_scene``: the
model's own band count and per-band statistics, and errors that name both counts."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import rrsis
from rrsis.data.synthetic.writers import write_tiff

MEAN, STD = [0.485, 0.456, 0.406, 0.5], [0.229, 0.224, 0.225, 0.25]


@pytest.fixture(scope="module")
def model4(tiny_tokenizer):
    torch.manual_seed(0)
    m = rrsis.create_model("gl-msin-tiny", in_chans=4, mean=MEAN, std=STD,
                           text_vocab_size=len(tiny_tokenizer)).eval()
    m.tokenizer = tiny_tokenizer
    return m


@pytest.fixture(scope="module")
def image4():
    return np.random.default_rng(4).integers(0, 256, (64, 96, 4), dtype=np.uint8)


def test_preprocess_normalises_each_band_with_the_model_statistics(model4, image4):
    pix, sizes = model4.preprocess(image4, image_size=64)
    x = torch.from_numpy(image4.transpose(2, 0, 1).astype(np.float32) / 255.0)[None]
    x = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
    want = (x - torch.tensor(MEAN).view(1, 4, 1, 1)) / torch.tensor(STD).view(1, 4, 1, 1)
    assert sizes == [(64, 96)]
    torch.testing.assert_close(pix, want, atol=1e-5, rtol=1e-5)


def test_predict_reads_all_four_bands_and_the_fourth_matters(model4, image4):
    text = "the red building"
    a = model4.predict(image4, text, threshold=0.5)[0]
    pix, _ = model4.preprocess(image4)
    tokens = model4.tokenizer([text])
    with torch.no_grad():
        logits = model4(pix, tokens["input_ids"], tokens["attention_mask"]).logits
    want = model4.postprocess(logits, [(64, 96)], output="probability")[0]
    np.testing.assert_array_equal(a, want > 0.5)
    other = image4.copy()
    other[..., 3] = 255 - other[..., 3]
    pix2, _ = model4.preprocess(other)
    assert not torch.equal(pix2[:, 3], pix[:, 3]) and torch.equal(pix2[:, :3], pix[:, :3])
    with torch.no_grad():
        logits2 = model4(pix2, tokens["input_ids"], tokens["attention_mask"]).logits
    assert not torch.allclose(logits, logits2)  # the fourth band reaches the output


def test_band_count_errors_name_both_counts(model4, image4, tmp_path):
    with pytest.raises(ValueError, match=r"has 3 band\(s\) but the model takes 4"):
        model4.predict(image4[..., :3], "the red building")
    with pytest.raises(ValueError, match=r"names 3 band\(s\) but the model takes 4"):
        model4.predict(image4, "the red building", bands=(1, 2, 3))
    with pytest.raises(ValueError, match=r"a tensor must be read pixels \[4, H, W\]"):
        model4.preprocess(torch.zeros(3, 32, 32))
    # bands= picks four of five, counted from 1
    five = np.concatenate([image4, image4[..., :1]], axis=2)
    write_tiff(str(tmp_path / "five.tif"), five)
    got = model4.predict(str(tmp_path / "five.tif"), "the red building", bands=(1, 2, 3, 4))[0]
    np.testing.assert_array_equal(got, model4.predict(image4, "the red building")[0])
    with pytest.raises(ValueError, match="has 5 band"):
        model4.predict(str(tmp_path / "five.tif"), "the red building")


def test_segment_scene_global_pass_is_predict_for_four_bands(model4, image4, tmp_path):
    want = model4.predict(image4, "the red building")[0]
    got = rrsis.segment_scene(model4, image4, "the red building", mode="global")[0]
    np.testing.assert_array_equal(got.mask, want)
    pytest.importorskip("rasterio")
    write_tiff(str(tmp_path / "s.tif"), image4)
    res = rrsis.segment_scene(model4, str(tmp_path / "s.tif"), "the red building", mode="global",
                              out=str(tmp_path / "out"))[0]
    np.testing.assert_array_equal(res.mask if res.mask is not None else want, want)
    assert res.area_px == int(want.sum())
    with pytest.raises(ValueError, match=r"names 3 band\(s\) but the model takes 4"):
        rrsis.segment_scene(model4, str(tmp_path / "s.tif"), "the red building", bands=(1, 2, 3))


def test_rgb_model_still_reads_three_of_four_bands(tiny_model, image4):
    a = tiny_model.predict(image4[..., :3], "the red building")[0]
    b = tiny_model.predict(image4, "the red building", bands=(1, 2, 3))[0]
    np.testing.assert_array_equal(a, b)
    # one band chosen for an RGB model reads as a grey image of that band
    c = tiny_model.predict(image4, "the red building", bands=(2,))[0]
    np.testing.assert_array_equal(c, tiny_model.predict(image4[..., 1], "the red building")[0])
    with pytest.raises(ValueError, match=r"names 2 band\(s\) but the model takes 3"):
        tiny_model.predict(image4, "the red building", bands=(1, 2))


def test_rrsis_predict_reads_a_4_band_geotiff_for_a_4_band_model(model4, tmp_path, capsys):
    """The command line opens the scene before loading the model; a 4-band model then reads
    the file with its own band count, in the order --bands gives."""
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    from rrsis.cli import main

    model4.save_pretrained(tmp_path / "m4")
    data = np.random.default_rng(1).integers(0, 256, (4, 64, 64), dtype=np.uint8)
    # Four spectral bands (GDAL would take a fourth uint8 band for alpha unless told otherwise).
    with rasterio.open(tmp_path / "s.tif", "w", driver="GTiff", width=64, height=64, count=4, dtype="uint8",
                       photometric="MINISBLACK", crs="EPSG:32633",
                       transform=from_origin(400000, 4600000, 0.5, 0.5)) as ds:
        ds.write(data)
    probs = {}
    for name, bands in (("all", []), ("reversed", ["--bands", "4,3,2,1"])):
        argv = ["predict", "--model", str(tmp_path / "m4"), "--image", str(tmp_path / "s.tif"), "--text",
                "the red building", "--out", str(tmp_path / name), "--probabilities", "--mode", "global",
                "--quiet", *bands]
        assert main(argv) == 0
        with rasterio.open(tmp_path / f"{name}_mask.tif") as ds:
            probs[name] = ds.read(1)
    want = model4.predict(data.transpose(1, 2, 0)[..., ::-1].copy(), "the red building", threshold=0.5)[0]
    assert ((probs["reversed"] >= 128) == want).all()
    assert not np.array_equal(probs["all"], probs["reversed"])
    assert main(["predict", "--model", str(tmp_path / "m4"), "--image", str(tmp_path / "s.tif"), "--text", "x",
                 "--out", str(tmp_path / "bad"), "--bands", "1,2,3", "--quiet"]) == 2
    assert "names 3 band(s) but the model takes 4" in capsys.readouterr().err


def test_a_one_band_model_reads_grey_scenes_as_one_band(tiny_tokenizer, tmp_path):
    """Grey stays one band for a model of one band (an RGB model still sees it as grey R=G=B)."""
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    torch.manual_seed(0)
    m = rrsis.create_model("gl-msin-tiny", in_chans=1, mean=[0.5], std=[0.25],
                           text_vocab_size=len(tiny_tokenizer)).eval()
    m.tokenizer = tiny_tokenizer
    grey = np.random.default_rng(2).integers(0, 256, (70, 90), dtype=np.uint8)
    tok = tiny_tokenizer(["the red building"])
    pix, sizes = m.preprocess(grey, image_size=64)
    assert pix.shape == (1, 1, 64, 64)
    with torch.no_grad():
        (prob,) = m.postprocess(m(pix, tok["input_ids"], tok["attention_mask"]).logits, sizes, output="probability")
    thr = float(np.median(prob))
    (res,) = rrsis.segment_scene(m, grey, "the red building", mode="global", global_size=64, threshold=thr)
    np.testing.assert_array_equal(res.mask, m.predict(grey, "the red building", threshold=thr, image_size=64)[0])
    assert 0.05 < res.mask.mean() < 0.95
    with rasterio.open(tmp_path / "g.tif", "w", driver="GTiff", width=90, height=70, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(400000, 4600000, 0.5, 0.5)) as ds:
        ds.write(grey[None])
    (res,) = rrsis.segment_scene(m, str(tmp_path / "g.tif"), "the red building", mode="tiles", out=str(tmp_path / "o"))
    with rasterio.open(res.files["overlay"]) as ov:
        assert ov.count >= 3  # the overlay shows grey as grey
