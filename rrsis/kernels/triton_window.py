"""Fused (shifted-)window attention in Triton, forward and backward, roll/partition folded in.

The kernels read q, k, v straight from the un-partitioned ``[B, Hp, Wp, heads, d]`` maps (any
strides, so per-head views of a qkv Linear output need no copy) and write the output back in
that layout. A window token ``t`` of window ``(wy, wx)`` sits at *rolled* map coordinates
``(wy·win + t // win, wx·win + t % win)``; ``torch.roll(x, -shift)`` means rolled coordinate
``r`` reads original coordinate ``(r + shift) mod Hp``, and rolling the output back by
``+shift`` writes to that same place, so one index map serves both reads and writes.

Swin's shift mask is recomputed from region ids instead of being loaded: a rolled row ``r`` is in
region 2 when ``r ≥ Hp − shift``, region 1 when ``r ≥ Hp − win``, else region 0 (the same
slicing as :func:`rrsis.kernels.reference.shift_window_mask`), and a query/key pair whose
(row-region, column-region) differ gets the additive −100.

Forward: flash-style online softmax (base 2) over key tiles; only the output and a float32
log-sum-exp per (pixel, head) reach HBM. Backward recomputes probabilities from the LSE:
kernel A (per head × query tile × chunk of windows) produces dq, the row term
``Δ = rowsum(dO·O)`` and a per-chunk partial of the bias gradient, which needs every key of a
row at once (the bias gradient sums ``dS`` over all windows, so it is reduced in registers across
the windows of a chunk and the chunks are summed afterwards: deterministic, no atomics);
kernel B (per window × head × key tile) produces dk and dv (:mod:`.triton_window_bwd`).
"""

from __future__ import annotations

import dataclasses

import torch
import triton
import triton.language as tl

from .tiles import TileConfig
from .triton_common import LOG2E, Launch, _dot, dot_precision, interpreting, npow2

__all__ = ["WindowConfig", "plan_window_fwd", "window_forward"]

# Swin's additive cross-region value (reference.SHIFT_MASK_VALUE): -100, not -inf, for parity.
SHIFT_MASK = tl.constexpr(-100.0)


@triton.jit
def _region(r, L, shift, WIN: tl.constexpr):
    # Region id of a rolled coordinate along one axis (0, 1, 2), matching shift_window_mask.
    return tl.where(r >= L - shift, 2, tl.where(r >= L - WIN, 1, 0))


@triton.jit
def _tokens(t, wy, wx, Hp, Wp, shift, WIN: tl.constexpr, HAS_SHIFT: tl.constexpr):
    # Window token index -> original (y, x) map coordinates and its shift-mask region id.
    ry = wy * WIN + t // WIN
    rx = wx * WIN + t % WIN
    if HAS_SHIFT:
        y = (ry + shift) % Hp
        x = (rx + shift) % Wp
        reg = _region(ry, Hp, shift, WIN) * 3 + _region(rx, Wp, shift, WIN)
    else:
        # Padded tokens (t >= N) may leave the map; they are masked, but keep addresses valid.
        y = ry % Hp
        x = rx % Wp
        reg = ry * 0
    return y, x, reg


@triton.jit
def _win_fwd_kernel(
    Q, K, V, BIAS, O, LSE,
    sqb, sqy, sqx, sqh, sqd,
    skb, sky, skx, skh, skd,
    svb, svy, svx, svh, svd,
    sob, soy, sox, soh, sod,
    Hp, Wp, nWx, nW, HEADS, shift, D, scale,
    WIN: tl.constexpr, HAS_SHIFT: tl.constexpr, STORE_LSE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    UPCAST: tl.constexpr, PREC: tl.constexpr,
):
    N = WIN * WIN
    NUM_M = (N + BLOCK_M - 1) // BLOCK_M
    # Query tiles of one (window, head) are adjacent program ids, so its K/V stay in L2.
    pid = tl.program_id(0)
    mt = pid % NUM_M
    rest = pid // NUM_M
    h = rest % HEADS
    bw = rest // HEADS
    w = bw % nW
    b = (bw // nW).to(tl.int64)
    wy = w // nWx
    wx = w % nWx

    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < D
    offs_m = mt * BLOCK_M + tl.arange(0, BLOCK_M)
    m_ok = offs_m < N
    yq, xq, regq = _tokens(offs_m, wy, wx, Hp, Wp, shift, WIN, HAS_SHIFT)

    q_ptrs = Q + b * sqb + yq[:, None] * sqy + xq[:, None] * sqx + h * sqh + offs_d[None, :] * sqd
    q = tl.load(q_ptrs, mask=m_ok[:, None] & d_ok[None, :], other=0.0)
    if UPCAST:
        q = q.to(tl.float32)

    qk_scale = scale * LOG2E
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    bias_row = BIAS + h * N * N + offs_m[:, None] * N
    for start_n in range(0, N, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        n_ok = offs_n < N
        yk, xk, regk = _tokens(offs_n, wy, wx, Hp, Wp, shift, WIN, HAS_SHIFT)
        kv_mask = n_ok[:, None] & d_ok[None, :]
        k = tl.load(K + b * skb + yk[:, None] * sky + xk[:, None] * skx + h * skh
                    + offs_d[None, :] * skd, mask=kv_mask, other=0.0)
        v = tl.load(V + b * svb + yk[:, None] * svy + xk[:, None] * svx + h * svh
                    + offs_d[None, :] * svd, mask=kv_mask, other=0.0)
        if UPCAST:
            k = k.to(tl.float32)
            v = v.to(tl.float32)
        s = _dot(q, tl.trans(k), UPCAST, PREC) * qk_scale
        bias = tl.load(bias_row + offs_n[None, :], mask=m_ok[:, None] & n_ok[None, :], other=0.0)
        s += bias.to(tl.float32) * LOG2E
        if HAS_SHIFT:
            s += tl.where(regq[:, None] != regk[None, :], SHIFT_MASK * LOG2E, 0.0)
        s = tl.where(n_ok[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.exp2(m_i - m_new)
        p = tl.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + _dot(p.to(v.dtype), v, UPCAST, PREC)
        m_i = m_new

    o = acc / l_i[:, None]
    o_ptrs = O + b * sob + yq[:, None] * soy + xq[:, None] * sox + h * soh + offs_d[None, :] * sod
    tl.store(o_ptrs, o.to(O.dtype.element_ty), mask=m_ok[:, None] & d_ok[None, :])
    if STORE_LSE:
        # LSE (base 2) lives in the un-partitioned [B, Hp, Wp, heads] layout.
        lse_ptrs = LSE + ((b * Hp + yq) * Wp + xq) * HEADS + h
        tl.store(lse_ptrs, m_i + tl.log2(l_i), mask=m_ok)


# ----------------------------------------------------------------------------- launch logic


def _npow2(n: int, lo: int = 16) -> int:
    return npow2(n, lo)


@dataclasses.dataclass(frozen=True)
class WindowConfig(TileConfig):
    """Tile shapes of the window-attention kernels (all powers of two, ≥ 16 for ``tl.dot``).

    Defaults for N = 144 (12² tokens), d = 32: the forward uses 64 queries × 32 keys
    (3 query tiles = 75 % useful rows, 5 key steps = 90 % useful columns); the dq/bias kernel
    holds a whole key row as two segments (128 + 16, no padding) with 16-query tiles (9 tiles,
    no row waste) on ``dq_num_warps`` warps; the dk/dv kernel uses 32 keys × 64 queries (32
    queries for float32 with TF32 off, whose ``tf32x3`` dots hold every operand twice).
    """

    block_m: int = 64
    block_n: int = 32
    bwd_block_m: int = 64
    bwd_block_n: int = 32
    dq_block_m: int | None = None
    chunks: int | None = None
    num_warps: int = 4
    num_stages: int = 2
    dq_num_warps: int = 8


DEFAULT = WindowConfig()


def fit(block: int, n: int) -> int:
    # Never use a tile larger than the padded token count (tiny windows in tests).
    return max(16, min(block, npow2(n)))


def plan_window_fwd(q, k, v, rb, o, lse, window: int, shift: int, scale: float,
                    cfg: WindowConfig) -> Launch:
    b, hp, wp, heads, d = q.shape
    n = window * window
    bm, bn = fit(cfg.block_m, n), fit(cfg.block_n, n)
    nwx, nw = wp // window, (hp // window) * (wp // window)
    return Launch(
        _win_fwd_kernel, (triton.cdiv(n, bm) * b * nw * heads,),
        (q, k, v, rb, o, lse, *q.stride(), *k.stride(), *v.stride(), *o.stride(),
         hp, wp, nwx, nw, heads, shift, d, float(scale)),
        {"WIN": window, "HAS_SHIFT": shift > 0, "STORE_LSE": True, "BLOCK_M": bm, "BLOCK_N": bn,
             "BLOCK_D": npow2(d), "UPCAST": interpreting(), "PREC": dot_precision(q.dtype),
             "num_warps": cfg.num_warps,
             "num_stages": cfg.num_stages},
    )


def window_forward(q, k, v, rel_bias, window: int, shift: int, scale: float,
                   cfg: WindowConfig = DEFAULT):
    """Run the forward kernel: ``(out [B, Hp, Wp, heads, d], lse [B, Hp, Wp, heads] float32)``.

    ``rel_bias`` is cast to ``q.dtype`` like the reference's.
    """
    b, hp, wp, heads, _ = q.shape
    rb = rel_bias.to(q.dtype).contiguous()
    o = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    lse = torch.empty((b, hp, wp, heads), dtype=torch.float32, device=q.device)
    plan_window_fwd(q, k, v, rb, o, lse, window, shift, scale, cfg)()
    return o, lse
