"""Segmentation heads (rrsis/heads/)."""

import pytest
import torch
import torch.nn.functional as F

from rrsis.heads import IterativeRefinementHead, SimpleDecoder


def feats(b=2, dims=(8, 16, 32, 64), size=32):
    return [torch.randn(b, c, size // 2**i, size // 2**i) for i, c in enumerate(dims)]


def test_simple_decoder_shapes_and_names():
    dec = SimpleDecoder([8, 16, 32, 64]).eval()
    logits, aux = dec(feats())
    assert logits.shape == (2, 2, 32, 32) and aux == []
    names = {k.split(".")[0] for k in dec.state_dict()}
    assert names == {"conv1_4", "bn1_4", "conv2_4", "bn2_4", "conv1_3", "bn1_3", "conv2_3", "bn2_3",
                     "conv1_2", "bn1_2", "conv2_2", "bn2_2", "conv1_1"}
    assert dec.conv1_4.out_channels == 32  # LAVT: hidden = C4 // 2


@pytest.mark.parametrize("steps", [0, 1, 3])
def test_refinement_head_outputs_one_prediction_per_step(steps):
    head = IterativeRefinementHead([8, 16, 32, 64], hidden=16, steps=steps).eval()
    logits, aux = head(feats())
    assert logits.shape == (2, 2, 32, 32)
    assert len(aux) == steps and all(a.shape == logits.shape for a in aux)


def test_refinement_fusion_weights_are_normalised_and_learned():
    head = IterativeRefinementHead([8, 16, 32, 64], hidden=16, steps=2)
    with torch.no_grad():
        head.fusion_weights.copy_(torch.tensor([2.0, -1.0, 1.0, 1.0]))
    w = head.normalized_weights()
    assert (w >= 0).all() and w[1] == 0
    torch.testing.assert_close(w.sum(), torch.tensor(1.0), atol=1e-3, rtol=0)
    logits, aux = head(feats())
    (logits.sum() + sum(a.sum() for a in aux)).backward()
    assert head.fusion_weights.grad is not None and head.fusion_weights.grad.abs().sum() > 0


def test_refinement_is_conditioned_on_the_current_mask():
    torch.manual_seed(0)
    head = IterativeRefinementHead([8, 16, 32, 64], hidden=16, steps=1).eval()
    f = feats()
    with torch.no_grad():
        base, _ = head(f)
        head.pred[0].bias.add_(torch.tensor([5.0, -5.0]))  # change only the first mask
        moved, _ = head(f)
    assert not torch.allclose(base, moved)


# ---------------------------------------------------------------- values against functional references


def _bn(x, bn):
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def _randomise_bn(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def test_simple_decoder_values_match_a_functional_reference():
    torch.manual_seed(0)
    dec = SimpleDecoder([8, 16, 32, 64]).eval()
    _randomise_bn(dec)
    f = feats(b=1)

    def step(tag, x):
        x = F.relu(_bn(F.conv2d(x, getattr(dec, f"conv1_{tag}").weight, padding=1), getattr(dec, f"bn1_{tag}")))
        return F.relu(_bn(F.conv2d(x, getattr(dec, f"conv2_{tag}").weight, padding=1), getattr(dec, f"bn2_{tag}")))

    def up(x, ref):
        return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=True)

    c1, c2, c3, c4 = f
    x = step("4", torch.cat([up(c4, c3), c3], 1))
    x = step("3", torch.cat([up(x, c2), c2], 1))
    x = step("2", torch.cat([up(x, c1), c1], 1))
    expect = F.conv2d(x, dec.conv1_1.weight, dec.conv1_1.bias)
    with torch.no_grad():
        torch.testing.assert_close(dec(f)[0], expect, rtol=1e-5, atol=1e-6)


def test_refinement_head_values_match_a_functional_reference():
    torch.manual_seed(0)
    head = IterativeRefinementHead([8, 16, 32, 64], hidden=16, steps=2).eval()
    _randomise_bn(head)
    with torch.no_grad():
        head.fusion_weights.copy_(torch.tensor([0.5, 2.0, -1.0, 1.0]))
    f = feats(b=1)

    def cbr(x, seq):
        conv, bn = seq[0], seq[1]
        return F.relu(_bn(F.conv2d(x, conv.weight, padding=conv.kernel_size[0] // 2), bn))

    w = torch.tensor([0.5, 2.0, 0.0, 1.0]) / (3.5 + 1e-4)  # ReLU then normalise
    fused = sum(w[i] * F.interpolate(cbr(x, head.proj[i]), size=(32, 32), mode="bilinear", align_corners=False)
                for i, x in enumerate(f))
    f0 = cbr(fused, head.fuse)
    x, preds = f0, [F.conv2d(f0, head.pred[0].weight, head.pred[0].bias)]
    for t in range(2):
        r = cbr(cbr(torch.cat([x, f0, preds[-1].softmax(1)], 1), head.refine[t][0]), head.refine[t][1])
        x = x + r
        preds.append(F.conv2d(x, head.pred[t + 1].weight, head.pred[t + 1].bias))
    with torch.no_grad():
        logits, aux = head(f)
    torch.testing.assert_close(logits, preds[-1], rtol=1e-5, atol=1e-6)
    for a, b in zip(aux, preds[:-1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_arc_tables_stay_real_when_first_imported_under_a_meta_device():
    """Building a model on the meta device may be the first import of the ARC head; its
    module-level rotation tables must still hold numbers (a later real forward reads them)."""
    import subprocess
    import sys

    code = ("import torch\nwith torch.device('meta'):\n    import rrsis.heads.arc as arc\n"
            "print(arc._POS_TABLE.device.type, arc._NEG_TABLE.device.type)")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["cpu", "cpu"]
