"""Official ELSA-Swin ImageNet weights (damo-cv/ELSA layout) into GL-MSIN's ELSA and Swin blocks.

The official layout is written out here by hand (names, (v, q, k) order, transposed bias table,
downsample at stage end); the official attention is recomputed from those tensors with the
formulas of the ELSA paper and compared with rrsis's blocks after loading.
"""

import math

import pytest
import torch
import torch.nn.functional as F

import rrsis
from rrsis.hub import load_pretrained_parts


def _official_state(model, seed=0):
    """A random state dict in the official ELSA-Swin layout, shaped for ``model``'s backbone."""
    g = torch.Generator().manual_seed(seed)
    sd = {k[len("backbone."):]: v for k, v in model.state_dict().items() if k.startswith("backbone.")}

    def rand(*shape):
        return torch.randn(*shape, generator=g) * 0.2

    out = {"patch_embed.proj.weight": rand(*sd["patch_embed.proj.weight"].shape),
           "patch_embed.proj.bias": rand(*sd["patch_embed.proj.bias"].shape),
           "patch_embed.norm.weight": rand(16), "patch_embed.norm.bias": rand(16),
           "norm.weight": rand(128), "norm.bias": rand(128), "head.weight": rand(10, 128), "head.bias": rand(10)}
    for i in range(4):
        dim, heads = 16 * 2**i, [1, 2, 4, 8][i]
        for j in range(2):
            p = f"layers.{i}.blocks.{j}."
            for n in ("norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
                      "mlp.fc2.weight", "mlp.fc2.bias"):
                out[p + n] = rand(*sd[p + n].shape)
            if i < 3:  # ELSA block
                for n in ("pre_proj.weight", "pre_proj.bias"):
                    out[p + "attn." + n] = rand(*sd[p + "attn." + n].shape)
                for n in ("0.weight", "0.bias", "2.weight", "2.bias"):
                    out[p + "attn.attn." + n] = rand(*sd[p + "attn.attn_gen." + n].shape)
                out[p + "attn.ghost_head"] = rand(1, dim, 3, 3)
            else:  # Swin block: fused projection ordered (v, q, k), table [heads, (2w-1)^2]
                out[p + "attn.pre_proj.weight"], out[p + "attn.pre_proj.bias"] = rand(3 * dim, dim), rand(3 * dim)
                out[p + "attn.rb"] = rand(heads, 7 * 7)
                out[p + "attn.relative_id"] = torch.zeros(16 * 16, dtype=torch.long)
            out[p + "attn.post_proj.weight"], out[p + "attn.post_proj.bias"] = rand(dim, dim), rand(dim)
        if i < 3:  # merging at the end of the stage
            out[f"layers.{i}.downsample.norm.weight"] = rand(4 * dim)
            out[f"layers.{i}.downsample.norm.bias"] = rand(4 * dim)
            out[f"layers.{i}.downsample.reduction.weight"] = rand(2 * dim, 4 * dim)
    return out


@pytest.fixture(scope="module")
def loaded():
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny").eval()
    official = _official_state(model)
    report = load_pretrained_parts(model, swin=official, text=False)
    return model, official, report


def test_every_backbone_block_loads(loaded):
    model, official, report = loaded
    assert sorted(report.unexpected["swin"]) == ["head.bias", "head.weight", "norm.bias", "norm.weight"]
    assert not report.resized
    bb = model.backbone
    assert torch.equal(bb.layers[1].downsample.reduction.weight, official["layers.0.downsample.reduction.weight"])
    blk = bb.layers[0].blocks[1].attn
    assert torch.equal(blk.attn_gen[0].weight, official["layers.0.blocks.1.attn.attn.0.weight"])
    assert torch.equal(blk.ghost_add, official["layers.0.blocks.1.attn.ghost_head"][0])
    assert torch.equal(blk.proj.weight, official["layers.0.blocks.1.attn.post_proj.weight"])
    swin = bb.layers[3].blocks[0].attn
    pre = official["layers.3.blocks.0.attn.pre_proj.weight"]
    assert torch.equal(swin.qkv.weight[:128], pre[128:256])  # q
    assert torch.equal(swin.qkv.weight[256:], pre[:128])  # v
    assert torch.equal(swin.relative_position_bias_table, official["layers.3.blocks.0.attn.rb"].t())


def test_elsa_attention_matches_the_official_formula(loaded):
    model, official, _ = loaded
    attn = model.backbone.layers[1].blocks[0].attn  # 32 channels, 2 heads, kernel 3
    p = "layers.1.blocks.0.attn."
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, 5, 32, generator=g)
    b, h, w, c = x.shape
    heads, k = 2, 3
    qkv = F.conv2d(x.permute(0, 3, 1, 2), official[p + "pre_proj.weight"], official[p + "pre_proj.bias"])
    qk = (qkv.shape[1] - c) // 2
    q, kk, v = qkv.split([qk, qk, c], dim=1)
    gen0 = official[p + "attn.0.weight"]
    a = F.conv2d(q * kk, gen0, official[p + "attn.0.bias"], padding=1, groups=qk // gen0.shape[1])
    a = F.conv2d(F.gelu(a), official[p + "attn.2.weight"], official[p + "attn.2.bias"])
    a = a.reshape(b * heads, k * k, h * w).softmax(1)
    feats = F.unfold(v.reshape(b * heads, c // heads, h, w), k, padding=1).reshape(b * heads, c // heads, k * k, h * w)
    add = official[p + "ghost_head"].expand(b, c, k, k).reshape(b * heads, c // heads, k * k, 1)
    y = (feats * (a[:, None] + add)).sum(2).reshape(b, c, h, w).permute(0, 2, 3, 1)
    y = F.linear(y, official[p + "post_proj.weight"], official[p + "post_proj.bias"])
    with torch.no_grad():
        torch.testing.assert_close(attn(x), y, rtol=1e-5, atol=1e-5)


def test_swin_attention_matches_the_official_formula(loaded):
    model, official, _ = loaded
    block = model.backbone.layers[3].blocks[0]  # W-MSA, window 4, 128 channels, 8 heads
    p = "layers.3.blocks.0.attn."
    x = torch.randn(1, 4, 4, 128, generator=torch.Generator().manual_seed(2))
    n, heads, d = 16, 8, 16
    feat = F.linear(x.reshape(n, 128), official[p + "pre_proj.weight"], official[p + "pre_proj.bias"])
    v, q, kk = feat.reshape(n, 3, heads, d).permute(1, 2, 0, 3)
    coords = torch.stack(torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + 3
    index = rel[..., 0] * 7 + rel[..., 1]
    bias = official[p + "rb"][:, index]
    att = (q @ kk.transpose(-1, -2) / math.sqrt(d) + bias).softmax(-1)
    y = (att @ v).transpose(0, 1).reshape(n, 128)
    y = F.linear(y, official[p + "post_proj.weight"], official[p + "post_proj.bias"])
    with torch.no_grad():
        torch.testing.assert_close(block._attn(x).reshape(n, 128), y, rtol=1e-5, atol=1e-5)


def test_elsa_weights_tag_needs_the_downloaded_file():
    cfg = rrsis.pretrained_cfg("gl-msin.elsa-in1k")
    assert "damo-cv/ELSA" in cfg.swin and cfg.text == "bert-base-uncased"
    with pytest.raises(ValueError, match="swin_weights=<file>"):
        rrsis.create_model("gl-msin.elsa-in1k", pretrained=True)
