"""Visual helpers: colourise, overlay, legend, denormalise."""

import pytest
import torch

from refinenet.data.camvid import CAMVID_CLASSES, CAMVID_PALETTE
from refinenet.data.transforms import eval_transform
from refinenet.data.visual import colorize, denormalize, draw_legend, overlay, to_pil

PALETTE = [(10, 20, 30), (200, 100, 0), (0, 255, 0)]


def test_colorize_maps_each_class_and_ignore():
    mask = torch.tensor([[0, 1], [2, 255]])
    out = colorize(mask, PALETTE, ignore_index=255, ignore_color=(1, 2, 3))
    assert out.dtype == torch.uint8 and out.shape == (3, 2, 2)
    assert out[:, 0, 0].tolist() == [10, 20, 30] and out[:, 0, 1].tolist() == [200, 100, 0]
    assert out[:, 1, 0].tolist() == [0, 255, 0] and out[:, 1, 1].tolist() == [1, 2, 3]
    batch = colorize(torch.stack([mask, mask.flip(-1)]), PALETTE, ignore_index=255)
    assert batch.shape == (2, 3, 2, 2) and torch.equal(batch[1], batch[0].flip(-1))


def test_colorize_rejects_unknown_values():
    with pytest.raises(ValueError, match=r"\[7\]"):
        colorize(torch.tensor([[0, 7]]), PALETTE, ignore_index=255)
    with pytest.raises(ValueError):
        colorize(torch.tensor([[255]]), PALETTE)  # no ignore index given


def test_overlay_blends_and_keeps_ignore_pixels():
    image = torch.full((3, 2, 2), 100, dtype=torch.uint8)
    mask = torch.tensor([[0, 1], [2, 255]])
    assert torch.equal(overlay(image, mask, PALETTE, alpha=0.0, ignore_index=255), image)
    full = overlay(image, mask, PALETTE, alpha=1.0, ignore_index=255)
    assert full[:, 0, 1].tolist() == [200, 100, 0] and full[:, 1, 1].tolist() == [100, 100, 100]
    half = overlay(image, mask, PALETTE, alpha=0.5, ignore_index=255)
    assert half[:, 0, 1].tolist() == [150, 100, 50]
    with pytest.raises(ValueError, match="uint8"):
        overlay(image.float(), mask, PALETTE, ignore_index=255)
    with pytest.raises(ValueError, match="alpha"):
        overlay(image, mask, PALETTE, alpha=2.0, ignore_index=255)


def test_denormalize_inverts_the_eval_transform():
    from torchvision import tv_tensors

    image = tv_tensors.Image(torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8))
    mask = tv_tensors.Mask(torch.zeros(8, 8, dtype=torch.long))
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.3, 0.25)
    x, _ = eval_transform(mean=mean, std=std)(image, mask)
    assert torch.equal(denormalize(x, mean, std), image.as_subclass(torch.Tensor))


def test_legend_shows_every_class():
    legend = draw_legend(CAMVID_CLASSES, CAMVID_PALETTE, ignore=("void", (0, 0, 0)))
    assert legend.dtype == torch.uint8 and legend.shape[0] == 3
    colours = set(map(tuple, legend.reshape(3, -1).T.tolist()))
    assert set(CAMVID_PALETTE) <= colours
    two = draw_legend(CAMVID_CLASSES, CAMVID_PALETTE, columns=2)
    assert two.shape[1] < legend.shape[1] and two.shape[2] > legend.shape[2]
    assert to_pil(legend).size == (legend.shape[2], legend.shape[1])
    with pytest.raises(ValueError, match="11 class names but 3 colours"):
        draw_legend(CAMVID_CLASSES, PALETTE)
