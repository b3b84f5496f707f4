"""The scene-position encoding: features, the model contract around ``position``, config."""

from __future__ import annotations

import math

import pytest
import torch

import rrsis
from rrsis.fusion.position import ScenePositionEncoding, check_position, full_scene


def _reference(box, h, w, freqs):
    """Features of one box, pixel by pixel with plain floats."""
    left, top, right, bottom = box
    out = torch.zeros(2 + 4 * freqs, h, w, dtype=torch.float64)
    for i in range(h):
        for j in range(w):
            x = left + (j + 0.5) / w * (right - left)
            y = top + (i + 0.5) / h * (bottom - top)
            vals_x, vals_y = [x], [y]
            for k in range(freqs):
                f = math.pi * 2 ** k
                vals_x += [math.sin(f * x), math.cos(f * x)]
                vals_y += [math.sin(f * y), math.cos(f * y)]
            out[:, i, j] = torch.tensor(vals_x + vals_y, dtype=torch.float64)
    return out


def test_features_match_a_pixel_by_pixel_reference():
    enc = ScenePositionEncoding(8, frequencies=2)
    boxes = [(0.0, 0.0, 1.0, 1.0), (0.25, 0.5, 0.75, 1.0)]
    got = enc.features(torch.tensor(boxes), 3, 4)
    for b, box in enumerate(boxes):
        torch.testing.assert_close(got[b].double(), _reference(box, 3, 4, 2), atol=1e-6, rtol=0)


def test_a_tile_sees_the_scene_coordinates_of_its_part_of_the_scene():
    # The four quadrant tiles of a scene get exactly the scene's features at their pixels.
    enc = ScenePositionEncoding(4, frequencies=3)
    whole = enc.features(full_scene(1), 8, 8)[0]
    quads = {(0, 0): (0, 0, .5, .5), (0, 4): (.5, 0, 1, .5), (4, 0): (0, .5, .5, 1), (4, 4): (.5, .5, 1, 1)}
    got = enc.features(torch.tensor(list(quads.values())), 4, 4)
    for k, (r, c) in enumerate(quads):
        torch.testing.assert_close(got[k], whole[:, r:r + 4, c:c + 4], atol=1e-6, rtol=0)


def test_projection_starts_at_zero_so_a_new_encoding_changes_nothing():
    torch.manual_seed(0)
    plain = rrsis.create_model("gl-msin-tiny").eval()
    torch.manual_seed(0)
    with_pos = rrsis.create_model("gl-msin-tiny", position="fourier").eval()
    missing, unexpected = with_pos.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(".position." in k for k in missing)
    x = torch.randn(2, 3, 64, 64)
    ids = torch.randint(1, 100, (2, 6))
    am = torch.ones(2, 6, dtype=torch.long)
    box = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.25, 1.0, 0.75]])
    with torch.no_grad():
        ref = plain(x, ids, am).logits
        assert torch.equal(with_pos(x, ids, am).logits, ref)
        assert torch.equal(with_pos(x, ids, am, box).logits, ref)
        for layer in with_pos.backbone.layers:
            torch.nn.init.normal_(layer.position.proj.weight, std=0.5)
        moved = with_pos(x, ids, am, box).logits
        # None means "each image is its own scene": the same as passing (0, 0, 1, 1).
        torch.testing.assert_close(with_pos(x, ids, am).logits, with_pos(x, ids, am, full_scene(2)).logits)
    assert not torch.allclose(moved, with_pos(x, ids, am).logits)


def test_position_is_refused_by_a_model_without_the_encoding_and_checked():
    model = rrsis.create_model("gl-msin-tiny").eval()
    assert not model.uses_position
    x, ids, am = torch.randn(1, 3, 64, 64), torch.ones(1, 4, dtype=torch.long), torch.ones(1, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="no scene-position encoding"):
        model(x, ids, am, full_scene(1))
    pos = rrsis.create_model("gl-msin-tiny", position="fourier").eval()
    assert pos.uses_position
    with pytest.raises(ValueError, match=r"\[B, 4\]"):
        pos(x, ids, am, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="left < right"):
        pos(x, ids, am, torch.tensor([[0.6, 0.0, 0.5, 1.0]]))
    with pytest.raises(ValueError, match="left < right"):
        check_position(torch.tensor([[0.0, float("nan"), 1.0, 1.0]]), 1)


def test_config_key_alias_round_trip_and_unknown_name(tmp_path):
    model = rrsis.create_model("gl-msin-tiny", fusion={"position": "fourier"})
    assert model.config["fusion"]["position"] == "fourier"
    with pytest.raises(rrsis.ConfigError, match="fourier"):
        rrsis.create_model("gl-msin-tiny", position="fourir")
    assert rrsis.create_model("lavt", image_size=64, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                              text_hidden_size=32, text_layers=1, text_heads=1, text_intermediate_size=32,
                              window_size=2).config["fusion"]["position"] is None
    model.save_pretrained(tmp_path / "m")
    back = rrsis.from_pretrained(tmp_path / "m")
    assert back.uses_position
    for a, b in zip(model.state_dict().values(), back.state_dict().values()):
        assert torch.equal(a, b)
