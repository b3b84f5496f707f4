"""One image reader for predict and the datasets: orientation, colour spaces, bands, depth, bombs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from test_data import write_raw_tiff

from rrsis.data import RRSISDDataset, read_image
from rrsis.data.transforms import ResizeNormalize


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model


def rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def model_inputs(model, fn):
    """The pixel_values the model received while ``fn`` ran."""
    seen = []
    handle = model.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    try:
        fn()
    finally:
        handle.remove()
    return torch.cat(seen)


def expected_pixels(image_hwc_float, size=64):
    x, _ = ResizeNormalize(size)(image_hwc_float, np.zeros(image_hwc_float.shape[:2], bool))
    return x[None]


def test_exif_orientation_is_applied(model, tmp_path):
    img = rgb(20, 36)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display = rotate 270 (90 clockwise)
    Image.fromarray(img).save(tmp_path / "o.png", exif=exif)
    upright = np.asarray(Image.fromarray(img).transpose(Image.Transpose.ROTATE_270))
    np.testing.assert_allclose(read_image(str(tmp_path / "o.png")), upright / 255.0)
    (mask,) = model.predict([tmp_path / "o.png"], ["the red building"])
    assert mask.shape == (36, 20)


def test_cmyk_jpeg_is_converted_to_rgb(model, tmp_path):
    cmyk = Image.fromarray(rgb(32, 32, seed=1)).convert("CMYK")
    cmyk.save(tmp_path / "c.jpg", quality=95)
    with Image.open(tmp_path / "c.jpg") as im:
        reference = np.asarray(im.convert("RGB")) / 255.0
    np.testing.assert_allclose(read_image(str(tmp_path / "c.jpg")), reference, atol=1e-6)
    got = model_inputs(model, lambda: model.predict([tmp_path / "c.jpg"], ["a plane"]))
    torch.testing.assert_close(got, expected_pixels(reference.astype(np.float32)))


def test_rgbn_tiff_needs_a_band_choice_in_predict(model, tmp_path):
    rgbn = np.random.default_rng(2).integers(0, 256, (24, 24, 4), dtype=np.uint8)
    write_raw_tiff(tmp_path / "rgbn.tif", rgbn, photometric=1)  # black-is-zero: no band declared a colour
    with pytest.raises(ValueError, match=r"image 0: .*rgbn.tif: 4 channels.*bands="):
        model.predict([tmp_path / "rgbn.tif"], ["a plane"])
    # Band numbers count from 1, as GDAL and rasterio count: 4 is the fourth band.
    got = model_inputs(model, lambda: model.predict([tmp_path / "rgbn.tif"], ["a plane"], bands=(4, 1, 2)))
    torch.testing.assert_close(got, expected_pixels((rgbn[..., [3, 0, 1]] / 255.0).astype(np.float32)))
    got = model_inputs(model, lambda: model.predict([tmp_path / "rgbn.tif"], ["a plane"], bands="4,1,2"))
    torch.testing.assert_close(got, expected_pixels((rgbn[..., [3, 0, 1]] / 255.0).astype(np.float32)))
    with pytest.raises(ValueError, match=r"count from 1.*got \[0\]"):
        model.predict([tmp_path / "rgbn.tif"], ["a plane"], bands=(0, 1, 2))
    with pytest.raises(ValueError, match=r"bands \[5\] out of range.*4 band"):
        model.predict([tmp_path / "rgbn.tif"], ["a plane"], bands=(5, 1, 2))


def test_16bit_and_float_tiffs_in_predict(model, tmp_path):
    arr = np.random.default_rng(3).integers(0, 65536, (16, 16, 3), dtype=np.uint16)
    write_raw_tiff(tmp_path / "d16.tif", arr)
    with pytest.raises(ValueError, match=r"uint16.*scale="):
        model.predict([tmp_path / "d16.tif"], ["a plane"])
    got = model_inputs(model, lambda: model.predict([tmp_path / "d16.tif"], ["a plane"], scale="dtype"))
    torch.testing.assert_close(got, expected_pixels((arr / 65535.0).astype(np.float32)))
    refl = np.random.default_rng(4).random((16, 16, 3)).astype(np.float32)
    Image.fromarray(refl[..., 0], mode="F").save(tmp_path / "f.tif")
    got = model_inputs(model, lambda: model.predict([tmp_path / "f.tif"], ["a plane"]))
    torch.testing.assert_close(got, expected_pixels(np.repeat(refl[..., :1], 3, axis=2)))


def test_decompression_bomb_is_a_clear_error(model, tmp_path, monkeypatch):
    Image.fromarray(rgb(64, 64)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ValueError, match=r"big.png.*decompression bomb.*MAX_IMAGE_PIXELS"):
        read_image(str(tmp_path / "big.png"))
    with pytest.raises(ValueError, match=r"decompression bomb"):
        model.predict([tmp_path / "big.png"], ["a plane"])


def test_predict_on_a_dataset_sample_gives_the_logits_of_evaluation(model, tmp_path, tiny_tokenizer):
    from rrsis.data.synthetic import generate
    from rrsis.engine.evaluation import evaluate

    generate(str(tmp_path), 3, seed=1, size=80, layout="rrsisd")
    ds = RRSISDDataset(str(tmp_path / "rrsisd"), "train", mode="eval", size=64, tokenizer=tiny_tokenizer)
    n = 3
    sub = torch.utils.data.Subset(ds, range(n))
    seen = []
    handle = model.register_forward_hook(lambda mod, args, out: seen.append(out.logits.detach().clone()))
    try:
        evaluate(model, sub, batch_size=n, progress=False)
        paths = [ds.entries[ds.sentence_index(i)[0]].image_path for i in range(n)]
        model.predict(paths, [ds[i]["text"] for i in range(n)], batch_size=n)
    finally:
        handle.remove()
    torch.testing.assert_close(seen[1], seen[0], rtol=0, atol=1e-6)


def test_truncated_and_unknown_expressions_warn(model):
    long = " ".join(["the red building"] * 10)
    with pytest.warns(UserWarning, match=r"text 0.*truncated to 12 tokens"):
        model.predict([rgb(8, 8)], [long])
    with pytest.warns(UserWarning, match=r"text 1.*no word.*vocabulary"):
        model.predict([rgb(8, 8), rgb(8, 8)], ["the ship", "\U0001F680 \U0001F6F0"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict([rgb(8, 8)], ["the red building"])
