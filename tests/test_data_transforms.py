"""Joint transforms keep image and mask aligned: pixel colours encode the labels."""

import functools

import pytest
import torch
from torchvision import tv_tensors

from refinenet.data.transforms import (
    JointResize,
    RandomScale,
    eval_transform,
    resize_mask,
    train_transform,
)

from fakes import aligned as _aligned
from fakes import colour_coded

IGNORE = 255
MEAN, STD = (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)
aligned = functools.partial(_aligned, mean=MEAN, std=STD, ignore_index=IGNORE)


def test_train_transform_keeps_image_and_mask_aligned():
    torch.manual_seed(0)
    t = train_transform((64, 80), ignore_index=IGNORE, mean=MEAN, std=STD)
    crops = set()
    for seed in range(24):
        image, mask = colour_coded(seed % 4)
        out_img, out_mask = t(image, mask)
        assert out_img.dtype == torch.float32 and out_img.shape == (3, 64, 80)
        assert out_mask.dtype == torch.int64 and out_mask.shape == (64, 80)
        assert isinstance(out_mask, tv_tensors.Mask)
        assert aligned(out_img, out_mask), f"image and mask drifted apart (sample {seed})"
        crops.add(out_mask.sum().item())
    assert len(crops) > 12  # the crops differ: the transform is random


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def test_padding_is_ignore_and_mean_colour():
    torch.manual_seed(1)
    image, mask = colour_coded()  # 72x96, smaller than the crop at every scale
    t = train_transform((150, 180), ignore_index=IGNORE, mean=MEAN, std=STD)
    for _ in range(5):
        out_img, out_mask = t(image, mask)
        assert out_mask.shape == (150, 180)
        pad = out_mask == IGNORE
        assert pad.float().mean() > 0.3
        assert aligned(out_img, out_mask)
        assert out_img[:, pad].abs().max() < 0.05  # mean colour -> 0 after normalisation


class _FlipImageOnly(torch.nn.Module):
    """A broken augmentation: flips the image but not the mask."""

    def forward(self, image, mask):
        return tv_tensors.wrap(image.flip(-1), like=image), mask


class _ShiftMask(torch.nn.Module):
    """A broken augmentation: moves the mask 3 px against the image."""

    def forward(self, image, mask):
        return image, tv_tensors.wrap(mask.roll(3, -1), like=mask)


@pytest.mark.parametrize("broken", [_FlipImageOnly(), _ShiftMask()])
def test_alignment_check_catches_drift(broken):
    """The check above has teeth: a flip or shift of only one of the pair fails it."""
    image, mask = colour_coded(3)
    ok = eval_transform(mean=MEAN, std=STD)
    assert aligned(*ok(image, mask))
    assert not aligned(*ok(*broken(image, mask)))


def test_flip_happens_to_both():
    image, mask = colour_coded(2)
    t = train_transform(None, scale_range=(1, 1), ignore_index=IGNORE, mean=MEAN, std=STD)
    seen = set()
    torch.manual_seed(0)
    for _ in range(20):
        out_img, out_mask = t(image, mask)
        assert aligned(out_img, out_mask)
        if torch.equal(out_mask, mask):
            seen.add("same")
        elif torch.equal(out_mask, mask.flip(-1)):
            seen.add("flipped")
    assert seen == {"same", "flipped"}
    t = train_transform(None, scale_range=(1, 1), hflip=False, ignore_index=IGNORE, mean=MEAN, std=STD)
    assert all(torch.equal(t(image, mask)[1], mask) for _ in range(10))


def test_random_scale_range_and_mask_values():
    image, mask = colour_coded()
    t = RandomScale((0.7, 1.3))
    torch.manual_seed(0)
    heights = []
    for _ in range(30):
        out_img, out_mask = t(image, mask)
        assert out_img.shape[-2:] == out_mask.shape
        assert out_img.dtype == torch.uint8
        assert set(out_mask.unique().tolist()) <= set(mask.unique().tolist())  # no new labels
        heights.append(out_mask.shape[0])
    assert 0.7 * 72 - 1 <= min(heights) < 72 < max(heights) <= 1.3 * 72 + 1


def test_resize_mask_is_nearest_exact_and_keeps_dtype():
    m = torch.arange(4, dtype=torch.uint8).reshape(2, 2)
    up = resize_mask(m, (4, 4))
    assert up.dtype == torch.uint8
    assert up.tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    assert resize_mask(up, (2, 2)).tolist() == m.tolist()


def test_eval_transform_is_deterministic_and_resizes():
    image, mask = colour_coded(cell=24)  # 144x192
    t = eval_transform(mean=MEAN, std=STD, size=(72, 80))
    a, b = t(image, mask), t(image, mask)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].shape == (3, 72, 80) and a[1].shape == (72, 80) and a[1].dtype == torch.int64
    assert aligned(*a)
    full = eval_transform(mean=MEAN, std=STD)(image, mask)
    assert full[0].shape == (3, 144, 192) and torch.equal(full[1], mask)


@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomScale((0, 1)),
        lambda: RandomScale((1.3, 0.7)),
        lambda: JointResize((0, 5)),
        lambda: train_transform("big", ignore_index=0, mean=MEAN, std=STD),
        lambda: eval_transform(mean=(0.5,), std=STD),
    ],
)
def test_bad_arguments_raise(make):
    with pytest.raises(ValueError):
        make()


def test_colour_jitter_is_torchvisions_three_adjustments_in_order():
    from torchvision.transforms.v2 import functional as TF

    from refinenet.data.transforms import jitter_colours

    g = torch.Generator().manual_seed(0)
    images = torch.rand(3, 3, 20, 24, generator=g)
    factors = torch.tensor([[1.3, 0.7, 1.2], [0.8, 1.25, 0.6], [1.0, 1.0, 1.0]], dtype=torch.float64)
    out = jitter_colours(images, factors)
    for img, (b, c, s), got in zip(images, factors.tolist(), out):
        want = TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(img, b), c), s)
        assert torch.allclose(got, want, atol=1e-6)
    assert torch.allclose(out[2], images[2], atol=1e-6)  # factors of 1 change nothing


def test_colour_jitter_changes_colours_not_crops_or_labels():
    _, mask = colour_coded(1)
    image = tv_tensors.Image(torch.randint(0, 256, (3, *mask.shape), generator=torch.Generator().manual_seed(0),
                                           dtype=torch.uint8))
    plain = train_transform((64, 80), ignore_index=IGNORE, mean=MEAN, std=STD)
    jitter = train_transform((64, 80), color_jitter=0.4, ignore_index=IGNORE, mean=MEAN, std=STD)
    differ = 0
    for seed in range(6):
        torch.manual_seed(seed)
        a_img, a_mask = plain(image, mask)
        torch.manual_seed(seed)
        b_img, b_mask = jitter(image, mask)
        assert torch.equal(a_mask, b_mask)  # the colour is drawn after the geometry
        differ += not torch.allclose(a_img, b_img)
    assert differ == 6
    assert not any(type(t).__name__ == "RandomColour" for t in plain.transforms)
