"""Dataset-level evaluation: mIoU, per-class IoU, accuracies and boundary IoU.

``evaluate(source, dataset=None, ...)`` where ``source`` is a model, a checkpoint file, a run
directory or a :class:`~refinenet.engine.run.Run`. Without a dataset, the split is rebuilt from
the training config stored in the checkpoint (same dataset, resolution and options).

Under ``torch.distributed`` (inside a torchrun training), each process evaluates every
``world_size``-th image and the integer counts are summed across processes, so the result is
exactly that of a single process evaluating every image.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .inference import predict_labels
from .metrics import SegmentationMetrics
from .config import PrecisionSection, TrainConfig
from .precision import AMP_DTYPES, resolve_device, resolve_precision

__all__ = ["evaluate"]


def _progress(iterable, enabled: bool, total: int, desc: str):
    if not enabled:
        return iterable
    from .progress import progress_bar

    return progress_bar(iterable, total=total, desc=desc)


def _resolve_source(source: Any, split: str | None, root: str | None, dataset):
    """-> (model, dataset, split name, checkpoint dict or None)."""
    from .checkpoint import load_model, read_checkpoint
    from .config import TrainConfig
    from .data import build_eval_set
    from .run import Run

    if isinstance(source, nn.Module):
        if dataset is None:
            raise ValueError(
                "evaluate(model) needs a dataset (a refinenet.data dataset with the eval transform); "
                "or pass a checkpoint / run directory, whose training config names its data"
            )
        return source, dataset, split, None
    if isinstance(source, Run):
        source = source.checkpoint
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError(f"evaluate: source must be a model, a checkpoint path, a run directory or a Run, got {type(source).__name__}")
    state = read_checkpoint(Path(source))
    model = load_model(state)
    if dataset is None:
        cfg = TrainConfig.from_saved(state["train_config"])
        split = split or cfg.data.val_split
        dataset = build_eval_set(cfg, split, root)
    return model, dataset, split, state


def evaluate(
    source: Any,
    dataset=None,
    *,
    split: str | None = None,
    root: str | None = None,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    boundary: bool = True,
    batch_size: int = 1,
    num_workers: int = 0,
    device: str | torch.device = "auto",
    amp: str | None = None,
    channels_last: bool | None = None,
    progress: bool = False,
) -> dict:
    """Evaluate a segmentation model on a whole dataset.

    Args:
        source: an ``nn.Module`` (RefineNet or any model mapping ``(N,3,H,W)`` to logits
            ``(N,C,h,w)``), a checkpoint ``.pt``, a run directory, or a ``Run``.
        dataset: yields ``(image float32 (3,H,W) normalised, mask int64 (H,W))`` and has
            ``num_classes``, ``ignore_index``, ``class_names``; ``None`` rebuilds ``split`` from
            the checkpoint's training config (not possible for a bare model).
        split: with ``dataset=None``: the split to rebuild (default: the run's validation split).
        root: with ``dataset=None``: the data root, if not the one used for training.
        scales: input scales whose softmax is averaged (the released code's multi-scale set is
            ``(0.4, 0.6, 0.8, 1.0, 1.2)``); scales that would shrink an image below 32 px are
            skipped and counted in ``skipped_scales``.
        flip: also average the left-right flipped prediction.
        boundary: compute boundary IoU (costs one erosion per class and image).
        batch_size: images per forward pass (>1 only for datasets of one image size).
        device: ``"auto"`` = the model's device for a model, else CUDA if available.
        amp: ``"none"``, ``"bf16"`` or ``"fp16"`` autocast for the forward passes; ``None``
            (default) uses the run's own precision for a checkpoint or run (so the metrics
            match the ones it reported), and the ``auto`` defaults of the device for a model.
        channels_last: likewise; ``None`` follows the run / the device's defaults.

    Returns a dict of plain Python values: ``miou``, ``iou`` (per class, NaN where a class is
    absent from truth and prediction), ``pixel_accuracy``, ``mean_class_accuracy``,
    ``class_accuracy``, ``boundary_iou``, ``boundary_iou_per_class`` (if ``boundary``),
    ``class_names``, ``confusion`` (rows truth, columns prediction), ``pixels``, ``images``,
    ``split``, ``scales``, ``flip``, ``skipped_scales``, ``seconds``. Scores are fractions in [0, 1].
    """
    model, dataset, split, state = _resolve_source(source, split, root, dataset)
    if device == "auto" and isinstance(source, nn.Module):
        target = next(model.parameters()).device
    else:
        target = resolve_device(str(device))
    if amp is None or channels_last is None:
        section = PrecisionSection()
        if state is not None and "train_config" in state:
            section = TrainConfig.from_saved(state["train_config"]).precision
        resolved = resolve_precision(section, target)
        amp = resolved.amp if amp is None else amp
        channels_last = resolved.channels_last if channels_last is None else channels_last
    if amp not in AMP_DTYPES:
        raise ValueError(f"amp must be one of {sorted(AMP_DTYPES)}, got {amp!r}")
    model = model.to(target)
    num_classes = int(getattr(model, "num_classes", getattr(dataset, "num_classes", 0)))
    if getattr(dataset, "num_classes", num_classes) != num_classes:
        raise ValueError(
            f"the model predicts {num_classes} classes but the dataset has {dataset.num_classes}; "
            f"evaluate a model trained on this dataset"
        )
    ignore_index = getattr(dataset, "ignore_index", None)
    class_names = getattr(dataset, "class_names", None)

    distributed = dist.is_available() and dist.is_initialized()
    indices = None
    if distributed:
        indices = range(dist.get_rank(), len(dataset), dist.get_world_size())
    from .data import eval_loader

    loader = eval_loader(dataset, batch_size=batch_size, num_workers=num_workers, device=target, indices=indices)
    metrics = SegmentationMetrics(num_classes, ignore_index, boundary=boundary, class_names=class_names, device=target)
    was_training = model.training
    model.eval()
    images_seen = skipped = 0
    start = time.perf_counter()
    try:
        for images, masks in _progress(loader, progress, len(loader), f"eval {split or ''}".strip()):
            images = images.to(target, non_blocking=True)
            masks = masks.to(target, non_blocking=True)
            pred, n_skipped = predict_labels(
                model, images, scales=scales, flip=flip, amp_dtype=AMP_DTYPES[amp], channels_last=channels_last
            )
            metrics.update(pred, masks)
            images_seen += images.shape[0]
            skipped += n_skipped * images.shape[0]
    finally:
        model.train(was_training)
    if distributed:
        metrics.all_reduce()
        counts = torch.tensor([images_seen, skipped], dtype=torch.int64, device=target)
        dist.all_reduce(counts)
        images_seen, skipped = (int(v) for v in counts.tolist())
    out = metrics.compute()
    if skipped:
        warnings.warn(
            f"evaluate: {skipped} image-scale pairs skipped (scales {list(scales)} would shrink some "
            f"images below 32 px)",
            stacklevel=2,
        )
    out.update(
        images=images_seen,
        split=split,
        scales=[float(s) for s in scales],
        flip=bool(flip),
        skipped_scales=skipped,
        seconds=time.perf_counter() - start,
    )
    return out
