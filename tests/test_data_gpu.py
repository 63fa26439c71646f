"""DeviceSplit / DeviceLoader: augmentation on the device keeps image and mask aligned."""

import functools

import pytest
import torch

from refinenet.data import SyntheticScenes
from refinenet.data.gpu import DeviceLoader, DeviceSplit
from refinenet.data.pack import Pack, write_pack

from fakes import aligned as _aligned
from fakes import colour_coded

MEAN, STD = (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)
IGNORE = 255
aligned = functools.partial(_aligned, mean=MEAN, std=STD, ignore_index=IGNORE)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
META = {"num_classes": 6, "ignore_index": IGNORE, "mean": MEAN, "std": STD,
        "class_names": list("abcdef"), "palette": [(0, 0, 0)] * 6}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def coded_split(n=6, device="cpu", **kw):
    pairs = [colour_coded(seed, **kw) for seed in range(n)]
    images = torch.stack([im for im, _ in pairs])
    masks = torch.stack([m for _, m in pairs]).to(torch.uint8)
    return DeviceSplit(images.to(device), masks.to(device), META)


@pytest.mark.parametrize("device", DEVICES)
def test_augmented_batches_stay_aligned(device):
    split = coded_split(device=device)
    loader = DeviceLoader(split, 3, crop_size=(64, 80), seed=0)
    batches = 0
    for _ in range(4):  # four epochs, 24 augmented samples
        for images, masks in loader:
            assert images.shape == (3, 3, 64, 80) and images.dtype == torch.float32
            assert masks.shape == (3, 64, 80) and masks.dtype == torch.int64
            assert images.device.type == device and masks.device.type == device
            for img, m in zip(images, masks):
                assert aligned(img, m)
            batches += 1
    assert batches == 8


def test_flip_scale_and_padding_happen():
    split = coded_split(n=1)
    src = split.masks[0].long()
    loader = DeviceLoader(split, 1, crop_size=(72, 96), scale_range=(1, 1), seed=3)
    seen = set()
    for _ in range(16):
        images, masks = next(iter(loader))
        assert aligned(images[0], masks[0])
        seen.add("flipped" if torch.equal(masks[0], src.flip(-1)) else
                 "same" if torch.equal(masks[0], src) else "other")
    assert seen == {"flipped", "same"}  # scale 1 and crop = size: only flips change it
    big = DeviceLoader(split, 1, crop_size=(150, 180), scale_range=(0.7, 1.3), seed=0)
    images, masks = next(iter(big))
    pad = masks[0] == IGNORE
    assert pad.float().mean() > 0.3 and images[0][:, pad].abs().max() < 0.05
    assert aligned(images[0], masks[0])
    sizes = set()
    for _ in range(10):  # the labelled area follows the scale
        _, masks = next(iter(big))
        sizes.add(int((masks[0] != IGNORE).sum()))
    assert min(sizes) < 72 * 96 < max(sizes)


def test_loader_is_repeatable_and_eval_is_plain():
    split = coded_split()
    a = [m for _, m in DeviceLoader(split, 2, crop_size=48, seed=5)]
    b = [m for _, m in DeviceLoader(split, 2, crop_size=48, seed=5)]
    c = [m for _, m in DeviceLoader(split, 2, crop_size=48, seed=6)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    ev = DeviceLoader(split, 4, train=False)
    assert len(ev) == 2 and len(DeviceLoader(split, 4)) == 1  # train drops the last batch
    batches = list(ev)
    assert [m.shape[0] for _, m in batches] == [4, 2]
    assert torch.equal(torch.cat([m for _, m in batches]), split.masks.long())
    expected = (split.images.float() / 255 - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    assert torch.allclose(torch.cat([x for x, _ in batches]), expected)


def test_from_pack_and_from_dataset(tmp_path):
    ds = SyntheticScenes(4, (40, 56), seed=1)
    split = DeviceSplit.from_dataset(ds, "cpu")
    assert split.images.shape == (4, 3, 40, 56) and split.num_classes == ds.num_classes
    assert torch.equal(split.masks[2].long(), ds[2][1])
    path = write_pack(ds, tmp_path / "s.pack", dataset_name="synthetic", split="train",
                      codec="raw", progress=False)
    packed = DeviceSplit.from_pack(Pack(path), "cpu")
    assert torch.equal(packed.images, split.images) and torch.equal(packed.masks, split.masks)
    assert packed.mean == ds.mean and packed.ignore_index == 255


def test_bad_arguments():
    split = coded_split(n=2)
    with pytest.raises(ValueError):
        DeviceLoader(split, 0)
    with pytest.raises(ValueError):
        DeviceLoader(split, 2, scale_range=(2, 1))
    with pytest.raises(ValueError):
        DeviceSplit(split.images, split.masks.long(), META)
    with pytest.raises(ValueError):
        DeviceSplit(split.images[:, :2], split.masks, META)


def test_colour_jitter_on_the_device_keeps_crops_and_labels():
    split = coded_split()
    plain = DeviceLoader(split, 3, crop_size=(64, 80), seed=0)
    jitter = DeviceLoader(split, 3, crop_size=(64, 80), color_jitter=0.4, seed=0)
    for k in range(4):  # as the trainer draws batches: the generator seeded per batch
        idx = torch.tensor([k, k + 1, (k + 3) % 6])
        plain.generator.manual_seed(k)
        jitter.generator.manual_seed(k)
        (a_img, a_mask), (b_img, b_mask) = plain.augment(idx), jitter.augment(idx)
        assert torch.equal(a_mask, b_mask)  # the colour is drawn after the geometry
        assert not torch.allclose(a_img, b_img)
        # colours stay in range: [0, 1] before normalisation
        low = (0 - torch.tensor(MEAN)) / torch.tensor(STD)
        high = (1 - torch.tensor(MEAN)) / torch.tensor(STD)
        assert (b_img >= low[:, None, None] - 1e-5).all() and (b_img <= high[:, None, None] + 1e-5).all()
    with pytest.raises(ValueError, match="color_jitter"):
        DeviceLoader(split, 3, color_jitter=1.5)
