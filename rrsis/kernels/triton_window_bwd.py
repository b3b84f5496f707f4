"""Backward kernels of the fused window attention (see :mod:`.triton_window` for the layout).

Kernel A (per head × query tile × chunk of windows) produces dq, ``Δ = rowsum(dO·O)`` and a
per-chunk partial of the bias gradient; kernel B (per window × head × key tile) produces dk, dv.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .triton_common import (
    LOG2E,
    Launch,
    _dot,
    chunks_for,
    dot_precision,
    fp32_tile,
    interpreting,
    npow2,
    sm_count,
)
from .triton_window import DEFAULT, SHIFT_MASK, WindowConfig, _tokens, fit

__all__ = ["plan_window_bwd", "window_backward"]


@triton.jit
def _dq_keys(K, V, BIAS, b, h, wy, wx, offs_n, offs_m, m_ok, offs_d, d_ok, q, do, lse, delta,
             regq, skb, sky, skx, skh, skd, svb, svy, svx, svh, svd, Hp, Wp, shift, qk_scale,
             WIN: tl.constexpr, HAS_SHIFT: tl.constexpr, UPCAST: tl.constexpr,
             PREC: tl.constexpr):
    # dS of one query tile against one segment of the window's keys, and those keys.
    N = WIN * WIN
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
    mn_ok = m_ok[:, None] & n_ok[None, :]
    # Re-read per window (L2-resident) rather than held: registers matter more here.
    bias = tl.load(BIAS + h * N * N + offs_m[:, None] * N + offs_n[None, :], mask=mn_ok, other=0.0)
    s = _dot(q, tl.trans(k), UPCAST, PREC) * qk_scale + bias.to(tl.float32) * LOG2E
    if HAS_SHIFT:
        s += tl.where(regq[:, None] != regk[None, :], SHIFT_MASK * LOG2E, 0.0)
    p = tl.where(mn_ok, tl.exp2(s - lse[:, None]), 0.0)
    dp = _dot(do, tl.trans(v), UPCAST, PREC)
    # dS is the gradient of the natural-unit score (q·k·scale + bias + mask).
    return p * (dp - delta[:, None]), k


@triton.jit
def _win_bwd_dq_kernel(
    Q, K, V, BIAS, O, DO, LSE, DELTA, DQ, DBIAS_PART,
    sqb, sqy, sqx, sqh, sqd,
    skb, sky, skx, skh, skd,
    svb, svy, svx, svh, svd,
    sob, soy, sox, soh, sod,
    sdob, sdoy, sdox, sdoh, sdod,
    sdqb, sdqy, sdqx, sdqh, sdqd,
    Hp, Wp, nWx, nW, HEADS, shift, D, scale, TOTAL_W, NCHUNK,
    WIN: tl.constexpr, HAS_SHIFT: tl.constexpr, BIAS_GRAD: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_NA: tl.constexpr, BLOCK_NB: tl.constexpr,
    BLOCK_D: tl.constexpr, UPCAST: tl.constexpr, PREC: tl.constexpr,
):
    # One program: one head, one query tile, every key of the window at once, looping over the
    # windows of one chunk so dS can be summed into the bias gradient in registers. The N keys
    # are held as two power-of-two segments (BLOCK_NA + BLOCK_NB: 128 + 16 for N = 144) instead
    # of one padded to 256, so no register goes to padding.
    N = WIN * WIN
    NUM_M = (N + BLOCK_M - 1) // BLOCK_M
    pid = tl.program_id(0)
    mt = pid % NUM_M
    rest = pid // NUM_M
    h = rest % HEADS
    chunk = rest // HEADS

    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < D
    offs_m = mt * BLOCK_M + tl.arange(0, BLOCK_M)
    m_ok = offs_m < N
    md_ok = m_ok[:, None] & d_ok[None, :]
    offs_na = tl.arange(0, BLOCK_NA)
    offs_nb = BLOCK_NA + tl.arange(0, BLOCK_NB)
    qk_scale = scale * LOG2E
    dbias_a = tl.zeros([BLOCK_M, BLOCK_NA], tl.float32)
    dbias_b = tl.zeros([BLOCK_M, BLOCK_NB], tl.float32)

    for bw in range(chunk, TOTAL_W, NCHUNK):
        w = bw % nW
        b = (bw // nW).to(tl.int64)
        wy = w // nWx
        wx = w % nWx
        yq, xq, regq = _tokens(offs_m, wy, wx, Hp, Wp, shift, WIN, HAS_SHIFT)
        q = tl.load(Q + b * sqb + yq[:, None] * sqy + xq[:, None] * sqx + h * sqh
                    + offs_d[None, :] * sqd, mask=md_ok, other=0.0)
        do = tl.load(DO + b * sdob + yq[:, None] * sdoy + xq[:, None] * sdox + h * sdoh
                     + offs_d[None, :] * sdod, mask=md_ok, other=0.0)
        o = tl.load(O + b * sob + yq[:, None] * soy + xq[:, None] * sox + h * soh
                    + offs_d[None, :] * sod, mask=md_ok, other=0.0)
        if UPCAST:
            q = q.to(tl.float32)
            do = do.to(tl.float32)
        stat = ((b * Hp + yq) * Wp + xq) * HEADS + h
        lse = tl.load(LSE + stat, mask=m_ok, other=0.0)
        delta = tl.sum(do.to(tl.float32) * o.to(tl.float32), 1)
        tl.store(DELTA + stat, delta, mask=m_ok)

        ds, k = _dq_keys(K, V, BIAS, b, h, wy, wx, offs_na, offs_m, m_ok, offs_d, d_ok, q, do,
                         lse, delta, regq, skb, sky, skx, skh, skd, svb, svy, svx, svh, svd,
                         Hp, Wp, shift, qk_scale, WIN, HAS_SHIFT, UPCAST, PREC)
        dq = _dot(ds.to(k.dtype), k, UPCAST, PREC)
        if BIAS_GRAD:
            dbias_a += ds
        if BLOCK_NA < N:
            ds_b, k_b = _dq_keys(K, V, BIAS, b, h, wy, wx, offs_nb, offs_m, m_ok, offs_d, d_ok, q,
                                 do, lse, delta, regq, skb, sky, skx, skh, skd, svb, svy, svx,
                                 svh, svd, Hp, Wp, shift, qk_scale, WIN, HAS_SHIFT, UPCAST, PREC)
            dq += _dot(ds_b.to(k_b.dtype), k_b, UPCAST, PREC)
            if BIAS_GRAD:
                dbias_b += ds_b
        tl.store(DQ + b * sdqb + yq[:, None] * sdqy + xq[:, None] * sdqx + h * sdqh
                 + offs_d[None, :] * sdqd, (dq * scale).to(DQ.dtype.element_ty), mask=md_ok)

    if BIAS_GRAD:
        part = DBIAS_PART + (chunk * HEADS + h).to(tl.int64) * N * N + offs_m[:, None] * N
        tl.store(part + offs_na[None, :], dbias_a, mask=m_ok[:, None] & (offs_na[None, :] < N))
        if BLOCK_NA < N:
            tl.store(part + offs_nb[None, :], dbias_b,
                     mask=m_ok[:, None] & (offs_nb[None, :] < N))


@triton.jit
def _win_bwd_dkdv_kernel(
    Q, K, V, BIAS, DO, LSE, DELTA, DK, DV,
    sqb, sqy, sqx, sqh, sqd,
    skb, sky, skx, skh, skd,
    svb, svy, svx, svh, svd,
    sdob, sdoy, sdox, sdoh, sdod,
    sdkb, sdky, sdkx, sdkh, sdkd,
    sdvb, sdvy, sdvx, sdvh, sdvd,
    Hp, Wp, nWx, nW, HEADS, shift, D, scale,
    WIN: tl.constexpr, HAS_SHIFT: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    UPCAST: tl.constexpr, PREC: tl.constexpr,
):
    N = WIN * WIN
    NUM_N = (N + BLOCK_N - 1) // BLOCK_N
    pid = tl.program_id(0)
    nt = pid % NUM_N
    rest = pid // NUM_N
    h = rest % HEADS
    bw = rest // HEADS
    w = bw % nW
    b = (bw // nW).to(tl.int64)
    wy = w // nWx
    wx = w % nWx

    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < D
    offs_n = nt * BLOCK_N + tl.arange(0, BLOCK_N)
    n_ok = offs_n < N
    nd_ok = n_ok[:, None] & d_ok[None, :]
    yk, xk, regk = _tokens(offs_n, wy, wx, Hp, Wp, shift, WIN, HAS_SHIFT)
    k = tl.load(K + b * skb + yk[:, None] * sky + xk[:, None] * skx + h * skh
                + offs_d[None, :] * skd, mask=nd_ok, other=0.0)
    v = tl.load(V + b * svb + yk[:, None] * svy + xk[:, None] * svx + h * svh
                + offs_d[None, :] * svd, mask=nd_ok, other=0.0)
    if UPCAST:
        k = k.to(tl.float32)
        v = v.to(tl.float32)

    qk_scale = scale * LOG2E
    dk = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    for start_m in range(0, N, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        m_ok = offs_m < N
        md_ok = m_ok[:, None] & d_ok[None, :]
        mn_ok = m_ok[:, None] & n_ok[None, :]
        yq, xq, regq = _tokens(offs_m, wy, wx, Hp, Wp, shift, WIN, HAS_SHIFT)
        q = tl.load(Q + b * sqb + yq[:, None] * sqy + xq[:, None] * sqx + h * sqh
                    + offs_d[None, :] * sqd, mask=md_ok, other=0.0)
        do = tl.load(DO + b * sdob + yq[:, None] * sdoy + xq[:, None] * sdox + h * sdoh
                     + offs_d[None, :] * sdod, mask=md_ok, other=0.0)
        if UPCAST:
            q = q.to(tl.float32)
            do = do.to(tl.float32)
        stat = ((b * Hp + yq) * Wp + xq) * HEADS + h
        lse = tl.load(LSE + stat, mask=m_ok, other=0.0)
        delta = tl.load(DELTA + stat, mask=m_ok, other=0.0)
        bias = tl.load(BIAS + h * N * N + offs_m[:, None] * N + offs_n[None, :], mask=mn_ok,
                       other=0.0)
        s = _dot(q, tl.trans(k), UPCAST, PREC) * qk_scale + bias.to(tl.float32) * LOG2E
        if HAS_SHIFT:
            s += tl.where(regq[:, None] != regk[None, :], SHIFT_MASK * LOG2E, 0.0)
        p = tl.where(mn_ok, tl.exp2(s - lse[:, None]), 0.0)
        dv += _dot(tl.trans(p.to(do.dtype)), do, UPCAST, PREC)
        dp = _dot(do, tl.trans(v), UPCAST, PREC)
        ds = p * (dp - delta[:, None])
        dk += _dot(tl.trans(ds.to(q.dtype)), q, UPCAST, PREC)

    dk = dk * scale
    tl.store(DK + b * sdkb + yk[:, None] * sdky + xk[:, None] * sdkx + h * sdkh
             + offs_d[None, :] * sdkd, dk.to(DK.dtype.element_ty), mask=nd_ok)
    tl.store(DV + b * sdvb + yk[:, None] * sdvy + xk[:, None] * sdvx + h * sdvh
             + offs_d[None, :] * sdvd, dv.to(DV.dtype.element_ty), mask=nd_ok)




def n_chunks(cfg: WindowConfig, total_windows: int, per_chunk_programs: int,
             sms: int | None) -> int:
    if cfg.chunks is not None:
        return max(1, min(cfg.chunks, total_windows))
    # Fewer chunks mean a smaller partial-bias buffer.
    return chunks_for(per_chunk_programs, total_windows, sms)


def dq_tiles(cfg: WindowConfig, n: int):
    """Query tile and the two key segments of the dq kernel: the largest power of two ≤ N and
    the rest padded to a power of two (144 = 128 + 16)."""
    na = max(16, 1 << (int(n).bit_length() - 1))
    nb = npow2(n - na) if n > na else 16
    # Keep the [BLOCK_M, N] float32 tiles near 2048 elements (16 × 144 at N = 144).
    dq_bm = fit(cfg.dq_block_m or max(16, min(64, 2048 // (na + nb))), n)
    return dq_bm, na, nb


def plan_window_bwd(q, k, v, rb, o, do, lse, delta, dq, dk, dv, part, window: int, shift: int,
                    scale: float, cfg: WindowConfig, bias_grad: bool, chunks: int):
    """The two backward launches (dq/Δ/bias partials, then dk/dv)."""
    b, hp, wp, heads, d = q.shape
    n = window * window
    nwx, nw = wp // window, (hp // window) * (wp // window)
    total = b * nw
    prec = dot_precision(q.dtype)
    common = {"UPCAST": interpreting(), "PREC": prec, "num_stages": cfg.num_stages}
    bd = npow2(d)
    dq_bm, na, nb = dq_tiles(cfg, n)
    a = Launch(
        _win_bwd_dq_kernel, (triton.cdiv(n, dq_bm) * heads * chunks,),
        (q, k, v, rb, o, do, lse, delta, dq, part, *q.stride(), *k.stride(), *v.stride(),
         *o.stride(), *do.stride(), *dq.stride(), hp, wp, nwx, nw, heads, shift, d, float(scale),
         total, chunks),
        dict(WIN=window, HAS_SHIFT=shift > 0, BIAS_GRAD=bias_grad, BLOCK_M=dq_bm, BLOCK_NA=na,
             BLOCK_NB=nb, BLOCK_D=bd, num_warps=cfg.dq_num_warps, **common),
    )
    bm, bn = fit(fp32_tile(cfg.bwd_block_m, prec), n), fit(cfg.bwd_block_n, n)
    bkv = Launch(
        _win_bwd_dkdv_kernel, (triton.cdiv(n, bn) * total * heads,),
        (q, k, v, rb, do, lse, delta, dk, dv, *q.stride(), *k.stride(), *v.stride(), *do.stride(),
         *dk.stride(), *dv.stride(), hp, wp, nwx, nw, heads, shift, d, float(scale)),
        dict(WIN=window, HAS_SHIFT=shift > 0, BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=bd,
             num_warps=cfg.num_warps, **common),
    )
    return a, bkv


def window_backward(do, q, k, v, rel_bias, o, lse, window: int, shift: int, scale: float,
                    bias_grad: bool, cfg: WindowConfig = DEFAULT):
    """Run the backward kernels: ``(dq, dk, dv, drel_bias | None)``."""
    b, hp, wp, heads, _ = q.shape
    n = window * window
    rb = rel_bias.to(q.dtype).contiguous()
    total = b * (hp // window) * (wp // window)
    dq_bm = dq_tiles(cfg, n)[0]
    chunks = n_chunks(cfg, total, triton.cdiv(n, dq_bm) * heads, sm_count(q.device))
    dq = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    dk = torch.empty(k.shape, dtype=k.dtype, device=k.device)
    dv = torch.empty(v.shape, dtype=v.dtype, device=v.device)
    delta = torch.empty_like(lse)
    part = (torch.empty((chunks, heads, n, n), dtype=torch.float32, device=q.device)
            if bias_grad else lse)
    for launch in plan_window_bwd(q, k, v, rb, o, do, lse, delta, dq, dk, dv, part, window, shift,
                                  scale, cfg, bias_grad, chunks):
        launch()
    dbias = part.sum(0).to(rel_bias.dtype) if bias_grad else None
    return dq, dk, dv, dbias
