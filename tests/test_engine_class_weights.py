"""Median frequency class weights and the weighted cross-entropy (loss.class_weights)."""

import pytest
import torch
import torch.nn.functional as F

from refinenet.engine.class_weights import class_pixel_counts, median_frequency_weights
from refinenet.engine.config import TrainConfig
from refinenet.engine.optim import segmentation_loss


class Masks:
    """A stand-in split: ``load(i)`` returns (image, mask) like the datasets do."""

    def __init__(self, masks):
        self.masks = [torch.tensor(m) for m in masks]

    def __len__(self):
        return len(self.masks)

    def load(self, i):
        return None, self.masks[i]


def test_median_frequency_by_hand():
    # Image 0: 3 pixels of class 0, 1 of class 1. Image 1: 2 of class 0, 1 of class 2, 1 ignored.
    split = Masks([[[0, 0], [0, 1]], [[0, 2], [0, 255]]])
    pixels, image_pixels = class_pixel_counts(split, 4, 255)
    assert pixels.tolist() == [5, 1, 1, 0]
    assert image_pixels.tolist() == [7, 4, 3, 0]  # labelled pixels of the images holding each class
    f = torch.tensor([5 / 7, 1 / 4, 1 / 3], dtype=torch.float64)
    weights = median_frequency_weights(split, 4, 255)
    assert weights[:3].tolist() == pytest.approx((f.median() / f).tolist())
    assert weights[3] == 0  # absent from the split
    assert weights[1] > weights[2] == 1 > weights[0]  # the rarer, the heavier; the median class 1
    # An even count of classes: the median is the mean of the two middle frequencies.
    two = median_frequency_weights(Masks([[[0, 0, 0, 1]]]), 2, 255)
    assert two.tolist() == pytest.approx([0.5 / 0.75, 0.5 / 0.25])
    # softened: the square root of each weight; power 0 is the plain loss
    assert median_frequency_weights(split, 4, 255, power=0.5)[:3].tolist() == pytest.approx((f.median() / f).sqrt().tolist())
    assert median_frequency_weights(split, 4, 255, power=0.0)[:3].tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_a_softened_weighting_needs_the_weighting():
    with pytest.raises(ValueError, match="class_weight_power"):
        TrainConfig().replace(["loss.class_weight_power=0.5"])
    assert TrainConfig().replace(["loss.class_weights=median_frequency", "loss.class_weight_power=0.5"]).loss.class_weight_power == 0.5


def test_median_frequency_rejects_labels_outside_the_classes():
    with pytest.raises(ValueError, match="sample 0 of the training split holds label 7 outside 0..3"):
        median_frequency_weights(Masks([[[0, 7]]]), 4, 255)
    with pytest.raises(ValueError, match="no labelled pixel"):
        median_frequency_weights(Masks([[[255, 255]]]), 4, 255)


def test_weighted_loss_equals_torch_weighted_mean():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 6, 6, generator=g)
    target = torch.randint(0, 4, (2, 6, 6), generator=g)
    target[0, :2] = 255
    weight = torch.tensor([0.2, 1.0, 3.0, 0.0])
    expected = F.cross_entropy(logits, target, weight=weight, ignore_index=255)
    assert float(segmentation_loss(logits, target, 255, weight)) == pytest.approx(float(expected), rel=1e-6)
    # Weights of 1 are the plain mean.
    assert float(segmentation_loss(logits, target, 255, torch.ones(4))) == pytest.approx(
        float(segmentation_loss(logits, target, 255)), rel=1e-6)
    # Only zero-weight or ignored pixels: 0, not NaN.
    only = torch.full((2, 6, 6), 255)
    only[0, 0, 0] = 3
    assert float(segmentation_loss(logits, only, 255, weight)) == 0.0


def test_class_weights_change_the_run_name():
    weighted = TrainConfig().replace(["loss.class_weights=median_frequency"])
    assert weighted.identity_hash() != TrainConfig().identity_hash()
    with pytest.raises(ValueError, match="class_weights"):
        TrainConfig().replace(["loss.class_weights=inverse"])


def test_training_with_class_weights(tmp_path):
    from refinenet.engine import train

    run = train("configs/smoke.yaml", overrides=[
        f"out_dir={tmp_path}", "schedule.steps=2", "schedule.warmup_steps=1", "eval.every=0", "eval.boundary=false",
        "data.size=[64,64]", "data.options={n: 4}", "log.progress=none", "loss.class_weights=median_frequency"])
    assert run.summary["steps"] == 2
    assert run.config.loss.class_weights == "median_frequency"
