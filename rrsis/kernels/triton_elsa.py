"""Fused ELSA neighbourhood aggregation in Triton, forward and backward, zero padding in-kernel.

``y[b,c,p] = Σ_j (mul[c,j]·attn[b,g(c),j,p] + add[c,j]) · v[b,c,p + dil·δ_j]``. The unfold
formulation materialises ``k²·C·H·W`` values (49× v at k = 7); here one program owns all channels
of one head for a run of flattened pixels and walks the k² offsets, so only v, attn and y cross
HBM once (the k² shifted re-reads of v are neighbours of the tile and hit L1/L2).

Backward, one kernel per (head, chunk of pixel tiles):
``dv[q] = Σ_j w_j(q − δ_j)·dy[q − δ_j]`` is a gather too (no atomics), ``dattn[j,p] =
Σ_{c∈g} mul[c,j]·dy[c,p]·v[c,p+δ_j]`` is a sum over the program's own channels, and the ghost
gradients ``Σ_{b,p}`` are accumulated in registers over the chunk's pixels and written as one
partial per (batch, chunk), summed afterwards (deterministic, no atomics).
"""

from __future__ import annotations

import dataclasses

import torch
import triton
import triton.language as tl

from .tiles import TileConfig
from .triton_common import Launch, chunks_for, sm_count

__all__ = ["ElsaTiles", "elsa_backward", "elsa_forward", "plan_elsa_bwd", "plan_elsa_fwd"]


@triton.jit
def _elsa_fwd_kernel(
    V, A, MUL, ADD, Y,
    svb, svc, svy, svx,
    sab, sag, saj, say, sax,
    C, H, W, G, CPG, NUM_P, dil,
    KS: tl.constexpr, HAS_MUL: tl.constexpr, HAS_ADD: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr,
):
    pid = tl.program_id(0)
    pt = pid % NUM_P
    bg = pid // NUM_P
    g = bg % G
    b = (bg // G).to(tl.int64)

    offs_c = tl.arange(0, BLOCK_C)
    c_ok = offs_c < CPG
    ch = g * CPG + offs_c
    offs_p = pt * BLOCK_P + tl.arange(0, BLOCK_P)
    p_ok = offs_p < H * W
    py = offs_p // W
    px = offs_p % W
    half = KS // 2

    v_base = V + b * svb + ch[:, None] * svc
    a_base = A + b * sab + g * sag + py * say + px * sax
    acc = tl.zeros([BLOCK_C, BLOCK_P], tl.float32)
    # A rolled loop: unrolling the k² = 49 offsets made ptxas spill ~16 KB per thread on sm_90.
    for j in range(KS * KS):
        jy = j // KS
        ny = py + (jy - half) * dil
        nx = px + (j - jy * KS - half) * dil
        inside = p_ok & (ny >= 0) & (ny < H) & (nx >= 0) & (nx < W)
        a = tl.load(a_base + j * saj, mask=p_ok, other=0.0).to(tl.float32)
        vv = tl.load(v_base + ny[None, :] * svy + nx[None, :] * svx,
                     mask=c_ok[:, None] & inside[None, :], other=0.0).to(tl.float32)
        wgt = a[None, :]
        if HAS_MUL:
            mul = tl.load(MUL + ch * (KS * KS) + j, mask=c_ok, other=0.0).to(tl.float32)
            wgt = wgt * mul[:, None]
        if HAS_ADD:
            add = tl.load(ADD + ch * (KS * KS) + j, mask=c_ok, other=0.0).to(tl.float32)
            wgt = wgt + add[:, None]
        acc += wgt * vv

    y_ptrs = Y + b * C * H * W + ch[:, None] * (H * W) + offs_p[None, :]
    tl.store(y_ptrs, acc.to(Y.dtype.element_ty), mask=c_ok[:, None] & p_ok[None, :])


@triton.jit
def _elsa_bwd_kernel(
    V, A, MUL, ADD, DY, DV, DA, PMUL, PADD,
    svb, svc, svy, svx,
    sab, sag, saj, say, sax,
    sdyb, sdyc, sdyy, sdyx,
    C, H, W, G, CPG, NUM_P, NCHUNK, dil,
    KS: tl.constexpr, HAS_MUL: tl.constexpr, HAS_ADD: tl.constexpr,
    MUL_GRAD: tl.constexpr, ADD_GRAD: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_K2: tl.constexpr,
):
    K2: tl.constexpr = KS * KS
    pid = tl.program_id(0)
    chunk = pid % NCHUNK
    bg = pid // NCHUNK
    g = bg % G
    b = (bg // G).to(tl.int64)
    half = KS // 2

    offs_c = tl.arange(0, BLOCK_C)
    c_ok = offs_c < CPG
    ch = g * CPG + offs_c
    cols = tl.arange(0, BLOCK_K2)
    v_base = V + b * svb + ch[:, None] * svc
    dy_base = DY + b * sdyb + ch[:, None] * sdyc
    a_base = A + b * sab + g * sag
    da_base = DA + (b * G + g) * K2 * H * W
    gmul = tl.zeros([BLOCK_C, BLOCK_K2], tl.float32)
    gadd = tl.zeros([BLOCK_C, BLOCK_K2], tl.float32)

    for pt in range(chunk, NUM_P, NCHUNK):
        offs_p = pt * BLOCK_P + tl.arange(0, BLOCK_P)
        p_ok = offs_p < H * W
        py = offs_p // W
        px = offs_p % W
        cp_ok = c_ok[:, None] & p_ok[None, :]
        dy = tl.load(dy_base + py[None, :] * sdyy + px[None, :] * sdyx, mask=cp_ok,
                     other=0.0).to(tl.float32)
        dv = tl.zeros([BLOCK_C, BLOCK_P], tl.float32)
        # Rolled (a static_range over k² does not compile for sm_90 and would spill if it did).
        for j in range(K2):
            jy = j // KS
            oy = (jy - half) * dil
            ox = (j - jy * KS - half) * dil
            if HAS_MUL:
                mul = tl.load(MUL + ch * K2 + j, mask=c_ok, other=0.0).to(tl.float32)
            if HAS_ADD:
                add = tl.load(ADD + ch * K2 + j, mask=c_ok, other=0.0).to(tl.float32)
            # Output pixel p reads neighbour p + δ_j: gradients of attn and the ghost terms.
            ny = py + oy
            nx = px + ox
            fwd_in = p_ok & (ny >= 0) & (ny < H) & (nx >= 0) & (nx < W)
            vn = tl.load(v_base + ny[None, :] * svy + nx[None, :] * svx,
                         mask=c_ok[:, None] & fwd_in[None, :], other=0.0).to(tl.float32)
            t = dy * vn
            a_p = tl.load(a_base + j * saj + py * say + px * sax, mask=p_ok, other=0.0)
            a_p = a_p.to(tl.float32)
            if HAS_MUL:
                da = tl.sum(t * mul[:, None], 0)
            else:
                da = tl.sum(t, 0)
            tl.store(da_base + j * H * W + offs_p, da.to(DA.dtype.element_ty), mask=p_ok)
            if MUL_GRAD:
                gmul += tl.where(cols[None, :] == j, tl.sum(t * a_p[None, :], 1)[:, None], 0.0)
            if ADD_GRAD:
                gadd += tl.where(cols[None, :] == j, tl.sum(t, 1)[:, None], 0.0)
            # Input pixel q is read by output pixel q − δ_j with that pixel's weight.
            sy = py - oy
            sx = px - ox
            src_in = p_ok & (sy >= 0) & (sy < H) & (sx >= 0) & (sx < W)
            a_s = tl.load(a_base + j * saj + sy * say + sx * sax, mask=src_in, other=0.0)
            wgt = a_s.to(tl.float32)[None, :]
            if HAS_MUL:
                wgt = wgt * mul[:, None]
            if HAS_ADD:
                wgt = wgt + add[:, None]
            dys = tl.load(dy_base + sy[None, :] * sdyy + sx[None, :] * sdyx,
                          mask=c_ok[:, None] & src_in[None, :], other=0.0).to(tl.float32)
            dv += wgt * dys
        tl.store(DV + b * C * H * W + ch[:, None] * (H * W) + offs_p[None, :],
                 dv.to(DV.dtype.element_ty), mask=cp_ok)

    part = (b * NCHUNK + chunk) * C * K2 + ch[:, None] * K2 + cols[None, :]
    part_ok = c_ok[:, None] & (cols[None, :] < K2)
    if MUL_GRAD:
        tl.store(PMUL + part, gmul, mask=part_ok)
    if ADD_GRAD:
        tl.store(PADD + part, gadd, mask=part_ok)


@dataclasses.dataclass(frozen=True)
class ElsaTiles(TileConfig):
    """Tile shapes of the ELSA kernels.

    ``block_p`` pixels (flattened row-major, so a tile spans whole rows at Swin widths and the
    k² shifted reads of v overlap in cache) × every channel of one head (padded to a power of
    two); the default keeps the float32 accumulator near 4096 elements per program.
    ``bwd_num_warps`` spreads the backward's four live [C, P] tiles over more threads.
    """

    block_p: int | None = None
    chunks: int | None = None
    num_warps: int = 4
    num_stages: int = 2
    bwd_num_warps: int = 8


DEFAULT = ElsaTiles()


def _block_p(cfg: ElsaTiles, block_c: int, hw: int) -> int:
    if cfg.block_p is not None:
        return cfg.block_p
    bp = max(16, min(256, 4096 // block_c))
    return min(bp, triton.next_power_of_2(hw))


def out_dtype(v, attn, ghost_mul, ghost_add) -> torch.dtype:
    dtype = v.dtype
    for t in (attn, ghost_mul, ghost_add):
        if t is not None:
            dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def plan_elsa_fwd(v, attn, mul, add, y, kernel_size: int, dilation: int, cfg: ElsaTiles,
                  has_mul: bool, has_add: bool) -> Launch:
    """The forward launch; ``mul``/``add`` are any tensor when ``has_mul``/``has_add`` is false."""
    b, c, h, w = v.shape
    g = attn.shape[1]
    cpg = c // g
    bc = triton.next_power_of_2(cpg)
    bp = _block_p(cfg, bc, h * w)
    num_p = triton.cdiv(h * w, bp)
    return Launch(
        _elsa_fwd_kernel, (num_p * b * g,),
        (v, attn, mul, add, y, *v.stride(), *attn.stride(), c, h, w, g, cpg, num_p, dilation),
        {"KS": kernel_size, "HAS_MUL": has_mul, "HAS_ADD": has_add, "BLOCK_C": bc, "BLOCK_P": bp,
             "num_warps": cfg.num_warps, "num_stages": cfg.num_stages},
    )


def elsa_chunks(cfg: ElsaTiles, num_p: int, bg: int, reduce: bool, sms: int | None) -> int:
    if cfg.chunks is not None:
        return max(1, min(cfg.chunks, num_p))
    if not reduce:
        return num_p  # nothing to reduce over pixels: one tile per program
    return chunks_for(bg, num_p, sms)


def plan_elsa_bwd(v, attn, mul, add, dy, dv, da, pmul, padd, kernel_size: int, dilation: int,
                  cfg: ElsaTiles, has_mul: bool, has_add: bool, mul_grad: bool, add_grad: bool,
                  chunks: int) -> Launch:
    b, c, h, w = v.shape
    g = attn.shape[1]
    cpg = c // g
    bc = triton.next_power_of_2(cpg)
    bp = _block_p(cfg, bc, h * w)
    num_p = triton.cdiv(h * w, bp)
    k2 = kernel_size * kernel_size
    return Launch(
        _elsa_bwd_kernel, (chunks * b * g,),
        (v, attn, mul, add, dy, dv, da, pmul, padd, *v.stride(), *attn.stride(), *dy.stride(),
         c, h, w, g, cpg, num_p, chunks, dilation),
        {"KS": kernel_size, "HAS_MUL": has_mul, "HAS_ADD": has_add, "MUL_GRAD": mul_grad,
             "ADD_GRAD": add_grad, "BLOCK_C": bc, "BLOCK_P": bp, "BLOCK_K2": triton.next_power_of_2(k2),
             "num_warps": cfg.bwd_num_warps, "num_stages": cfg.num_stages},
    )


def elsa_forward(v, attn, ghost_mul, ghost_add, kernel_size: int, dilation: int,
                 cfg: ElsaTiles = DEFAULT) -> torch.Tensor:
    """Run the forward kernel: ``[B, C, H, W]`` contiguous."""
    b, c, h, w = v.shape
    y = torch.empty((b, c, h, w), dtype=out_dtype(v, attn, ghost_mul, ghost_add), device=v.device)
    mul = ghost_mul.contiguous() if ghost_mul is not None else v
    add = ghost_add.contiguous() if ghost_add is not None else v
    plan_elsa_fwd(v, attn, mul, add, y, kernel_size, dilation, cfg,
                  ghost_mul is not None, ghost_add is not None)()
    return y


def elsa_backward(dy, v, attn, ghost_mul, ghost_add, kernel_size: int, dilation: int,
                  mul_grad: bool, add_grad: bool, cfg: ElsaTiles = DEFAULT):
    """Run the backward kernel: ``(dv, dattn, dghost_mul | None, dghost_add | None)``."""
    b, c, h, w = v.shape
    g = attn.shape[1]
    k2 = kernel_size * kernel_size
    has_mul, has_add = ghost_mul is not None, ghost_add is not None
    mul_grad, add_grad = mul_grad and has_mul, add_grad and has_add
    mul = ghost_mul.contiguous() if has_mul else v
    add = ghost_add.contiguous() if has_add else v
    bc = triton.next_power_of_2(c // g)
    num_p = triton.cdiv(h * w, _block_p(cfg, bc, h * w))
    chunks = elsa_chunks(cfg, num_p, b * g, mul_grad or add_grad, sm_count(v.device))
    dv = torch.empty((b, c, h, w), dtype=v.dtype, device=v.device)
    da = torch.empty((b, g, k2, h, w), dtype=attn.dtype, device=attn.device)
    f32 = {"dtype": torch.float32, "device": v.device}
    pmul = torch.empty((b * chunks, c, k2), **f32) if mul_grad else dv
    padd = torch.empty((b * chunks, c, k2), **f32) if add_grad else dv
    plan_elsa_bwd(v, attn, mul, add, dy, dv, da, pmul, padd, kernel_size, dilation, cfg,
                  has_mul, has_add, mul_grad, add_grad, chunks)()
    dmul = pmul.sum(0).to(ghost_mul.dtype) if mul_grad else None
    dadd = padd.sum(0).to(ghost_add.dtype) if add_grad else None
    return dv, da, dmul, dadd
