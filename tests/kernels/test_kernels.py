"""Tests for rrsis.kernels: references (gradcheck, unfold oracle), Triton kernels, dispatcher.

The Triton kernels run on CPU through Triton's interpreter (``TRITON_INTERPRET=1``), which costs
tens of milliseconds per program instance, so every shape here is a handful of windows/tiles.
On a GPU machine, ``TRITON_INTERPRET=0 pytest tests/kernels/test_kernels.py`` runs the same checks with
compiled kernels on CUDA tensors.
"""

from __future__ import annotations

import importlib
import os

# triton.jit picks compile-vs-interpret when a kernel is defined; switch the interpreter on
# before anything imports triton (tests/conftest.py does the same for whole-suite runs).
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
import torch

import rrsis.kernels as dispatch
from rrsis.kernels import reference as ref
from rrsis.kernels.tiles import ELSA_FUSED_CANDIDATES

triton = pytest.importorskip("triton")

pytestmark = pytest.mark.triton


def _interpret_requested() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "yes", "on")


def _load_ops():
    """``rrsis.kernels.triton_ops``, re-defining its kernels if they were defined in the other mode.

    Another test module may have imported the kernels before the interpreter was switched on;
    reloading (window first: the others import helpers from it) re-runs ``triton.jit``. Triton's
    own library functions (``tl.sum``, ...) are defined when ``triton`` is first imported, so that
    import must already have seen ``TRITON_INTERPRET=1`` (tests/conftest.py sees to it).
    """
    import triton.language as tl
    from triton.runtime.interpreter import InterpretedFunction

    if _interpret_requested() and not isinstance(tl.sum, InterpretedFunction):
        raise RuntimeError(
            "triton was imported before TRITON_INTERPRET=1 was set, so its kernels cannot run in "
            "the interpreter in this process: keep tests/conftest.py (it sets the variable before "
            "anything imports triton) or export TRITON_INTERPRET=1 before running pytest"
        )
    from rrsis.kernels import (
        triton_common,
        triton_elsa,
        triton_elsa_fused,
        triton_ops,
        triton_pwam,
        triton_window,
        triton_window_bwd,
    )

    if isinstance(triton_window._win_fwd_kernel, InterpretedFunction) != _interpret_requested():
        for mod in (triton_common, triton_window, triton_window_bwd, triton_elsa,
                    triton_elsa_fused, triton_pwam, triton_ops):
            importlib.reload(mod)
    return triton_ops


OPS = _load_ops()
if _interpret_requested():
    DEVICE = "cpu"
elif torch.cuda.is_available():
    DEVICE = "cuda"
else:  # pragma: no cover - compiled kernels without a GPU
    pytest.skip("TRITON_INTERPRET=0 and no CUDA device", allow_module_level=True)


@pytest.fixture(autouse=True)
def _poison_outputs(monkeypatch):
    """Make ``torch.empty`` return NaN-filled tensors so an element a kernel never writes fails."""
    real_empty, real_empty_like = torch.empty, torch.empty_like

    def empty(*args, **kwargs):
        t = real_empty(*args, **kwargs)
        return t.fill_(float("nan")) if t.is_floating_point() else t

    def empty_like(*args, **kwargs):
        t = real_empty_like(*args, **kwargs)
        return t.fill_(float("nan")) if t.is_floating_point() else t

    monkeypatch.setattr(torch, "empty", empty)
    monkeypatch.setattr(torch, "empty_like", empty_like)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape, gen, dtype=torch.float32):
    return torch.randn(*shape, generator=gen).to(DEVICE, dtype)


# Tolerances: float32 kernels against a float64 reference land near 1e-7 relative error;
# bf16/fp16 inputs against the float32 reference on the same (rounded) inputs near 5e-3.
TOL = {
    torch.float32: {"atol": 1e-5, "rtol": 1e-4},
    torch.bfloat16: {"atol": 3e-2, "rtol": 3e-2},
    torch.float16: {"atol": 1e-2, "rtol": 1e-2},
}
REL = {torch.float32: 1e-5, torch.bfloat16: 2e-2, torch.float16: 5e-3}


def _check(name, actual, expected, dtype):
    """Elementwise closeness plus a relative-norm bound (sums over windows make bias grads big)."""
    assert actual is not None, f"{name}: no gradient"
    assert torch.isfinite(actual).all(), f"{name}: non-finite values (unwritten output?)"
    a, e = actual.double().cpu(), expected.double().cpu()
    rel = ((a - e).norm() / e.norm().clamp_min(1e-12)).item()
    assert rel <= REL[dtype], f"{name}: relative error {rel:.2e} > {REL[dtype]:.0e}"
    scale = e.abs().max().clamp_min(1.0)
    torch.testing.assert_close(a / scale, e / scale, **TOL[dtype], msg=lambda m: f"{name}: {m}")


def _leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().requires_grad_(True)


# ----------------------------------------------------------------------------- references


@pytest.mark.parametrize("shift", [0, 1])
def test_reference_window_gradcheck(shift):
    # 2×2 windows on a 4×6 map: six windows, shift-mask regions on both axes, few inputs.
    g = _gen(0)
    q, k, v = (torch.randn(1, 4, 6, 1, 3, generator=g, dtype=torch.float64) for _ in range(3))
    rb = torch.randn(1, 4, 4, generator=g, dtype=torch.float64)
    ins = [t.requires_grad_() for t in (q, k, v, rb)]
    assert torch.autograd.gradcheck(
        lambda a, b, c, d: ref.window_attention(a, b, c, d, 2, shift, 0.5), ins)


def test_reference_elsa_gradcheck():
    g = _gen(1)
    v = torch.randn(1, 4, 4, 5, generator=g, dtype=torch.float64)
    a = torch.randn(1, 2, 9, 4, 5, generator=g, dtype=torch.float64).softmax(2)
    mul = torch.randn(4, 9, generator=g, dtype=torch.float64)
    add = torch.randn(4, 9, generator=g, dtype=torch.float64)
    ins = [t.requires_grad_() for t in (v, a, mul, add)]
    assert torch.autograd.gradcheck(lambda *x: ref.elsa_aggregate(*x, 3, 2), ins)


@pytest.mark.parametrize("ghost", ["none", "mul", "add", "both"])
def test_eager_elsa_backward_matches_autograd_through_the_reference(ghost):
    from rrsis.kernels import eager

    g = _gen(7)
    v = torch.randn(2, 6, 4, 5, generator=g, dtype=torch.float64)
    a = torch.randn(2, 3, 9, 4, 5, generator=g, dtype=torch.float64).softmax(2)
    mul = torch.randn(6, 9, generator=g, dtype=torch.float64) if ghost in ("mul", "both") else None
    add = torch.randn(6, 9, generator=g, dtype=torch.float64) if ghost in ("add", "both") else None
    ins = [t.requires_grad_() for t in (v, a, mul, add) if t is not None]
    assert torch.autograd.gradcheck(lambda v, a, *gh: eager.elsa_aggregate(
        v, a, mul if mul is None else gh[0], add if add is None else gh[-1], 3, 2), ins)
    dy = torch.randn(2, 6, 4, 5, generator=g, dtype=torch.float64)
    out = eager.elsa_aggregate(v, a, mul, add, 3, 2)
    assert torch.equal(out, ref.elsa_aggregate(v, a, mul, add, 3, 2))  # the same forward, bit for bit
    got = torch.autograd.grad(out, ins, dy)
    want = torch.autograd.grad(ref.elsa_aggregate(v, a, mul, add, 3, 2), ins, dy)
    for x, y in zip(got, want):
        torch.testing.assert_close(x, y)
    # the dispatcher takes it when a gradient is needed, and only v's gradient when only v needs one
    dv, = torch.autograd.grad(dispatch.elsa_aggregate(v, a.detach(), None, None, 3, 2), [v], dy)
    torch.testing.assert_close(dv, torch.autograd.grad(ref.elsa_aggregate(v, a.detach(), None, None, 3, 2), [v], dy)[0])


def test_eager_elsa_keeps_the_reference_result_type_under_autocast():
    # Under CPU autocast the values come out of a bf16 convolution while the softmaxed attention
    # and the ghost parameters stay float: the result is float, as the reference's, both ways.
    from rrsis.kernels import eager

    g = _gen(11)
    v = torch.randn(2, 8, 6, 5, generator=g).to(torch.bfloat16).requires_grad_()
    a = torch.randn(2, 2, 9, 6, 5, generator=g).softmax(2).requires_grad_()
    add = (0.1 * torch.randn(8, 9, generator=g)).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = eager.elsa_aggregate(v, a, None, add, 3, 1)
        want = ref.elsa_aggregate(v, a, None, add, 3, 1)
    assert out.dtype == want.dtype == torch.float32
    torch.testing.assert_close(out, want)
    dy = torch.randn(out.shape, generator=g)
    got = torch.autograd.grad(out, (v, a, add), dy)
    exp = torch.autograd.grad(want, (v, a, add), dy)
    for x, y in zip(got, exp):
        assert x.dtype == y.dtype
        torch.testing.assert_close(x.float(), y.float(), rtol=2e-2, atol=2e-2)


def test_reference_pwam_gradcheck():
    g = _gen(2)
    q = torch.randn(2, 1, 5, 4, generator=g, dtype=torch.float64)
    k = torch.randn(2, 1, 3, 4, generator=g, dtype=torch.float64)
    v = torch.randn(2, 1, 3, 2, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    ins = [t.requires_grad_() for t in (q, k, v)]
    assert torch.autograd.gradcheck(lambda *x: ref.pixel_word_attention(*x, mask, 0.5), ins)


@pytest.mark.parametrize("ghost", ["none", "mul", "add", "both"])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("kernel_size", [3, 5, 7])
def test_elsa_shift_loop_matches_unfold(kernel_size, dilation, ghost):
    g = _gen(3)
    k2 = kernel_size**2
    v = torch.randn(2, 6, 7, 9, generator=g, dtype=torch.float64)
    a = torch.randn(2, 3, k2, 7, 9, generator=g, dtype=torch.float64).softmax(2)
    mul = torch.randn(6, k2, generator=g, dtype=torch.float64) if ghost in ("mul", "both") else None
    add = torch.randn(6, k2, generator=g, dtype=torch.float64) if ghost in ("add", "both") else None
    ins = [t.requires_grad_() for t in (v, a, mul, add) if t is not None]
    y1 = ref.elsa_aggregate(v, a, mul, add, kernel_size, dilation)
    y2 = ref.elsa_aggregate_unfold(v, a, mul, add, kernel_size, dilation)
    torch.testing.assert_close(y1, y2)
    dy = torch.randn(y1.shape, generator=g, dtype=torch.float64)
    for g1, g2 in zip(torch.autograd.grad(y1, ins, dy), torch.autograd.grad(y2, ins, dy)):
        torch.testing.assert_close(g1, g2)


# ----------------------------------------------------------------------------- window attention

# (B, Hp, Wp, heads, d, window, shift, config): W-MSA and SW-MSA, a non-square map, windows
# whose N = win² is not a multiple of the tile (25, 36 with 16-wide tiles: several query and key
# tiles, masked tails), d not a power of two, and more windows than chunks.
SMALL_TILES = {"block_m": 16, "block_n": 16, "bwd_block_m": 16, "bwd_block_n": 16, "dq_block_m": 16}
WINDOW_CASES = {
    "wmsa": (1, 8, 8, 2, 16, 4, 0, None),
    "swmsa-rect": (1, 8, 12, 2, 16, 4, 2, None),
    "swmsa-multitile": (1, 10, 10, 1, 16, 5, 2, SMALL_TILES),
    "swmsa-d12-b2": (2, 12, 6, 1, 12, 6, 3, {**SMALL_TILES, "chunks": 3}),
}


def _window_run(case, dtype, seed=10, strided=False, bias_grad=True):
    b, hp, wp, heads, d, win, shift, cfg = case
    g = _gen(seed)
    n = win * win
    if strided:
        # q, k, v as views of a qkv Linear output [B, Hp, Wp, 3·heads·d]: read in place.
        qkv = _leaf(_randn(b, hp, wp, 3 * heads * d, gen=g, dtype=dtype))
        q, k, v = qkv.view(b, hp, wp, 3, heads, d).unbind(3)
        leaves = [qkv]
    else:
        q, k, v = (_leaf(_randn(b, hp, wp, heads, d, gen=g, dtype=dtype)) for _ in range(3))
        leaves = [q, k, v]
    rb = _randn(heads, n, n, gen=g)
    rb = _leaf(rb) if bias_grad else rb
    scale = d**-0.5
    config = OPS.WindowConfig(**cfg) if cfg else None
    out = OPS.window_attention(q, k, v, rb, win, shift, scale, config)
    dout = _randn(*out.shape, gen=g, dtype=dtype)
    targets = leaves + ([rb] if bias_grad else [])
    grads = torch.autograd.grad(out, targets, dout)

    # Reference in float64 on the same (rounded) inputs.
    r_leaves = [t.detach().double().requires_grad_() for t in targets]
    if strided:
        rq, rk, rv = r_leaves[0].view(b, hp, wp, 3, heads, d).unbind(3)
    else:
        rq, rk, rv = r_leaves[:3]
    rrb = r_leaves[-1] if bias_grad else rb.double()
    r_out = ref.window_attention(rq, rk, rv, rrb, win, shift, scale)
    r_grads = torch.autograd.grad(r_out, r_leaves, dout.double())
    return out, grads, r_out, r_grads


@pytest.mark.parametrize("name", list(WINDOW_CASES))
def test_window_attention_fp32(name):
    out, grads, r_out, r_grads = _window_run(WINDOW_CASES[name], torch.float32)
    assert out.shape == r_out.shape and out.dtype == torch.float32
    _check("out", out, r_out, torch.float32)
    for gname, a, e in zip(("dq", "dk", "dv", "drel_bias"), grads, r_grads):
        _check(gname, a, e, torch.float32)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_window_attention_low_precision(dtype):
    case = (1, 8, 12, 1, 16, 4, 2, None)  # swmsa-rect with one head
    out, grads, r_out, r_grads = _window_run(case, dtype)
    assert out.dtype == dtype
    _check("out", out, r_out, dtype)
    for gname, a, e in zip(("dq", "dk", "dv", "drel_bias"), grads, r_grads):
        _check(gname, a, e, dtype)


def test_window_attention_strided_qkv_without_bias_grad():
    out, grads, r_out, r_grads = _window_run(WINDOW_CASES["swmsa-rect"], torch.float32,
                                             strided=True, bias_grad=False)
    _check("out", out, r_out, torch.float32)
    _check("dqkv", grads[0], r_grads[0], torch.float32)


def test_window_attention_shift_mask_is_minus_100():
    # A single 4×4 map with shift 2: most pairs cross regions, so -100 vs -inf/-1e4 shows up
    # only through scores large enough to beat it; scale them up.
    g = _gen(11)
    q, k, v = (_randn(1, 4, 4, 1, 16, gen=g) for _ in range(3))
    rb = torch.zeros(1, 16, 16, device=DEVICE)
    out = OPS.window_attention(q * 4, k * 4, v, rb, 4, 2, 1.0)
    r_out = ref.window_attention(q.double() * 4, k.double() * 4, v.double(), rb.double(), 4, 2, 1.0)
    _check("out", out, r_out, torch.float32)


def test_window_attention_no_grad_matches():
    b, hp, wp, heads, d, win, _, _ = WINDOW_CASES["wmsa"]
    g = _gen(12)
    q, k, v = (_randn(b, hp, wp, heads, d, gen=g) for _ in range(3))
    rb = _randn(heads, win * win, win * win, gen=g)
    with torch.no_grad():
        out = OPS.window_attention(q, k, v, rb, win, 2, d**-0.5)
    _check("out", out, ref.window_attention(q, k, v, rb, win, 2, d**-0.5), torch.float32)


# ----------------------------------------------------------------------------- ELSA

# (B, C, H, W, G, k, dilation, ghost, config)
ELSA_CASES = {
    "k3-both-multitile": (1, 8, 6, 7, 2, 3, 1, "both", {"block_p": 16, "chunks": 2}),
    "k5-dil2-mul": (1, 6, 5, 9, 3, 5, 2, "mul", {"block_p": 64}),
    "k7-add": (1, 4, 6, 7, 2, 7, 1, "add", {"block_p": 64}),
    "k3-none": (1, 8, 6, 7, 4, 3, 2, "none", {"block_p": 32}),
}


def _elsa_run(case, dtype, seed=20, strided=False):
    b, c, h, w, groups, ks, dil, ghost, cfg = case
    g = _gen(seed)
    k2 = ks * ks
    if strided:
        # v as a channel slice of a wider map and attn as a permuted view: read in place.
        v = _leaf(_randn(b, 2 * c, h, w, gen=g, dtype=dtype))
        v_in = v[:, c:]
        a = _leaf(torch.randn(b, h, w, groups, k2, generator=g).softmax(-1).to(DEVICE, dtype))
        a_in = a.permute(0, 3, 4, 1, 2)
    else:
        v = v_in = _leaf(_randn(b, c, h, w, gen=g, dtype=dtype))
        a = a_in = _leaf(torch.randn(b, groups, k2, h, w, generator=g).softmax(2).to(DEVICE, dtype))
    mul = _leaf(_randn(c, k2, gen=g, dtype=dtype)) if ghost in ("mul", "both") else None
    add = _leaf(_randn(c, k2, gen=g, dtype=dtype)) if ghost in ("add", "both") else None
    leaves = [t for t in (v, a, mul, add) if t is not None]
    out = OPS.elsa_aggregate(v_in, a_in, mul, add, ks, dil, OPS.ElsaTiles(**cfg))
    dout = _randn(*out.shape, gen=g, dtype=dtype)
    grads = torch.autograd.grad(out, leaves, dout)

    r_leaves = [t.detach().double().requires_grad_() for t in leaves]
    it = iter(r_leaves)
    rv, ra = next(it), next(it)
    if strided:
        rv, ra = rv[:, c:], ra.permute(0, 3, 4, 1, 2)
    rmul = next(it) if mul is not None else None
    radd = next(it) if add is not None else None
    r_out = ref.elsa_aggregate_unfold(rv, ra, rmul, radd, ks, dil)
    r_grads = torch.autograd.grad(r_out, r_leaves, dout.double())
    names = ["dv", "dattn"] + (["dghost_mul"] if mul is not None else []) + (
        ["dghost_add"] if add is not None else [])
    return out, grads, r_out, r_grads, names


@pytest.mark.parametrize("name", list(ELSA_CASES))
def test_elsa_aggregate_fp32(name):
    out, grads, r_out, r_grads, names = _elsa_run(ELSA_CASES[name], torch.float32)
    _check("out", out, r_out, torch.float32)
    for gname, a, e in zip(names, grads, r_grads):
        _check(gname, a, e, torch.float32)


def test_elsa_aggregate_strided_inputs():
    out, grads, r_out, r_grads, names = _elsa_run(ELSA_CASES["k3-both-multitile"], torch.float32,
                                                  strided=True)
    _check("out", out, r_out, torch.float32)
    for gname, a, e in zip(names, grads, r_grads):
        _check(gname, a, e, torch.float32)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_elsa_aggregate_low_precision(dtype):
    case = (1, 8, 6, 7, 2, 3, 1, "both", {"block_p": 64})  # k3-both in one pixel tile
    out, grads, r_out, r_grads, names = _elsa_run(case, dtype)
    assert out.dtype == dtype
    _check("out", out, r_out, dtype)
    for gname, a, e in zip(names, grads, r_grads):
        _check(gname, a, e, dtype)


# ----------------------------------------------------------------------------- ELSA from logits

# (B, C, H, W, heads, k, dilation, ghost, tiles): several 2-D tiles with ragged edges, dilation,
# each ghost variant.
FUSED_CASES = {
    "k3-both-tiles": (2, 8, 6, 7, 2, 3, 1, "both", {"block_h": 4, "block_w": 4, "chunks": 2}),
    "k3-dil2-add": (1, 6, 5, 9, 2, 3, 2, "add", {"block_h": 2, "block_w": 8}),
    "k5-mul-onetile": (1, 4, 5, 5, 1, 5, 1, "mul", {}),
    "k3-none": (1, 8, 4, 6, 4, 3, 1, "none", {"block_h": 4, "block_w": 4}),
}


def _fused_run(case, dtype, seed=40, strided=False, ghost_dtype=None):
    b, c, h, w, groups, ks, dil, ghost, cfg = case
    g = _gen(seed)
    k2 = ks * ks
    if strided:
        # As the model passes them: v a channel slice of a channels-last conv output, the
        # logits a view of a channels-last generator output.
        wide = _leaf(_randn(b, h, w, 2 * c, gen=g, dtype=dtype))
        v, v_in = wide, wide.permute(0, 3, 1, 2)[:, c:]
        lg = _leaf(3 * _randn(b, h, w, groups * k2, gen=g, dtype=dtype))
        l_in = lg.permute(0, 3, 1, 2).view(b, groups, k2, h, w)
    else:
        v = v_in = _leaf(_randn(b, c, h, w, gen=g, dtype=dtype))
        lg = l_in = _leaf(3 * _randn(b, groups, k2, h, w, gen=g, dtype=dtype))
    gdt = ghost_dtype or dtype
    mul = _leaf(_randn(c, k2, gen=g, dtype=gdt)) if ghost in ("mul", "both") else None
    add = _leaf(_randn(c, k2, gen=g, dtype=gdt)) if ghost in ("add", "both") else None
    leaves = [t for t in (v, lg, mul, add) if t is not None]
    out = OPS.elsa_attention(v_in, l_in, mul, add, ks, dil, OPS.ElsaFusedTiles(**cfg))
    dout = _randn(*out.shape, gen=g, dtype=out.dtype)
    grads = torch.autograd.grad(out, leaves, dout)

    # Independent oracle: float64 softmax, the unfold formulation, then channels-last.
    r_leaves = [t.detach().double().requires_grad_() for t in leaves]
    it = iter(r_leaves)
    rv, rl = next(it), next(it)
    if strided:
        rv = rv.permute(0, 3, 1, 2)[:, c:]
        rl = rl.permute(0, 3, 1, 2).reshape(b, groups, k2, h, w)
    rmul = next(it) if mul is not None else None
    radd = next(it) if add is not None else None
    r_out = ref.elsa_aggregate_unfold(rv, rl.softmax(2), rmul, radd, ks, dil).permute(0, 2, 3, 1)
    r_grads = torch.autograd.grad(r_out, r_leaves, dout.double())
    names = ["dv", "dlogits"] + (["dghost_mul"] if mul is not None else []) + (
        ["dghost_add"] if add is not None else [])
    return out, grads, r_out, r_grads, names


@pytest.mark.parametrize("name", list(FUSED_CASES))
def test_elsa_attention_fp32(name):
    out, grads, r_out, r_grads, names = _fused_run(FUSED_CASES[name], torch.float32)
    assert out.shape == r_out.shape and out.is_contiguous()  # [B, H, W, C], as proj reads it
    _check("out", out, r_out, torch.float32)
    for gname, a, e in zip(names, grads, r_grads):
        _check(gname, a, e, torch.float32)


# The pixel tiles of the shapes the choice table may name (warps change nothing in the interpreter).
TABLE_TILES = sorted({(c.block_h, c.block_w) for c in ELSA_FUSED_CANDIDATES})


@pytest.mark.parametrize(("block_h", "block_w"), TABLE_TILES)
def test_elsa_attention_every_table_tile_shape(block_h, block_w):
    """Each tile shape the choice table may name, in the model's layout, on a map its tiles do
    not divide (ragged edges in both directions; 6×19 is 1–2 × 2–3 tiles)."""
    case = (1, 4, 6, 19, 1, 3, 1, "both", {"block_h": block_h, "block_w": block_w, "chunks": 2})
    out, grads, r_out, r_grads, names = _fused_run(case, torch.float32, strided=True)
    _check("out", out, r_out, torch.float32)
    for gname, a, e in zip(names, grads, r_grads):
        _check(gname, a, e, torch.float32)


def test_elsa_attention_strided_model_layout():
    out, grads, r_out, r_grads, names = _fused_run(FUSED_CASES["k3-both-tiles"], torch.float32,
                                                   strided=True)
    _check("out", out, r_out, torch.float32)
    for gname, a, e in zip(names, grads, r_grads):
        _check(gname, a, e, torch.float32)


def test_elsa_attention_bf16_in_and_out_with_float32_ghosts():
    # Autocast's dtypes: bf16 v and logits (conv outputs), float32 ghost parameters.
    case = (1, 8, 4, 4, 2, 3, 1, "both", {"block_h": 4, "block_w": 4})
    out, grads, r_out, r_grads, names = _fused_run(case, torch.bfloat16,
                                                   ghost_dtype=torch.float32)
    assert out.dtype == torch.bfloat16
    assert [t.dtype for t in grads] == [torch.bfloat16, torch.bfloat16, torch.float32,
                                        torch.float32]
    _check("out", out, r_out, torch.bfloat16)
    for gname, a, e in zip(names, grads, r_grads):
        _check(gname, a, e, torch.bfloat16)


def test_elsa_attention_dispatcher_matches_the_softmax_path(monkeypatch):
    g = _gen(41)
    v = _randn(1, 4, 5, 5, gen=g)
    lg = _randn(1, 2, 9, 5, 5, gen=g)
    add = _randn(4, 9, gen=g)
    monkeypatch.setenv("RRSIS_KERNELS", "torch")
    want = dispatch.elsa_attention(v, lg, None, add, 3, 1)
    monkeypatch.setenv("RRSIS_KERNELS", "triton")
    got = dispatch.elsa_attention(v, lg, None, add, 3, 1)
    _check("dispatch", got, want, torch.float32)


# ----------------------------------------------------------------------------- tile configs


@pytest.mark.parametrize("name", ["WindowConfig", "ElsaTiles", "ElsaFusedTiles", "PwamConfig"])
def test_tile_configs_round_trip_every_field(name):
    import dataclasses

    cls = getattr(OPS, name)
    fields = dataclasses.fields(cls)
    # A value different from every default, per field: a dropped field comes back changed.
    custom = cls(**{f.name: 100 + i for i, f in enumerate(fields)})
    assert cls.from_list(custom.to_list()) == custom
    assert cls.from_list(cls().to_list()) == cls()
    with pytest.raises(ValueError, match="takes"):
        cls.from_list(custom.to_list()[:-1])


def test_window_config_keeps_dq_num_warps_across_the_op(monkeypatch):
    from rrsis.kernels import ops as kops

    seen = []
    real = kops._winb.window_backward

    def spy(*args):
        seen.append(args[-1])
        return real(*args)

    monkeypatch.setattr(kops._winb, "window_backward", spy)
    g = _gen(42)
    q, k, v = (_leaf(_randn(1, 4, 4, 1, 16, gen=g)) for _ in range(3))
    rb = _leaf(_randn(1, 16, 16, gen=g))
    cfg = OPS.WindowConfig(block_m=16, block_n=16, bwd_block_m=16, bwd_block_n=16,
                           dq_num_warps=2)
    out = OPS.window_attention(q, k, v, rb, 4, 0, 0.25, cfg)
    out.sum().backward()
    assert seen and seen[0].dq_num_warps == 2


def test_tile_config_errors_name_the_field():
    with pytest.raises(ValueError, match="did you mean 'block_h'"):
        OPS.ElsaFusedTiles.from_kwargs(block_hh=4)
    with pytest.raises(ValueError, match="block_w must be a positive int"):
        OPS.ElsaFusedTiles(block_w=0)


# ----------------------------------------------------------------------------- PWAM


def _pwam_run(dtype, b=3, heads=2, n=40, L=7, d=16, dv=16, block_m=16, block_d=128, seed=30,
              strided=False):
    g = _gen(seed)
    if strided:
        # q as the [B, N, h, d] output of a Linear viewed as [B, h, N, d].
        qb = _leaf(_randn(b, n, heads, d, gen=g, dtype=dtype))
        q_in = qb.transpose(1, 2)
    else:
        qb = q_in = _leaf(_randn(b, heads, n, d, gen=g, dtype=dtype))
    k = _leaf(_randn(b, heads, L, d, gen=g, dtype=dtype))
    v = _leaf(_randn(b, heads, L, dv, gen=g, dtype=dtype))
    # Sentences of different lengths, plus an all-padding one (uniform weights over zeros).
    mask = torch.zeros(b, L, dtype=torch.long, device=DEVICE)
    mask[0, :] = 1
    mask[1, : L // 2] = 1
    config = OPS.PwamConfig(block_m=block_m, block_d=block_d)
    out = OPS.pixel_word_attention(q_in, k, v, mask, d**-0.5, config)
    dout = _randn(*out.shape, gen=g, dtype=dtype)
    grads = torch.autograd.grad(out, (qb, k, v), dout)
    rq, rk, rv = (t.detach().double().requires_grad_() for t in (qb, k, v))
    r_out = ref.pixel_word_attention(rq.transpose(1, 2) if strided else rq, rk, rv, mask, d**-0.5)
    r_grads = torch.autograd.grad(r_out, (rq, rk, rv), dout.double())
    return out, grads, r_out, r_grads


@pytest.mark.parametrize("strided", [False, True])
def test_pixel_word_attention_fp32(strided):
    out, grads, r_out, r_grads = _pwam_run(torch.float32, strided=strided)
    _check("out", out, r_out, torch.float32)
    for gname, a, e in zip(("dq", "dk", "dv"), grads, r_grads):
        _check(gname, a, e, torch.float32)


def test_pixel_word_attention_twenty_words_chunked_channels():
    # d and dv wider than one 16-channel chunk (and not multiples of it): the chunked path.
    out, grads, r_out, r_grads = _pwam_run(torch.float32, b=2, heads=1, n=70, L=20, d=40, dv=24,
                                           block_d=16)
    _check("out", out, r_out, torch.float32)
    for gname, a, e in zip(("dq", "dk", "dv"), grads, r_grads):
        _check(gname, a, e, torch.float32)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_pixel_word_attention_low_precision(dtype):
    out, grads, r_out, r_grads = _pwam_run(dtype, b=2)
    assert out.dtype == dtype
    _check("out", out, r_out, dtype)
    for gname, a, e in zip(("dq", "dk", "dv"), grads, r_grads):
        _check(gname, a, e, dtype)


# ----------------------------------------------------------------------------- dispatcher


def _window_inputs():
    g = _gen(40)
    q, k, v = (_randn(1, 4, 4, 1, 16, gen=g) for _ in range(3))
    return q, k, v, _randn(1, 16, 16, gen=g), 4, 0, 0.25


def test_dispatcher_torch_uses_reference(monkeypatch):
    monkeypatch.setenv("RRSIS_KERNELS", "torch")
    args = _window_inputs()
    assert dispatch.backend(*args[:3]) == "torch"
    monkeypatch.setattr(OPS, "window_attention", lambda *a: pytest.fail("Triton path taken"))
    torch.testing.assert_close(dispatch.window_attention(*args), ref.window_attention(*args),
                               rtol=0, atol=0)


def test_dispatcher_triton_uses_kernels(monkeypatch):
    # On CUDA the dispatcher only sends shapes inside the compiled envelope to a kernel (and
    # RRSIS_KERNELS=triton refuses the rest), so the shapes come from it; the interpreter on CPU
    # takes any shape, and small ones keep it fast.
    from rrsis.kernels import support

    cuda = DEVICE == "cuda"
    monkeypatch.setenv("RRSIS_KERNELS", "triton")
    g = _gen(40)
    w, d = (support.WINDOW, support.WINDOW_HEAD_DIM) if cuda else (4, 16)
    q, k, v = (_randn(1, w, w, 1, d, gen=g) for _ in range(3))
    args = (q, k, v, _randn(1, w * w, w * w, gen=g), w, 0, d ** -0.5)
    assert dispatch.backend(*args[:3]) == "triton"
    calls = []
    real = OPS.window_attention
    monkeypatch.setattr(OPS, "window_attention", lambda *a: calls.append(1) or real(*a))
    out = dispatch.window_attention(*args)
    assert calls == [1]
    _check("out", out, ref.window_attention(*args), torch.float32)

    g = _gen(41)
    ks, cph = (support.ELSA_KERNEL, support.ELSA_CHANNELS_PER_HEAD) if cuda else (3, 2)
    v, a = _randn(1, 2 * cph, 9, 9, gen=g), _randn(1, 2, ks * ks, 9, 9, gen=g).softmax(2)
    _check("elsa", dispatch.elsa_aggregate(v, a, None, None, ks, 1),
           ref.elsa_aggregate(v, a, None, None, ks, 1), torch.float32)
    c = support.MODELS["swin-s/t"][0] if cuda else 16
    q, k, vv = _randn(1, 1, 16, c, gen=g), _randn(1, 1, 3, c, gen=g), _randn(1, 1, 3, c, gen=g)
    m = torch.tensor([[1, 1, 0]], device=DEVICE)
    _check("pwam", dispatch.pixel_word_attention(q, k, vv, m, c ** -0.5),
           ref.pixel_word_attention(q, k, vv, m, c ** -0.5), torch.float32)


def test_dispatcher_auto_and_invalid(monkeypatch):
    args = _window_inputs()
    monkeypatch.setenv("RRSIS_KERNELS", "auto")
    assert dispatch.backend(*args[:3]) == ("triton" if DEVICE == "cuda" else "torch")
    monkeypatch.delenv("RRSIS_KERNELS")
    assert dispatch.backend(*args[:3]) == ("triton" if DEVICE == "cuda" else "torch")
    monkeypatch.setenv("RRSIS_KERNELS", "cuda")
    with pytest.raises(ValueError, match="RRSIS_KERNELS"):
        dispatch.window_attention(*args)
