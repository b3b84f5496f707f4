"""``RRSISModel.set_grad_checkpointing``: the same loss and gradients as the plain model, with the
backbone's blocks, each stage's fusion and the BERT layers recomputed in the backward pass."""

from __future__ import annotations

import pytest
import torch

import rrsis
from rrsis import ReferringLoss

SIZE = 64


def _batch():
    g = torch.Generator().manual_seed(1)
    pixels = torch.randn(2, 3, SIZE, SIZE, generator=g)
    ids = torch.randint(1, 100, (2, 8), generator=g)
    mask = torch.ones(2, 8, dtype=torch.long)
    mask[1, 5:] = 0
    target = (torch.rand(2, SIZE, SIZE, generator=g) > 0.6).long()
    return pixels, ids, mask, target


def _step(name: str, checkpointing: bool, **overrides):
    """Loss and every parameter's gradient of one training step of a freshly seeded model."""
    torch.manual_seed(0)
    model = rrsis.create_model(name, image_size=SIZE, **overrides).train()
    if checkpointing:
        assert model.set_grad_checkpointing() is model
    pixels, ids, mask, target = _batch()
    torch.manual_seed(5)  # dropout and stochastic depth draw the same masks in both runs
    loss = ReferringLoss()(model(pixels, ids, mask), target)
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    return model, loss.detach(), grads


@pytest.mark.parametrize("name", ["gl-msin-tiny", "lavt-tiny", "rmsin-tiny"])
def test_checkpointed_loss_and_gradients_equal_the_plain_model(name):
    plain, loss, grads = _step(name, False)
    model, loss_ck, grads_ck = _step(name, True)
    assert not plain.grad_checkpointing and model.grad_checkpointing
    torch.testing.assert_close(loss_ck, loss, atol=1e-6, rtol=0)
    assert grads_ck.keys() == grads.keys() and len(grads) > 50
    for key, g in grads.items():
        torch.testing.assert_close(grads_ck[key], g, atol=1e-6, rtol=1e-5, msg=key)
    # BatchNorm running statistics (RMSIN's visual branch, the heads) are updated once, as without.
    for (key, b), b_ck in zip(plain.named_buffers(), model.buffers()):
        torch.testing.assert_close(b_ck, b, msg=key)


def test_dropout_draws_the_same_masks_when_recomputed():
    # GL-MSIN-tiny with real dropout in BERT and PWAM and stochastic depth in the blocks.
    kw = {"text_dropout": 0.2, "fusion_drop": 0.2, "drop_path_rate": 0.3}
    _, loss, grads = _step("gl-msin-tiny", False, **kw)
    _, loss_ck, grads_ck = _step("gl-msin-tiny", True, **kw)
    torch.testing.assert_close(loss_ck, loss, atol=1e-6, rtol=0)
    for key, g in grads.items():
        torch.testing.assert_close(grads_ck[key], g, atol=1e-6, rtol=1e-5, msg=key)


def _calls(model, mode: str, grad: bool = True) -> tuple[int, int, int]:
    """Forward calls of the first Swin/ELSA block, the first stage's fusion and the first BERT
    layer in one step (forward, and backward when training with autograd), and the bytes
    autograd saved for the backward pass."""
    stage = model.backbone.layers[0]
    # (a BERT layer's own hooks stay outside its checkpoint: count its attention)
    counted = [stage.blocks[0], stage.fusion, model.text_encoder.bert.encoder.layer[0].attention]
    calls = [0, 0, 0]
    hooks = [m.register_forward_pre_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
             for i, m in enumerate(counted)]
    saved = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t

    pixels, ids, mask, target = _batch()
    getattr(model, mode)()
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.set_grad_enabled(grad):
            loss = ReferringLoss()(model(pixels, ids, mask), target)
        if grad:
            loss.backward()
    finally:
        for h in hooks:
            h.remove()
    return tuple(calls), sum(saved)


def test_blocks_fusion_and_bert_layers_are_recomputed_in_training_only():
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", image_size=SIZE)
    plain_calls, plain_saved = _calls(model, "train")
    assert plain_calls == (1, 1, 1)
    model.set_grad_checkpointing()
    calls, saved = _calls(model, "train")
    assert calls == (2, 2, 2)  # once forward, once again in the backward pass
    assert saved < plain_saved / 2  # only each piece's inputs are kept
    # Evaluation mode, or no autograd: nothing is recomputed.
    assert _calls(model, "eval")[0] == (1, 1, 1)
    assert _calls(model, "train", grad=False)[0] == (1, 1, 1)
    model.set_grad_checkpointing(False)
    assert not model.grad_checkpointing
    assert _calls(model, "train") == (plain_calls, plain_saved)


def test_switch_is_runtime_only_and_checked(tmp_path):
    torch.manual_seed(0)
    model = rrsis.create_model("lavt-tiny", image_size=SIZE).set_grad_checkpointing()
    assert all(layer.gradient_checkpointing for layer in model.text_encoder.bert.encoder.layer)
    assert all(stage.grad_checkpointing for stage in model.backbone.layers)
    # Not part of the model's config or weights: a saved model loads with it off.
    model.save_pretrained(tmp_path / "m")
    again = rrsis.from_pretrained(tmp_path / "m")
    assert not again.grad_checkpointing and again.config == model.config
    with pytest.raises(TypeError, match="enable must be True or False"):
        model.set_grad_checkpointing("yes")


def test_a_model_without_checkpointable_parts_says_so():
    from rrsis.models.base import RRSISModel

    class Bare(RRSISModel):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 2, 1)

    bare = Bare()
    assert not bare.grad_checkpointing
    bare.set_grad_checkpointing(False)  # switching off is always possible
    with pytest.raises(ValueError, match="Bare has no part that supports gradient checkpointing"):
        bare.set_grad_checkpointing()


def test_the_kernels_custom_ops_recompute_too(monkeypatch):
    # RRSIS_KERNELS=triton on a CPU: every attention runs through its torch.library custom op
    # (the PyTorch reference inside, no interpreter), with its registered backward.
    pytest.importorskip("triton")
    from rrsis.kernels import ops

    monkeypatch.setenv("RRSIS_KERNELS", "triton")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    seen = []
    for name in ("window_attention_op", "elsa_aggregate_op", "elsa_attention_op", "pixel_word_attention_op"):
        real = getattr(ops, name)
        monkeypatch.setattr(ops, name, lambda *a, _real=real, _name=name, **k: seen.append(_name) or _real(*a, **k))
    _, loss, grads = _step("gl-msin-tiny", False)
    plain_ops = len(seen)
    _, loss_ck, grads_ck = _step("gl-msin-tiny", True)
    assert plain_ops and len(seen) == 3 * plain_ops  # the forward, then again in the backward
    torch.testing.assert_close(loss_ck, loss, atol=1e-6, rtol=0)
    for key, g in grads.items():
        torch.testing.assert_close(grads_ck[key], g, atol=1e-6, rtol=1e-5, msg=key)
