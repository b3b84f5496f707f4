"""Tests for rrsis.metrics against hand-computed numbers on small crafted cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from rrsis.metrics import ReferringMetrics, binarize, format_metrics

KEYS = ["oIoU", "mIoU", "P@0.5", "P@0.6", "P@0.7", "P@0.8", "P@0.9", "n"]


def _masks(shape, *boxes):
    """One bool mask per box ``(y0, y1, x0, x1)``; ``None`` gives an empty mask."""
    out = torch.zeros((len(boxes), *shape), dtype=torch.bool)
    for i, b in enumerate(boxes):
        if b is not None:
            y0, y1, x0, x1 = b
            out[i, y0:y1, x0:x1] = True
    return out


def test_hand_computed_case():
    # 4x4 images.
    # s0: pred rows 0-1 (8 px), gt row 0 (4 px): I=4, U=8, IoU=0.5 (exactly on the threshold).
    # s1: pred = gt = left half (8 px): I=8, U=8, IoU=1.
    # s2: pred 2x2 top-left, gt 2x2 bottom-right: I=0, U=8, IoU=0.
    # s3: pred 3x3 (9 px) inside gt 4x4 (16 px): I=9, U=16, IoU=0.5625.
    pred = _masks((4, 4), (0, 2, 0, 4), (0, 4, 0, 2), (0, 2, 0, 2), (0, 3, 0, 3))
    gt = _masks((4, 4), (0, 1, 0, 4), (0, 4, 0, 2), (2, 4, 2, 4), (0, 4, 0, 4))
    m = ReferringMetrics()
    m.update(pred, gt.long())
    r = m.compute()
    assert list(r) == KEYS
    assert r["n"] == 4
    assert r["oIoU"] == pytest.approx((4 + 8 + 0 + 9) / (8 + 8 + 8 + 16))
    assert r["mIoU"] == pytest.approx((0.5 + 1 + 0 + 0.5625) / 4)
    assert r["P@0.5"] == pytest.approx(3 / 4)  # 0.5 >= 0.5 counts
    assert r["P@0.6"] == pytest.approx(1 / 4)
    assert r["P@0.9"] == pytest.approx(1 / 4)
    np.testing.assert_array_equal(m.intersections, [4, 8, 0, 9])
    np.testing.assert_array_equal(m.unions, [8, 8, 8, 16])


def test_empty_target_conventions():
    # s0: empty pred, empty gt (U=0). s1: nonempty pred (3 px), empty gt: I=0, U=3.
    # s2: perfect 2 px.
    pred = _masks((3, 3), None, (0, 1, 0, 3), (2, 3, 0, 2))
    gt = _masks((3, 3), None, None, (2, 3, 0, 2))
    rmsin = ReferringMetrics()  # empty_iou=0.0 by default, as RMSIN's test.py
    rmsin.update(pred, gt)
    r = rmsin.compute()
    assert r["mIoU"] == pytest.approx((0 + 0 + 1) / 3)
    assert r["oIoU"] == pytest.approx(2 / (0 + 3 + 2))
    assert r["P@0.5"] == pytest.approx(1 / 3)
    grefcoco = ReferringMetrics(empty_iou=1.0)
    grefcoco.update(pred, gt)
    g = grefcoco.compute()
    assert g["mIoU"] == pytest.approx((1 + 0 + 1) / 3)
    assert g["P@0.9"] == pytest.approx(2 / 3)
    assert g["oIoU"] == pytest.approx(r["oIoU"])  # U=0 adds nothing to the sums
    only_empty = ReferringMetrics(empty_iou=1.0)
    only_empty.update(_masks((2, 2), None), _masks((2, 2), None))
    assert only_empty.compute()["oIoU"] == 1.0 and only_empty.compute()["mIoU"] == 1.0


@pytest.mark.parametrize("value", [2.0, -1.0, 1.0001, float("nan"), float("inf")])
def test_empty_iou_outside_unit_interval_refused(value):
    # 2 gave oIoU/mIoU of 200 % on empty pairs, -1 a negative mIoU.
    with pytest.raises(ValueError, match=r"empty_iou must be in \[0, 1\]"):
        ReferringMetrics(empty_iou=value)


def test_empty_iou_inside_unit_interval_used():
    m = ReferringMetrics(empty_iou=0.5)
    m.update(_masks((2, 2), None, (0, 1, 0, 1)), _masks((2, 2), None, (0, 1, 0, 1)))
    assert m.compute()["mIoU"] == pytest.approx((0.5 + 1) / 2)


def test_logits_and_streaming():
    gt = _masks((4, 4), (0, 2, 0, 2), (1, 4, 1, 4))
    pred = _masks((4, 4), (0, 2, 0, 3), (1, 4, 1, 4))
    logits2 = torch.stack([(~pred).float(), pred.float()], dim=1) * 3.0  # [B, 2, H, W]
    logits1 = (pred.float() * 2 - 1)[:, None]  # [B, 1, H, W]
    a, b, c = ReferringMetrics(), ReferringMetrics(), ReferringMetrics()
    a.update(pred, gt)
    b.update(logits2, gt)
    c.update(logits1[:1], gt[:1])  # two batches ...
    c.update(logits1[1:], gt[1:])
    assert a.compute() == b.compute() == c.compute()
    assert a.compute()["mIoU"] == pytest.approx((4 / 6 + 1) / 2)
    d = ReferringMetrics()
    d.update(pred[:1], gt[:1])
    e = ReferringMetrics()
    e.update(pred[1:], gt[1:])
    d.merge(e)
    assert d.compute() == a.compute()


def test_eval_size_resizes_gt_nearest():
    rng = np.random.default_rng(0)
    gt = rng.random((2, 13, 9)) > 0.5
    pred = rng.random((2, 8, 8)) > 0.5
    m = ReferringMetrics()  # eval at the prediction's size
    m.update(torch.from_numpy(pred), [torch.from_numpy(g) for g in gt])
    inter, union = [], []
    for p, g in zip(pred, gt):
        g8 = np.asarray(Image.fromarray(g.astype(np.uint8)).resize((8, 8), Image.NEAREST)) > 0
        inter.append((p & g8).sum())
        union.append((p | g8).sum())
    np.testing.assert_array_equal(m.intersections, inter)
    np.testing.assert_array_equal(m.unions, union)
    fixed = ReferringMetrics(eval_size=16)
    fixed.update(torch.from_numpy(pred), list(gt))  # numpy targets are accepted
    p16 = np.asarray(Image.fromarray(pred[0].astype(np.uint8)).resize((16, 16), Image.NEAREST))
    g16 = np.asarray(Image.fromarray(gt[0].astype(np.uint8)).resize((16, 16), Image.NEAREST))
    assert fixed.intersections[0] == (p16 & g16).sum()


def test_native_resolution_resizes_prediction():
    # A 2x2 prediction upsampled (nearest) to each target's own size.
    pred = torch.tensor([[[1, 0], [0, 0]], [[1, 1], [0, 0]]], dtype=torch.bool)
    gt_a = torch.zeros(4, 6, dtype=torch.long)
    gt_a[:2, :3] = 1  # exactly the top-left quarter
    gt_b = torch.zeros(6, 4, dtype=torch.long)
    gt_b[:2, :] = 1  # 8 px; the prediction's top row becomes rows 0-2 (12 px)
    m = ReferringMetrics(resolution="native")
    m.update(pred, [gt_a, gt_b])
    np.testing.assert_array_equal(m.intersections, [6, 8])
    np.testing.assert_array_equal(m.unions, [6, 12])
    # Logits are resized bilinearly before the argmax.
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 1, 0, 0] = 1.0
    assert binarize(logits, (4, 4)).shape == (1, 4, 4)


def test_empty_accumulator_and_errors():
    with pytest.raises(ValueError, match="no samples"):  # not NaN: it would reach JSON files
        ReferringMetrics().compute()
    with pytest.raises(ValueError, match="resolution"):
        ReferringMetrics(resolution="full")
    with pytest.raises(ValueError, match="targets"):
        ReferringMetrics().update(torch.zeros(2, 3, 3), torch.zeros(1, 3, 3))


def test_format_metrics():
    res = {"oIoU": 0.75, "mIoU": 0.5, "P@0.5": 2 / 3, "P@0.6": 1 / 3, "P@0.7": 1 / 3,
           "P@0.8": 1 / 3, "P@0.9": 0.0, "n": 3}
    text = format_metrics(res, title="val")
    header, row = text.splitlines()
    assert header.split() == KEYS
    assert row.split() == ["val", "75.00", "50.00", "66.67", "33.33", "33.33", "33.33", "0.00", "3"]
    multi = format_metrics({"val": res, "test": dict(res, n=10)}, percent=False)
    lines = multi.splitlines()
    assert len(lines) == 3 and lines[2].split()[0] == "test" and lines[2].split()[1] == "0.75"
    assert lines[2].split()[-1] == "10"
