"""Swin and ELSA blocks and the EN-Trans stage against independent computations (rrsis/backbones/)."""

import pytest
import torch
import torch.nn.functional as F

from rrsis import ConfigError
from rrsis.backbones import ELSAAttention, MultiModalSwin, SwinBlock
from rrsis.backbones.config import BackboneConfig
from rrsis.fusion.config import FusionConfig, GemConfig


def _elsa_naive(m: ELSAAttention, x: torch.Tensor) -> torch.Tensor:
    """ELSA with the neighbourhood aggregation written as explicit loops."""
    b, hh, ww, c = x.shape
    k, dil, heads = m.kernel_size, m.dilation, m.num_heads
    pre = torch.einsum("bhwc,oc->bohw", x, m.pre_proj.weight[:, :, 0, 0]) + m.pre_proj.bias[None, :, None, None]
    q, kk, v = pre.split([m.qk_dim, m.qk_dim, c], dim=1)
    attn = m.attn_gen(q * kk * m.qk_scale).view(b, heads, k * k, hh, ww).softmax(dim=2)
    mul = m.ghost_mul.reshape(c, k * k) ** m.lam if m.ghost_mul is not None else torch.ones(c, k * k, dtype=x.dtype)
    add = m.gamma * m.ghost_add.reshape(c, k * k) if m.ghost_add is not None else torch.zeros(c, k * k, dtype=x.dtype)
    y = torch.zeros(b, c, hh, ww, dtype=x.dtype)
    r = k // 2
    for bi in range(b):
        for ch in range(c):
            g = ch // (c // heads)
            for i in range(hh):
                for j in range(ww):
                    acc = 0.0
                    for t in range(k * k):
                        di, dj = (t // k - r) * dil, (t % k - r) * dil
                        if 0 <= i + di < hh and 0 <= j + dj < ww:
                            acc = acc + (mul[ch, t] * attn[bi, g, t, i, j] + add[ch, t]) * v[bi, ch, i + di, j + dj]
                    y[bi, ch, i, j] = acc
    return m.proj(y.permute(0, 2, 3, 1))


@pytest.mark.parametrize("kernel, dilation, lam, gamma", [(3, 1, 0.0, 1.0), (3, 2, 1.0, 0.5), (5, 1, 1.0, 0.0)])
def test_elsa_matches_explicit_loops_float64(kernel, dilation, lam, gamma):
    torch.manual_seed(0)
    m = ELSAAttention(8, num_heads=2, kernel_size=kernel, dilation=dilation, group_width=4, lam=lam, gamma=gamma)
    m = m.double()
    with torch.no_grad():  # non-trivial ghost terms
        if m.ghost_add is not None:
            m.ghost_add.normal_()
    x = torch.randn(1, 5, 6, 8, dtype=torch.float64)
    got = m(x)
    want = _elsa_naive(m, x)
    assert (got - want).abs().max() <= 1e-6
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_elsa_rejects_even_kernel():
    with pytest.raises(ValueError, match="odd"):
        ELSAAttention(8, 2, kernel_size=4)


def _swin_attention_naive(blk: SwinBlock, x: torch.Tensor) -> torch.Tensor:
    """Shifted-window attention as masked global attention over the padded, rolled map."""
    b, hh, ww, c = x.shape
    ws, s, heads = blk.window, blk.shift, blk.attn.num_heads
    hp, wp = -(-hh // ws) * ws, -(-ww // ws) * ws
    xp = F.pad(blk.norm1(x), (0, 0, 0, wp - ww, 0, hp - hh))
    qkv = blk.attn.qkv(xp).reshape(b, hp * wp, 3, heads, c // heads)
    q, k, v = qkv.unbind(2)
    rows = torch.arange(hp).repeat_interleave(wp)
    cols = torch.arange(wp).repeat(hp)
    rr, rc = (rows - s) % hp, (cols - s) % wp  # position after the cyclic roll
    same_window = (rr[:, None] // ws == rr[None] // ws) & (rc[:, None] // ws == rc[None] // ws)

    def region(p, n):
        return torch.where(p < n - ws, 0, torch.where(p < n - s, 1, 2)) if s else torch.zeros_like(p)

    reg = region(rr, hp) * 3 + region(rc, wp)
    shift_mask = torch.where(reg[:, None] != reg[None], -100.0, 0.0).to(x.dtype)
    dy = (rr % ws)[:, None] - (rr % ws)[None]
    dx = (rc % ws)[:, None] - (rc % ws)[None]
    table = blk.attn.relative_position_bias_table
    bias = table[(dy + ws - 1) * (2 * ws - 1) + (dx + ws - 1)].permute(2, 0, 1)  # [heads, N, N]
    scores = torch.einsum("bihd,bjhd->bhij", q * blk.attn.scale, k) + bias + shift_mask
    scores = scores.masked_fill(~same_window, float("-inf"))
    out = torch.einsum("bhij,bjhd->bihd", scores.softmax(-1), v).reshape(b, hp, wp, c)
    return blk.attn.proj(out)[:, :hh, :ww]


@pytest.mark.parametrize("shift", [0, 2])
def test_swin_block_matches_masked_global_attention(shift):
    torch.manual_seed(0)
    blk = SwinBlock(8, num_heads=2, window_size=4, shift=shift).double().eval()
    with torch.no_grad():
        blk.attn.relative_position_bias_table.normal_()
    x = torch.randn(2, 6, 10, 8, dtype=torch.float64)  # padded to 8x12: three row regions
    want = x + _swin_attention_naive(blk, x)
    want = want + blk.mlp(blk.norm2(want))
    torch.testing.assert_close(blk(x), want, rtol=0, atol=1e-10)


def test_swin_block_keeps_timm_state_dict_names():
    from timm.models.swin_transformer import SwinTransformerBlock

    ours = SwinBlock(16, num_heads=2, window_size=4, shift=2)
    theirs = SwinTransformerBlock(16, (8, 8), num_heads=2, window_size=4, shift_size=2)
    assert set(ours.state_dict()) == set(theirs.state_dict())


def test_stage_output_is_fused_feature_and_stream_is_gated():
    torch.manual_seed(0)
    bb = MultiModalSwin(
        BackboneConfig(embed_dim=8, depths=[2, 2], num_heads=[1, 2], window_size=4, drop_path_rate=0.0),
        FusionConfig(gem=GemConfig(pool=2), keep_final_gate=True), text_dim=6,
    ).eval()
    x = torch.randn(1, 3, 32, 32)
    words, mask = torch.randn(1, 4, 6), torch.ones(1, 4)
    layer0 = bb.layers[0]
    with torch.no_grad():
        feats = bb(x, words, mask)
        t = bb.patch_embed(x)
        for blk in layer0.blocks:
            t = blk(t)
        f = layer0.gem(layer0.fusion(t.permute(0, 3, 1, 2), words, mask))
        stream, fused = layer0(bb.patch_embed(x), words, mask)
    assert [tuple(o.shape) for o in feats] == [(1, 8, 8, 8), (1, 16, 4, 4)]
    torch.testing.assert_close(fused, f)
    fl = f.permute(0, 2, 3, 1)
    torch.testing.assert_close(stream, t + layer0.res_gate(fl) * fl)
    want0 = bb.out_norms[0](f.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    torch.testing.assert_close(feats[0], want0)
    # The last stage's gate output feeds nothing: kept (for checkpoints) but frozen.
    assert not any(p.requires_grad for p in bb.layers[-1].res_gate.parameters())


def test_backbone_rejects_inconsistent_stage_lists():
    with pytest.raises(ConfigError, match="num_heads"):
        BackboneConfig(embed_dim=8, depths=[2, 2], num_heads=[1])
    with pytest.raises(ConfigError, match="local_attn has 3 entries"):
        BackboneConfig(embed_dim=8, depths=[2, 2], num_heads=[1, 2], local_attn=["swin"] * 3)
    # The fusion node's per-stage lists are checked against the backbone it is built with.
    with pytest.raises(ConfigError, match="heads has 3 entries"):
        MultiModalSwin(BackboneConfig(embed_dim=8, depths=[2, 2], num_heads=[1, 2]), FusionConfig(heads=[1, 1, 1]),
                       text_dim=6)
    with pytest.raises(TypeError, match="validated config nodes"):
        MultiModalSwin({"embed_dim": 8}, FusionConfig(), text_dim=6)
