"""``model.predict`` (rrsis/models/base.py): inputs of every kind, native-size masks, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import rrsis
from rrsis.data.transforms import IMAGENET_MEAN, IMAGENET_STD


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model


def rng_image(h, w, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def test_masks_at_native_size_for_every_input_kind(model, tmp_path):
    path = tmp_path / "scene.png"
    Image.fromarray(rng_image(50, 70)).save(path)
    images = [str(path), Image.fromarray(rng_image(33, 41, seed=1)), rng_image(90, 20, seed=2),
              rng_image(40, 40, 1, seed=3)[:, :, 0], rng_image(30, 60, 4, seed=4)]
    texts = ["the largest storage tank", "a plane", "the red building", "all three tanks", "the ship"]
    masks = model.predict(images, texts, batch_size=2)
    assert [m.shape for m in masks] == [(50, 70), (33, 41), (90, 20), (40, 40), (30, 60)]
    assert all(m.dtype == bool for m in masks)


def test_predict_equals_an_explicit_forward(model):
    img = rng_image(45, 77, seed=5)
    text = "the tank north of the road"
    (mask,) = model.predict([img], [text], threshold=0.5)
    # Independent reference: torch's antialiased bilinear resize of the [0, 1] image, ImageNet
    # normalisation, forward, bilinear resize of the logits back (align_corners=False).
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    x = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    tok = model.tokenizer([text])
    with torch.no_grad():
        logits = model(x, tok["input_ids"], tok["attention_mask"]).logits
    logits = F.interpolate(logits, size=(45, 77), mode="bilinear", align_corners=False)
    np.testing.assert_array_equal(mask, (logits.softmax(1)[0, 1] > 0.5).numpy())
    # Grey and RGBA inputs are the RGB image, replicated / without alpha.
    grey = img[:, :, 0]
    rgba = np.concatenate([img, np.full((45, 77, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(model.predict([rgba], [text])[0], mask)
    np.testing.assert_array_equal(model.predict([grey], [text])[0], model.predict([np.repeat(grey[:, :, None], 3, 2)], [text])[0])


def test_single_image_and_string(model):
    masks = model.predict(rng_image(20, 30), "the ship")
    assert len(masks) == 1 and masks[0].shape == (20, 30)


@pytest.mark.parametrize(
    "images, texts, message",
    [
        ([rng_image(8, 8)], ["a", "b"], "1 images but 2 texts"),
        ([rng_image(8, 8)], [""], "text 0 is empty"),
        ([rng_image(8, 8)], ["   "], "text 0 is empty"),
        ([np.zeros((0, 5, 3), np.uint8)], ["a tank"], "zero-size"),
        ([rng_image(8, 8).astype(np.int16)], ["a tank"], "int16 image needs an explicit scale="),
        ([rng_image(8, 8).astype(np.complex64)], ["a tank"], "unsupported dtype complex64"),
        ([np.full((8, 8, 3), np.nan, np.float32)], ["a tank"], "NaN"),
        ([np.full((8, 8, 3), 2.0, np.float32)], ["a tank"], r"\[0, 1\]"),
        ([rng_image(8, 8, 2)], ["a tank"], "2 channels"),
        ([np.zeros((2, 8, 8, 3), np.uint8)], ["a tank"], "shape"),
        ([42], ["a tank"], "expected a path, PIL image, numpy array or tensor"),
        ([], [], "no images"),
    ],
)
def test_bad_input_is_named(model, images, texts, message):
    with pytest.raises(ValueError, match=message):
        model.predict(images, texts)


def test_missing_and_unreadable_files(model, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        model.predict([tmp_path / "missing.png"], ["a tank"])
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot read image"):
        model.predict([bad], ["a tank"])


def test_predict_needs_a_vocabulary():
    m = rrsis.create_model("gl-msin-tiny")
    with pytest.raises(ValueError, match="needs a vocabulary"):
        m.predict([rng_image(8, 8)], ["a tank"])


def test_threshold_and_size_checks(model):
    with pytest.raises(ValueError, match="threshold"):
        model.predict([rng_image(8, 8)], ["a tank"], threshold=1.5)
    with pytest.raises(ValueError, match="multiple of 32"):
        model.predict([rng_image(8, 8)], ["a tank"], image_size=50)


def test_preprocess_and_postprocess_against_independent_references(model):
    img = rng_image(45, 77, seed=6)
    pix, sizes = model.preprocess(img, image_size=64)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    x = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
    ref = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert sizes == [(45, 77)]
    torch.testing.assert_close(pix, ref, rtol=0, atol=1e-6)
    logits = torch.randn(1, 2, 64, 64)
    up = F.interpolate(logits, size=(45, 77), mode="bilinear", align_corners=False)
    p_ref = torch.softmax(up, dim=1)[0, 1].numpy()
    (p,) = model.postprocess(logits, sizes, output="probability")
    (m,) = model.postprocess(logits, sizes, threshold=0.3)
    (lg,) = model.postprocess(logits, sizes, output="logits")
    np.testing.assert_allclose(p, p_ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(m, p > np.float32(0.3))
    assert 0 < m.sum() < m.size and torch.equal(lg, up)
    with pytest.raises(ValueError, match="output must be"):
        model.postprocess(logits, sizes, output="bits")
    with pytest.raises(ValueError, match="1 logits but 2 sizes"):
        model.postprocess(logits, [(4, 4), (4, 4)])
    with pytest.raises(ValueError, match="threshold"):
        model.postprocess(logits, sizes, threshold=1.0)
    with pytest.raises(ValueError, match=r"tensor must be read pixels \[3, H, W\]"):
        model.preprocess(torch.zeros(4, 8, 8))
