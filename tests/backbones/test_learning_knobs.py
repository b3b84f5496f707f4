"""Knobs added for learning efficiency: gate off, sub-pixel refinement head, convolutional stem."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import rrsis
from rrsis.backbones.multimodal import ConvStem
from rrsis.fusion.gate import LanguageGate
from rrsis.heads.refine import IterativeRefinementHead


def _tiny(**kw):
    torch.manual_seed(0)
    return rrsis.create_model("gl-msin-tiny", **kw)


def test_gate_none_is_plain_addition_without_parameters():
    g = LanguageGate(8, "none")
    assert len(list(g.parameters())) == 0
    x, f = torch.randn(2, 3, 8), torch.randn(2, 3, 8)
    assert torch.equal(g.inject(x, f), x + f)
    with pytest.raises(ValueError, match="gate activation"):
        LanguageGate(8, "relu")
    m = _tiny(gate_act="none")
    assert not any("res_gate" in k for k in m.state_dict())


def test_refine_upscale_starts_from_the_bilinear_prediction():
    torch.manual_seed(0)
    plain = IterativeRefinementHead([8, 16, 32, 64], hidden=8, steps=0)
    torch.manual_seed(0)
    sub = IterativeRefinementHead([8, 16, 32, 64], hidden=8, steps=0, upscale=4)
    # Same fusion weights; the base logits of `sub` reuse the plain prediction conv.
    sub.load_state_dict({k: v for k, v in plain.state_dict().items() if not k.startswith("pred")}, strict=False)
    with torch.no_grad():
        sub.pred[0].weight[:2] = plain.pred[0].weight
        sub.pred[0].bias[:2] = plain.pred[0].bias
    plain.eval(), sub.eval()
    feats = [torch.randn(2, c, 16 // 2**i, 16 // 2**i) for i, c in enumerate([8, 16, 32, 64])]
    want = F.interpolate(plain(feats)[0], scale_factor=4, mode="bilinear", align_corners=False)
    got, aux = sub(feats)
    assert got.shape == (2, 2, 64, 64) and aux == []
    assert torch.allclose(got, want, atol=1e-6)
    # the correction is trainable and reaches sub-pixel resolution
    with torch.no_grad():
        sub.pred[0].bias[2:] = torch.arange(32.0)
    assert got.shape == sub(feats)[0].shape and not torch.allclose(sub(feats)[0], want)


def test_refine_upscale_with_refinements_gives_full_size_deep_supervision():
    m = _tiny(head={"name": "refine", "upscale": 4, "refine_steps": 2})
    out = m(torch.randn(2, 3, 64, 64), torch.ones(2, 4, dtype=torch.long), torch.ones(2, 4))
    assert out.logits.shape == (2, 2, 64, 64) and [a.shape for a in out.aux_logits] == [(2, 2, 64, 64)] * 2
    with pytest.raises(ValueError, match="upscale"):
        IterativeRefinementHead([8, 16, 32, 64], upscale=0)


def test_knobs_round_trip_through_save_and_load(tmp_path):
    m = _tiny(gate_act="none", head={"name": "refine", "upscale": 4}, stem="conv").eval()
    assert m.config["backbone"]["stem"] == "conv"
    m.save_pretrained(tmp_path / "m")
    back = rrsis.from_pretrained(tmp_path / "m").eval()
    args = (torch.randn(1, 3, 64, 64), torch.ones(1, 4, dtype=torch.long), torch.ones(1, 4))
    assert torch.equal(m(*args).logits, back(*args).logits)


@pytest.mark.parametrize("patch", [1, 2, 4, 8])
def test_conv_stem_has_the_patch_embedding_layout(patch):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 48)
    ref = rrsis.create_model("gl-msin-tiny", patch_size=patch).backbone.patch_embed(x)
    stem = ConvStem(3, 16, patch).eval()
    out = stem(x)
    assert out.shape == ref.shape == (2, 32 // patch, 48 // patch, 16)
    strides = [m.stride[0] for m in stem.convs if isinstance(m, torch.nn.Conv2d)]
    assert strides == ([1] if patch == 1 else [2] * (patch.bit_length() - 1))
    # the LayerNorm at the end, as in Swin's patch embedding
    assert torch.allclose(out.mean(-1), torch.zeros(out.shape[:-1]), atol=1e-5)


def test_stem_in_models_and_configs():
    m = _tiny(stem="conv", image_size=64)
    assert isinstance(m.backbone.patch_embed, ConvStem)
    out = m(torch.randn(2, 3, 64, 64), torch.ones(2, 4, dtype=torch.long), torch.ones(2, 4))
    assert out.logits.shape == (2, 2, 64, 64)
    # the tiny GL-MSIN trains from scratch with the conv stem; the full models keep Swin's
    assert isinstance(_tiny().backbone.patch_embed, ConvStem)
    assert type(rrsis.create_model("lavt-tiny").backbone.patch_embed).__name__ == "PatchEmbed"
    assert rrsis.models.gl_msin.GL_MSIN["backbone"].get("stem", "patch") == "patch"
    with pytest.raises(rrsis.ConfigError, match="did you mean 'conv'"):
        _tiny(stem="cnv")
    with pytest.raises(rrsis.ConfigError, match="stem"):
        _tiny(backbone={"stem": 3})
