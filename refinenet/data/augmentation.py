"""The training augmentation, in words and in pictures (notebook 2).

:func:`describe_augmentation` phrases a recipe's data settings for the prose;
:func:`augmentation_figure` shows one image and its labels as loaded and as augmented.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .base import SegmentationDataset
from .visual import colorize

__all__ = ["RELEASED_SCALE_RANGE", "augmentation_figure", "describe_augmentation"]

#: The random rescaling of the released code (low, high).
RELEASED_SCALE_RANGE = (0.7, 1.3)


def describe_augmentation(data) -> dict[str, str]:
    """The augmentation of a training config's ``data`` section
    (:class:`refinenet.engine.config.DataSection`: ``crop_size``, ``size``, ``scale_range``,
    ``hflip``, ``color_jitter``), in words.

    Returns ``{"crop": ..., "scale": ..., "scale_released": ..., "flip": ..., "jitter": ...}``:
    the crop size (``"H × W"``; without crop or size, the image's own size), the two scale
    bounds (``"0.7 and 1.3"``), how they compare with the released code's
    (:data:`RELEASED_SCALE_RANGE`: ``"as in the released code"``, or ``"the released code:
    0.7 and 1.3"`` where they differ), the flip, and a sentence on the colour jitter.
    """
    crop = data.crop_size or data.size  # without a crop size the engine crops to the loaded size
    low, high = data.scale_range
    jitter = data.color_jitter
    return {
        "crop": f"{crop[0]} × {crop[1]}" if crop else "the image's own size",
        "scale": f"{low:g} and {high:g}",
        "scale_released": (
            "as in the released code" if (low, high) == RELEASED_SCALE_RANGE
            else "the released code: {:g} and {:g}".format(*RELEASED_SCALE_RANGE)
        ),
        "flip": "a left-right flip with probability one half" if data.hflip else "no flip",
        "jitter": (
            f"The recipe adds a colour jitter of strength {jitter:g}: brightness, "
            "contrast and saturation each multiplied by a factor drawn from "
            f"[{1 - jitter:g}, {1 + jitter:g}] per image."
        ) if jitter else "There is no colour jitter, as in the released code.",
    }


def augmentation_figure(panels: Sequence[tuple[torch.Tensor, torch.Tensor, str]],
                        dataset: SegmentationDataset, *, per_row: int = 3,
                        fontsize: float = 11):
    """One column per panel ``(image, mask, title)``, at most ``per_row`` panels a row: the
    uint8 ``(3, H, W)`` image on top, titled, and the int64 ``(H, W)`` mask below in
    ``dataset``'s palette (its ignore label black). Panels may differ in size.

    Returns the matplotlib figure: ``2 * ceil(len(panels) / per_row)`` rows of ``per_row``
    axes (images, then their masks, row by row, a blank band before each next row of images;
    the axes of a short last row are removed). Each row is named at its left, ``"image"`` or
    ``"labels"``; titles and names are ``fontsize`` pt.
    At most ``per_row`` columns keep the titles readable at the book's column width.
    """
    import math

    import matplotlib.pyplot as plt

    cols = min(per_row, len(panels))
    rows = math.ceil(len(panels) / cols)
    # A blank band between the groups, so that each labels row reads with the images above it
    # and not with the next row's (grid rows: images, labels, gap, images, labels, ...).
    gap = 0.3
    ratios = [1.0, 1.0] + [gap, 1.0, 1.0] * (rows - 1)
    fig = plt.figure(figsize=(2.6 * cols, 2.2 * sum(ratios)))
    grid = fig.add_gridspec(len(ratios), cols, height_ratios=ratios)
    axes = np.array([[fig.add_subplot(grid[3 * (r // 2) + r % 2, c]) for c in range(cols)]
                     for r in range(2 * rows)])
    for i, (image, mask, title) in enumerate(panels):
        top, bottom = axes[2 * (i // cols), i % cols], axes[2 * (i // cols) + 1, i % cols]
        colours = colorize(mask, dataset.palette, ignore_index=dataset.ignore_index)
        top.imshow(image.permute(1, 2, 0).numpy())
        top.set_title(title, fontsize=fontsize)
        bottom.imshow(colours.permute(1, 2, 0).numpy())
    for ax in axes.flat:
        ax.set_axis_off()
    for r in range(2 * rows):  # name each row at its left: images, then their labels
        axes[r, 0].text(-0.04, 0.5, "labels" if r % 2 else "image", rotation=90,
                        ha="right", va="center", fontsize=fontsize,
                        transform=axes[r, 0].transAxes)
    for i in range(len(panels), rows * cols):  # the empty places of a short last row
        axes[2 * (i // cols), i % cols].remove()
        axes[2 * (i // cols) + 1, i % cols].remove()
    fig.tight_layout()
    return fig
