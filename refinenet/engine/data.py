"""Datasets and loaders for training and evaluation, built from a :class:`TrainConfig`.

The datasets themselves live in :mod:`refinenet.data`; this module only wires them into
reproducible, resumable loading (see :mod:`refinenet.engine.reproducibility`):

- :class:`EpochSampler` is a ``DistributedSampler`` (a group of one without torchrun) that
  yields ``(epoch, index)`` keys and can start in the middle of an epoch;
- :class:`SeededSamples` augments sample ``index`` of ``epoch`` under a seed derived from
  ``(seed, epoch, index)`` only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .config import TrainConfig
from .reproducibility import sample_rng, sample_seed, seed_worker

__all__ = [
    "DatasetInfo",
    "EpochSampler",
    "SeededSamples",
    "build_train_set",
    "build_eval_set",
    "eval_dataset_source",
    "train_loader",
    "eval_loader",
    "resolve_workers",
]


@dataclass(frozen=True)
class DatasetInfo:
    """What a checkpoint needs to know about its data (for evaluate and predict)."""

    name: str
    num_classes: int
    ignore_index: int
    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def of(cls, name: str, dataset: Any) -> "DatasetInfo":
        return cls(
            name=name,
            num_classes=int(dataset.num_classes),
            ignore_index=int(dataset.ignore_index),
            class_names=tuple(dataset.class_names),
            palette=tuple(tuple(int(v) for v in c) for c in dataset.palette),
            mean=tuple(float(v) for v in dataset.mean),
            std=tuple(float(v) for v in dataset.std),
        )

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "class_names": list(self.class_names),
            "palette": [list(c) for c in self.palette],
            "mean": list(self.mean),
            "std": list(self.std),
        }


def _dataset_kwargs(cfg: TrainConfig) -> dict:
    kwargs = dict(cfg.data.options)
    if cfg.data.size is not None:
        kwargs["size"] = tuple(cfg.data.size)
    return kwargs


def build_train_set(cfg: TrainConfig) -> Dataset:
    """The training split with the configured augmentation (float32 images, int64 masks)."""
    from ..data import build_dataset
    from ..data.transforms import train_transform

    d = cfg.data
    dataset = build_dataset(d.dataset, d.train_split, root=d.root, **_dataset_kwargs(cfg))
    crop = d.crop_size
    if crop is None:
        # Crop (or pad) back to the loaded image size after random scaling, so that a batch
        # stacks. Datasets of mixed image sizes (VOC) need an explicit data.crop_size.
        image, _ = dataset.load(0) if hasattr(dataset, "load") else dataset[0]
        crop = tuple(image.shape[-2:])
    dataset.transform = train_transform(
        crop,
        scale_range=tuple(d.scale_range),
        hflip=d.hflip,
        color_jitter=d.color_jitter,
        ignore_index=dataset.ignore_index,
        mean=dataset.mean,
        std=dataset.std,
    )
    return dataset


def eval_dataset_source(cfg: TrainConfig, split: str | None = None, root: str | None = None):
    """``(name, split, root)`` of an evaluation split, as :func:`build_eval_set` reads it."""
    d = cfg.data
    name = d.val_dataset or d.dataset
    if root is None:
        root = d.val_root if d.val_root is not None else (d.root if name == d.dataset else None)
    return name, split or d.val_split, root


def build_eval_set(
    cfg: TrainConfig, split: str | None = None, root: str | None = None, *, native_labels: bool = False
) -> Dataset:
    """An evaluation split (default: ``data.val_split``) at the configured resolution, normalised.

    ``native_labels``: images at ``data.size`` but masks at the dataset's native resolution
    (CamVid: ``(360, 480)`` from the PNGs or the 360x480 pack), so that scores compare with
    published ones; the model's logits must then be upsampled to the mask. Datasets loaded
    as stored (``data.size`` null) and the generated one already have native masks; VOC and
    SBD, whose native size varies per image, cannot resize images alone: ``ValueError``.
    """
    from ..data import build_dataset
    from ..data.transforms import eval_transform

    name, split, root = eval_dataset_source(cfg, split, root)
    kwargs = _dataset_kwargs(cfg)
    if native_labels:
        if name == "camvid":
            kwargs["label_size"] = "native"
        elif name != "synthetic" and cfg.data.size is not None:
            raise ValueError(
                f"native_labels: {name} images differ in size, so their labels cannot be kept "
                f"native while images are resized to data.size={list(cfg.data.size)}; set "
                "data.size to null to evaluate at native resolution"
            )
    dataset = build_dataset(name, split, root=root, **kwargs)
    # No resize here: with native labels, image and mask sizes differ on purpose.
    dataset.transform = eval_transform(mean=dataset.mean, std=dataset.std)
    return dataset


class SeededSamples(Dataset):
    """Wraps a dataset so that sample ``(epoch, index)`` is augmented under its own seed.

    ``dataset[(epoch, index)]`` returns ``dataset[index]`` computed inside
    :func:`~refinenet.engine.reproducibility.sample_rng` seeded with
    ``sample_seed(seed, epoch, index)``; a plain int key uses epoch 0.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        epoch, index = key if isinstance(key, tuple) else (0, key)
        with sample_rng(sample_seed(self.seed, epoch, index)):
            return self.dataset[index]


class EpochSampler(DistributedSampler):
    """``DistributedSampler`` yielding ``(epoch, index)`` keys, able to start mid-epoch.

    Each epoch's order is a permutation drawn from ``seed + epoch`` (DistributedSampler's
    rule), split across ranks; samples that do not divide evenly among ranks are dropped.
    ``set_position(epoch, start)`` skips the first ``start`` samples of this rank's share.
    """

    def __init__(self, dataset: Dataset, *, num_replicas: int, rank: int, seed: int, shuffle: bool = True) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=True)
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self):
        indices = list(super().__iter__())[self.start :]
        return iter([(self.epoch, i) for i in indices])

    def __len__(self) -> int:
        return self.num_samples - self.start


def resolve_workers(value: int | str, device: torch.device) -> int:
    """``"auto"``: 0 on CPU (the cores are busy training), else up to 8 (half the cores)."""
    if value != "auto":
        return int(value)
    if device.type != "cuda":
        return 0
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def train_loader(
    dataset: Dataset, sampler: EpochSampler, *, batch_size: int, num_workers: int, device: torch.device, seed: int
) -> DataLoader:
    """Batches of ``(images (N,3,H,W) float32, masks (N,H,W) int64)``; the last partial batch is dropped."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
        worker_init_fn=seed_worker,
        # An explicit generator: otherwise every new loader iterator draws its base seed from
        # the global torch RNG, which would shift dropout masks after a resume.
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=num_workers > 0,
    )


def eval_loader(dataset: Dataset, *, batch_size: int, num_workers: int, device: torch.device, indices=None) -> DataLoader:
    """Sequential batches of an evaluation set (optionally only ``indices``: this rank's share)."""
    if indices is not None:
        dataset = torch.utils.data.Subset(dataset, list(indices))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(0),  # leave the global RNG alone
    )
