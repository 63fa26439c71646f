"""Class weights for the cross-entropy, from the label statistics of the training split.

Median frequency balancing (Eigen & Fergus, ICCV 2015; SegNet's choice on CamVid): class
``c`` gets ``median(f) / f_c``, where ``f_c`` is the number of pixels of ``c`` divided by the
number of pixels of the training images that contain ``c``. Frequent classes (road, sky) get
weights below 1, rare thin ones (pole, pedestrian) well above 1. The paper trained with plain
cross-entropy from ImageNet weights; this is for short runs from scratch (see
``loss.class_weights``).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["class_pixel_counts", "median_frequency_weights"]


def class_pixel_counts(dataset, num_classes: int, ignore_index: int) -> tuple[Tensor, Tensor]:
    """Per class: labelled pixels ``(C,)`` and pixels of the images holding the class ``(C,)``.

    Reads the raw masks (``dataset.load``, before any augmentation). Pixels labelled
    ``ignore_index`` count for neither.
    """
    pixels = torch.zeros(num_classes, dtype=torch.float64)
    image_pixels = torch.zeros(num_classes, dtype=torch.float64)
    for i in range(len(dataset)):
        _, mask = dataset.load(i)
        labels = torch.as_tensor(mask).flatten()
        labels = labels[labels != ignore_index]
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(
                f"sample {i} of the training split holds label {int(labels.max())} outside 0..{num_classes - 1} "
                f"(ignore index {ignore_index}): check the dataset's masks"
            )
        counts = torch.bincount(labels, minlength=num_classes).double()
        pixels += counts
        image_pixels += (counts > 0).double() * labels.numel()
    return pixels, image_pixels


def median_frequency_weights(dataset, num_classes: int, ignore_index: int, power: float = 1.0) -> Tensor:
    """``(C,)`` float32 weights ``(median(f) / f_c) ** power``; a class absent from the split
    gets 0 (no pixel of it is ever a target, so its weight never counts). ``power`` < 1
    softens the weighting (0.5: its square root)."""
    pixels, image_pixels = class_pixel_counts(dataset, num_classes, ignore_index)
    present = pixels > 0
    if not present.any():
        raise ValueError("the training split has no labelled pixel: cannot compute class weights")
    freq = pixels[present] / image_pixels[present]
    weights = torch.zeros(num_classes, dtype=torch.float64)
    weights[present] = (freq.quantile(0.5) / freq) ** power  # quantile: the mean of the two middle values for an even count
    return weights.float()
