"""GEM hands SDPA q, k, v with a unit last stride (its fused GPU backends need it)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rrsis.fusion.gem import GlobalEnhancementModule


def _conv_formulation(m: GlobalEnhancementModule, f: torch.Tensor) -> torch.Tensor:
    # The module's maths written with its 1×1 convolutions, independently of its forward.
    b, c, hh, ww = f.shape
    h, d = m.num_heads, c // m.num_heads
    x = m.norm(f)
    q = m.q(x).view(b, h, d, hh * ww).transpose(-1, -2)
    src = F.adaptive_avg_pool2d(x, m.pool_size) if m.attn_type == "pooled" else x
    k, v = m.kv(src).view(b, 2, h, d, -1).transpose(-1, -2).unbind(1)
    if m.attn_type == "pooled":
        att = ((q @ k.transpose(-1, -2)) * d**-0.5).softmax(-1) @ v
    else:
        att = q.softmax(-1) @ (k.softmax(-2).transpose(-1, -2) @ v)
    y = att.transpose(-1, -2).reshape(b, c, hh, ww) + (m.pos(x) if m.pos is not None else 0)
    return f + m.proj(y)


@pytest.mark.parametrize("attn_type", ["pooled", "linear"])
def test_gem_matches_conv_formulation_and_feeds_sdpa_unit_stride(monkeypatch, attn_type):
    torch.manual_seed(0)
    m = GlobalEnhancementModule(32, num_heads=4, pool_size=3, attn_type=attn_type).double()
    f = torch.randn(2, 32, 6, 5, dtype=torch.float64)
    seen = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, *a, **kw):
        seen.append([t.stride(-1) for t in (q, k, v)])
        return real(q, k, v, *a, **kw)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    out = m(f)
    torch.testing.assert_close(out, _conv_formulation(m, f))
    if attn_type == "pooled":
        assert seen == [[1, 1, 1]]
