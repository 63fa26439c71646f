"""Confusion-matrix metrics and boundary IoU against hand-computed cases and torchmetrics."""

from __future__ import annotations

import math

import pytest
import torch

from refinenet.engine import metrics
from refinenet.engine.metrics import (
    BoundaryIoU,
    ConfusionMatrix,
    boundary_band,
    boundary_dilation,
    boundary_iou,
    confusion_matrix,
    label_band,
    scores_from_confusion,
)

IGNORE = 255


def test_confusion_matrix_by_hand():
    target = torch.tensor([[0, 0, 1, 1], [2, 2, IGNORE, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 2, 2]])
    cm = confusion_matrix(pred, target, 3, IGNORE)
    # rows truth, columns prediction; the ignored pixel (truth 255, pred 2) is not counted
    expected = torch.tensor([[1, 1, 0], [0, 2, 1], [1, 0, 1]])
    assert torch.equal(cm, expected)
    assert cm.dtype == torch.int64


def test_scores_by_hand():
    cm = torch.tensor([[1, 1, 0], [0, 2, 1], [1, 0, 1]])
    s = scores_from_confusion(cm, ["a", "b", "c"])
    # IoU_c = tp / (row + col - tp)
    assert s["iou"] == pytest.approx([1 / (2 + 2 - 1), 2 / (3 + 3 - 2), 1 / (2 + 2 - 1)])
    assert s["miou"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 3) / 3)
    assert s["pixel_accuracy"] == pytest.approx(4 / 7)
    assert s["mean_class_accuracy"] == pytest.approx((1 / 2 + 2 / 3 + 1 / 2) / 3)
    assert s["pixels"] == 7
    assert s["class_names"] == ["a", "b", "c"]


def test_absent_class_is_nan_and_left_out_of_means():
    target = torch.tensor([0, 0, 1, 1])
    pred = torch.tensor([0, 0, 1, 0])
    s = scores_from_confusion(confusion_matrix(pred, target, 3))
    assert math.isnan(s["iou"][2]) and math.isnan(s["class_accuracy"][2])
    assert s["miou"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert s["mean_class_accuracy"] == pytest.approx((1 + 1 / 2) / 2)
    # predicted but never true: IoU 0 (not NaN), class accuracy NaN
    s = scores_from_confusion(confusion_matrix(torch.tensor([2, 0]), torch.tensor([0, 0]), 3))
    assert s["iou"][2] == 0.0 and math.isnan(s["class_accuracy"][2])


def test_ignore_only_gives_nan_not_error():
    s = scores_from_confusion(confusion_matrix(torch.zeros(4, dtype=torch.long), torch.full((4,), IGNORE), 2, IGNORE))
    assert s["pixels"] == 0 and math.isnan(s["miou"]) and math.isnan(s["pixel_accuracy"])


def test_bad_labels_and_shapes_are_reported():
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 7]), 3, IGNORE)
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 2, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="integer"):
        confusion_matrix(torch.zeros(3), torch.zeros(3, dtype=torch.long), 3)


def test_accumulating_batches_equals_one_pass():
    g = torch.Generator().manual_seed(1)
    pred = torch.randint(0, 5, (6, 16, 16), generator=g)
    target = torch.randint(0, 5, (6, 16, 16), generator=g)
    target[target == 4] = IGNORE
    acc = ConfusionMatrix(5, IGNORE)
    for i in range(0, 6, 2):
        acc.update(pred[i : i + 2], target[i : i + 2])
    assert torch.equal(acc.matrix, confusion_matrix(pred, target, 5, IGNORE))


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_torchmetrics_on_random_data(seed):
    tm = pytest.importorskip("torchmetrics.classification")
    g = torch.Generator().manual_seed(seed)
    num_classes = 6
    target = torch.randint(0, num_classes, (4, 32, 32), generator=g)
    pred = torch.where(torch.rand(target.shape, generator=g) < 0.6, target, torch.randint(0, num_classes, target.shape, generator=g))
    target[torch.rand(target.shape, generator=g) < 0.1] = IGNORE
    ours = scores_from_confusion(confusion_matrix(pred, target, num_classes, IGNORE))

    iou = tm.MulticlassJaccardIndex(num_classes, ignore_index=IGNORE, average="none")(pred, target)
    assert torch.allclose(torch.tensor(ours["iou"], dtype=torch.float32), iou.float(), atol=1e-6)
    miou = tm.MulticlassJaccardIndex(num_classes, ignore_index=IGNORE, average="macro")(pred, target)
    assert ours["miou"] == pytest.approx(float(miou), abs=1e-6)
    pixel = tm.MulticlassAccuracy(num_classes, ignore_index=IGNORE, average="micro")(pred, target)
    assert ours["pixel_accuracy"] == pytest.approx(float(pixel), abs=1e-6)
    mean_acc = tm.MulticlassAccuracy(num_classes, ignore_index=IGNORE, average="macro")(pred, target)
    assert ours["mean_class_accuracy"] == pytest.approx(float(mean_acc), abs=1e-6)


# -- boundary IoU ----------------------------------------------------------------------------


def _square(size: int, top: int, left: int, side: int) -> torch.Tensor:
    m = torch.zeros(size, size, dtype=torch.bool)
    m[top : top + side, left : left + side] = True
    return m


def _band_reference(mask: torch.Tensor, d: int) -> torch.Tensor:
    """Slow, obvious version: a mask pixel is in the band if some pixel within Chebyshev
    distance d is background or outside the image."""
    h, w = mask.shape
    out = torch.zeros_like(mask)
    for y in range(h):
        for x in range(w):
            if not mask[y, x]:
                continue
            for dy in range(-d, d + 1):
                for dx in range(-d, d + 1):
                    yy, xx = y + dy, x + dx
                    if not (0 <= yy < h and 0 <= xx < w) or not mask[yy, xx]:
                        out[y, x] = True
    return out


def test_dilation_width_is_two_percent_of_the_diagonal():
    assert boundary_dilation(360, 480) == 12  # diagonal 600
    assert boundary_dilation(64, 64) == 2  # 0.02 * 90.5 = 1.81
    assert boundary_dilation(10, 10) == 1  # at least one pixel


def test_band_of_a_square_by_hand():
    sq = _square(20, 5, 5, 10)
    assert int(boundary_band(sq, 1).sum()) == 100 - 8 * 8
    assert int(boundary_band(sq, 2).sum()) == 100 - 6 * 6
    assert int(boundary_band(sq, 5).sum()) == 100  # thinner than the band: all of it
    # the image border counts as a contour
    full = torch.ones(12, 10, dtype=torch.bool)
    assert int(boundary_band(full, 1).sum()) == 12 * 10 - 10 * 8


def test_band_matches_reference_on_random_shapes():
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(3, 15, 17, generator=g) < 0.6
    for d in (1, 2, 3):
        got = boundary_band(masks, d)
        for i in range(3):
            assert torch.equal(got[i], _band_reference(masks[i], d)), f"d={d}, mask {i}"


def test_boundary_iou_of_a_shifted_square_by_hand():
    # 20x20 image: d = round(0.02 * 28.3) = 1. Truth: 10x10 square; prediction: the same
    # square one pixel to the right. Each band is the square's 36-pixel ring; the rings share
    # the top and bottom rows except one end each: 9 + 9 = 18 pixels. IoU = 18 / (36+36-18).
    truth = _square(20, 5, 5, 10).long()
    pred = _square(20, 5, 6, 10).long()
    r = boundary_iou(pred, truth, num_classes=2)
    assert r["boundary_iou_per_class"][1] == pytest.approx(18 / 54)
    # background: compare with the reference bands
    gt0, pr0 = _band_reference(truth == 0, 1), _band_reference(pred == 0, 1)
    expected0 = int((gt0 & pr0).sum()) / int((gt0 | pr0).sum())
    assert r["boundary_iou_per_class"][0] == pytest.approx(expected0)
    assert r["boundary_iou"] == pytest.approx((18 / 54 + expected0) / 2)


def test_boundary_iou_perfect_and_ignore():
    truth = _square(20, 5, 5, 10).long()
    assert boundary_iou(truth, truth, 2)["boundary_iou"] == 1.0
    # ignored pixels do not count: ignore columns around both squares' side edges. Bands are
    # taken of the masks as labelled (the truth's class-1 mask loses its ignored columns).
    pred = _square(20, 5, 6, 10).long()
    t = truth.clone()
    t[:, 4:7] = IGNORE
    t[:, 14:17] = IGNORE
    r = boundary_iou(pred, t, 2, ignore_index=IGNORE)
    gt = _band_reference(t == 1, 1) & (t != IGNORE)
    pr = _band_reference(pred == 1, 1) & (t != IGNORE)
    assert r["boundary_iou_per_class"][1] == pytest.approx(int((gt & pr).sum()) / int((gt | pr).sum()))


def _per_class_boundary_counts(pred, target, num_classes, ignore, d):
    """Boundary IoU counts the direct way: one erosion per class (Cheng et al.'s definition)."""
    valid = target != ignore
    inter, union = torch.zeros(num_classes, dtype=torch.int64), torch.zeros(num_classes, dtype=torch.int64)
    for c in range(num_classes):
        gt = boundary_band(target == c, d) & valid
        pr = boundary_band(pred == c, d) & valid
        inter[c], union[c] = (gt & pr).sum(), (gt | pr).sum()
    return inter, union


def test_label_band_is_the_union_of_the_class_bands():
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 4, (2, 6, 7), generator=g).repeat_interleave(3, 1).repeat_interleave(3, 2)
    for d in (1, 2, 4):
        band = label_band(labels, d)
        for c in range(4):
            assert torch.equal(band & (labels == c), boundary_band(labels == c, d)), f"d={d}, class {c}"


def test_boundary_iou_equals_one_erosion_per_class_with_ignored_pixels():
    g = torch.Generator().manual_seed(4)
    # blocky label maps (as segmentations are), an ignored strip, predictions that disagree
    target = torch.randint(0, 5, (3, 8, 10), generator=g).repeat_interleave(4, 1).repeat_interleave(4, 2)
    target[:, 10:13, :] = IGNORE
    pred = torch.randint(0, 5, (3, 16, 20), generator=g).repeat_interleave(2, 1).repeat_interleave(2, 2)
    acc = BoundaryIoU(5, IGNORE)
    acc.update(pred, target)
    d = boundary_dilation(32, 40)
    inter, union = _per_class_boundary_counts(pred, target, 5, IGNORE, d)
    assert torch.equal(acc.intersection, inter) and torch.equal(acc.union, union)
    assert int(union.sum()) > 0 and int(inter.sum()) > 0


def test_boundary_accumulates_over_images():
    a_t, a_p = _square(20, 5, 5, 10).long(), _square(20, 5, 6, 10).long()
    b_t, b_p = _square(20, 2, 2, 6).long(), _square(20, 2, 2, 6).long()
    acc = BoundaryIoU(2)
    acc.update(a_p, a_t)
    acc.update(b_p, b_t)
    # class 1: (18 + 20) / (54 + 20): the 6x6 square's ring has 36 - 16 = 20 pixels
    assert acc.compute()["boundary_iou_per_class"][1] == pytest.approx((18 + 20) / (54 + 20))


def test_segmentation_metrics_combines_both():
    m = metrics.SegmentationMetrics(2, IGNORE, class_names=["bg", "fg"])
    truth = _square(20, 5, 5, 10).long()
    m.update(truth[None], truth[None])
    out = m.compute()
    assert out["miou"] == 1.0 and out["boundary_iou"] == 1.0
    assert out["confusion"] == [[300, 0], [0, 100]]
