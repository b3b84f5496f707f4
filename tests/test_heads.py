"""Segmentation heads (rrsis/heads/)."""

import pytest
import torch

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
