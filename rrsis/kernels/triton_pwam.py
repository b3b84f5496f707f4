"""Fused PWAM pixel→word attention in Triton with LAVT's word masking: forward and backward.

LAVT multiplies keys and values by the word mask and adds ``1e4·mask − 1e4`` to the scores;
the kernels do exactly that in float32. With at most a few dozen words every key fits in one
tile, so the softmax is exact in one pass (no online rescaling) and only the output and a
float32 log-sum-exp per pixel reach HBM.

Backward: one kernel per (batch·head, chunk of pixel tiles) recomputes the probabilities,
writes dq, and sums ``dSᵀq`` and ``Pᵀ dO`` over its pixels in registers (one partial per chunk,
summed afterwards: no atomics). ``Δ = rowsum(dO·O)`` equals ``rowsum(P ∘ dP)`` when one tile
holds every key, so O is not re-read.
"""

from __future__ import annotations

import dataclasses

import torch
import triton
import triton.language as tl

from .tiles import TileConfig
from .triton_common import (
    Launch,
    _dot,
    chunks_for,
    dot_precision,
    interpreting,
    npow2,
    sm_count,
)

__all__ = ["PwamConfig", "plan_pwam_bwd", "plan_pwam_fwd", "pwam_backward", "pwam_forward"]

# LAVT's additive word mask is ``WORD_MASK·mask − WORD_MASK`` (reference.WORD_MASK_VALUE).
WORD_MASK = tl.constexpr(10000.0)


@triton.jit
def _masked_words(K, base, offs_l, l_ok, m, offs_d, D, sl, sd):
    # One d-chunk of K·mask [BLOCK_L, BLOCK_D], rounded to the input dtype like the reference.
    x = tl.load(K + base + offs_l[:, None] * sl + offs_d[None, :] * sd,
                mask=l_ok[:, None] & (offs_d[None, :] < D), other=0.0)
    return (x.to(tl.float32) * m[:, None]).to(x.dtype)


@triton.jit
def _pwam_scores(Q, K, q_base, k_base, offs_m, m_ok, offs_l, l_ok, m,
                 sqn, sqd, skl, skd, D, scale,
                 BLOCK_M: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_D: tl.constexpr,
                 UPCAST: tl.constexpr, PREC: tl.constexpr):
    # Natural-unit scores q·(K·mask)ᵀ·scale + (1e4·mask − 1e4), −inf on padded key slots;
    # d is walked in BLOCK_D chunks so wide single-head PWAM (d = C up to 1024) fits on chip.
    s = tl.zeros([BLOCK_M, BLOCK_L], tl.float32)
    for d0 in range(0, D, BLOCK_D):
        offs_d = d0 + tl.arange(0, BLOCK_D)
        q = tl.load(Q + q_base + offs_m[:, None] * sqn + offs_d[None, :] * sqd,
                    mask=m_ok[:, None] & (offs_d[None, :] < D), other=0.0)
        km = _masked_words(K, k_base, offs_l, l_ok, m, offs_d, D, skl, skd)
        s += _dot(q, tl.trans(km), UPCAST, PREC)
    s = s * scale + (m * WORD_MASK - WORD_MASK)[None, :]
    return tl.where(l_ok[None, :], s, float("-inf"))


@triton.jit
def _pwam_fwd_kernel(
    Q, K, V, MASK, O, LSE,
    sqb, sqh, sqn, sqd,
    skb, skh, skl, skd,
    svb, svh, svl, svd,
    smb, sml,
    HEADS, NQ, L, D, DV, scale,
    STORE_LSE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
    UPCAST: tl.constexpr, PREC: tl.constexpr,
):
    NUM_M = tl.cdiv(NQ, BLOCK_M)
    pid = tl.program_id(0)
    mt = pid % NUM_M
    bh = pid // NUM_M
    h = bh % HEADS
    b = (bh // HEADS).to(tl.int64)

    offs_m = mt * BLOCK_M + tl.arange(0, BLOCK_M)
    m_ok = offs_m < NQ
    offs_l = tl.arange(0, BLOCK_L)
    l_ok = offs_l < L
    m = tl.load(MASK + b * smb + offs_l * sml, mask=l_ok, other=0.0)
    q_base = b * sqb + h * sqh
    k_base = b * skb + h * skh
    v_base = b * svb + h * svh

    # Every word fits in one tile, so the softmax is exact in one pass.
    s = _pwam_scores(Q, K, q_base, k_base, offs_m, m_ok, offs_l, l_ok, m, sqn, sqd, skl, skd,
                     D, scale, BLOCK_M, BLOCK_L, BLOCK_D, UPCAST, PREC)
    mx = tl.max(s, 1)
    p = tl.exp(s - mx[:, None])
    den = tl.sum(p, 1)
    p = p / den[:, None]
    o_row = O + ((b * HEADS + h) * NQ + offs_m[:, None]) * DV
    for e0 in range(0, DV, BLOCK_DV):
        offs_e = e0 + tl.arange(0, BLOCK_DV)
        vm = _masked_words(V, v_base, offs_l, l_ok, m, offs_e, DV, svl, svd)
        o = _dot(p.to(vm.dtype), vm, UPCAST, PREC)
        tl.store(o_row + offs_e[None, :], o.to(O.dtype.element_ty),
                 mask=m_ok[:, None] & (offs_e[None, :] < DV))
    if STORE_LSE:
        tl.store(LSE + (b * HEADS + h) * NQ + offs_m, mx + tl.log(den), mask=m_ok)


@triton.jit
def _pwam_bwd_kernel(
    Q, K, V, MASK, DO, LSE, DQ, PK, PV,
    sqb, sqh, sqn, sqd,
    skb, skh, skl, skd,
    svb, svh, svl, svd,
    smb, sml,
    sdob, sdoh, sdon, sdod,
    HEADS, NQ, L, D, DV, scale, NCHUNK,
    BLOCK_M: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
    SINGLE: tl.constexpr, UPCAST: tl.constexpr, PREC: tl.constexpr,
):
    # SINGLE: d and dv each fit one chunk, so the word-gradient sums stay in registers;
    # otherwise each chunk's sum is read-modified-written in this program's own slice of the
    # (zero-initialised, L2-resident) partial buffer.
    NUM_M = tl.cdiv(NQ, BLOCK_M)
    pid = tl.program_id(0)
    chunk = pid % NCHUNK
    bh = pid // NCHUNK
    h = bh % HEADS
    b = (bh // HEADS).to(tl.int64)

    offs_l = tl.arange(0, BLOCK_L)
    l_ok = offs_l < L
    m = tl.load(MASK + b * smb + offs_l * sml, mask=l_ok, other=0.0)
    q_base = b * sqb + h * sqh
    k_base = b * skb + h * skh
    v_base = b * svb + h * svh
    do_base = b * sdob + h * sdoh
    row = (bh * NCHUNK + chunk).to(tl.int64) * BLOCK_L
    pk_rows = PK + (row + offs_l[:, None]) * D
    pv_rows = PV + (row + offs_l[:, None]) * DV

    dkm = tl.zeros([BLOCK_L, BLOCK_D], tl.float32)
    dvm = tl.zeros([BLOCK_L, BLOCK_DV], tl.float32)
    for mt in range(chunk, NUM_M, NCHUNK):
        offs_m = mt * BLOCK_M + tl.arange(0, BLOCK_M)
        m_ok = offs_m < NQ
        s = _pwam_scores(Q, K, q_base, k_base, offs_m, m_ok, offs_l, l_ok, m, sqn, sqd, skl,
                         skd, D, scale, BLOCK_M, BLOCK_L, BLOCK_D, UPCAST, PREC)
        lse = tl.load(LSE + (b * HEADS + h) * NQ + offs_m, mask=m_ok, other=0.0)
        p = tl.where(m_ok[:, None] & l_ok[None, :], tl.exp(s - lse[:, None]), 0.0)
        dp = tl.zeros([BLOCK_M, BLOCK_L], tl.float32)
        for e0 in range(0, DV, BLOCK_DV):
            offs_e = e0 + tl.arange(0, BLOCK_DV)
            do = tl.load(DO + do_base + offs_m[:, None] * sdon + offs_e[None, :] * sdod,
                         mask=m_ok[:, None] & (offs_e[None, :] < DV), other=0.0)
            vm = _masked_words(V, v_base, offs_l, l_ok, m, offs_e, DV, svl, svd)
            dp += _dot(do, tl.trans(vm), UPCAST, PREC)
            gv = _dot(tl.trans(p.to(do.dtype)), do, UPCAST, PREC)
            if SINGLE:
                dvm += gv
            else:
                e_ok = l_ok[:, None] & (offs_e[None, :] < DV)
                acc_v = tl.load(pv_rows + offs_e[None, :], mask=e_ok, other=0.0)
                tl.store(pv_rows + offs_e[None, :], acc_v + gv, mask=e_ok)
        # With every key in one tile, rowsum(P ∘ dP) equals rowsum(dO ∘ O): O is not needed.
        delta = tl.sum(p * dp, 1)
        ds = p * (dp - delta[:, None])
        for d0 in range(0, D, BLOCK_D):
            offs_d = d0 + tl.arange(0, BLOCK_D)
            md_ok = m_ok[:, None] & (offs_d[None, :] < D)
            km = _masked_words(K, k_base, offs_l, l_ok, m, offs_d, D, skl, skd)
            dq = _dot(ds.to(km.dtype), km, UPCAST, PREC) * scale
            tl.store(DQ + ((b * HEADS + h) * NQ + offs_m[:, None]) * D + offs_d[None, :],
                     dq.to(DQ.dtype.element_ty), mask=md_ok)
            q = tl.load(Q + q_base + offs_m[:, None] * sqn + offs_d[None, :] * sqd, mask=md_ok,
                        other=0.0)
            gk = _dot(tl.trans(ds.to(q.dtype)), q, UPCAST, PREC)
            if SINGLE:
                dkm += gk
            else:
                d_ok = l_ok[:, None] & (offs_d[None, :] < D)
                acc_k = tl.load(pk_rows + offs_d[None, :], mask=d_ok, other=0.0)
                tl.store(pk_rows + offs_d[None, :], acc_k + gk, mask=d_ok)

    if SINGLE:
        offs_d = tl.arange(0, BLOCK_D)
        offs_e = tl.arange(0, BLOCK_DV)
        tl.store(pk_rows + offs_d[None, :], dkm, mask=l_ok[:, None] & (offs_d[None, :] < D))
        tl.store(pv_rows + offs_e[None, :], dvm, mask=l_ok[:, None] & (offs_e[None, :] < DV))


@dataclasses.dataclass(frozen=True)
class PwamConfig(TileConfig):
    """Tile shapes of the PWAM kernels.

    ``block_m`` pixels per tile, every word in one tile, channels walked in ``block_d`` chunks
    (LAVT's PWAM is single-head, so d = C reaches 1024 at Swin-B stage 4). The backward keeps
    two [words, block_d] float32 sums besides its pixel tiles, so it runs ``bwd_num_warps``.
    """

    block_m: int = 64
    block_d: int = 128
    chunks: int | None = None
    num_warps: int = 4
    num_stages: int = 2
    bwd_num_warps: int = 8


DEFAULT = PwamConfig()


def _blocks(cfg: PwamConfig, nq: int, L: int, d: int, dv: int, dtype: torch.dtype):
    # float32 operands take twice the registers of 16-bit ones (and tf32x3 dots hold each twice
    # more); quartering the pixel and channel tiles keeps float32 free of spills either way.
    halve = 2 if dtype == torch.float32 else 0
    bm = max(16, min(cfg.block_m >> halve, triton.next_power_of_2(nq)))
    bd = max(16, cfg.block_d >> halve)
    return bm, npow2(L), min(npow2(d), bd), min(npow2(dv), bd)


def plan_pwam_fwd(q, k, v, m, o, lse, scale: float, cfg: PwamConfig) -> Launch:
    b, heads, nq, d = q.shape
    L, dv = k.shape[2], v.shape[3]
    bm, bl, bd, bdv = _blocks(cfg, nq, L, d, dv, q.dtype)
    return Launch(
        _pwam_fwd_kernel, (triton.cdiv(nq, bm) * b * heads,),
        (q, k, v, m, o, lse, *q.stride(), *k.stride(), *v.stride(), *m.stride(),
         heads, nq, L, d, dv, float(scale)),
        {"STORE_LSE": True, "BLOCK_M": bm, "BLOCK_L": bl, "BLOCK_D": bd, "BLOCK_DV": bdv,
             "UPCAST": interpreting(), "PREC": dot_precision(q.dtype),
             "num_warps": cfg.num_warps, "num_stages": cfg.num_stages},
    )


def plan_pwam_bwd(q, k, v, m, do, lse, dq, pk, pv, scale: float, cfg: PwamConfig,
                  chunks: int) -> Launch:
    b, heads, nq, d = q.shape
    L, dv = k.shape[2], v.shape[3]
    bm, bl, bd, bdv = _blocks(cfg, nq, L, d, dv, q.dtype)
    return Launch(
        _pwam_bwd_kernel, (chunks * b * heads,),
        (q, k, v, m, do, lse, dq, pk, pv, *q.stride(), *k.stride(), *v.stride(), *m.stride(),
         *do.stride(), heads, nq, L, d, dv, float(scale), chunks),
        {"BLOCK_M": bm, "BLOCK_L": bl, "BLOCK_D": bd, "BLOCK_DV": bdv, "SINGLE": (d <= bd and dv <= bdv),
             "UPCAST": interpreting(), "PREC": dot_precision(q.dtype),
             "num_warps": cfg.bwd_num_warps,
             "num_stages": cfg.num_stages},
    )


def pwam_chunks(cfg: PwamConfig, num_m: int, bh: int, sms: int | None) -> int:
    if cfg.chunks is not None:
        return max(1, min(cfg.chunks, num_m))
    return chunks_for(bh, num_m, sms)


def word_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    # Rounded through the input dtype, as the reference's ``mask.to(q.dtype)``.
    return mask.detach().to(dtype).to(torch.float32).contiguous()


def pwam_forward(q, k, v, mask, scale: float, cfg: PwamConfig = DEFAULT):
    """Run the forward kernel: ``(out [B, h, N, dv], lse [B, h, N] float32)``."""
    b, heads, nq, _ = q.shape
    m = word_mask(mask, q.dtype)
    o = torch.empty((b, heads, nq, v.shape[3]), dtype=q.dtype, device=q.device)
    lse = torch.empty((b, heads, nq), dtype=torch.float32, device=q.device)
    plan_pwam_fwd(q, k, v, m, o, lse, scale, cfg)()
    return o, lse


def pwam_backward(do, q, k, v, mask, lse, scale: float, cfg: PwamConfig = DEFAULT):
    """Run the backward kernel: ``(dq, dk, dv)``."""
    b, heads, nq, d = q.shape
    L, dv = k.shape[2], v.shape[3]
    m = word_mask(mask, q.dtype)
    bm, bl, _, _ = _blocks(cfg, nq, L, d, dv, q.dtype)
    num_m = triton.cdiv(nq, bm)
    chunks = pwam_chunks(cfg, num_m, b * heads, sm_count(q.device))
    dq = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    # Zero-initialised: the chunked path accumulates into it, padded word rows stay 0.
    pk = torch.zeros((b * heads, chunks, bl, d), dtype=torch.float32, device=q.device)
    pv = torch.zeros((b * heads, chunks, bl, dv), dtype=torch.float32, device=q.device)
    plan_pwam_bwd(q, k, v, m, do, lse, dq, pk, pv, scale, cfg, chunks)()
    # Chain rule through K·mask and V·mask (and the score scale for K).
    wm = m.view(b, 1, L, 1)
    dk = (pk.view(b, heads, chunks, bl, d).sum(2)[:, :, :L] * wm * scale).to(k.dtype)
    dvv = (pv.view(b, heads, chunks, bl, dv).sum(2)[:, :, :L] * wm).to(v.dtype)
    return dq, dk, dvv
