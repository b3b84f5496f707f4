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
kernel B (per window × head × key tile) produces dk and dv.
"""

from __future__ import annotations

import math
import os

import torch
import triton
import triton.language as tl

__all__ = ["WindowConfig", "window_attention"]

# Scores are kept in log2 units (exp2 is the native instruction): natural-unit terms × LOG2E.
LOG2E = tl.constexpr(1.4426950408889634)
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
def _dot(a, b, UPCAST: tl.constexpr, PREC: tl.constexpr):
    # The interpreter multiplies raw bf16 bit patterns in tl.dot, so it gets float32 operands.
    if UPCAST:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    else:
        return tl.dot(a, b, input_precision=PREC)


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
    BLOCK_M: tl.constexpr, BLOCK_NP: tl.constexpr, BLOCK_D: tl.constexpr,
    UPCAST: tl.constexpr, PREC: tl.constexpr,
):
    # One program: one head, one query tile, every key of the window at once (BLOCK_NP ≥ N),
    # looping over the windows of one chunk so dS can be summed into the bias gradient in
    # registers.
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
    offs_n = tl.arange(0, BLOCK_NP)
    n_ok = offs_n < N
    mn_ok = m_ok[:, None] & n_ok[None, :]
    md_ok = m_ok[:, None] & d_ok[None, :]
    kv_mask = n_ok[:, None] & d_ok[None, :]

    # The bias tile is the same for every window of this head.
    bias = tl.load(BIAS + h * N * N + offs_m[:, None] * N + offs_n[None, :], mask=mn_ok, other=0.0)
    bias2 = bias.to(tl.float32) * LOG2E
    qk_scale = scale * LOG2E
    dbias = tl.zeros([BLOCK_M, BLOCK_NP], tl.float32)

    for bw in range(chunk, TOTAL_W, NCHUNK):
        w = bw % nW
        b = (bw // nW).to(tl.int64)
        wy = w // nWx
        wx = w % nWx
        yq, xq, regq = _tokens(offs_m, wy, wx, Hp, Wp, shift, WIN, HAS_SHIFT)
        yk, xk, regk = _tokens(offs_n, wy, wx, Hp, Wp, shift, WIN, HAS_SHIFT)
        q = tl.load(Q + b * sqb + yq[:, None] * sqy + xq[:, None] * sqx + h * sqh
                    + offs_d[None, :] * sqd, mask=md_ok, other=0.0)
        do = tl.load(DO + b * sdob + yq[:, None] * sdoy + xq[:, None] * sdox + h * sdoh
                     + offs_d[None, :] * sdod, mask=md_ok, other=0.0)
        o = tl.load(O + b * sob + yq[:, None] * soy + xq[:, None] * sox + h * soh
                    + offs_d[None, :] * sod, mask=md_ok, other=0.0)
        k = tl.load(K + b * skb + yk[:, None] * sky + xk[:, None] * skx + h * skh
                    + offs_d[None, :] * skd, mask=kv_mask, other=0.0)
        v = tl.load(V + b * svb + yk[:, None] * svy + xk[:, None] * svx + h * svh
                    + offs_d[None, :] * svd, mask=kv_mask, other=0.0)
        if UPCAST:
            q = q.to(tl.float32)
            do = do.to(tl.float32)
            k = k.to(tl.float32)
            v = v.to(tl.float32)
        stat = ((b * Hp + yq) * Wp + xq) * HEADS + h
        lse = tl.load(LSE + stat, mask=m_ok, other=0.0)
        delta = tl.sum(do.to(tl.float32) * o.to(tl.float32), 1)
        tl.store(DELTA + stat, delta, mask=m_ok)

        s = _dot(q, tl.trans(k), UPCAST, PREC) * qk_scale + bias2
        if HAS_SHIFT:
            s += tl.where(regq[:, None] != regk[None, :], SHIFT_MASK * LOG2E, 0.0)
        p = tl.where(mn_ok, tl.exp2(s - lse[:, None]), 0.0)
        dp = _dot(do, tl.trans(v), UPCAST, PREC)
        # dS is the gradient of the natural-unit score (q·k·scale + bias + mask).
        ds = p * (dp - delta[:, None])
        dq = _dot(ds.to(k.dtype), k, UPCAST, PREC) * scale
        tl.store(DQ + b * sdqb + yq[:, None] * sdqy + xq[:, None] * sdqx + h * sdqh
                 + offs_d[None, :] * sdqd, dq.to(DQ.dtype.element_ty), mask=md_ok)
        if BIAS_GRAD:
            dbias += ds

    if BIAS_GRAD:
        part = DBIAS_PART + (chunk * HEADS + h).to(tl.int64) * N * N
        tl.store(part + offs_m[:, None] * N + offs_n[None, :], dbias, mask=mn_ok)


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


# ----------------------------------------------------------------------------- launch logic


def interpreting() -> bool:
    """Whether Triton runs kernels through its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "yes", "on")


def _npow2(n: int, lo: int = 16) -> int:
    return max(lo, triton.next_power_of_2(int(n)))


class WindowConfig:
    """Tile shapes of the window-attention kernels (all powers of two, ≥ 16 for ``tl.dot``).

    Defaults for N = 144 (12² tokens), d = 32: the forward uses 64 queries × 32 keys
    (3 query tiles = 75 % useful rows, 5 key steps = 90 % useful columns); the dq/bias kernel
    holds a whole padded key row (256) so it uses 16-query tiles (9 tiles, no row waste) to keep
    its [16, 256] float32 tiles in registers; the dk/dv kernel uses 32 keys × 64 queries.
    """

    def __init__(self, block_m: int = 64, block_n: int = 32, bwd_block_m: int = 64,
                 bwd_block_n: int = 32, dq_block_m: int | None = None, chunks: int | None = None,
                 num_warps: int = 4, num_stages: int = 2):
        self.block_m = block_m
        self.block_n = block_n
        self.bwd_block_m = bwd_block_m
        self.bwd_block_n = bwd_block_n
        self.dq_block_m = dq_block_m
        self.chunks = chunks
        self.num_warps = num_warps
        self.num_stages = num_stages

    def __repr__(self) -> str:
        return f"WindowConfig({self.__dict__})"


def _fit(block: int, n: int) -> int:
    # Never use a tile larger than the padded token count (tiny windows in tests).
    return max(16, min(block, _npow2(n)))


def _dot_precision(dtype: torch.dtype) -> str:
    # float32 inputs follow torch's matmul setting, so "fp32" means IEEE unless TF32 is allowed.
    if dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32:
        return "ieee"
    return "tf32"


def _strides(t: torch.Tensor):
    return tuple(t.stride())


def _check_device(*tensors: torch.Tensor) -> None:
    if not interpreting() and not all(t.is_cuda for t in tensors):
        raise RuntimeError(
            "Triton kernels need CUDA tensors; on CPU set TRITON_INTERPRET=1 before importing "
            "rrsis.kernels.triton_ops (the interpreter), or use RRSIS_KERNELS=torch"
        )


def _common_dtype(*tensors: torch.Tensor):
    """Cast matmul operands to one dtype: autocast's when it is on (as the reference's matmuls
    would be), else the promoted dtype."""
    dev = tensors[0].device.type
    if torch.is_autocast_enabled(dev):
        dtype = torch.get_autocast_dtype(dev)
    else:
        dtype = tensors[0].dtype
        for t in tensors[1:]:
            dtype = torch.promote_types(dtype, t.dtype)
    return [t if t.dtype == dtype else t.to(dtype) for t in tensors]


def _n_chunks(cfg: WindowConfig, total_windows: int, per_chunk_programs: int, device) -> int:
    if cfg.chunks is not None:
        return max(1, min(cfg.chunks, total_windows))
    if interpreting() or device.type != "cuda":
        # Two chunks exercise both the in-register window loop and the cross-chunk sum.
        return min(2, total_windows)
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    # About four resident programs per SM; fewer chunks mean a smaller partial-bias buffer.
    return max(1, min(total_windows, math.ceil(4 * sms / max(1, per_chunk_programs))))


class _WindowAttentionFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, rel_bias, window, shift, scale, cfg):
        b, hp, wp, heads, d = q.shape
        n = window * window
        rb = rel_bias.detach().to(q.dtype).contiguous()
        o = torch.empty(q.shape, dtype=q.dtype, device=q.device)
        lse = torch.empty((b, hp, wp, heads), dtype=torch.float32, device=q.device)
        bm = _fit(cfg.block_m, n)
        bn = _fit(cfg.block_n, n)
        nwx, nw = wp // window, (hp // window) * (wp // window)
        upcast = interpreting()
        grid = (triton.cdiv(n, bm) * b * nw * heads,)
        _win_fwd_kernel[grid](
            q, k, v, rb, o, lse,
            *_strides(q), *_strides(k), *_strides(v), *_strides(o),
            hp, wp, nwx, nw, heads, shift, d, float(scale),
            WIN=window, HAS_SHIFT=shift > 0, STORE_LSE=True,
            BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=_npow2(d), UPCAST=upcast,
            PREC=_dot_precision(q.dtype), num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )
        ctx.save_for_backward(q, k, v, rb, o, lse)
        ctx.meta = (window, shift, float(scale), cfg, rel_bias.dtype)
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, rb, o, lse = ctx.saved_tensors
        window, shift, scale, cfg, bias_dtype = ctx.meta
        b, hp, wp, heads, d = q.shape
        n = window * window
        nwx, nw = wp // window, (hp // window) * (wp // window)
        total = b * nw
        upcast = interpreting()
        prec = _dot_precision(q.dtype)
        bd = _npow2(d)
        bnp = _npow2(n)
        # Keep the dq kernel's [BLOCK_M, BLOCK_NP] float32 tiles near 4096 elements.
        dq_bm = cfg.dq_block_m or max(16, min(64, 4096 // bnp))
        dq_bm = _fit(dq_bm, n)
        num_m = triton.cdiv(n, dq_bm)
        bias_grad = ctx.needs_input_grad[3]
        chunks = _n_chunks(cfg, total, num_m * heads, q.device)

        dq = torch.empty(q.shape, dtype=q.dtype, device=q.device)
        dk = torch.empty(k.shape, dtype=k.dtype, device=k.device)
        dv = torch.empty(v.shape, dtype=v.dtype, device=v.device)
        delta = torch.empty_like(lse)
        part = (torch.empty((chunks, heads, n, n), dtype=torch.float32, device=q.device)
                if bias_grad else lse)
        _win_bwd_dq_kernel[(num_m * heads * chunks,)](
            q, k, v, rb, o, do, lse, delta, dq, part,
            *_strides(q), *_strides(k), *_strides(v), *_strides(o), *_strides(do), *_strides(dq),
            hp, wp, nwx, nw, heads, shift, d, scale, total, chunks,
            WIN=window, HAS_SHIFT=shift > 0, BIAS_GRAD=bias_grad,
            BLOCK_M=dq_bm, BLOCK_NP=bnp, BLOCK_D=bd, UPCAST=upcast, PREC=prec,
            num_warps=max(cfg.num_warps, 4 if bnp <= 64 else 8), num_stages=cfg.num_stages,
        )
        bm = _fit(cfg.bwd_block_m, n)
        bn = _fit(cfg.bwd_block_n, n)
        _win_bwd_dkdv_kernel[(triton.cdiv(n, bn) * total * heads,)](
            q, k, v, rb, do, lse, delta, dk, dv,
            *_strides(q), *_strides(k), *_strides(v), *_strides(do), *_strides(dk), *_strides(dv),
            hp, wp, nwx, nw, heads, shift, d, scale,
            WIN=window, HAS_SHIFT=shift > 0,
            BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=bd, UPCAST=upcast, PREC=prec,
            num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )
        dbias = part.sum(0).to(bias_dtype) if bias_grad else None
        return dq, dk, dv, dbias, None, None, None, None


_DEFAULT = WindowConfig()


def window_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    rel_bias: torch.Tensor,
    window: int,
    shift: int,
    scale: float,
    config: WindowConfig | None = None,
) -> torch.Tensor:
    """Fused (shifted-)window attention; same contract as :func:`reference.window_attention`.

    Args:
        q, k, v: ``[B, Hp, Wp, heads, d]``, any strides (views are read in place); under
            autocast they are cast to its dtype, else to their promoted dtype.
        rel_bias: ``[heads, N, N]``, ``N = window²``; cast to ``q.dtype`` like the reference.
        window: window side; ``Hp`` and ``Wp`` must be multiples of it.
        shift: cyclic shift (0 for W-MSA); cross-region pairs get Swin's additive −100.
        scale: score multiplier.
        config: tile shapes (:class:`WindowConfig`); the defaults suit 12×12 windows.

    Returns:
        ``[B, Hp, Wp, heads, d]`` (contiguous), dtype of ``q``.
    """
    if q.dim() != 5 or k.shape != q.shape or v.shape != q.shape:
        raise ValueError(f"expected q, k, v [B,Hp,Wp,heads,d] of one shape, got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    hp, wp, heads = q.shape[1:4]
    if hp % window or wp % window:
        raise ValueError(f"map {hp}x{wp} is not a multiple of window {window}")
    n = window * window
    if tuple(rel_bias.shape) != (heads, n, n):
        raise ValueError(f"rel_bias {tuple(rel_bias.shape)} is not [heads={heads}, {n}, {n}]")
    if shift < 0:
        raise ValueError(f"shift must be ≥ 0, got {shift}")
    _check_device(q, k, v, rel_bias)
    q, k, v = _common_dtype(q, k, v)
    return _WindowAttentionFn.apply(q, k, v, rel_bias, window, int(shift), scale,
                                    config or _DEFAULT)
