"""ELSA attention fused from the generator's logits, in the fused-neighbourhood-attention style.

``y[b,p,c] = Σ_j (mul[c,j]·softmax_j(logits[b,g(c),:,p]) + add[c,j]) · v[b,c,p + dil·δ_j]``,
written channels-last (``[B, H, W, C]``, the layout ELSA's output ``Linear`` reads).

Forward: one program owns a 2-D tile of ``block_h × block_w`` pixels and every channel of one
head. It walks the k² taps once with an online softmax (running max and sum, the accumulator
rescaled when the max moves), so the softmax of the logits lives in registers and no attention
map reaches HBM; only the log-sum-exp per (pixel, head) is written (float32, log2 units) for the
backward. The k² taps of an 8×8 tile read a 14×14 window of v at k = 7 (the tile and its halo
of ``k // 2 · dil`` pixels: 3.1× the tile, against 49× for the unfold formulation); Triton exposes
no explicit shared-memory staging, so that window is staged on chip by L1 after its first touch,
and the traffic to HBM is v, the logits and y once each.

Backward, two kernels:
- a full grid over (pixel tile, batch·head): ``dlogits = p ⊙ (dp − Σ_j p_j dp_j)`` with
  ``dp_j = Σ_c mul[c,j]·dy[c]·v[c, p+δ_j]`` (a first pass over the taps forms the row sum, a
  second writes ``dlogits``), and ``dv[q] = Σ_j w_j(q − δ_j)·dy[q − δ_j]``, a gather (no
  atomics) with the softmax recomputed from the saved log-sum-exp at the source pixel;
- the ghost-parameter gradients ``Σ_{b,p}`` in a separate reduction kernel (per-chunk partials
  summed afterwards: deterministic, and the main backward keeps a full grid and few registers).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .tiles import ElsaFusedTiles
from .triton_common import LOG2E, Launch, chunks_for, sm_count

__all__ = ["ElsaFusedTiles", "dv_like", "elsa_fused_backward", "elsa_fused_forward", "fused_out_dtype",
           "plan_fused_bwd", "plan_fused_fwd", "plan_fused_ghost"]


@triton.jit
def _tile(pid_t, NTW, H, W, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    ty = pid_t // NTW
    tx = pid_t % NTW
    i = tl.arange(0, BLOCK_H * BLOCK_W)
    py = ty * BLOCK_H + i // BLOCK_W
    px = tx * BLOCK_W + i % BLOCK_W
    return py, px, (py < H) & (px < W)


@triton.jit
def _fused_fwd_kernel(
    V, L, MUL, ADD, Y, LSE,
    svb, svc, svy, svx,
    slb, slg, slj, sly, slx,
    H, W, G, CPG, NTW, dil,
    KS: tl.constexpr, HAS_MUL: tl.constexpr, HAS_ADD: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
):
    pid_t = tl.program_id(0)
    bg = tl.program_id(1)
    g = bg % G
    b = (bg // G).to(tl.int64)
    py, px, p_ok = _tile(pid_t, NTW, H, W, BLOCK_H, BLOCK_W)
    offs_c = tl.arange(0, BLOCK_C)
    c_ok = offs_c < CPG
    ch = g * CPG + offs_c
    half = KS // 2
    C = G * CPG

    v_base = V + b * svb
    v_c = ch[:, None] * svc
    l_base = L + b * slb + g * slg + py * sly + px * slx
    m = tl.full([BLOCK_H * BLOCK_W], float("-inf"), tl.float32)
    s = tl.zeros([BLOCK_H * BLOCK_W], tl.float32)
    acc = tl.zeros([BLOCK_C, BLOCK_H * BLOCK_W], tl.float32)
    acc_add = tl.zeros([BLOCK_C, BLOCK_H * BLOCK_W], tl.float32)
    for j in range(KS * KS):
        jy = j // KS
        ny = py + (jy - half) * dil
        nx = px + (j - jy * KS - half) * dil
        inside = p_ok & (ny >= 0) & (ny < H) & (nx >= 0) & (nx < W)
        lj = tl.load(l_base + j * slj, mask=p_ok, other=0.0).to(tl.float32) * LOG2E
        m_new = tl.maximum(m, lj)
        alpha = tl.exp2(m - m_new)
        e = tl.exp2(lj - m_new)
        s = s * alpha + e
        vv = tl.load(v_base + (v_c + (ny * svy + nx * svx)[None, :]),
                     mask=c_ok[:, None] & inside[None, :], other=0.0).to(tl.float32)
        if HAS_MUL:
            mul = tl.load(MUL + ch * (KS * KS) + j, mask=c_ok, other=0.0).to(tl.float32)
            acc = acc * alpha[None, :] + (mul[:, None] * e[None, :]) * vv
        else:
            acc = acc * alpha[None, :] + e[None, :] * vv
        if HAS_ADD:
            add = tl.load(ADD + ch * (KS * KS) + j, mask=c_ok, other=0.0).to(tl.float32)
            acc_add += add[:, None] * vv
        m = m_new
    y = acc / s[None, :]
    if HAS_ADD:
        y += acc_add
    pix = py * W + px
    tl.store(Y + b * H * W * C + (pix[None, :] * C + ch[:, None]), y.to(Y.dtype.element_ty),
             mask=c_ok[:, None] & p_ok[None, :])
    tl.store(LSE + (b * G + g) * H * W + py * W + px, m + tl.log2(s), mask=p_ok)


@triton.jit
def _fused_bwd_kernel(
    V, L, MUL, ADD, DY, LSE, DV, DL,
    svb, svc, svy, svx,
    slb, slg, slj, sly, slx,
    sdb, sdy, sdx, sdc,
    sgb, sgc, sgy, sgx,
    H, W, G, CPG, NTW, dil,
    KS: tl.constexpr, HAS_MUL: tl.constexpr, HAS_ADD: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
):
    K2: tl.constexpr = KS * KS
    pid_t = tl.program_id(0)
    bg = tl.program_id(1)
    g = bg % G
    b = (bg // G).to(tl.int64)
    py, px, p_ok = _tile(pid_t, NTW, H, W, BLOCK_H, BLOCK_W)
    offs_c = tl.arange(0, BLOCK_C)
    c_ok = offs_c < CPG
    ch = g * CPG + offs_c
    half = KS // 2
    cp_ok = c_ok[:, None] & p_ok[None, :]

    v_base = V + b * svb
    v_c = ch[:, None] * svc
    dy_base = DY + b * sdb
    dy_c = ch[:, None] * sdc
    l_base = L + b * slb + g * slg
    lse_base = LSE + (b * G + g) * H * W
    dl_base = DL + (b * G + g) * K2 * H * W
    dy = tl.load(dy_base + (dy_c + (py * sdy + px * sdx)[None, :]), mask=cp_ok,
                 other=0.0).to(tl.float32)
    lse = tl.load(lse_base + py * W + px, mask=p_ok, other=0.0)

    # Pass 1: the softmax's row term Σ_j p_j·dp_j of this tile's own pixels.
    rowsum = tl.zeros([BLOCK_H * BLOCK_W], tl.float32)
    for j in range(K2):
        jy = j // KS
        ny = py + (jy - half) * dil
        nx = px + (j - jy * KS - half) * dil
        inside = p_ok & (ny >= 0) & (ny < H) & (nx >= 0) & (nx < W)
        vn = tl.load(v_base + (v_c + (ny * svy + nx * svx)[None, :]),
                     mask=c_ok[:, None] & inside[None, :], other=0.0).to(tl.float32)
        t = dy * vn
        if HAS_MUL:
            mul = tl.load(MUL + ch * K2 + j, mask=c_ok, other=0.0).to(tl.float32)
            t = t * mul[:, None]
        pj = tl.exp2(tl.load(l_base + j * slj + py * sly + px * slx, mask=p_ok,
                             other=0.0).to(tl.float32) * LOG2E - lse)
        rowsum += pj * tl.sum(t, 0)

    # Pass 2: dlogits of the own pixels, dv gathered from the pixels that read this one.
    dv = tl.zeros([BLOCK_C, BLOCK_H * BLOCK_W], tl.float32)
    for j in range(K2):
        jy = j // KS
        oy = (jy - half) * dil
        ox = (j - jy * KS - half) * dil
        if HAS_MUL:
            mul = tl.load(MUL + ch * K2 + j, mask=c_ok, other=0.0).to(tl.float32)
        ny = py + oy
        nx = px + ox
        inside = p_ok & (ny >= 0) & (ny < H) & (nx >= 0) & (nx < W)
        vn = tl.load(v_base + (v_c + (ny * svy + nx * svx)[None, :]),
                     mask=c_ok[:, None] & inside[None, :], other=0.0).to(tl.float32)
        t = dy * vn
        if HAS_MUL:
            t = t * mul[:, None]
        pj = tl.exp2(tl.load(l_base + j * slj + py * sly + px * slx, mask=p_ok,
                             other=0.0).to(tl.float32) * LOG2E - lse)
        dl = pj * (tl.sum(t, 0) - rowsum)
        tl.store(dl_base + j * H * W + py * W + px, dl.to(DL.dtype.element_ty), mask=p_ok)

        sy = py - oy
        sx = px - ox
        src = p_ok & (sy >= 0) & (sy < H) & (sx >= 0) & (sx < W)
        ls = tl.load(l_base + j * slj + sy * sly + sx * slx, mask=src, other=0.0).to(tl.float32)
        lse_s = tl.load(lse_base + sy * W + sx, mask=src, other=0.0)
        ps = tl.where(src, tl.exp2(ls * LOG2E - lse_s), 0.0)
        wgt = ps[None, :]
        if HAS_MUL:
            wgt = wgt * mul[:, None]
        if HAS_ADD:
            add = tl.load(ADD + ch * K2 + j, mask=c_ok, other=0.0).to(tl.float32)
            wgt = wgt + add[:, None]
        dys = tl.load(dy_base + (dy_c + (sy * sdy + sx * sdx)[None, :]),
                      mask=c_ok[:, None] & src[None, :], other=0.0).to(tl.float32)
        dv += wgt * dys
    tl.store(DV + b * sgb + (ch[:, None] * sgc + (py * sgy + px * sgx)[None, :]),
             dv.to(DV.dtype.element_ty), mask=cp_ok)


@triton.jit
def _fused_ghost_kernel(
    V, L, DY, LSE, PMUL, PADD,
    svb, svc, svy, svx,
    slb, slg, slj, sly, slx,
    sdb, sdy, sdx, sdc,
    H, W, G, CPG, NTW, NUM_T, NCHUNK, dil,
    KS: tl.constexpr, MUL_GRAD: tl.constexpr, ADD_GRAD: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr, BLOCK_K2: tl.constexpr,
):
    K2: tl.constexpr = KS * KS
    chunk = tl.program_id(0)
    bg = tl.program_id(1)
    g = bg % G
    b = (bg // G).to(tl.int64)
    offs_c = tl.arange(0, BLOCK_C)
    c_ok = offs_c < CPG
    ch = g * CPG + offs_c
    half = KS // 2
    cols = tl.arange(0, BLOCK_K2)
    v_base = V + b * svb
    v_c = ch[:, None] * svc
    dy_base = DY + b * sdb
    dy_c = ch[:, None] * sdc
    l_base = L + b * slb + g * slg
    lse_base = LSE + (b * G + g) * H * W
    gmul = tl.zeros([BLOCK_C, BLOCK_K2], tl.float32)
    gadd = tl.zeros([BLOCK_C, BLOCK_K2], tl.float32)
    for pid_t in range(chunk, NUM_T, NCHUNK):
        py, px, p_ok = _tile(pid_t, NTW, H, W, BLOCK_H, BLOCK_W)
        dy = tl.load(dy_base + (dy_c + (py * sdy + px * sdx)[None, :]),
                     mask=c_ok[:, None] & p_ok[None, :], other=0.0).to(tl.float32)
        lse = tl.load(lse_base + py * W + px, mask=p_ok, other=0.0)
        for j in range(K2):
            jy = j // KS
            ny = py + (jy - half) * dil
            nx = px + (j - jy * KS - half) * dil
            inside = p_ok & (ny >= 0) & (ny < H) & (nx >= 0) & (nx < W)
            vn = tl.load(v_base + (v_c + (ny * svy + nx * svx)[None, :]),
                         mask=c_ok[:, None] & inside[None, :], other=0.0).to(tl.float32)
            t = dy * vn
            if MUL_GRAD:
                pj = tl.exp2(tl.load(l_base + j * slj + py * sly + px * slx, mask=p_ok,
                                     other=0.0).to(tl.float32) * LOG2E - lse)
                gmul += tl.where(cols[None, :] == j, tl.sum(t * pj[None, :], 1)[:, None], 0.0)
            if ADD_GRAD:
                gadd += tl.where(cols[None, :] == j, tl.sum(t, 1)[:, None], 0.0)
    C = G * CPG
    part = (b * NCHUNK + chunk) * C * K2 + ch[:, None] * K2 + cols[None, :]
    part_ok = c_ok[:, None] & (cols[None, :] < K2)
    if MUL_GRAD:
        tl.store(PMUL + part, gmul, mask=part_ok)
    if ADD_GRAD:
        tl.store(PADD + part, gadd, mask=part_ok)


DEFAULT = ElsaFusedTiles()


def _tiles(cfg: ElsaFusedTiles, h: int, w: int) -> tuple[int, int]:
    bh = min(cfg.block_h, triton.next_power_of_2(h))
    bw = min(cfg.block_w, triton.next_power_of_2(w))
    return bh, bw


def dv_like(v: torch.Tensor) -> torch.Tensor:
    """An empty gradient for ``v``, dense in v's order (v is often a channel slice of a
    channels-last conv output, whose gradient then flows back channels-last without a copy)."""
    fmt = torch.channels_last if v.stride(1) == 1 and v.shape[1] > 1 else torch.contiguous_format
    return torch.empty_like(v, memory_format=fmt)


def fused_out_dtype(v: torch.Tensor, logits: torch.Tensor) -> torch.dtype:
    """``y``'s dtype: v's and the logits' promoted (the ghost parameters never widen it, so a
    bfloat16 v and bfloat16 logits give bfloat16 y even with float32 ghost parameters)."""
    return torch.promote_types(v.dtype, logits.dtype)


def plan_fused_fwd(v, logits, mul, add, y, lse, kernel_size: int, dilation: int,
                   cfg: ElsaFusedTiles, has_mul: bool, has_add: bool) -> Launch:
    """The forward launch; ``mul``/``add`` are any tensor when ``has_mul``/``has_add`` is false."""
    b, c, h, w = v.shape
    g = logits.shape[1]
    bh, bw = _tiles(cfg, h, w)
    ntw = triton.cdiv(w, bw)
    return Launch(
        _fused_fwd_kernel, (triton.cdiv(h, bh) * ntw, b * g),
        (v, logits, mul, add, y, lse, *v.stride(), *logits.stride(), h, w, g, c // g, ntw,
         dilation),
        {"KS": kernel_size, "HAS_MUL": has_mul, "HAS_ADD": has_add,
         "BLOCK_C": triton.next_power_of_2(c // g), "BLOCK_H": bh, "BLOCK_W": bw,
         "num_warps": cfg.num_warps, "num_stages": cfg.num_stages},
    )


def plan_fused_bwd(v, logits, mul, add, dy, lse, dv, dlogits, kernel_size: int, dilation: int,
                   cfg: ElsaFusedTiles, has_mul: bool, has_add: bool) -> Launch:
    """``dy`` is ``[B, H, W, C]``, ``dv`` ``[B, C, H, W]`` (any strides each); ``dlogits`` is
    contiguous ``[B, G, k², H, W]``."""
    b, c, h, w = v.shape
    g = logits.shape[1]
    bh, bw = _tiles(cfg, h, w)
    ntw = triton.cdiv(w, bw)
    return Launch(
        _fused_bwd_kernel, (triton.cdiv(h, bh) * ntw, b * g),
        (v, logits, mul, add, dy, lse, dv, dlogits, *v.stride(), *logits.stride(), *dy.stride(),
         *dv.stride(), h, w, g, c // g, ntw, dilation),
        {"KS": kernel_size, "HAS_MUL": has_mul, "HAS_ADD": has_add,
         "BLOCK_C": triton.next_power_of_2(c // g), "BLOCK_H": bh, "BLOCK_W": bw,
         "num_warps": cfg.bwd_num_warps, "num_stages": cfg.num_stages},
    )


def ghost_chunks(cfg: ElsaFusedTiles, num_t: int, bg: int, sms: int | None) -> int:
    if cfg.chunks is not None:
        return max(1, min(cfg.chunks, num_t))
    return chunks_for(bg, num_t, sms)


def plan_fused_ghost(v, logits, dy, lse, pmul, padd, kernel_size: int, dilation: int,
                     cfg: ElsaFusedTiles, mul_grad: bool, add_grad: bool, chunks: int) -> Launch:
    b, c, h, w = v.shape
    g = logits.shape[1]
    bh, bw = _tiles(cfg, h, w)
    ntw = triton.cdiv(w, bw)
    num_t = triton.cdiv(h, bh) * ntw
    return Launch(
        _fused_ghost_kernel, (chunks, b * g),
        (v, logits, dy, lse, pmul, padd, *v.stride(), *logits.stride(), *dy.stride(),
         h, w, g, c // g, ntw, num_t, chunks, dilation),
        {"KS": kernel_size, "MUL_GRAD": mul_grad, "ADD_GRAD": add_grad,
         "BLOCK_C": triton.next_power_of_2(c // g), "BLOCK_H": bh, "BLOCK_W": bw,
         "BLOCK_K2": triton.next_power_of_2(kernel_size * kernel_size),
         "num_warps": cfg.bwd_num_warps, "num_stages": cfg.num_stages},
    )


def elsa_fused_forward(v, logits, ghost_mul, ghost_add, kernel_size: int, dilation: int,
                       cfg: ElsaFusedTiles = DEFAULT):
    """``(y [B, H, W, C] contiguous, lse [B, G, H, W] float32 in log2 units)``."""
    b, c, h, w = v.shape
    g = logits.shape[1]
    y = torch.empty((b, h, w, c), dtype=fused_out_dtype(v, logits), device=v.device)
    lse = torch.empty((b, g, h, w), dtype=torch.float32, device=v.device)
    mul = ghost_mul.contiguous() if ghost_mul is not None else v
    add = ghost_add.contiguous() if ghost_add is not None else v
    plan_fused_fwd(v, logits, mul, add, y, lse, kernel_size, dilation, cfg,
                   ghost_mul is not None, ghost_add is not None)()
    return y, lse


def elsa_fused_backward(dy, v, logits, ghost_mul, ghost_add, lse, kernel_size: int,
                        dilation: int, mul_grad: bool, add_grad: bool,
                        cfg: ElsaFusedTiles = DEFAULT):
    """``(dv [B, C, H, W] in v's memory format, dlogits [B, G, k², H, W] contiguous,
    dghost_mul | None, dghost_add | None)``."""
    b, c, h, w = v.shape
    g = logits.shape[1]
    k2 = kernel_size * kernel_size
    has_mul, has_add = ghost_mul is not None, ghost_add is not None
    mul_grad, add_grad = mul_grad and has_mul, add_grad and has_add
    mul = ghost_mul.contiguous() if has_mul else v
    add = ghost_add.contiguous() if has_add else v
    dv = dv_like(v)
    dl = torch.empty((b, g, k2, h, w), dtype=logits.dtype, device=v.device)
    plan_fused_bwd(v, logits, mul, add, dy, lse, dv, dl, kernel_size, dilation, cfg,
                   has_mul, has_add)()
    dmul = dadd = None
    if mul_grad or add_grad:
        bh, bw = _tiles(cfg, h, w)
        num_t = triton.cdiv(h, bh) * triton.cdiv(w, bw)
        chunks = ghost_chunks(cfg, num_t, b * g, sm_count(v.device))
        f32 = {"dtype": torch.float32, "device": v.device}
        pmul = torch.empty((b * chunks, c, k2), **f32) if mul_grad else lse
        padd = torch.empty((b * chunks, c, k2), **f32) if add_grad else lse
        plan_fused_ghost(v, logits, dy, lse, pmul, padd, kernel_size, dilation, cfg,
                         mul_grad, add_grad, chunks)()
        dmul = pmul.sum(0).to(ghost_mul.dtype) if mul_grad else None
        dadd = padd.sum(0).to(ghost_add.dtype) if add_grad else None
    return dv, dl, dmul, dadd
