"""The launches the models make, as meta-tensor launch plans for the ahead-of-time compile check.

:func:`specialisations` lists every kernel launch inside :mod:`rrsis.kernels.support`'s envelope
(model sizes, stages, batches, dtype modes, shifts, ghost terms, ELSA's two ``pre_proj`` layouts,
the fused ELSA kernel's tile shapes the choice table may name), each built from meta tensors laid
out exactly as the models pass them; :mod:`rrsis.kernels.aot` compiles them for one GPU.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch

from . import support

__all__ = ["LEVELS", "Spec", "specialisations"]

META = torch.device("meta")


@dataclass
class Spec:
    """One launch the models make: where it comes from and its plan."""

    kernel: str
    where: str
    plan: object = field(repr=False)


def _t(shape, dtype, strides=None):
    if strides is None:
        return torch.empty(shape, dtype=dtype, device=META)
    return torch.empty_strided(shape, strides, dtype=dtype, device=META)


def _window_specs(model, stage, hp, heads, batch, shift, dtype, train, sms):
    from .triton_window import DEFAULT, plan_window_fwd
    from .triton_window_bwd import dq_tiles, n_chunks, plan_window_bwd

    d, win = support.WINDOW_HEAD_DIM, support.WINDOW
    n = win * win
    # q, k, v: views of the qkv Linear output [B, Hp, Wp, 3·heads·d].
    qkv = _t((batch, hp, hp, 3 * heads * d), dtype).view(batch, hp, hp, 3, heads, d)
    q, k, v = qkv.unbind(3)
    rb = _t((heads, n, n), dtype)
    o = _t(q.shape, dtype)
    lse = _t((batch, hp, hp, heads), torch.float32)
    where = f"{model} stage {stage} B={batch} {str(dtype)[6:]} shift={shift}"
    specs = [Spec("window_fwd", where, plan_window_fwd(q, k, v, rb, o, lse, win, shift,
                                                      d**-0.5, DEFAULT))]
    if train:
        total = batch * (hp // win) ** 2
        dq_bm = dq_tiles(DEFAULT, n)[0]
        chunks = n_chunks(DEFAULT, total, -(-n // dq_bm) * heads, sms)
        part = _t((chunks, heads, n, n), torch.float32)
        g = [_t(q.shape, dtype) for _ in range(4)]
        a, b = plan_window_bwd(q, k, v, rb, o, g[0], lse, _t(lse.shape, torch.float32), g[1],
                               g[2], g[3], part, win, shift, d**-0.5, DEFAULT, True, chunks)
        specs += [Spec("window_bwd_dq", where, a), Spec("window_bwd_dkdv", where, b)]
    return specs


def _elsa_specs(model, stage, hw, channels, heads, batch, mode, ghost, layout, train, sms):
    from .triton_elsa import DEFAULT, _block_p, elsa_chunks, out_dtype, plan_elsa_bwd, plan_elsa_fwd

    ks = support.ELSA_KERNEL
    k2 = ks * ks
    # Autocast: pre_proj (a conv) runs in bf16, the softmax of the generated map in float32,
    # and the ghost parameters stay float32.
    vdt, adt, gdt = {"fp32": (torch.float32,) * 3, "bf16": (torch.bfloat16,) * 3,
                     "autocast-bf16": (torch.bfloat16, torch.float32, torch.float32),
                     "autocast-fp16": (torch.float16, torch.float32, torch.float32)}[mode]
    qk = -(-(channels // 3 * 2) // 8) * 8
    wide = 2 * qk + channels
    if layout == "nhwc":  # pre_proj applied to x.permute(0, 3, 1, 2): channels-last output
        pre = _t((batch, wide, hw, hw), vdt, (hw * hw * wide, 1, hw * wide, wide))
    else:
        pre = _t((batch, wide, hw, hw), vdt)
    v = pre[:, 2 * qk:]
    attn = _t((batch, heads, k2, hw, hw), adt)
    has_mul, has_add = ghost in ("both",), ghost in ("add", "both")
    mul = _t((channels, k2), gdt) if has_mul else v
    add = _t((channels, k2), gdt) if has_add else v
    y = _t((batch, channels, hw, hw), out_dtype(v, attn, mul if has_mul else None,
                                               add if has_add else None))
    where = f"{model} stage {stage} B={batch} {mode} ghost={ghost} v={layout}"
    specs = [Spec("elsa_fwd", where, plan_elsa_fwd(v, attn, mul, add, y, ks, 1, DEFAULT,
                                                  has_mul, has_add))]
    if train:
        # dy arrives through y.permute(0, 2, 3, 1) and the output Linear: channels-last.
        dy = _t((batch, channels, hw, hw), y.dtype, (hw * hw * channels, 1, hw * channels, channels))
        bp = _block_p(DEFAULT, 32, hw * hw)
        num_p = -(-hw * hw // bp)
        chunks = elsa_chunks(DEFAULT, num_p, batch * heads, has_mul or has_add, sms)
        part = _t((batch * chunks, channels, k2), torch.float32)
        plan = plan_elsa_bwd(v, attn, mul, add, dy, _t(v.shape, vdt), _t(attn.shape, adt),
                             part if has_mul else v, part if has_add else v, ks, 1, DEFAULT,
                             has_mul, has_add, has_mul, has_add, chunks)
        specs.append(Spec("elsa_bwd", where, plan))
    return specs


def _elsa_fused_specs(model, stage, hw, channels, heads, batch, mode, ghost, layout, train, sms,
                      cfg=None):
    from .triton_elsa_fused import (
        DEFAULT,
        _tiles,
        fused_out_dtype,
        ghost_chunks,
        plan_fused_bwd,
        plan_fused_fwd,
        plan_fused_ghost,
    )

    cfg = cfg or DEFAULT
    ks = support.ELSA_KERNEL
    k2 = ks * ks
    # Autocast: pre_proj and the generator (convs) run in bf16 and so do the logits; the ghost
    # parameters stay float32.
    vdt, gdt = {"fp32": (torch.float32,) * 2, "bf16": (torch.bfloat16,) * 2,
                "autocast-bf16": (torch.bfloat16, torch.float32),
                "autocast-fp16": (torch.float16, torch.float32)}[mode]
    qk = -(-(channels // 3 * 2) // 8) * 8
    wide = 2 * qk + channels
    if layout == "nhwc":  # pre_proj applied to x.permute(0, 3, 1, 2): channels-last outputs
        pre = _t((batch, wide, hw, hw), vdt, (hw * hw * wide, 1, hw * wide, wide))
        gen = heads * k2
        logits = _t((batch, heads, k2, hw, hw), vdt,
                    (hw * hw * gen, k2, 1, hw * gen, gen))
    else:
        pre = _t((batch, wide, hw, hw), vdt)
        logits = _t((batch, heads, k2, hw, hw), vdt)
    v = pre[:, 2 * qk:]
    has_mul, has_add = ghost in ("both",), ghost in ("add", "both")
    mul = _t((channels, k2), gdt) if has_mul else v
    add = _t((channels, k2), gdt) if has_add else v
    y = _t((batch, hw, hw, channels), fused_out_dtype(v, logits))
    lse = _t((batch, heads, hw, hw), torch.float32)
    where = f"{model} stage {stage} B={batch} {mode} ghost={ghost} v={layout}"
    specs = [Spec("elsa_fused_fwd", where, plan_fused_fwd(v, logits, mul, add, y, lse, ks, 1,
                                                         cfg, has_mul, has_add))]
    if train:
        dy = _t(y.shape, y.dtype)  # the output Linear's input gradient: [B, H, W, C] dense
        dv = _t(v.shape, vdt, (hw * hw * channels, 1, hw * channels, channels)
                if layout == "nhwc" else None)
        dl = _t((batch, heads, k2, hw, hw), vdt)
        specs.append(Spec("elsa_fused_bwd", where, plan_fused_bwd(
            v, logits, mul, add, dy, lse, dv, dl, ks, 1, cfg, has_mul, has_add)))
        if has_mul or has_add:
            bh, bw = _tiles(cfg, hw, hw)
            chunks = ghost_chunks(cfg, -(-hw // bh) * -(-hw // bw), batch * heads, sms)
            part = _t((batch * chunks, channels, k2), torch.float32)
            specs.append(Spec("elsa_fused_ghost", where, plan_fused_ghost(
                v, logits, dy, lse, part, part, ks, 1, cfg, has_mul, has_add, chunks)))
    return specs


def _pwam_specs(model, stage, hw, channels, batch, dtype, train, sms):
    from .triton_pwam import DEFAULT, _blocks, plan_pwam_bwd, plan_pwam_fwd, pwam_chunks

    n, L = hw * hw, support.PWAM_WORDS
    # LAVT's single-head PWAM: q = f_query(x).view(B, 1, C, N).transpose(-1, -2), k, v alike.
    q = _t((batch, 1, n, channels), dtype, (channels * n, channels * n, 1, n))
    k = _t((batch, 1, L, channels), dtype, (channels * L, channels * L, 1, L))
    v = _t((batch, 1, L, channels), dtype, (channels * L, channels * L, 1, L))
    m = _t((batch, L), torch.float32)
    lse = _t((batch, 1, n), torch.float32)
    where = f"{model} stage {stage} B={batch} {str(dtype)[6:]} C={channels}"
    specs = [Spec("pwam_fwd", where, plan_pwam_fwd(q, k, v, m, _t((batch, 1, n, channels), dtype),
                                                  lse, channels**-0.5, DEFAULT))]
    if train:
        bm, bl, _, _ = _blocks(DEFAULT, n, L, channels, channels, dtype)
        chunks = pwam_chunks(DEFAULT, -(-n // bm), batch, sms)
        pk = _t((batch, chunks, bl, channels), torch.float32)
        plan = plan_pwam_bwd(q, k, v, m, _t(q.shape, dtype, q.stride()), lse, _t(q.shape, dtype),
                             pk, pk, channels**-0.5, DEFAULT, chunks)
        specs.append(Spec("pwam_bwd", where, plan))
    return specs


LEVELS = ("suite", "stage1", "full", "tiles")


def _tile_candidate_specs(models, stages, modes, sms) -> list[Spec]:
    """The fused ELSA kernel at each non-default tile shape the choice table may name."""
    from .tiles import ELSA_FUSED_CANDIDATES

    specs = []
    for cfg in ELSA_FUSED_CANDIDATES[1:]:
        for model, (embed, heads) in models.items():
            for stage in stages:
                hw = support.IMAGE // 4 // 2**stage
                for mode in modes:
                    specs += [Spec(s.kernel, f"{s.where} tiles={cfg.label}", s.plan) for s in
                              _elsa_fused_specs(model, stage + 1, hw, embed * 2**stage,
                                                heads[stage], 8, mode, "both", "nhwc", True, sms,
                                                cfg)]
    return specs


def specialisations(sms: int = 132, level: str = "full") -> list[Spec]:
    """The launches of the envelope in :mod:`rrsis.kernels.support`.

    ``level``: ``"full"`` (every model size, stage, batch, dtype mode, shift, ghost and layout);
    ``"stage1"`` (all of those at the Swin-B stage-1 shapes, training batch); ``"suite"`` (the
    default test suite's share: Swin-B stage 1, float32 and bfloat16, shift on, both ghost
    terms on, both ELSA layouts: each kernel's heaviest variants); ``"tiles"`` (the fused ELSA
    kernel's other tile shapes of :data:`~rrsis.kernels.tiles.ELSA_FUSED_CANDIDATES` at the
    Swin-B ELSA stages, the shapes and dtype the choice table measures them at; ``"full"``
    includes them at every model size and dtype mode).
    """
    if level not in LEVELS:
        raise ValueError(f"level {level!r}; expected one of {LEVELS}")
    if level == "tiles":
        return _tile_candidate_specs({"swin-b": support.MODELS["swin-b"]}, range(3),
                                     ("autocast-bf16",), sms)
    specs: list[Spec] = []
    full = level == "full"
    models = support.MODELS if full else {"swin-b": support.MODELS["swin-b"]}
    stages = range(4) if full else range(1)
    shifts = (support.WINDOW // 2,) if level == "suite" else (0, support.WINDOW // 2)
    ghosts = ("both",) if level == "suite" else ("add", "none", "both")
    modes = ("fp32", "autocast-bf16") if level == "suite" else ("fp32", "autocast-bf16", "bf16")
    for model, (embed, heads) in models.items():
        for stage in stages:
            hw = support.IMAGE // 4 // 2**stage
            hp = -(-hw // support.WINDOW) * support.WINDOW
            c, h = embed * 2**stage, heads[stage]
            for batch, train in ((8, True), (1, False)) if full else ((8, True),):
                for dtype in (torch.float32, torch.bfloat16):
                    for shift in shifts:
                        specs += _window_specs(model, stage + 1, hp, h, batch, shift, dtype,
                                               train, sms)
                    specs += _pwam_specs(model, stage + 1, hw, c, batch, dtype, train, sms)
                if stage < 3:  # GL-MSIN: ELSA in stages 1-3
                    for mode in modes:
                        for ghost in ghosts:
                            for layout in ("nhwc", "nchw"):
                                specs += _elsa_specs(model, stage + 1, hw, c, h, batch, mode,
                                                     ghost, layout, train, sms)
                                specs += _elsa_fused_specs(model, stage + 1, hw, c, h, batch,
                                                           mode, ghost, layout, train, sms)
    if level == "suite":
        return specs
    specs += _tile_candidate_specs(models, range(3), modes, sms)
    # float16 autocast and TF32-allowed float32: the Swin-B stage-1 shapes.
    specs += _window_specs("swin-b", 1, 120, 4, 8, 6, torch.float16, True, sms)
    specs += _pwam_specs("swin-b", 1, 120, 128, 8, torch.float16, True, sms)
    specs += _elsa_specs("swin-b", 1, 120, 128, 4, 8, "autocast-fp16", "add", "nhwc", True, sms)
    specs += _elsa_fused_specs("swin-b", 1, 120, 128, 4, 8, "autocast-fp16", "add", "nhwc", True,
                               sms)
    with _tf32():
        specs += [Spec(s.kernel, s.where + " tf32", s.plan) for s in
                  _window_specs("swin-b", 1, 120, 4, 8, 6, torch.float32, True, sms)
                  + _pwam_specs("swin-b", 1, 120, 128, 8, torch.float32, True, sms)]
    return specs


@contextlib.contextmanager
def _tf32():
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
