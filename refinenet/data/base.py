"""What every dataset shares: the ``(image, mask)`` contract, class metadata, and checks.

Every dataset in :mod:`refinenet.data` returns ``(image, mask)``:

- without a transform, ``image`` is a ``tv_tensors.Image`` uint8 ``(3, H, W)`` and ``mask`` a
  ``tv_tensors.Mask`` int64 ``(H, W)``;
- with :func:`refinenet.data.transforms.train_transform` or ``eval_transform``, the image is
  float32 and normalised with the dataset's ``mean``/``std``, the mask int64; pixels that
  carry no label (void, boundaries, crop padding) hold the dataset's ``ignore_index``.

Bad input fails loudly with :class:`DataError` (a ``ValueError``) or ``FileNotFoundError``,
and the message always names the file and the problem.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage
from torch.utils.data import Dataset
from torchvision import tv_tensors

__all__ = [
    "DataError",
    "SegmentationDataset",
    "check_label_values",
    "read_image",
    "read_label",
    "to_sample",
]

# ImageNet statistics: the usual choice when a dataset has no measured ones.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DataError(ValueError):
    """A data file is unreadable or inconsistent; the message names the file."""


class SegmentationDataset(Dataset):
    """Base class: metadata, the transform hook, and ``__getitem__``.

    Subclasses set the class attributes (or instance attributes) below and implement
    :meth:`load`, which returns the raw sample. ``__getitem__`` applies ``transform`` to the
    pair, so image and mask always go through the same (joint) transform.
    """

    num_classes: int
    ignore_index: int
    class_names: list[str]
    palette: list[tuple[int, int, int]]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __init__(self, transform: Callable | None = None) -> None:
        self.transform = transform

    def load(self, index: int) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
        """The raw sample ``index``: uint8 ``(3, H, W)`` image, int64 ``(H, W)`` mask."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int):
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        image, mask = self.load(index % len(self))
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return image, mask

    def info(self) -> dict:
        """The metadata as a plain dict (for configs, packs and logs)."""
        return {
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "class_names": list(self.class_names),
            "palette": [tuple(c) for c in self.palette],
            "mean": tuple(self.mean),
            "std": tuple(self.std),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} samples, {self.num_classes} classes)"


def to_sample(image: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor):
    """Wrap ``(H, W, 3)`` / ``(3, H, W)`` uint8 and ``(H, W)`` integer arrays as tv_tensors."""
    if isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[-1] == 3:
            image = image.transpose(2, 0, 1)
        image = torch.from_numpy(np.ascontiguousarray(image))
    if isinstance(mask, torch.Tensor):
        mask = mask.numpy() if mask.device.type == "cpu" else mask
    if isinstance(mask, np.ndarray):
        # Widen in NumPy: single-threaded, so no thread-pool stalls on a busy machine.
        mask = torch.from_numpy(mask.astype(np.int64))
    return tv_tensors.Image(image), tv_tensors.Mask(mask.long())


def _open(path: Path, what: str) -> PILImage.Image:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        img = PILImage.open(path)
        img.load()  # decode now: a truncated file fails here, not later in a worker
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ...
        raise DataError(f"{what} {path} is corrupt or truncated ({err})") from err
    return img


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to uint8 ``(H, W, 3)``; grey and palette images become RGB."""
    img = _open(Path(path), "image")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.array(img, dtype=np.uint8)  # a writable copy (torch warns on read-only)


def read_label(path: str | Path) -> np.ndarray:
    """Decode a label PNG to uint8 ``(H, W)`` class indices (palette indices are kept as is)."""
    img = _open(Path(path), "label")
    if img.mode not in ("L", "P", "I", "I;16"):
        raise DataError(
            f"label {path} has mode {img.mode!r}; expected one channel of class indices "
            "(mode L or P)"
        )
    arr = np.array(img)
    if arr.ndim != 2:
        raise DataError(f"label {path} has shape {arr.shape}; expected (H, W)")
    if arr.dtype != np.uint8:
        if arr.min() < 0 or arr.max() > 255:
            raise DataError(f"label {path} has values outside 0..255")
        arr = arr.astype(np.uint8)
    return arr


def check_pair(image: np.ndarray, label: np.ndarray, image_path, label_path) -> None:
    """Raise :class:`DataError` naming both files when image and label sizes differ."""
    if image.shape[:2] != label.shape[:2]:
        raise DataError(
            f"size mismatch: image {image_path} is {image.shape[1]}x{image.shape[0]} (WxH) but "
            f"label {label_path} is {label.shape[1]}x{label.shape[0]}"
        )


def check_label_values(label: np.ndarray, num_classes: int, ignore_index: int, path) -> None:
    """Raise :class:`DataError` naming ``path`` if a value is neither a class nor ``ignore``."""
    values = np.unique(label)
    bad = values[(values >= num_classes) & (values != ignore_index)]
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:8])
        raise DataError(
            f"label {path} has values {shown} outside the classes 0..{num_classes - 1} and "
            f"the ignore index {ignore_index}"
        )


def first_existing(candidates: Sequence[Path]) -> Path | None:
    """The first of ``candidates`` that exists, or None."""
    for c in candidates:
        if c.exists():
            return c
    return None
