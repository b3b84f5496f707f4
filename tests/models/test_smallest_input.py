"""The smallest input a model runs: its last stage must hold more than one position (PWAM
instance-normalises every stage over its positions), so a 4-stage model with 4-pixel patches
refuses 32x32 with a message that says the smallest size, at every door an input size enters."""

import numpy as np
import pytest
import torch

import rrsis
from rrsis.data.transforms import check_input_size, smallest_input_side
from rrsis.scene.infer import SceneOptions

IDS = torch.tensor([[2, 5, 6, 3]])


def _forward(model, h, w):
    with torch.no_grad():
        return model.eval()(torch.randn(1, 3, h, w), IDS, torch.ones_like(IDS)).logits


@pytest.mark.parametrize("name", ["gl-msin-tiny", "lavt-tiny", "rmsin-tiny"])
def test_a_32_pixel_square_is_refused_saying_the_smallest_size(name):
    model = rrsis.create_model(name)
    with pytest.raises(ValueError, match=r"image size 32x32 is too small for this model: the smallest accepted "
                                         r"size is 64x64 \(or 32x64, 64x32\)"):
        _forward(model, 32, 32)
    assert _forward(model, 32, 64).shape == (1, 2, 32, 64)  # one 32-pixel side is enough
    assert _forward(model, 64, 32).shape == (1, 2, 64, 32)


def test_predict_and_preprocess_refuse_image_size_32():
    model = rrsis.create_model("gl-msin-tiny")
    img = np.zeros((40, 40, 3), np.uint8)
    with pytest.raises(ValueError, match=r"image_size 32 is too small for this model: the smallest accepted side is 64"):
        model.preprocess(img, image_size=32)
    assert model.preprocess(img, image_size=64)[0].shape == (1, 3, 64, 64)


def test_the_rule_follows_the_last_stages_stride():
    # 2-pixel patches: the last stage is 1/16, so 32x32 leaves it 2x2 and runs.
    fine = rrsis.create_model("lavt-tiny", patch_size=2)
    assert (fine.size_divisor, fine.feature_stride) == (32, 16)
    assert _forward(fine, 32, 32).shape == (1, 2, 32, 32)
    # 8-pixel patches: 1/64, so 64x64 is one position and 128 is the smallest square side.
    coarse = rrsis.create_model("lavt-tiny", patch_size=8)
    with pytest.raises(ValueError, match=r"smallest accepted size is 128x128 \(or 64x128, 128x64\)"):
        check_input_size(64, 64, coarse.size_divisor, coarse.feature_stride)
    assert _forward(coarse, 64, 128).shape == (1, 2, 64, 128)
    assert [smallest_input_side(32, 16), smallest_input_side(32, 32), smallest_input_side(64, 64)] == [32, 64, 128]


def test_the_scene_paths_tile_and_global_size_are_refused_below_the_smallest_side():
    model = rrsis.create_model("gl-msin-tiny")
    for key, flag in (("tile", "--tile"), ("global_size", "--image-size")):
        with pytest.raises(ValueError, match=rf"{key}=32 \({flag}\) must be a positive multiple of 32, at least 64"):
            SceneOptions(**{key: 32}).resolved(model, 256, 256)
        assert getattr(SceneOptions(**{key: 64}).resolved(model, 256, 256), key) == 64
