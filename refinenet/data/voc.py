"""PASCAL VOC 2012 segmentation (via torchvision) and the SBD "train_aug" set.

VOC layout (torchvision's, nothing is downloaded)::

    <root>/VOCdevkit/VOC2012/JPEGImages/<id>.jpg
    <root>/VOCdevkit/VOC2012/SegmentationClass/<id>.png      palette PNG, 255 = ignore
    <root>/VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt

SBD layout (Hariharan et al. 2011, ``benchmark.tgz``)::

    <sbd>/benchmark_RELEASE/dataset/img/<id>.jpg
    <sbd>/benchmark_RELEASE/dataset/cls/<id>.mat              GTcls.Segmentation, 0-20
    <sbd>/benchmark_RELEASE/dataset/{train,val}.txt

"train_aug" (10582 images with the full data) = (SBD train + SBD val + VOC train) - VOC val,
as in DeepLab and the RefineNet release. Where VOC 2012 has its own annotation of an image we
use it (it marks object borders as 255), else SBD's ``.mat``. Roots are found like CamVid's
(:mod:`refinenet.data.paths`) under the names ``voc`` and ``sbd``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .base import (
    DataError,
    SegmentationDataset,
    check_label_values,
    check_pair,
    read_image,
    read_label,
    to_sample,
)
from .paths import data_roots

__all__ = [
    "SBDTrainAug",
    "VOCSegmentation",
    "VOC_CLASSES",
    "VOC_PALETTE",
    "find_voc_root",
    "read_sbd_mat",
]

VOC_CLASSES = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
]  # fmt: skip


def _voc_colour(i: int) -> tuple[int, int, int]:
    # The devkit's colour map: the bits of the class index spread over R, G and B.
    r = g = b = 0
    for shift in range(7, -1, -1):
        r |= ((i >> 0) & 1) << shift
        g |= ((i >> 1) & 1) << shift
        b |= ((i >> 2) & 1) << shift
        i >>= 3
    return r, g, b


VOC_PALETTE = [_voc_colour(i) for i in range(len(VOC_CLASSES))]
VOC_SPLITS = ("train", "val", "trainval")
_VOC_SUBDIR = Path("VOCdevkit") / "VOC2012"
_SBD_SUBDIR = Path("benchmark_RELEASE") / "dataset"


def _normalise_voc(path: Path) -> Path | None:
    """The directory holding ``VOCdevkit/VOC2012`` for ``path`` (it, VOCdevkit or VOC2012)."""
    options = [path]
    if path.name == "VOCdevkit":
        options.append(path.parent)
    if path.name == "VOC2012":
        options.append(path.parent.parent)
    for candidate in options:
        if (candidate / _VOC_SUBDIR / "ImageSets" / "Segmentation").is_dir():
            return candidate
    return None


def find_voc_root(root: str | Path | None = None) -> Path:
    """The directory holding ``VOCdevkit/VOC2012`` (``root`` may also name either of those)."""
    if root is not None:
        found = _normalise_voc(Path(root))
        if found is None:
            raise FileNotFoundError(f"{root} does not hold VOC 2012 (no {_VOC_SUBDIR}/ImageSets/"
                                    "Segmentation); download VOCtrainval_11-May-2012.tar and "
                                    "extract it there")
        return found
    candidates = data_roots("voc")
    for c in candidates:
        found = _normalise_voc(c)
        if found is not None:
            return found
    searched = "\n  ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"VOC 2012 not found; searched (in order):\n  {searched}\n"
                            f"Put VOCdevkit/VOC2012 in one of them or pass root=DIR")


def _find_sbd_root(root: str | Path | None) -> Path:
    """The SBD ``dataset`` directory (holding ``cls/``, ``img/``, ``train.txt``)."""
    candidates = [Path(root)] if root is not None else data_roots("sbd")
    for c in candidates:
        for d in (c / _SBD_SUBDIR, c / "dataset", c):
            if (d / "cls").is_dir() and (d / "train.txt").is_file():
                return d
    if root is not None:
        raise FileNotFoundError(f"{root} does not hold SBD (no {_SBD_SUBDIR}/cls and train.txt); "
                                "extract benchmark.tgz there")
    searched = "\n  ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"SBD not found; searched (in order):\n  {searched}\nExtract "
                            "benchmark.tgz (benchmark_RELEASE/) into one of them or pass root=DIR")


def _read_ids(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"split list {path} does not exist")
    ids = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise DataError(f"split list {path} is empty")
    return ids


def read_sbd_mat(path: str | Path) -> np.ndarray:
    """SBD's ``cls/<id>.mat`` -> uint8 ``(H, W)`` class indices (``GTcls.Segmentation``)."""
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label {path} does not exist")
    try:
        seg = loadmat(path, squeeze_me=True, struct_as_record=False)["GTcls"].Segmentation
    except Exception as err:  # scipy raises ValueError, TypeError, KeyError, ...
        raise DataError(f"label {path} is corrupt or not an SBD GTcls file ({err})") from err
    seg = np.asarray(seg)
    if seg.ndim != 2 or seg.min() < 0 or seg.max() > 255:
        raise DataError(f"label {path} holds a {seg.shape} {seg.dtype} array, not (H, W) classes")
    return seg.astype(np.uint8)


class _VOCBase(SegmentationDataset):
    num_classes = len(VOC_CLASSES)
    ignore_index = 255
    class_names = VOC_CLASSES
    palette = VOC_PALETTE
    # ImageNet statistics (defaults of the base class), as usual for VOC.

    def __init__(self, transform, check_labels: bool) -> None:
        super().__init__(transform)
        self.check_labels = check_labels
        self.images: list[Path] = []
        self.labels: list[Path] = []

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int):
        image_path, label_path = self.images[index], self.labels[index]
        image = read_image(image_path)
        label = read_sbd_mat(label_path) if label_path.suffix == ".mat" else read_label(label_path)
        check_pair(image, label, image_path, label_path)
        if self.check_labels:
            check_label_values(label, self.num_classes, self.ignore_index, label_path)
        return to_sample(image, label)


class VOCSegmentation(_VOCBase):
    """PASCAL VOC 2012 ``split`` ("train" 1464, "val" 1449, "trainval") through torchvision's
    ``VOCSegmentation`` (download off); 21 classes, 255 ignored. Decoding is ours, so a bad
    file raises an error that names it."""

    def __init__(self, root=None, split: str = "train", *, transform: Callable | None = None,
                 check_labels: bool = True) -> None:
        super().__init__(transform, check_labels)
        if split not in VOC_SPLITS:
            raise ValueError(f"unknown VOC split {split!r}; allowed: {', '.join(VOC_SPLITS)}")
        from torchvision.datasets import VOCSegmentation as TVVOCSegmentation

        self.root, self.split = find_voc_root(root), split
        listing = self.root / _VOC_SUBDIR / "ImageSets" / "Segmentation" / f"{split}.txt"
        ids = _read_ids(listing)  # named errors for a missing or empty list
        tv = TVVOCSegmentation(str(self.root), year="2012", image_set=split, download=False)
        for image, label, name in zip(tv.images, tv.masks, ids):
            for path in (image, label):
                if not Path(path).is_file():
                    raise FileNotFoundError(f"{path} (listed as {name!r} in {listing}) is missing")
        self.images, self.labels = [Path(p) for p in tv.images], [Path(p) for p in tv.masks]


class SBDTrainAug(_VOCBase):
    """The "train_aug" set: (SBD train + SBD val + VOC train) - VOC val, 10582 images.

    Args:
        root: the SBD directory (holding ``benchmark_RELEASE/``); ``None`` searches.
        split: only "train_aug".
        voc_root: the VOC directory (holding ``VOCdevkit/``); ``None`` searches.
    """

    def __init__(self, root=None, split: str = "train_aug", *, voc_root=None,
                 transform: Callable | None = None, check_labels: bool = True) -> None:
        super().__init__(transform, check_labels)
        if split != "train_aug":
            raise ValueError(f"unknown SBD split {split!r}; allowed: train_aug")
        self.split = split
        self.root = _find_sbd_root(root)
        self.voc_root = find_voc_root(voc_root)
        voc = self.voc_root / _VOC_SUBDIR
        sets = voc / "ImageSets" / "Segmentation"
        voc_train, voc_val = _read_ids(sets / "train.txt"), set(_read_ids(sets / "val.txt"))
        sbd_ids = _read_ids(self.root / "train.txt") + _read_ids(self.root / "val.txt")
        ids = sorted((set(sbd_ids) | set(voc_train)) - voc_val)
        sbd = set(sbd_ids)
        for name in ids:
            voc_label = voc / "SegmentationClass" / f"{name}.png"
            label = voc_label if voc_label.is_file() else self.root / "cls" / f"{name}.mat"
            image = voc / "JPEGImages" / f"{name}.jpg"
            if not image.is_file() and name in sbd:
                image = self.root / "img" / f"{name}.jpg"
            for path in (image, label):
                if not path.is_file():
                    where = "the SBD lists" if name in sbd else f"{sets / 'train.txt'}"
                    raise FileNotFoundError(f"{path} (for {name!r}, listed in {where}) is missing")
            self.images.append(image)
            self.labels.append(label)
