"""evaluate(model, dataset) scores at the resolution of the dataset's masks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from refinenet.engine import evaluate, predict_labels, predict_probabilities
from refinenet.engine.metrics import confusion_matrix, scores_from_confusion

NUM_CLASSES, IGNORE = 4, 255
pytestmark = pytest.mark.usefixtures("one_thread")


class FixedLogits(nn.Module):
    """Logits ``(N, 4, H, W)`` at the image's size, per pixel from its colour: class ``c``
    scores ``w[c] * image[c % 3] + b[c]``. Element-wise only, so a pixel's logits do not
    depend on the batch it came in (exact comparisons with a one-image reference)."""

    num_classes = NUM_CLASSES

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, -0.7, 0.4, 1.3]))
        self.b = nn.Parameter(torch.tensor([0.0, 0.2, -0.1, -0.5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x[:, [c % 3 for c in range(NUM_CLASSES)]]
        return channels * self.w.view(1, -1, 1, 1) + self.b.view(1, -1, 1, 1)


class Pairs:
    """Images ``(3, H, W)`` with masks ``(factor*H, factor*W)`` (a few pixels ignored)."""

    num_classes, ignore_index = NUM_CLASSES, IGNORE
    class_names = ["a", "b", "c", "d"]

    def __init__(self, n: int = 3, size=(40, 48), factor: int = 2, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        h, w = size
        # Smooth images (upsampled noise) so that upsampled predictions have regions, not noise.
        self.images = F.interpolate(torch.randn(n, 3, h // 8, w // 8, generator=g), size=size, mode="bilinear")
        self.masks = torch.randint(0, NUM_CLASSES, (n, factor * h, factor * w), generator=g)
        self.masks[torch.rand(self.masks.shape, generator=g) < 0.05] = IGNORE

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i], self.masks[i]


def reference_confusion(model: nn.Module, data: Pairs) -> torch.Tensor:
    """Upsample each image's logits to its mask (bilinear, align_corners=False), arg-max,
    accumulate the confusion matrix."""
    total = torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.int64)
    with torch.no_grad():
        for image, mask in (data[i] for i in range(len(data))):
            logits = model(image[None])
            logits = F.interpolate(logits, size=mask.shape, mode="bilinear", align_corners=False)
            total += confusion_matrix(logits.argmax(1), mask[None], NUM_CLASSES, IGNORE)
    return total


OPTIONS = dict(amp="none", channels_last=False, boundary=False, device="cpu")


@pytest.mark.parametrize("batch_size", [1, 2])
def test_masks_twice_the_image_size_are_scored_at_their_size(batch_size):
    model, data = FixedLogits(), Pairs(factor=2)
    result = evaluate(model, data, batch_size=batch_size, **OPTIONS)
    expected = reference_confusion(model, data)
    assert result["confusion"] == expected.tolist()
    assert result["miou"] == scores_from_confusion(expected)["miou"]
    assert result["pixels"] == int((data.masks != IGNORE).sum())  # every label pixel, at 80x96
    assert result["images"] == 3


def test_equal_sizes_give_the_arg_max_of_the_logits():
    model, data = FixedLogits(), Pairs(factor=1)
    result = evaluate(model, data, **OPTIONS)
    with torch.no_grad():
        pred = model(data.images).argmax(1)  # no resizing at all
    assert result["confusion"] == confusion_matrix(pred, data.masks, NUM_CLASSES, IGNORE).tolist()


def test_the_fixture_tells_bilinear_logits_from_resized_labels():
    # Upsampling the image-size arg-max (nearest neighbour) gives other labels than the arg-max
    # of upsampled logits on these images, so the tests above would see the difference.
    model, data = FixedLogits(), Pairs(factor=2)
    size = tuple(data.masks.shape[-2:])
    with torch.no_grad():
        low = model(data.images).argmax(1)
    nearest = F.interpolate(low[:, None].float(), size=size, mode="nearest")[:, 0].long()
    assert not torch.equal(nearest, predict_labels(model, data.images, out_size=size)[0])


def test_prediction_at_another_size():
    model, data = FixedLogits(), Pairs(factor=2)
    images, size = data.images, tuple(data.masks.shape[-2:])
    with torch.no_grad():
        reference = F.interpolate(model(images), size=size, mode="bilinear", align_corners=False)
    labels, skipped = predict_labels(model, images, out_size=size)
    assert labels.shape == (3, *size) and skipped == 0
    assert torch.equal(labels, reference.argmax(1))
    probs, _ = predict_probabilities(model, images, out_size=size)
    torch.testing.assert_close(probs, reference.softmax(1))
    # Default: the image's size, as before.
    assert torch.equal(predict_labels(model, images)[0], model(images).argmax(1))
    assert torch.equal(predict_labels(model, images, out_size=images.shape[-2:])[0], model(images).argmax(1))


def test_multi_scale_and_flip_score_at_the_mask_size():
    model, data = FixedLogits(), Pairs(factor=2)
    options = dict(scales=(1.0, 1.25), flip=True)
    result = evaluate(model, data, **options, **OPTIONS)
    probs, _ = predict_probabilities(model, data.images, **options, out_size=tuple(data.masks.shape[-2:]))
    expected = confusion_matrix(probs.argmax(1), data.masks, NUM_CLASSES, IGNORE)
    assert result["confusion"] == expected.tolist()
    assert result["pixels"] == int((data.masks != IGNORE).sum())


def test_evaluate_refuses_a_path():
    with pytest.raises(ValueError, match="model and a dataset"):
        evaluate("runs/some-run/checkpoint.pt", Pairs())
