"""Visual helpers: colourise a mask, overlay it on the image, draw a legend.

All take and return uint8 tensors in ``(..., 3, H, W)`` layout (``to_pil`` converts one for
saving or display), so they work on single samples and on batches alike. ``example_figure``
lays samples and their overlaid labels out in a matplotlib figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from .base import SegmentationDataset

__all__ = ["colorize", "denormalize", "draw_legend", "example_figure", "legend_handles", "overlay", "to_pil"]


def _lut(palette: Sequence[Sequence[int]], ignore_index: int | None, ignore_color) -> torch.Tensor:
    size = max(len(palette), (ignore_index or 0) + 1)
    lut = torch.zeros((size, 3), dtype=torch.uint8)
    lut[: len(palette)] = torch.tensor([tuple(c) for c in palette], dtype=torch.uint8)
    if ignore_index is not None:
        lut[ignore_index] = torch.tensor(ignore_color, dtype=torch.uint8)
    return lut


def colorize(mask, palette, *, ignore_index: int | None = None,
             ignore_color=(0, 0, 0)) -> torch.Tensor:
    """Class indices ``(..., H, W)`` -> uint8 colours ``(..., 3, H, W)``.

    ``ignore_index`` pixels get ``ignore_color``; any other value outside the palette raises
    ``ValueError``.
    """
    mask = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask)
    mask = mask.long().cpu()
    valid = (mask >= 0) & (mask < len(palette))
    if ignore_index is not None:
        valid |= mask == ignore_index
    if not bool(valid.all()):
        bad = mask[~valid].unique()[:8].tolist()
        raise ValueError(f"mask values {bad} are neither classes 0..{len(palette) - 1} nor the "
                         f"ignore index {ignore_index}")
    return _lut(palette, ignore_index, ignore_color)[mask].movedim(-1, -3).contiguous()


def denormalize(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Undo ``Normalize(mean, std)``: float ``(..., 3, H, W)`` -> uint8 ``(..., 3, H, W)``."""
    image = image.detach().float().cpu()
    m = torch.tensor(mean, dtype=torch.float32)[:, None, None]
    s = torch.tensor(std, dtype=torch.float32)[:, None, None]
    return ((image * s + m) * 255).round().clamp(0, 255).to(torch.uint8)


def overlay(image: torch.Tensor, mask, palette, *, alpha: float = 0.5,
            ignore_index: int | None = None) -> torch.Tensor:
    """Blend the colourised ``mask`` over uint8 ``image (..., 3, H, W)``; ignore pixels show the
    plain image. ``alpha`` is the weight of the mask colours (0 = image only)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    image = torch.as_tensor(image).cpu()
    if image.dtype != torch.uint8:
        raise ValueError(f"overlay needs a uint8 image (use denormalize first), got {image.dtype}")
    colours = colorize(mask, palette, ignore_index=ignore_index).float()
    if colours.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"image {tuple(image.shape)} and mask {tuple(colours.shape)} "
                         "differ in size")
    blend = (1 - alpha) * image.float() + alpha * colours
    if ignore_index is not None:
        keep = (torch.as_tensor(mask).cpu() == ignore_index).unsqueeze(-3)
        blend = torch.where(keep, image.float(), blend)
    return blend.round().clamp(0, 255).to(torch.uint8)


def draw_legend(class_names: Sequence[str], palette, *, swatch: int = 14, columns: int = 1,
                ignore: tuple[str, tuple[int, int, int]] | None = None) -> torch.Tensor:
    """A legend image: one coloured swatch and name per class, uint8 ``(3, H, W)``.

    ``ignore = ("void", (0, 0, 0))`` adds an entry for ignored pixels.
    """
    if len(class_names) != len(palette):
        raise ValueError(f"{len(class_names)} class names but {len(palette)} colours")
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns!r}")
    entries = list(zip(class_names, [tuple(c) for c in palette]))
    if ignore is not None:
        entries.append((ignore[0], tuple(ignore[1])))
    font = ImageFont.load_default()
    pad = max(2, swatch // 4)
    text_w = max(int(ImageDraw.Draw(PILImage.new("RGB", (1, 1))).textlength(n, font=font))
                 for n, _ in entries)
    cell_w, cell_h = swatch + 2 * pad + text_w + pad, swatch + pad
    rows = -(-len(entries) // columns)
    img = PILImage.new("RGB", (columns * cell_w + pad, rows * cell_h + pad), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for k, (name, colour) in enumerate(entries):
        x, y = pad + (k // rows) * cell_w, pad + (k % rows) * cell_h
        draw.rectangle([x, y, x + swatch - 1, y + swatch - 1], fill=colour, outline=(0, 0, 0))
        draw.text((x + swatch + pad, y + swatch // 2), name, fill=(0, 0, 0), font=font, anchor="lm")
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).contiguous()


def legend_handles(class_names: Sequence[str], palette):
    """Matplotlib patches for ``ax.legend(handles=...)`` (needs matplotlib)."""
    from matplotlib.patches import Patch

    return [Patch(facecolor=tuple(c / 255 for c in rgb), edgecolor="black", label=name)
            for name, rgb in zip(class_names, palette)]


def to_pil(image: torch.Tensor) -> PILImage.Image:
    """uint8 ``(3, H, W)`` -> ``PIL.Image`` (for saving or ``display``)."""
    return PILImage.fromarray(torch.as_tensor(image).permute(1, 2, 0).cpu().numpy())


def example_figure(dataset: SegmentationDataset, indices: Sequence[int], *, title: str = "", alpha: float = 0.6):
    """Samples ``indices`` of ``dataset`` (uint8 images, as loaded): one column each, the
    image on top and the image with its labels overlaid (``alpha``; ignore pixels plain)
    below, a legend of the classes on the right and ``title`` above.

    Returns the matplotlib figure (``2 x len(indices)`` axes, no ticks).
    """
    import matplotlib.pyplot as plt

    width = 3.2 * len(indices)
    # the book shrinks the figure to its 688 px column: text grows with the width to read at
    # about 13 px there, clear of the 12 px floor
    font = max(11.0, 1.4 * width)
    fig, axes = plt.subplots(2, len(indices), figsize=(width, 5.0), squeeze=False)
    for col, i in enumerate(indices):
        image, mask = dataset[i]
        blend = overlay(image, mask, dataset.palette, alpha=alpha, ignore_index=dataset.ignore_index)
        axes[0, col].imshow(image.permute(1, 2, 0).numpy())
        axes[1, col].imshow(blend.permute(1, 2, 0).numpy())
        for ax in axes[:, col]:
            ax.set_axis_off()
    legend = fig.legend(handles=legend_handles(dataset.class_names, dataset.palette),
                        loc="center right", frameon=False, fontsize=font)
    fig.suptitle(title, fontsize=font + 1)
    # leave the right edge to the legend: its measured width, so that no image runs under it
    room = legend.get_window_extent(fig.canvas.get_renderer()).width / fig.bbox.width
    fig.tight_layout(rect=(0, 0, 1 - room - 0.01, 1))
    return fig
