"""The kernels as ``torch.library`` custom ops (``rrsis::…``), so ``torch.compile`` traces them.

Each op has a fake (shape-only) implementation for tracing, a backward op, and an autograd
registration, so ``torch.compile(model, fullgraph=True)`` sees one node per kernel call instead
of breaking the graph around an ``autograd.Function``. What runs inside an op: the Triton kernel
for CUDA tensors (or on CPU under ``TRITON_INTERPRET=1``, Triton's interpreter), otherwise the
PyTorch reference, so a traced graph also runs on CPU. Tile shapes travel as ``int[]`` (each
config's ``to_list``), since an op takes no Python objects.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.library import custom_op, register_autograd

from . import reference
from . import triton_elsa as _elsa
from . import triton_elsa_fused as _fused
from . import triton_pwam as _pwam
from . import triton_window as _win
from . import triton_window_bwd as _winb
from .triton_common import interpreting

__all__ = ["elsa_aggregate_op", "elsa_attention_op", "pixel_word_attention_op", "window_attention_op"]


def _kernels_run(*tensors: Tensor) -> bool:
    return interpreting() or all(t.is_cuda for t in tensors)


def _none(t: Tensor):
    # Ops cannot return None: an absent gradient travels as an empty tensor.
    return None if t.numel() == 0 else t


def _empty(like: Tensor) -> Tensor:
    return like.new_empty((0,))


_AUTOGRAD_KEYS = [getattr(torch._C.DispatchKey, k) for k in (
    "AutogradFunctionality", "ADInplaceOrView", "AutogradCPU", "AutogradCUDA", "AutogradOther")]


def _ref_grads(fn, inputs, grad_out, needs=None):
    """Gradients of the reference ``fn(*inputs)`` for the inputs ``needs`` marks (else None)."""
    needs = needs or [t is not None for t in inputs]
    leaves = [t.detach().requires_grad_(n) if t is not None else None
              for t, n in zip(inputs, needs)]
    # An op's implementation may run with autograd's dispatch keys excluded (e.g. in a compiled
    # backward graph): switch them back on for this recomputation.
    excluded = torch._C._dispatch_tls_local_exclude_set()
    for key in _AUTOGRAD_KEYS:
        excluded = excluded.remove(key)
    with torch._C._ForceDispatchKeyGuard(torch._C._dispatch_tls_local_include_set(), excluded), \
            torch.enable_grad():
        out = fn(*leaves)
    live = [t for t, n in zip(leaves, needs) if n]
    grads = iter(torch.autograd.grad(out, live, grad_out, allow_unused=True))
    return [next(grads) if n else None for n in needs]


# ----------------------------------------------------------------------------- window attention


@custom_op("rrsis::window_attention", mutates_args=())
def window_attention_op(q: Tensor, k: Tensor, v: Tensor, rel_bias: Tensor, window: int,
                        shift: int, scale: float, config: Sequence[int]) -> tuple[Tensor, Tensor]:
    if _kernels_run(q, k, v):
        return _win.window_forward(q, k, v, rel_bias, window, shift, scale,
                                   _win.WindowConfig.from_list(config))
    out = reference.window_attention(q, k, v, rel_bias, window, shift, scale).contiguous()
    # The reference needs no log-sum-exp; its backward recomputes.
    return out, q.new_zeros(q.shape[:4], dtype=torch.float32)


@window_attention_op.register_fake
def _(q, k, v, rel_bias, window, shift, scale, config):
    return q.new_empty(q.shape), q.new_empty(q.shape[:4], dtype=torch.float32)


@custom_op("rrsis::window_attention_backward", mutates_args=())
def window_attention_backward_op(
    do: Tensor, q: Tensor, k: Tensor, v: Tensor, rel_bias: Tensor, o: Tensor, lse: Tensor,
    window: int, shift: int, scale: float, bias_grad: bool, config: Sequence[int],
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    if _kernels_run(q, k, v):
        dq, dk, dv, db = _winb.window_backward(do, q, k, v, rel_bias, o, lse, window, shift, scale,
                                               bias_grad, _win.WindowConfig.from_list(config))
    else:
        dq, dk, dv, db = _ref_grads(
            lambda a, b, c, d: reference.window_attention(a, b, c, d, window, shift, scale),
            (q, k, v, rel_bias), do)
        dq, dk, dv = dq.contiguous(), dk.contiguous(), dv.contiguous()
    return dq, dk, dv, db.contiguous() if bias_grad else _empty(rel_bias)


@window_attention_backward_op.register_fake
def _(do, q, k, v, rel_bias, o, lse, window, shift, scale, bias_grad, config):
    db = rel_bias.new_empty(rel_bias.shape) if bias_grad else _empty(rel_bias)
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape), db


def _window_setup(ctx, inputs, output):
    q, k, v, rel_bias, window, shift, scale, config = inputs
    ctx.save_for_backward(q, k, v, rel_bias, *output)
    ctx.meta = (window, shift, scale, list(config))


def _window_backward(ctx, do, _dlse):
    q, k, v, rel_bias, o, lse = ctx.saved_tensors
    window, shift, scale, config = ctx.meta
    dq, dk, dv, db = window_attention_backward_op(do, q, k, v, rel_bias, o, lse, window, shift,
                                                  scale, ctx.needs_input_grad[3], config)
    return dq, dk, dv, _none(db), None, None, None, None


register_autograd("rrsis::window_attention", _window_backward, setup_context=_window_setup)


# ----------------------------------------------------------------------------- ELSA


@custom_op("rrsis::elsa_aggregate", mutates_args=())
def elsa_aggregate_op(v: Tensor, attn: Tensor, ghost_mul: Tensor | None,
                      ghost_add: Tensor | None, kernel_size: int, dilation: int,
                      config: Sequence[int]) -> Tensor:
    if _kernels_run(v, attn):
        return _elsa.elsa_forward(v, attn, ghost_mul, ghost_add, kernel_size, dilation,
                                  _elsa.ElsaTiles.from_list(config))
    out = reference.elsa_aggregate(v, attn, ghost_mul, ghost_add, kernel_size, dilation)
    return out.to(_elsa.out_dtype(v, attn, ghost_mul, ghost_add)).contiguous()


@elsa_aggregate_op.register_fake
def _(v, attn, ghost_mul, ghost_add, kernel_size, dilation, config):
    return v.new_empty(v.shape, dtype=_elsa.out_dtype(v, attn, ghost_mul, ghost_add))


@custom_op("rrsis::elsa_aggregate_backward", mutates_args=())
def elsa_aggregate_backward_op(
    dy: Tensor, v: Tensor, attn: Tensor, ghost_mul: Tensor | None, ghost_add: Tensor | None,
    kernel_size: int, dilation: int, mul_grad: bool, add_grad: bool, config: Sequence[int],
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    if _kernels_run(v, attn):
        dv, da, dm, dd = _elsa.elsa_backward(dy, v, attn, ghost_mul, ghost_add, kernel_size,
                                             dilation, mul_grad, add_grad,
                                             _elsa.ElsaTiles.from_list(config))
    else:
        dv, da, dm, dd = _ref_grads(
            lambda a, b, c, d: reference.elsa_aggregate(a, b, c, d, kernel_size, dilation),
            (v, attn, ghost_mul, ghost_add), dy,
            [True, True, mul_grad and ghost_mul is not None, add_grad and ghost_add is not None])
        dv, da = dv.to(v.dtype).contiguous(), da.to(attn.dtype).contiguous()
    dm = dm.contiguous() if (mul_grad and ghost_mul is not None) else _empty(v)
    dd = dd.contiguous() if (add_grad and ghost_add is not None) else _empty(v)
    return dv, da, dm, dd


@elsa_aggregate_backward_op.register_fake
def _(dy, v, attn, ghost_mul, ghost_add, kernel_size, dilation, mul_grad, add_grad, config):
    dm = ghost_mul.new_empty(ghost_mul.shape) if mul_grad and ghost_mul is not None else _empty(v)
    dd = ghost_add.new_empty(ghost_add.shape) if add_grad and ghost_add is not None else _empty(v)
    return v.new_empty(v.shape), attn.new_empty(attn.shape), dm, dd


def _elsa_setup(ctx, inputs, output):
    v, attn, ghost_mul, ghost_add, kernel_size, dilation, config = inputs
    ctx.save_for_backward(v, attn, ghost_mul, ghost_add)
    ctx.meta = (kernel_size, dilation, list(config))


def _elsa_backward_fn(ctx, dy):
    v, attn, ghost_mul, ghost_add = ctx.saved_tensors
    kernel_size, dilation, config = ctx.meta
    dv, da, dm, dd = elsa_aggregate_backward_op(
        dy, v, attn, ghost_mul, ghost_add, kernel_size, dilation, ctx.needs_input_grad[2],
        ctx.needs_input_grad[3], config)
    return dv, da, _none(dm), _none(dd), None, None, None


register_autograd("rrsis::elsa_aggregate", _elsa_backward_fn, setup_context=_elsa_setup)


# ----------------------------------------------------------------------------- ELSA from logits


@custom_op("rrsis::elsa_attention", mutates_args=())
def elsa_attention_op(v: Tensor, logits: Tensor, ghost_mul: Tensor | None,
                      ghost_add: Tensor | None, kernel_size: int, dilation: int,
                      config: Sequence[int]) -> tuple[Tensor, Tensor]:
    if _kernels_run(v, logits):
        return _fused.elsa_fused_forward(v, logits, ghost_mul, ghost_add, kernel_size, dilation,
                                         _fused.ElsaFusedTiles.from_list(config))
    out = reference.elsa_attention(v, logits, ghost_mul, ghost_add, kernel_size, dilation)
    # The reference's backward recomputes the softmax: no log-sum-exp is needed.
    b, g, _, h, w = logits.shape
    return out.contiguous(), v.new_zeros((b, g, h, w), dtype=torch.float32)


@elsa_attention_op.register_fake
def _(v, logits, ghost_mul, ghost_add, kernel_size, dilation, config):
    b, c, h, w = v.shape
    return (v.new_empty((b, h, w, c), dtype=_fused.fused_out_dtype(v, logits)),
            v.new_empty((b, logits.shape[1], h, w), dtype=torch.float32))


@custom_op("rrsis::elsa_attention_backward", mutates_args=())
def elsa_attention_backward_op(
    dy: Tensor, v: Tensor, logits: Tensor, ghost_mul: Tensor | None, ghost_add: Tensor | None,
    lse: Tensor, kernel_size: int, dilation: int, mul_grad: bool, add_grad: bool,
    config: Sequence[int],
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    want_mul = mul_grad and ghost_mul is not None
    want_add = add_grad and ghost_add is not None
    if _kernels_run(v, logits):
        dv, dl, dm, dd = _fused.elsa_fused_backward(
            dy, v, logits, ghost_mul, ghost_add, lse, kernel_size, dilation, mul_grad, add_grad,
            _fused.ElsaFusedTiles.from_list(config))
    else:
        dv, dl, dm, dd = _ref_grads(
            lambda a, b, c, d: reference.elsa_attention(a, b, c, d, kernel_size, dilation),
            (v, logits, ghost_mul, ghost_add), dy, [True, True, want_mul, want_add])
        dv, dl = _fused.dv_like(v).copy_(dv), dl.to(logits.dtype).contiguous()
    dm = dm.contiguous() if want_mul else _empty(v)
    dd = dd.contiguous() if want_add else _empty(v)
    return dv, dl, dm, dd


@elsa_attention_backward_op.register_fake
def _(dy, v, logits, ghost_mul, ghost_add, lse, kernel_size, dilation, mul_grad, add_grad,
      config):
    dm = ghost_mul.new_empty(ghost_mul.shape) if mul_grad and ghost_mul is not None else _empty(v)
    dd = ghost_add.new_empty(ghost_add.shape) if add_grad and ghost_add is not None else _empty(v)
    return _fused.dv_like(v), logits.new_empty(logits.shape), dm, dd


def _elsa_attention_setup(ctx, inputs, output):
    v, logits, ghost_mul, ghost_add, kernel_size, dilation, config = inputs
    ctx.save_for_backward(v, logits, ghost_mul, ghost_add, output[1])
    ctx.meta = (kernel_size, dilation, list(config))


def _elsa_attention_backward_fn(ctx, dy, _dlse):
    v, logits, ghost_mul, ghost_add, lse = ctx.saved_tensors
    kernel_size, dilation, config = ctx.meta
    dv, dl, dm, dd = elsa_attention_backward_op(
        dy, v, logits, ghost_mul, ghost_add, lse, kernel_size, dilation,
        ctx.needs_input_grad[2], ctx.needs_input_grad[3], config)
    return dv, dl, _none(dm), _none(dd), None, None, None


register_autograd("rrsis::elsa_attention", _elsa_attention_backward_fn,
                  setup_context=_elsa_attention_setup)


# ----------------------------------------------------------------------------- PWAM


@custom_op("rrsis::pixel_word_attention", mutates_args=())
def pixel_word_attention_op(q: Tensor, k: Tensor, v: Tensor, mask: Tensor, scale: float,
                            config: Sequence[int]) -> tuple[Tensor, Tensor]:
    if _kernels_run(q, k, v):
        return _pwam.pwam_forward(q, k, v, mask, scale, _pwam.PwamConfig.from_list(config))
    out = reference.pixel_word_attention(q, k, v, mask, scale).contiguous()
    return out, q.new_zeros(q.shape[:3], dtype=torch.float32)


@pixel_word_attention_op.register_fake
def _(q, k, v, mask, scale, config):
    b, h, n, _ = q.shape
    return q.new_empty((b, h, n, v.shape[3])), q.new_empty((b, h, n), dtype=torch.float32)


@custom_op("rrsis::pixel_word_attention_backward", mutates_args=())
def pixel_word_attention_backward_op(do: Tensor, q: Tensor, k: Tensor, v: Tensor, mask: Tensor,
                                     lse: Tensor, scale: float,
                                     config: Sequence[int]) -> tuple[Tensor, Tensor, Tensor]:
    if _kernels_run(q, k, v):
        return _pwam.pwam_backward(do, q, k, v, mask, lse, scale, _pwam.PwamConfig.from_list(config))
    dq, dk, dv = _ref_grads(
        lambda a, b, c: reference.pixel_word_attention(a, b, c, mask, scale), (q, k, v), do)
    return dq.contiguous(), dk.contiguous(), dv.contiguous()


@pixel_word_attention_backward_op.register_fake
def _(do, q, k, v, mask, lse, scale, config):
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)


def _pwam_setup(ctx, inputs, output):
    q, k, v, mask, scale, config = inputs
    ctx.save_for_backward(q, k, v, mask, output[1])
    ctx.meta = (scale, list(config))


def _pwam_backward_fn(ctx, do, _dlse):
    q, k, v, mask, lse = ctx.saved_tensors
    scale, config = ctx.meta
    dq, dk, dv = pixel_word_attention_backward_op(do, q, k, v, mask, lse, scale, config)
    return dq, dk, dv, None, None, None


register_autograd("rrsis::pixel_word_attention", _pwam_backward_fn, setup_context=_pwam_setup)
