"""torch.compile over the kernel custom ops, and the dispatcher's envelope (CPU, fake tensors).

``RRSIS_KERNELS=triton`` routes every ELSA, window-attention and PWAM call of a tiny GL-MSIN
through the ``rrsis::`` custom ops; ``torch.compile(fullgraph=True)`` must trace forward and
backward through them (their fake implementations) without a graph break, and the compiled
graph must compute what the eager reference computes.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import rrsis
import rrsis.kernels as dispatch
from rrsis.kernels import support

pytest.importorskip("triton")

OPS = {"window_attention", "elsa_attention", "pixel_word_attention"}


def _inputs(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randn(2, 3, 64, 64, generator=g)
    vocab = model.text_encoder.config.vocab_size
    ids = torch.randint(1, vocab, (2, 6), generator=g)
    mask = torch.ones(2, 6, dtype=torch.long)
    mask[1, 4:] = 0
    return pixels, ids, mask


def _loss_and_grads(model, fn, inputs):
    model.zero_grad(set_to_none=True)
    out = fn(*inputs)
    loss = out.logits.float().square().mean() + sum(a.float().mean() for a in out.aux_logits)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.logits.detach(), grads


@pytest.mark.slow  # 20 s; compile_model's forward+backward trace below keeps the custom ops in the default suite
def test_compile_fullgraph_traces_kernel_custom_ops(monkeypatch):
    # Inside the ops, CPU tensors take the reference (the interpreter would only add minutes):
    # what is checked here is the tracing and the ops' autograd wiring, against eager autograd.
    from rrsis.kernels import ops

    monkeypatch.setattr(ops, "_kernels_run", lambda *tensors: False)
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", drop_path_rate=0.0).eval()
    inputs = _inputs(model)

    monkeypatch.setenv("RRSIS_KERNELS", "torch")
    ref_logits, ref_grads = _loss_and_grads(model, model._forward, inputs)

    graphs = {"fw": [], "bw": []}

    def capture(kind):
        def compiler(gm, example_inputs):
            graphs[kind].append(gm)
            return gm.forward
        return compiler

    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    backend = aot_autograd(fw_compiler=lambda gm, ex: make_boxed_func(capture("fw")(gm, ex)),
                           bw_compiler=lambda gm, ex: make_boxed_func(capture("bw")(gm, ex)))
    monkeypatch.setenv("RRSIS_KERNELS", "triton")
    torch._dynamo.reset()
    compiled = torch.compile(model._forward, backend=backend, fullgraph=True)
    logits, grads = _loss_and_grads(model, compiled, inputs)
    torch._dynamo.reset()

    def targets(kind):
        return {str(n.target) for gm in graphs[kind] for n in gm.graph.nodes
                if n.op == "call_function" and str(n.target).startswith("rrsis.")}

    assert len(graphs["fw"]) == 1 and len(graphs["bw"]) == 1, "expected one graph each way"
    assert {f"rrsis.{op}.default" for op in OPS} <= targets("fw")
    assert {f"rrsis.{op}_backward.default" for op in OPS} <= targets("bw")
    torch.testing.assert_close(logits, ref_logits, atol=1e-4, rtol=1e-4)
    assert grads.keys() == ref_grads.keys()
    for name, g in grads.items():
        torch.testing.assert_close(g, ref_grads[name], atol=1e-4, rtol=1e-3, msg=name)


def test_explain_counts_no_graph_break(monkeypatch):
    monkeypatch.setenv("RRSIS_KERNELS", "triton")
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 4, 4, 1, 16, generator=g) for _ in range(3))
    rb = torch.randn(1, 16, 16, generator=g)
    a = torch.randn(1, 2, 9, 4, 4, generator=g).softmax(2)

    def f(q, k, v, rb, a):
        y = dispatch.window_attention(q, k, v, rb, 4, 2, 0.25)
        z = dispatch.elsa_aggregate(y.permute(0, 4, 3, 1, 2).reshape(1, 16, 4, 4), a, None,
                                    None, 3, 1)
        return z.sum()

    torch._dynamo.reset()
    explanation = torch._dynamo.explain(f)(q, k, v, rb, a)
    torch._dynamo.reset()
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


# ----------------------------------------------------------------------------- envelope


def _fake_cuda(*shapes, dtype=torch.bfloat16):
    return [torch.empty(s, device="cuda", dtype=dtype) for s in shapes]


@pytest.mark.parametrize("kernel_setting", ["triton", "auto"])
def test_dispatcher_keeps_cuda_calls_inside_the_envelope(monkeypatch, kernel_setting):
    monkeypatch.setenv("RRSIS_KERNELS", kernel_setting)
    sent = []
    ops = dispatch._triton_module()
    monkeypatch.setattr(ops, "window_attention", lambda *a: sent.append("window"))
    monkeypatch.setattr(ops, "elsa_aggregate", lambda *a: sent.append("elsa"))
    monkeypatch.setattr(ops, "elsa_attention", lambda *a: sent.append("elsa_attention"))
    monkeypatch.setattr(ops, "pixel_word_attention", lambda *a: sent.append("pwam"))
    with FakeTensorMode():
        # Inside: Swin-B stage-1 shapes.
        q, k, v = _fake_cuda(*[(1, 24, 24, 4, 32)] * 3)
        (rb,) = _fake_cuda((4, 144, 144), dtype=torch.float32)
        dispatch.window_attention(q, k, v, rb, 12, 6, 32**-0.5)
        vv, a = _fake_cuda((1, 128, 8, 8), (1, 4, 49, 8, 8))
        dispatch.elsa_aggregate(vv, a, None, None, 7, 1)
        dispatch.elsa_attention(vv, a, None, None, 7, 1)
        pq, pk, pv = _fake_cuda((1, 1, 64, 128), (1, 1, 20, 128), (1, 1, 20, 128))
        (m,) = _fake_cuda((1, 20), dtype=torch.float32)
        dispatch.pixel_word_attention(pq, pk, pv, m, 0.1)
        # (auto: PWAM's default is the eager reference, measured faster than its kernel)
        inside = ["window", "elsa", "elsa_attention"] + ["pwam"] * (kernel_setting == "triton")
        assert sent == inside

        # Outside: each call names what was not compiled; auto falls back to the reference.
        outside = [
            ("window 8", lambda: dispatch.window_attention(
                *_fake_cuda(*[(1, 16, 16, 4, 32)] * 3), rb[:, :64, :64], 8, 0, 0.2)),
            ("head dim 64", lambda: dispatch.window_attention(
                *_fake_cuda(*[(1, 24, 24, 4, 64)] * 3), rb, 12, 0, 0.2)),
            ("float64", lambda: dispatch.window_attention(
                *_fake_cuda(*[(1, 24, 24, 4, 32)] * 3, dtype=torch.float64), rb, 12, 0, 0.2)),
            ("kernel size 5", lambda: dispatch.elsa_aggregate(
                vv, _fake_cuda((1, 4, 25, 8, 8))[0], None, None, 5, 1)),
            ("dilation 2", lambda: dispatch.elsa_aggregate(vv, a, None, None, 7, 2)),
            ("dilation 2", lambda: dispatch.elsa_attention(vv, a, None, None, 7, 2)),
            ("64 channels per head", lambda: dispatch.elsa_aggregate(
                vv, _fake_cuda((1, 2, 49, 8, 8))[0], None, None, 7, 1)),
            ("2 heads", lambda: dispatch.pixel_word_attention(
                *_fake_cuda((1, 2, 64, 64), (1, 2, 20, 64), (1, 2, 20, 64)), m, 0.1)),
            ("40 words", lambda: dispatch.pixel_word_attention(
                pq, *_fake_cuda((1, 1, 40, 128), (1, 1, 40, 128)),
                _fake_cuda((1, 40), dtype=torch.float32)[0], 0.1)),
            ("100 channels", lambda: dispatch.pixel_word_attention(
                *_fake_cuda((1, 1, 64, 100), (1, 1, 20, 100), (1, 1, 20, 100)), m, 0.1)),
        ]
        for words, call in outside:
            if kernel_setting == "triton":
                with pytest.raises(ValueError, match=f"{words}.*RRSIS_KERNELS=torch"):
                    call()
            else:
                call()
        assert sent == inside, "an untested configuration reached a kernel"


def test_envelope_matches_the_models():
    # Every Swin-B/S/T stage of a 480×480 input is inside; the sm_90 compile covers these.
    for embed, heads in support.MODELS.values():
        for stage, h in enumerate(heads):
            c = embed * 2**stage
            for dtype in (torch.float32, torch.bfloat16):
                assert support.unsupported("window_attention", dtype=dtype, window=12,
                                           head_dim=c // h) is None
                assert support.unsupported("pixel_word_attention", dtype=dtype, heads=1,
                                           words=20, channels=c) is None
                if stage < 3:
                    assert support.unsupported("elsa_aggregate", dtype=dtype, kernel_size=7,
                                               dilation=1, channels_per_head=c // h) is None
    with pytest.raises(ValueError, match="unknown kernel op"):
        support.unsupported("conv", dtype=torch.float32)


# ----------------------------------------------------------------------------- whole model


def test_compile_model_traces_forward_and_backward_in_one_graph_each(monkeypatch):
    # The public way in: compile_model on the model itself (forward with its input checks).
    from rrsis.kernels import ops

    monkeypatch.setattr(ops, "_kernels_run", lambda *tensors: False)
    torch.manual_seed(0)
    # One block in each ELSA stage, two in the Swin stage: every block kind (ELSA, W-MSA, SW-MSA)
    # is traced, with less to trace than the tiny model's two blocks per stage. No dropout draws.
    model = rrsis.create_model("gl-msin-tiny", depths=[1, 1, 1, 2], drop_path_rate=0.0).eval()
    inputs = _inputs(model)
    monkeypatch.setenv("RRSIS_KERNELS", "torch")
    ref_logits, ref_grads = _loss_and_grads(model, model, inputs)

    graphs = {"fw": 0, "bw": 0}

    def counting(kind):
        def compiler(gm, example_inputs):
            graphs[kind] += 1
            return gm.forward
        return compiler

    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    backend = aot_autograd(fw_compiler=lambda gm, ex: make_boxed_func(counting("fw")(gm, ex)),
                           bw_compiler=lambda gm, ex: make_boxed_func(counting("bw")(gm, ex)))
    monkeypatch.setenv("RRSIS_KERNELS", "triton")
    torch._dynamo.reset()
    compiled = dispatch.compile_model(model, backend=backend)
    assert compiled is model and not any(k.startswith("_orig_mod") for k in model.state_dict())
    logits, grads = _loss_and_grads(model, model, inputs)
    torch._dynamo.reset()
    assert graphs == {"fw": 1, "bw": 1}  # fullgraph: a break would have raised
    torch.testing.assert_close(logits, ref_logits, atol=1e-4, rtol=1e-4)
    for name, g in grads.items():
        torch.testing.assert_close(g, ref_grads[name], atol=1e-4, rtol=1e-3, msg=name)


def test_compile_model_rejects_bad_arguments():
    with pytest.raises(TypeError, match="nn.Module"):
        dispatch.compile_model(lambda x: x)
    with pytest.raises(ValueError, match="compile mode 'fast'"):
        dispatch.compile_model(torch.nn.Linear(2, 2), mode="fast")


def test_check_inputs_reads_no_device_values():
    # Meta tensors have no values: any read (.any(), .tolist(), bool()) would raise. The
    # shape checks still run and still name the problem (the model on the meta device too: the
    # input's device and dtype are checked against the weights', as metadata).
    meta = torch.device("meta")
    model = rrsis.create_model("gl-msin-tiny").to(meta)
    pix = torch.empty(2, 3, 64, 64, device=meta)
    ids = torch.empty(2, 6, dtype=torch.long, device=meta)
    model.check_inputs(pix, ids, torch.empty(2, 6, dtype=torch.long, device=meta))
    with pytest.raises(ValueError, match="4 channels but this model takes 3"):
        model.check_inputs(torch.empty(2, 4, 64, 64, device=meta), ids, ids)
    with pytest.raises(ValueError, match="pixel_values is on meta but the model is on cpu"):
        rrsis.create_model("gl-msin-tiny").check_inputs(pix, ids, ids)
    model = rrsis.create_model("gl-msin-tiny")
    # On the host the values are read by default, and on request for any tensor.
    bad = torch.full((2, 3, 64, 64), float("nan"))
    mask = torch.ones(2, 6, dtype=torch.long)
    with pytest.raises(ValueError, match="NaN"):
        model.check_inputs(bad, torch.ones(2, 6, dtype=torch.long), mask)
    model.check_inputs(bad, torch.ones(2, 6, dtype=torch.long), mask, values=False)


# ----------------------------------------------------------------------------- choice table


def test_choice_table_routes_each_shape_to_its_provider(monkeypatch, tmp_path):
    import json

    from rrsis.kernels import reference as ref
    from rrsis.kernels import sdpa, table

    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(1, 4, 4, 1, 16, generator=g) for _ in range(3))
    rb = torch.randn(1, 16, 16, generator=g)
    pq = torch.randn(2, 1, 8, 16, generator=g)
    pk, pv = torch.randn(2, 1, 5, 16, generator=g), torch.randn(2, 1, 5, 16, generator=g)
    m = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    entries = {table.key("window_attention", torch.float32, (*q.shape, 2)): "sdpa",
               table.key("pixel_word_attention", torch.float32, (*pq.shape, 5)): "eager"}
    path = tmp_path / "table.json"
    path.write_text(json.dumps({"devices": {"cpu": entries}}))
    monkeypatch.setenv("RRSIS_KERNEL_TABLE", str(path))
    monkeypatch.setenv("RRSIS_KERNELS", "triton")
    table.reset()
    calls = []
    ops = dispatch._triton_module()
    monkeypatch.setattr(ops, "window_attention", lambda *a: calls.append("triton-window"))
    monkeypatch.setattr(ops, "pixel_word_attention", lambda *a: calls.append("triton-pwam"))
    real_sdpa = sdpa.window_attention
    monkeypatch.setattr(sdpa, "window_attention", lambda *a: calls.append("sdpa") or real_sdpa(*a))
    try:
        # In the table: SDPA for this window shape (and it computes the reference's result).
        out = dispatch.window_attention(q, k, v, rb, 4, 2, 0.25)
        torch.testing.assert_close(out, ref.window_attention(q, k, v, rb, 4, 2, 0.25))
        # Not in the table (another shift): the default, the kernel.
        dispatch.window_attention(q, k, v, rb, 4, 0, 0.25)
        out = dispatch.pixel_word_attention(pq, pk, pv, m, 0.25)
        torch.testing.assert_close(out, ref.pixel_word_attention(pq, pk, pv, m, 0.25))
        # Not in the table under an explicit RRSIS_KERNELS=triton: the kernel, for PWAM too.
        dispatch.pixel_word_attention(pq[:1], pk[:1], pv[:1], m[:1], 0.25)
        assert calls == ["sdpa", "triton-window", "triton-pwam"]
    finally:
        table.reset()


def test_choice_table_defaults_per_op(monkeypatch, tmp_path):
    """Without a table entry, ``auto`` uses each op's measured default (PWAM: eager) and an
    explicit ``RRSIS_KERNELS=triton`` the kernel; a table entry wins over both."""
    import json

    from rrsis.kernels import table

    shape = (8, 1, 900, 512, 20)
    path = tmp_path / "table.json"
    path.write_text(json.dumps({"devices": {"cpu": {
        table.key("pixel_word_attention", torch.bfloat16, shape): "sdpa"}}}))
    monkeypatch.setenv("RRSIS_KERNEL_TABLE", str(path))
    table.reset()
    try:
        t = torch.empty(1, dtype=torch.bfloat16)
        other = (8, 1, 3600, 256, 20)
        for env, pwam in (("auto", "eager"), ("triton", "triton")):
            monkeypatch.setenv("RRSIS_KERNELS", env)
            assert dispatch._provider("pixel_word_attention", t, other) == pwam
            assert dispatch._provider("pixel_word_attention", t, shape) == "sdpa"
            assert dispatch._provider("window_attention", t, (8, 120, 120, 4, 32, 0)) == "triton"
            assert dispatch._provider("elsa_attention", t, (8, 128, 120, 120, 4, True, True)) == "triton"
        # A CUDA device this machine cannot name (no GPU, or while compiling): the defaults.
        assert table.choose("pixel_word_attention", torch.device("cuda"), torch.bfloat16, other) == "eager"
        assert set(table.DEFAULTS) == set(table.APPLIES)
        assert all(p in table.APPLIES[op] for op, p in table.DEFAULTS.items())
        with pytest.raises(ValueError, match="unknown op 'conv'"):
            table.choose("conv", t.device, torch.bfloat16, other)
    finally:
        table.reset()


def test_choice_table_rejects_unknown_providers(tmp_path):
    import json

    from rrsis.kernels import table

    path = tmp_path / "t.json"
    path.write_text(json.dumps({"devices": {"cpu": {"elsa_attention:float32:1x2": "sdpa"}}}))
    with pytest.raises(ValueError, match="provider 'sdpa'.*triton, compiled, eager"):
        table.load(path)
    path.write_text(json.dumps({"devices": {"cpu": {"conv:float32:1": "eager"}}}))
    with pytest.raises(ValueError, match="unknown op 'conv'"):
        table.load(path)
    table.reset()
    assert table.load()  is not None  # the committed table parses
    table.reset()


def test_sdpa_paths_match_the_references():
    from rrsis.kernels import reference as ref
    from rrsis.kernels import sdpa

    g = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(2, 8, 8, 2, 8, generator=g, dtype=torch.float64) for _ in range(3))
    rb = torch.randn(2, 16, 16, generator=g, dtype=torch.float64)
    for shift in (0, 2):
        torch.testing.assert_close(sdpa.window_attention(q, k, v, rb, 4, shift, 0.3),
                                   ref.window_attention(q, k, v, rb, 4, shift, 0.3))
    pq = torch.randn(2, 1, 8, 16, generator=g, dtype=torch.float64)
    pk, pv = (torch.randn(2, 1, 5, 16, generator=g, dtype=torch.float64) for _ in range(2))
    m = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]])
    torch.testing.assert_close(sdpa.pixel_word_attention(pq, pk, pv, m, 0.2),
                               ref.pixel_word_attention(pq, pk, pv, m, 0.2))


def test_fused_elsa_op_compiles_fullgraph_with_the_kernel_inside(monkeypatch):
    # The interpreter runs the Triton kernels inside the compiled graph (one 8×8 tile).
    from rrsis.kernels import ops

    ran = []
    for name in ("elsa_fused_forward", "elsa_fused_backward"):
        real = getattr(ops._fused, name)
        monkeypatch.setattr(ops._fused, name,
                            lambda *a, _r=real, _n=name, **k: ran.append(_n) or _r(*a, **k))
    monkeypatch.setenv("RRSIS_KERNELS", "triton")
    g = torch.Generator().manual_seed(5)
    v = torch.randn(1, 4, 5, 6, generator=g, requires_grad=True)
    lg = torch.randn(1, 2, 9, 5, 6, generator=g, requires_grad=True)
    add = torch.randn(4, 9, generator=g, requires_grad=True)

    def f(v, lg, add):
        return dispatch.elsa_attention(v, lg, None, add, 3, 1).square().sum()

    torch._dynamo.reset()
    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    got = torch.autograd.grad(compiled(v, lg, add), (v, lg, add))
    torch._dynamo.reset()
    assert ran == ["elsa_fused_forward", "elsa_fused_backward"]
    monkeypatch.setenv("RRSIS_KERNELS", "torch")
    want = torch.autograd.grad(f(v, lg, add), (v, lg, add))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
