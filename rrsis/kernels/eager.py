"""PyTorch paths with a hand-written backward, for where autograd's own is wasteful.

:func:`elsa_aggregate`'s forward is :func:`.reference.elsa_aggregate` (a k²-step
shift-and-accumulate loop). Autograd through that loop builds, for every one of the
k² steps, a zero-filled gradient of the whole padded value map (the slice's backward) and of the
whole attention tensor (the select's backward), then adds them up: measured on the demo model
on one CPU thread, those fills and copies were a third of ELSA's backward. The backward here
accumulates into one padded buffer and writes each attention plane once.

:func:`elsa_aggregate_no_grad` is the forward without autograd (inference on the CPU): the
additive ghost term is a depthwise convolution of ``v``, and each of the k² steps is one in-place
``addcmul_`` (two with the multiplicative ghost term) instead of four full-size temporaries.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import reference

__all__ = ["elsa_aggregate", "elsa_aggregate_no_grad"]


def _weights(a: torch.Tensor, mul: torch.Tensor | None, add: torch.Tensor | None, j: int) -> torch.Tensor:
    # a: [B, G, 1, K2, H, W]; mul/add: [G, C/G, K2] -> step j's filter, broadcastable to [B, G, C/G, H, W]
    w = a[:, :, :, j]
    if mul is not None:
        w = w * mul[None, :, :, j, None, None]
    if add is not None:
        w = w + add[None, :, :, j, None, None]
    return w


class _ElsaAggregate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, attn, ghost_mul, ghost_add, kernel_size: int, dilation: int):
        ctx.save_for_backward(v, attn, ghost_mul, ghost_add)
        ctx.geometry = (kernel_size, dilation)
        return reference.elsa_aggregate(v, attn, ghost_mul, ghost_add, kernel_size, dilation)

    @staticmethod
    def backward(ctx, grad_out):
        v, attn, ghost_mul, ghost_add = ctx.saved_tensors
        kernel_size, dilation = ctx.geometry
        pad = (kernel_size // 2) * dilation
        b, c, hh, ww = v.shape
        g = attn.shape[1]
        cg = c // g
        vp = F.pad(v, (pad, pad, pad, pad)).view(b, g, cg, hh + 2 * pad, ww + 2 * pad)
        need_v, need_attn, need_mul, need_add = ctx.needs_input_grad[:4]
        dout = grad_out.reshape(b, g, cg, hh, ww)
        a = attn.unsqueeze(2)
        mul = ghost_mul.view(g, cg, -1) if ghost_mul is not None else None
        add = ghost_add.view(g, cg, -1) if ghost_add is not None else None
        k2 = kernel_size * kernel_size
        dvp = torch.zeros_like(vp) if need_v else None
        dattn = torch.empty_like(attn) if need_attn else None
        dmul = torch.empty(g, cg, k2, dtype=vp.dtype, device=vp.device) if need_mul else None
        dadd = torch.empty(g, cg, k2, dtype=vp.dtype, device=vp.device) if need_add else None
        for j in range(k2):
            dy, dx = divmod(j, kernel_size)
            rows = slice(dy * dilation, dy * dilation + hh)
            cols = slice(dx * dilation, dx * dilation + ww)
            if need_v:
                dvp[..., rows, cols].addcmul_(dout, _weights(a, mul, add, j))
            if need_attn or need_mul or need_add:
                dw = dout * vp[..., rows, cols]  # d out / d (step j's filter), [B, G, C/G, H, W]
                if need_attn:
                    dattn[:, :, j] = (dw * mul[None, :, :, j, None, None] if mul is not None else dw).sum(2)
                if need_mul:
                    dmul[:, :, j] = (dw * a[:, :, :, j]).sum((0, 3, 4))
                if need_add:
                    dadd[:, :, j] = dw.sum((0, 3, 4))
        dv = dvp[..., pad : pad + hh, pad : pad + ww].reshape(b, c, hh, ww) if need_v else None
        dmul = dmul.view(c, k2) if need_mul else None
        dadd = dadd.view(c, k2) if need_add else None
        return dv, dattn, dmul, dadd, None, None


def elsa_aggregate(
    v: torch.Tensor,
    attn: torch.Tensor,
    ghost_mul: torch.Tensor | None,
    ghost_add: torch.Tensor | None,
    kernel_size: int,
    dilation: int = 1,
) -> torch.Tensor:
    """:func:`.reference.elsa_aggregate` with a memory-light backward (same arguments)."""
    return _ElsaAggregate.apply(v, attn, ghost_mul, ghost_add, kernel_size, dilation)


def elsa_aggregate_no_grad(
    v: torch.Tensor,
    attn: torch.Tensor,
    ghost_mul: torch.Tensor | None,
    ghost_add: torch.Tensor | None,
    kernel_size: int,
    dilation: int = 1,
) -> torch.Tensor:
    """:func:`.reference.elsa_aggregate` for calls that need no gradient (same arguments and
    result dtype, equal up to the order of the float sums).

    ``y = Σ_j (mul_j·a_j + add_j)·v_j`` splits into ``Σ_j add_j·v_j``, a depthwise convolution
    of ``v`` with ``add`` as its k×k kernels, and ``Σ_j mul_j·a_j·v_j``, accumulated in place.
    """
    reference._check_elsa(v, attn, kernel_size)
    b, c, hh, ww = v.shape
    g = attn.shape[1]
    cg = c // g
    dtype = torch.promote_types(v.dtype, attn.dtype)
    for t in (ghost_mul, ghost_add):
        if t is not None:
            dtype = torch.promote_types(dtype, t.dtype)
    pad = (kernel_size // 2) * dilation
    with torch.autocast(v.device.type, enabled=False):
        x = v.to(dtype)
        if ghost_add is not None:
            weight = ghost_add.to(dtype).reshape(c, 1, kernel_size, kernel_size)
            out = F.conv2d(x, weight, padding=pad, dilation=dilation, groups=c)
        else:
            out = torch.zeros(b, c, hh, ww, dtype=dtype, device=v.device)
        out = out.view(b, g, cg, hh, ww)
        vp = F.pad(x, (pad, pad, pad, pad)).view(b, g, cg, hh + 2 * pad, ww + 2 * pad)
        a = attn.to(dtype).unsqueeze(2)  # [B, G, 1, K2, H, W]
        mul = ghost_mul.to(dtype).view(g, cg, -1) if ghost_mul is not None else None
        scaled = torch.empty_like(out) if mul is not None else None
        for j in range(kernel_size * kernel_size):
            dy, dx = divmod(j, kernel_size)
            sl = vp[..., dy * dilation : dy * dilation + hh, dx * dilation : dx * dilation + ww]
            if mul is not None:
                sl = torch.mul(sl, mul[None, :, :, j, None, None], out=scaled)
            out.addcmul_(a[:, :, :, j], sl)
    return out.view(b, c, hh, ww)
