"""Fusion parts against independent computations (rrsis/fusion/)."""

import math

import pytest
import torch
import torch.nn.functional as F

from rrsis.fusion import GlobalEnhancementModule, LanguageGate, PixelWordAttention


def _pwam_naive(m: PixelWordAttention, x, words, mask):
    """PWAM computed per sample over the real words only (no masking tricks)."""
    b, c, h, w = x.shape
    att = m.image_lang_att
    heads = att.num_heads
    outs = []
    for i in range(b):
        n = int(mask[i].sum())
        xi = x[i].reshape(c, -1)  # [C, N]
        wi = words[i, :n].T  # [D, n]
        vis = F.gelu(att_conv(m.vis_project[0], xi))
        q = F.instance_norm(att_conv(att.f_query[0], xi)[None])[0]
        k = att_conv(att.f_key[0], wi)
        v = att_conv(att.f_value[0], wi)
        d = c // heads
        o = []
        for hd in range(heads):
            s = q[hd * d:(hd + 1) * d].T @ k[hd * d:(hd + 1) * d] / math.sqrt(c)
            o.append((s.softmax(-1) @ v[hd * d:(hd + 1) * d].T).T)
        lang = F.instance_norm(att_conv(att.W[0], torch.cat(o))[None])[0]
        outs.append(F.gelu(att_conv(m.project_mm[0], vis * lang)).reshape(c, h, w))
    return torch.stack(outs)


def att_conv(conv, x):
    return conv.weight[:, :, 0] @ x + conv.bias[:, None]


@pytest.mark.parametrize("heads", [1, 2])
def test_pwam_matches_attention_over_real_words_only(heads):
    torch.manual_seed(0)
    m = PixelWordAttention(8, 6, num_heads=heads).double().eval()
    x = torch.randn(2, 8, 3, 4, dtype=torch.float64)
    words = torch.randn(2, 5, 6, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.float64)
    torch.testing.assert_close(m(x, words, mask), _pwam_naive(m, x, words, mask), rtol=0, atol=1e-10)


def test_pwam_ignores_padded_word_features():
    torch.manual_seed(0)
    m = PixelWordAttention(8, 6).eval()
    x, words = torch.randn(1, 8, 4, 4), torch.randn(1, 5, 6)
    mask = torch.tensor([[1.0, 1, 1, 0, 0]])
    other = words.clone()
    other[:, 3:] = 100 * torch.randn(1, 2, 6)
    torch.testing.assert_close(m(x, words, mask), m(x, other, mask), rtol=0, atol=0)


def test_language_gate_form():
    torch.manual_seed(0)
    g = LanguageGate(5)
    x, f = torch.randn(3, 5), torch.randn(3, 5)
    w1, w2 = g[0].weight, g[2].weight
    expect = x + torch.tanh(F.relu(f @ w1.T) @ w2.T) * f
    torch.testing.assert_close(g.inject(x, f), expect)
    assert g[0].bias is None and g[2].bias is None
    assert sorted(g.state_dict()) == ["0.weight", "2.weight"]
    with pytest.raises(ValueError, match="unknown gate activation"):
        LanguageGate(4, act="relu")


def test_gem_pooled_attention_matches_manual():
    torch.manual_seed(0)
    m = GlobalEnhancementModule(8, num_heads=2, pool_size=2).double().eval()
    f = torch.randn(1, 8, 4, 6, dtype=torch.float64)
    x = m.norm(f)
    q = F.conv2d(x, m.q.weight, m.q.bias).reshape(8, -1)  # [C, N]
    kv = F.conv2d(F.adaptive_avg_pool2d(x, 2), m.kv.weight, m.kv.bias).reshape(16, -1)
    k, v = kv[:8], kv[8:]
    ys = []
    for h in range(2):
        sl = slice(4 * h, 4 * h + 4)
        a = (q[sl].T @ k[sl] / 2.0).softmax(-1)  # scale = d^-0.5 = 1/2
        ys.append((a @ v[sl].T).T)
    y = torch.cat(ys).reshape(1, 8, 4, 6) + m.pos(x)
    torch.testing.assert_close(m(f), f + m.proj(y), rtol=0, atol=1e-10)


def test_gem_linear_variant_and_pool_knob():
    torch.manual_seed(0)
    f = torch.randn(2, 8, 5, 7)
    lin = GlobalEnhancementModule(8, num_heads=2, attn_type="linear")
    # Efficient attention, written out: per head, softmax(q over channels) · (softmax(k over
    # positions)ᵀ v), then the depthwise positional term and the residual projection.
    x = lin.norm(f)
    q, kv = lin.q(x).reshape(2, 2, 4, 35), lin.kv(x).reshape(2, 2, 2, 4, 35)
    k, v = kv[:, 0], kv[:, 1]
    y = torch.einsum("bhdn,bhde->bhen", q.softmax(2), torch.einsum("bhdn,bhen->bhde", k.softmax(3), v))
    expect = f + lin.proj(y.reshape(2, 8, 5, 7) + lin.pos(x))
    torch.testing.assert_close(lin(f), expect, rtol=1e-5, atol=1e-6)
    # Global context: changing one far-away pixel changes every output position.
    g = f.clone()
    g[:, :, 0, 0] += 5
    for m in (lin, GlobalEnhancementModule(8, num_heads=2, pool_size=1, pos_kernel=0)):
        delta = (m(g) - m(f)).abs().sum(1)
        assert (delta[:, -1, -1] > 0).all()
    with pytest.raises(ValueError, match="attn_type"):
        GlobalEnhancementModule(8, attn_type="full")
    with pytest.raises(ValueError, match="not divisible"):
        GlobalEnhancementModule(6, num_heads=4)
