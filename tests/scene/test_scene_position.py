"""Whole scenes with a scene-position encoding: every tile is told where it lies in the scene."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _fixtures import WrappedModel

import rrsis
from rrsis.scene import SceneOptions, open_scene
from rrsis.scene.infer import predict_strips, scene_box


class Recording(WrappedModel):
    """The wrapped model, recording the boxes each forward pass was given."""

    def __init__(self, model) -> None:
        super().__init__(model)
        self.uses_position = model.uses_position
        self.boxes: list = []

    def forward_with_text(self, pixels, text, position=None):
        self.boxes.append(None if position is None else position.tolist())
        return self.model.forward_with_text(pixels, text, position)


@pytest.fixture(scope="module")
def position_model(tiny_tokenizer):
    torch.manual_seed(0)
    m = rrsis.create_model("gl-msin-tiny", position="fourier", text_vocab_size=len(tiny_tokenizer)).eval()
    for layer in m.backbone.layers:  # a trained-like encoding: the place changes the answer
        torch.nn.init.normal_(layer.position.proj.weight, std=0.5)
    m.tokenizer = tiny_tokenizer
    return m


def _encode(model, text):
    tok = model.tokenizer([text])
    with torch.no_grad():
        return model.encode_text(tok["input_ids"], tok["attention_mask"])


def test_scene_box_is_the_window_in_scene_fractions():
    assert scene_box((0, 0, 64, 64), 128, 256) == (0.0, 0.0, 0.25, 0.5)
    assert scene_box((64, 192, 128, 256), 128, 256) == (0.75, 0.5, 1.0, 1.0)


def test_tiles_get_their_boxes_and_equal_the_model_on_each_tile(position_model):
    rng = np.random.default_rng(0)
    image = rng.random((128, 192, 3)).astype(np.float32)
    wrapped = Recording(position_model)
    text = _encode(position_model, "the red building")
    opt = SceneOptions(mode="tiles", tile=64, overlap=0.0).resolved(wrapped, 128, 192)
    with open_scene(image) as sc:
        prob = np.concatenate([p for _, p, _ in predict_strips(sc, wrapped, text, opt)])
    boxes = sorted(tuple(b) for call in wrapped.boxes for b in call)
    want = sorted((x / 192, y / 128, (x + 64) / 192, (y + 64) / 128) for y in (0, 64) for x in (0, 64, 128))
    np.testing.assert_allclose(boxes, want, atol=1e-7)
    # Without overlap each pixel is one tile's: the model's answer on that tile, told its box.
    pix, _ = position_model.preprocess([torch.from_numpy(image[y:y + 64, x:x + 64].transpose(2, 0, 1).copy())
                                        for y in (0, 64) for x in (0, 64, 128)], image_size=64)
    boxes_t = torch.tensor([[x / 192, y / 128, (x + 64) / 192, (y + 64) / 128] for y in (0, 64) for x in (0, 64, 128)])
    with torch.no_grad():
        logits = position_model.forward_with_text(pix, text, boxes_t).logits
        alone = position_model.forward_with_text(pix, text).logits
    ref = torch.sigmoid(logits[:, 1] - logits[:, 0]).numpy()
    k = 0
    for y in (0, 64):
        for x in (0, 64, 128):
            np.testing.assert_allclose(prob[y:y + 64, x:x + 64], ref[k], atol=1e-5)
            k += 1
    assert not torch.allclose(logits, alone, atol=1e-3), "the boxes must change the answer here"


def test_models_without_the_encoding_get_no_boxes(tiny_model):
    wrapped = Recording(tiny_model)
    text = _encode(tiny_model, "the red building")
    opt = SceneOptions(mode="tiles", tile=64).resolved(wrapped, 100, 100)
    with open_scene(np.zeros((100, 100, 3), np.float32)) as sc:
        list(predict_strips(sc, wrapped, text, opt))
    assert wrapped.boxes and all(b is None for b in wrapped.boxes)
