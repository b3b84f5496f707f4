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

import math

import torch
import triton
import triton.language as tl

from .triton_window import _check_device, interpreting

__all__ = ["ElsaConfig", "elsa_aggregate"]


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
    # Unrolled: the k² offsets become compile-time constants.
    for j in tl.static_range(KS * KS):
        ny = py + (j // KS - half) * dil
        nx = px + (j % KS - half) * dil
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
    K2 = KS * KS
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
        for j in tl.static_range(K2):
            oy = (j // KS - half) * dil
            ox = (j % KS - half) * dil
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


class ElsaConfig:
    """Tile shapes of the ELSA kernels.

    ``block_p`` pixels (flattened row-major, so a tile spans whole rows at Swin widths and the
    k² shifted reads of v overlap in cache) × every channel of one head (padded to a power of
    two); the default keeps the float32 accumulator near 4096 elements per program.
    """

    def __init__(self, block_p: int | None = None, chunks: int | None = None,
                 num_warps: int = 4, num_stages: int = 2):
        self.block_p = block_p
        self.chunks = chunks
        self.num_warps = num_warps
        self.num_stages = num_stages


_DEFAULT = ElsaConfig()


def _block_p(cfg: ElsaConfig, block_c: int, hw: int) -> int:
    if cfg.block_p is not None:
        return cfg.block_p
    bp = max(16, min(256, 4096 // block_c))
    return min(bp, triton.next_power_of_2(hw))


class _ElsaFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, attn, ghost_mul, ghost_add, kernel_size, dilation, cfg):
        b, c, h, w = v.shape
        g = attn.shape[1]
        cpg = c // g
        out_dtype = v.dtype
        for t in (attn, ghost_mul, ghost_add):
            if t is not None:
                out_dtype = torch.promote_types(out_dtype, t.dtype)
        mul = ghost_mul.detach().contiguous() if ghost_mul is not None else v
        add = ghost_add.detach().contiguous() if ghost_add is not None else v
        y = torch.empty((b, c, h, w), dtype=out_dtype, device=v.device)
        bc = triton.next_power_of_2(cpg)
        bp = _block_p(cfg, bc, h * w)
        num_p = triton.cdiv(h * w, bp)
        _elsa_fwd_kernel[(num_p * b * g,)](
            v, attn, mul, add, y,
            *v.stride(), *attn.stride(),
            c, h, w, g, cpg, num_p, dilation,
            KS=kernel_size, HAS_MUL=ghost_mul is not None, HAS_ADD=ghost_add is not None,
            BLOCK_C=bc, BLOCK_P=bp, num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )
        ctx.save_for_backward(v, attn, mul, add)
        ctx.meta = (kernel_size, dilation, cfg, ghost_mul is not None, ghost_add is not None)
        return y

    @staticmethod
    def backward(ctx, dy):
        v, attn, mul, add = ctx.saved_tensors
        kernel_size, dilation, cfg, has_mul, has_add = ctx.meta
        b, c, h, w = v.shape
        g = attn.shape[1]
        cpg = c // g
        k2 = kernel_size * kernel_size
        bc = triton.next_power_of_2(cpg)
        bp = _block_p(cfg, bc, h * w)
        num_p = triton.cdiv(h * w, bp)
        mul_grad = has_mul and ctx.needs_input_grad[2]
        add_grad = has_add and ctx.needs_input_grad[3]
        if cfg.chunks is not None:
            chunks = max(1, min(cfg.chunks, num_p))
        elif not (mul_grad or add_grad):
            chunks = num_p  # nothing to reduce over pixels: one tile per program
        elif interpreting() or v.device.type != "cuda":
            chunks = min(2, num_p)
        else:
            sms = torch.cuda.get_device_properties(v.device).multi_processor_count
            chunks = max(1, min(num_p, math.ceil(4 * sms / (b * g))))
        dv = torch.empty((b, c, h, w), dtype=v.dtype, device=v.device)
        da = torch.empty((b, g, k2, h, w), dtype=attn.dtype, device=attn.device)
        pmul = (torch.empty((b * chunks, c, k2), dtype=torch.float32, device=v.device)
                if mul_grad else dv)
        padd = (torch.empty((b * chunks, c, k2), dtype=torch.float32, device=v.device)
                if add_grad else dv)
        _elsa_bwd_kernel[(chunks * b * g,)](
            v, attn, mul, add, dy, dv, da, pmul, padd,
            *v.stride(), *attn.stride(), *dy.stride(),
            c, h, w, g, cpg, num_p, chunks, dilation,
            KS=kernel_size, HAS_MUL=has_mul, HAS_ADD=has_add,
            MUL_GRAD=mul_grad, ADD_GRAD=add_grad,
            BLOCK_C=bc, BLOCK_P=bp, BLOCK_K2=triton.next_power_of_2(k2),
            num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )
        dmul = pmul.sum(0).to(mul.dtype) if mul_grad else None
        dadd = padd.sum(0).to(add.dtype) if add_grad else None
        return dv, da, dmul, dadd, None, None, None


def elsa_aggregate(
    v: torch.Tensor,
    attn: torch.Tensor,
    ghost_mul: torch.Tensor | None,
    ghost_add: torch.Tensor | None,
    kernel_size: int,
    dilation: int = 1,
    config: ElsaConfig | None = None,
) -> torch.Tensor:
    """Fused ELSA aggregation; same contract as :func:`reference.elsa_aggregate`.

    Args:
        v: ``[B, C, H, W]`` values (any strides).
        attn: ``[B, G, k², H, W]`` softmax-normalised weights (any strides).
        ghost_mul: ``[C, k²]`` or ``None``.
        ghost_add: ``[C, k²]`` or ``None``.
        kernel_size: neighbourhood side ``k`` (odd in ELSA; offsets ``j // k − k // 2``).
        dilation: neighbourhood dilation.
        config: tile shapes (:class:`ElsaConfig`).

    Returns:
        ``[B, C, H, W]`` contiguous.
    """
    from .reference import _check_elsa

    _check_elsa(v, attn, kernel_size)
    c, k2 = v.shape[1], kernel_size * kernel_size
    for name, t in (("ghost_mul", ghost_mul), ("ghost_add", ghost_add)):
        if t is not None and t.numel() != c * k2:
            raise ValueError(f"{name} has {t.numel()} elements, expected [C={c}, k²={k2}]")
    _check_device(v, attn)
    return _ElsaFn.apply(v, attn, ghost_mul, ghost_add, int(kernel_size), int(dilation),
                         config or _DEFAULT)
