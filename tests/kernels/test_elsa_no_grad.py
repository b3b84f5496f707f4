"""ELSA aggregation without autograd (CPU inference): the additive ghost term as a depthwise
convolution and one in-place step per tap, against the float64 unfold oracle."""

from __future__ import annotations

import pytest
import torch

from rrsis import kernels
from rrsis.kernels import eager, reference

CASES = {  # b, c, h, w, groups, k, dilation, ghost terms
    "k3-both": (2, 8, 6, 7, 2, 3, 1, "both"),
    "k3-dil2-add": (1, 6, 5, 9, 2, 3, 2, "add"),
    "k5-mul": (1, 4, 5, 5, 1, 5, 1, "mul"),
    "k3-none": (1, 8, 4, 6, 4, 3, 1, "none"),
    "k7-both-odd-map": (1, 16, 13, 11, 4, 7, 1, "both"),
    "k7-add-map-smaller-than-k": (1, 4, 3, 5, 2, 7, 1, "add"),
}


def _inputs(case, dtype=torch.float32, seed=0):
    b, c, h, w, g, k, d, ghost = case
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(b, c, h, w, generator=gen).to(dtype)
    attn = torch.randn(b, g, k * k, h, w, generator=gen).softmax(2).to(dtype)
    mul = torch.randn(c, k * k, generator=gen).to(dtype) if ghost in ("mul", "both") else None
    add = torch.randn(c, k * k, generator=gen).to(dtype) if ghost in ("add", "both") else None
    return v, attn, mul, add, k, d


@pytest.mark.parametrize("name", list(CASES))
def test_matches_the_unfold_oracle_in_float64_and_float32(name):
    v, attn, mul, add, k, d = _inputs(CASES[name], torch.float64)
    oracle = reference.elsa_aggregate_unfold(v, attn, mul, add, k, d)
    got = eager.elsa_aggregate_no_grad(v, attn, mul, add, k, d)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, oracle, atol=1e-12, rtol=1e-12)
    f32 = [t.float() if t is not None else None for t in (v, attn, mul, add)]
    got32 = eager.elsa_aggregate_no_grad(*f32, k, d)
    torch.testing.assert_close(got32.double(), oracle, atol=1e-5, rtol=1e-5)


def test_result_dtype_is_the_references_and_autocast_does_not_change_it():
    v, attn, mul, add, k, d = _inputs(CASES["k3-both"])
    mixed = (v.bfloat16(), attn, mul, add.bfloat16())  # bf16 values, float32 weights
    want = reference.elsa_aggregate(*mixed, k, d)
    got = eager.elsa_aggregate_no_grad(*mixed, k, d)
    assert got.dtype == want.dtype == torch.float32
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the convolution stays in float32
        under = eager.elsa_aggregate_no_grad(v, attn, mul, add, k, d)
    assert under.dtype == torch.float32
    torch.testing.assert_close(under, eager.elsa_aggregate_no_grad(v, attn, mul, add, k, d))


def test_refuses_what_the_reference_refuses():
    v, attn, mul, add, k, d = _inputs(CASES["k3-both"])
    with pytest.raises(ValueError):
        eager.elsa_aggregate_no_grad(v, attn[:, :, :4], mul, add, k, d)


def test_the_dispatcher_takes_it_without_grad_and_the_loop_with(monkeypatch):
    v, attn, mul, add, k, d = _inputs(CASES["k3-both"])
    calls = []
    real = eager.elsa_aggregate_no_grad
    monkeypatch.setattr(eager, "elsa_aggregate_no_grad", lambda *a: calls.append("no_grad") or real(*a))
    with torch.no_grad():
        kernels.elsa_aggregate(v, attn, mul, add, k, d)
    assert calls == ["no_grad"]
    leaf = v.clone().requires_grad_()
    out = kernels.elsa_aggregate(leaf, attn, mul, add, k, d)
    assert calls == ["no_grad"] and out.requires_grad  # the autograd path is the other one
    out.sum().backward()
    assert leaf.grad is not None
