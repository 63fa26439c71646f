"""SyntheticScenes: deterministic, and each design choice is really in the data."""

import hashlib

import numpy as np
import pytest
import torch
from scipy import ndimage
from torchvision import tv_tensors

from refinenet.data import build_dataset
from refinenet.data.synthetic import BALL, BALLOON, CAR, GROUND, POLE, SKY, SyntheticScenes

SIZE = (128, 160)


@pytest.fixture(scope="module")
def scenes():
    ds = SyntheticScenes(64, SIZE, seed=0)
    return [ds.arrays(i) for i in range(len(ds))]


def digest(ds):
    h = hashlib.sha256()
    for i in range(len(ds)):
        image, label = ds.arrays(i)
        h.update(image.tobytes())
        h.update(label.tobytes())
    return h.hexdigest()


def test_sample_types_and_shapes():
    ds = SyntheticScenes(3, (48, 64), seed=1)
    image, mask = ds[2]
    assert isinstance(image, tv_tensors.Image) and image.dtype == torch.uint8
    assert image.shape == (3, 48, 64)
    assert isinstance(mask, tv_tensors.Mask) and mask.dtype == torch.int64 and mask.shape == (48, 64)
    values = set(mask.unique().tolist())
    assert values <= set(range(ds.num_classes)) | {ds.ignore_index}
    assert len(ds.class_names) == len(ds.palette) == ds.num_classes == 8
    with pytest.raises(IndexError):
        ds[3]


def test_same_seed_same_data_and_independent_streams():
    a = SyntheticScenes(4, (40, 56), seed=3, cache=False)
    b = SyntheticScenes(9, (40, 56), seed=3, cache=False)  # sample i does not depend on n
    assert digest(a) == digest(SyntheticScenes(4, (40, 56), seed=3))
    for i in range(4):
        assert all(np.array_equal(x, y) for x, y in zip(a.arrays(i), b.arrays(i)))
    assert digest(a) != digest(SyntheticScenes(4, (40, 56), seed=4))
    assert digest(a) != digest(SyntheticScenes(4, (40, 56), seed=3, split="val"))
    assert not np.array_equal(a.arrays(0)[0], a.arrays(1)[0])


def test_pinned_checksums():
    """Same seed, same bytes on any machine, NumPy or torch version (rendering is bit-exact)."""
    assert digest(SyntheticScenes(4, (64, 80), seed=0)) == (
        "ee28605161ffab2834dd04cc99b96624f755d06984393d6139254a8aa893c382"
    )
    assert digest(SyntheticScenes(2, (96, 128), seed=7, split="val")) == (
        "2a1888793f0040f58bbeb3a13830eb33db0f4ce084a0e75c91d3ecefe6a9895c"
    )


def test_every_class_and_ignore_occur(scenes):
    counts = np.bincount(np.concatenate([lab.ravel() for _, lab in scenes]), minlength=256)
    assert (counts[:8] > 0).all()
    assert counts[255] > 0
    assert counts[8:255].sum() == 0


def test_thin_structures_are_thin(scenes):
    """Poles are 1-2 px wide at 160 px: most horizontal runs of pole pixels are <= 2 px."""
    widths = []
    for _, lab in scenes:
        for row in lab == POLE:
            runs = np.diff(np.flatnonzero(np.diff(np.r_[0, row.astype(np.int8), 0])))[::2]
            widths.extend(runs.tolist())
    widths = np.array(widths)
    assert len(widths) > 100
    assert np.mean(widths <= 2) > 0.9


def test_objects_span_a_wide_range_of_scales(scenes):
    heights = []
    for _, lab in scenes:
        comps, n = ndimage.label(lab == CAR)
        heights += [s[0].stop - s[0].start for s in ndimage.find_objects(comps)]
    assert min(heights) <= 4 and max(heights) >= 0.3 * SIZE[0]


def _touches(lab, a, b):
    """Whether class ``a`` is 4-adjacent to class ``b`` anywhere."""
    grown = ndimage.binary_dilation(lab == a)
    return bool((grown & (lab == b)).any())


def test_lookalike_classes_differ_only_in_context(scenes):
    """Balloons float (never touch the ground), balls rest (never touch the sky), and both
    are drawn with the same colours, so their pixels look alike."""
    both = 0
    for image, lab in scenes:
        assert not _touches(lab, BALLOON, GROUND)
        assert not _touches(lab, BALL, SKY)
        if (lab == BALLOON).sum() > 20 and (lab == BALL).sum() > 20:
            both += 1
            balloon = image[lab == BALLOON].astype(float).mean(0)
            ball = image[lab == BALL].astype(float).mean(0)
            assert np.abs(balloon - ball).max() < 40
    assert both > 0


def test_mean_and_std_match_the_data(scenes):
    pixels = np.concatenate([im.reshape(-1, 3) for im, _ in scenes]) / 255.0
    assert np.allclose(pixels.mean(0), SyntheticScenes.mean, atol=0.03)
    assert np.allclose(pixels.std(0), SyntheticScenes.std, atol=0.03)


def test_build_dataset_synthetic():
    ds = build_dataset("synthetic", "val", n=5, size=(32, 48), seed=2)
    assert len(ds) == 5 and ds.split == "val" and ds[0][0].shape == (3, 32, 48)
    assert len(build_dataset("synthetic", "train")) == 256
    with pytest.raises(ValueError, match="train, val, test"):
        build_dataset("synthetic", "train_aug")
    with pytest.raises(ValueError, match="camvid, voc, sbd, synthetic"):
        build_dataset("cityscapes", "train")


@pytest.mark.parametrize(
    "kwargs", [{"n": -1}, {"size": (4, 64)}, {"seed": -2}, {"split": "dev"}, {"size": (3,)}]
)
def test_bad_arguments_raise(kwargs):
    args = {"n": 2, "size": (32, 32), "seed": 0} | kwargs
    with pytest.raises(ValueError):
        SyntheticScenes(**args)
