"""Any number of input bands: the ``in_chans`` config key, per-band statistics, and RGB
weights adapted as timm adapts them (checked against ``timm.models.adapt_input_conv`` itself)."""

import json

import pytest
import torch
from timm.models import adapt_input_conv

import rrsis
from rrsis import ConfigError
from rrsis.backbones import band_statistics
from rrsis.backbones.swin import adapt_input_channels
from rrsis.hub import load_pretrained_parts

IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
RGBN = band_statistics(4)


def test_rgb_default_is_imagenet_and_flat_aliases_reach_the_backbone_node():
    cfg = rrsis.create_model("gl-msin-tiny").config["backbone"]
    assert (cfg["in_chans"], cfg["mean"], cfg["std"]) == (3, *IMAGENET)
    m = rrsis.create_model("gl-msin-tiny", in_chans=4, mean=RGBN[0], std=RGBN[1])
    bb = m.config["backbone"]
    assert bb["in_chans"] == 4 and bb["mean"] == IMAGENET[0] + [0.5] and bb["std"] == IMAGENET[1] + [0.25]
    assert "in_chans" not in m.config  # the tree, not the alias
    assert m.in_chans == 4 and m.pixel_mean == tuple(RGBN[0]) and m.pixel_std == tuple(RGBN[1])
    # the nested node says the same
    n = rrsis.create_model("gl-msin-tiny", backbone={"in_chans": 4, "mean": RGBN[0], "std": RGBN[1]})
    assert n.config["backbone"] == bb


@pytest.mark.parametrize("kwargs, words", [
    ({"in_chans": 4}, ["in_chans=4", "mean and std", "band_statistics(4)"]),
    ({"in_chans": 4, "mean": [0.5] * 4}, ["std"]),
    ({"in_chans": 4, "mean": [0.5] * 3, "std": [0.2] * 4}, ["mean has 3 values", "in_chans=4"]),
    ({"in_chans": 3, "mean": [0.5] * 3, "std": [0.2, 0.0, 0.2]}, ["std[1]", "> 0.0"]),
    ({"in_chans": 0}, ["in_chans must be >= 1"]),
    ({"in_chan": 4}, ["unknown model argument 'in_chan'", "did you mean 'in_chans'"]),
    ({"backbone": {"in_chan": 4}}, ["in_chan", "in_chans"]),
])
def test_bad_band_configs_name_the_problem(kwargs, words):
    with pytest.raises(ConfigError) as err:
        rrsis.create_model("gl-msin-tiny", **kwargs)
    for w in words:
        assert w in str(err.value)


def test_band_statistics():
    assert band_statistics(3) == (IMAGENET[0], IMAGENET[1])
    mean, std = band_statistics(6, extra_mean=0.3, extra_std=0.1)
    assert mean == IMAGENET[0] + [0.3] * 3 and std == IMAGENET[1] + [0.1] * 3
    with pytest.raises(ValueError, match="in_chans >= 3"):
        band_statistics(2)


def test_forward_takes_the_model_band_count_and_check_inputs_refuses_others():
    torch.manual_seed(0)
    m = rrsis.create_model("gl-msin-tiny", in_chans=5, mean=[0.5] * 5, std=[0.25] * 5).eval()
    ids, mask = torch.ones(1, 4, dtype=torch.long), torch.ones(1, 4, dtype=torch.long)
    assert m(torch.randn(1, 5, 64, 64), ids, mask).logits.shape == (1, 2, 64, 64)
    with pytest.raises(ValueError, match="pixel_values has 3 channels but this model takes 5"):
        m(torch.randn(1, 3, 64, 64), ids, mask)


def test_saved_config_round_trips_the_bands(tmp_path):
    torch.manual_seed(0)
    m = rrsis.create_model("gl-msin-tiny", in_chans=4, mean=RGBN[0], std=RGBN[1])
    m.save_pretrained(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert json.dumps(saved).count('"in_chans": 4') == 1
    back = rrsis.from_pretrained(tmp_path / "m")
    assert back.in_chans == 4 and back.pixel_std == tuple(RGBN[1])
    torch.testing.assert_close(back.state_dict()["backbone.patch_embed.convs.0.weight"],
                               m.state_dict()["backbone.patch_embed.convs.0.weight"])
    card = (tmp_path / "m" / "README.md").read_text()
    assert "input bands" in card and "0.25" in card and "mean [0.485, 0.456, 0.406, 0.5]" in card


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_adapt_input_channels_is_timm_adapt_input_conv(n):
    g = torch.Generator().manual_seed(n)
    w = torch.randn(16, 3, 4, 4, generator=g)
    got = adapt_input_channels(w.clone(), n)
    torch.testing.assert_close(got, adapt_input_conv(n, w.clone()), rtol=0, atol=0)
    # ...and what its docstring states, computed here independently
    if n == 1:
        want = w.sum(dim=1, keepdim=True)
    else:
        want = torch.stack([w[:, j % 3] for j in range(n)], dim=1) * (3 / n)
    torch.testing.assert_close(got, want)


def test_adapt_input_channels_refuses_bad_input():
    with pytest.raises(ValueError, match=r"\[O, I, k, k\]"):
        adapt_input_channels(torch.zeros(3, 4), 4)
    with pytest.raises(ValueError, match="positive integer"):
        adapt_input_channels(torch.zeros(8, 3, 4, 4), 0)


def test_pretrained_rgb_patch_embedding_loads_into_a_4_band_model():
    torch.manual_seed(0)
    rgb = rrsis.create_model("gl-msin-tiny", stem="patch")
    state = {k[len("backbone."):]: v.clone() for k, v in rgb.state_dict().items() if k.startswith("backbone.")}
    state["patch_embed.proj.weight"] = torch.randn_like(state["patch_embed.proj.weight"])
    m = rrsis.create_model("gl-msin-tiny", stem="patch", in_chans=4, mean=RGBN[0], std=RGBN[1])
    report = load_pretrained_parts(m, swin=state, text=False)
    key = "backbone.patch_embed.proj.weight"
    assert report.resized[key] == ((16, 3, 4, 4), (16, 4, 4, 4))
    assert key in report.loaded["swin"]
    torch.testing.assert_close(m.state_dict()[key], adapt_input_conv(4, state["patch_embed.proj.weight"]))
    torch.testing.assert_close(m.state_dict()["backbone.patch_embed.proj.bias"], state["patch_embed.proj.bias"])


def test_model_card_names_the_bands_their_order_and_scaling(tmp_path):
    """A receiver of a saved many-band model reads from its card which bands, in which order and
    with which value scaling it takes, not only their count and statistics."""
    names = ["B04", "B03", "B02", "B08"]
    m = rrsis.create_model("gl-msin-tiny", in_chans=4, mean=RGBN[0], std=RGBN[1], scale=10000,
                           band_names=names, rgb=[0, 1, 2])
    m.save_pretrained(tmp_path / "m")
    row = next(line for line in (tmp_path / "m" / "README.md").read_text().splitlines() if "input bands" in line)
    assert "B04, B03, B02, B08, in this order" in row
    assert "`scale=10000` (value / 10000" in row and "positions [0, 1, 2]" in row
    rgb = rrsis.create_model("gl-msin-tiny", scale="dtype")
    rgb.save_pretrained(tmp_path / "rgb")
    row = next(line for line in (tmp_path / "rgb" / "README.md").read_text().splitlines() if "input bands" in line)
    assert "R, G, B" in row and "`scale='dtype'`" in row and "positions" not in row
