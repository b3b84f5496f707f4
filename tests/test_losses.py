"""The anchors' loss (rrsis/losses.py) against a hand computation."""

import pytest
import torch

from rrsis import ReferringLoss, SegmentationOutput
from rrsis.losses import dice_loss


def test_loss_matches_hand_computation():
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 3, 4, dtype=torch.float64)
    target = torch.randint(0, 2, (2, 3, 4))
    # weighted CE: Σ w_y · (−log p_y) / Σ w_y
    logp = logits.log_softmax(1)
    w = torch.tensor([0.9, 1.1], dtype=torch.float64)[target]
    nll = -logp.gather(1, target[:, None])[:, 0]
    ce = (w * nll).sum() / w.sum()
    p = logits.softmax(1)
    dice = 0.0
    for b in range(2):
        for c in range(2):
            t = (target[b] == c).double()
            dice += 1 - (2 * (p[b, c] * t).sum() + 1e-6) / (p[b, c].sum() + t.sum() + 1e-6)
    expect = 0.9 * ce + 0.1 * dice
    loss = ReferringLoss()
    torch.testing.assert_close(loss(logits, target).double(), expect, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(dice_loss(logits, target).double(), torch.as_tensor(dice), rtol=1e-6, atol=1e-6)


def _hand_loss(logits, target, ce_weight=0.9, dice_weight=0.1):
    """The anchors' loss written out: weighted CE (0.9 / 1.1) and the per-sample, per-class Dice sum."""
    logits = logits.double()
    w = torch.tensor([0.9, 1.1], dtype=torch.float64)[target]
    nll = -logits.log_softmax(1).gather(1, target[:, None])[:, 0]
    ce = (w * nll).sum() / w.sum()
    p = logits.softmax(1)
    dice = sum(1 - (2 * (p[b, c] * (target[b] == c)).sum() + 1e-6) / (p[b, c].sum() + (target[b] == c).sum() + 1e-6)
               for b in range(target.shape[0]) for c in range(2))
    return ce_weight * ce + dice_weight * dice


def test_loss_sums_over_deep_supervision_outputs():
    torch.manual_seed(0)
    a, b, c = (torch.randn(1, 2, 4, 4) for _ in range(3))
    target = torch.randint(0, 2, (1, 4, 4))
    out = SegmentationOutput(logits=a, aux_logits=[b, c])
    expect = _hand_loss(a, target) + _hand_loss(b, target) + _hand_loss(c, target)
    torch.testing.assert_close(ReferringLoss()(out, target).double(), expect, rtol=1e-5, atol=1e-6)
    half = _hand_loss(a, target) + 0.5 * (_hand_loss(b, target) + _hand_loss(c, target))
    torch.testing.assert_close(ReferringLoss(aux_weight=0.5)(out, target).double(), half, rtol=1e-5, atol=1e-6)
    # LAVT's CE-only loss: the weighted cross-entropy alone, with weight 1.
    ce_only = _hand_loss(a, target, ce_weight=1.0, dice_weight=0.0)
    torch.testing.assert_close(ReferringLoss(ce_weight=1.0, dice_weight=0.0)(a, target).double(), ce_only,
                               rtol=1e-5, atol=1e-6)


def test_perfect_prediction_has_low_loss():
    target = torch.randint(0, 2, (2, 8, 8))
    logits = torch.stack([(1 - target) * 20.0, target * 20.0], 1).float()
    assert ReferringLoss()(logits, target) < 1e-4


def test_a_mask_with_a_channel_axis_gives_the_same_loss():
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 4, 4)
    target = torch.randint(0, 2, (2, 4, 4))
    out = SegmentationOutput(logits=logits, aux_logits=[logits.flip(-1)])
    for crit in (ReferringLoss(), ReferringLoss(dice_weight=0.0)):
        torch.testing.assert_close(crit(out, target[:, None]), crit(out, target))
        torch.testing.assert_close(crit(logits, target[:, None].float()), crit(logits, target))


def test_targets_that_are_not_classes_0_and_1_are_refused_saying_how_to_convert():
    logits = torch.randn(1, 2, 4, 4)
    mask = torch.zeros(1, 4, 4, dtype=torch.uint8)
    mask[0, :2] = 255
    with pytest.raises(ValueError, match=r"class indices 0 \(background\) and 1 .* it holds 0, 255\. "
                                         r"A 0/255 mask converts with \(mask > 127\)\.long\(\)"):
        ReferringLoss()(SegmentationOutput(logits=logits, aux_logits=[]), mask)
    assert ReferringLoss()(logits, (mask > 127).long()) > 0  # the conversion the message gives
    with pytest.raises(ValueError, match=r"it holds 0, 0\.5"):
        ReferringLoss()(logits, mask.float() / 510)
    with pytest.raises(ValueError, match=r"target must be \[B, H, W\] \(or \[B, 1, H, W\]\).*\(1, 2, 4, 4\)"):
        ReferringLoss()(logits, torch.zeros(1, 2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"target size \(2, 2\) != logits size \(4, 4\)"):
        ReferringLoss()(logits, torch.zeros(1, 2, 2, dtype=torch.long))
