"""Dataset-level evaluation: mIoU, per-class IoU, accuracies and boundary IoU.

``evaluate(model, dataset, ...)`` scores a model on every image of a dataset. Checkpoints and
run directories are the run's business: :meth:`refinenet.engine.Run.evaluate` rebuilds a split
from the run's config, loads its weights and calls this.

Scores are computed at the resolution of the masks the dataset yields, whatever the size the
model ran at: a dataset may load images smaller than their labels (CamVid at 180x240 scored
against its native 360x480 labels), and the predictions are upsampled to the labels.

In a group of processes (inside a torchrun training), each process evaluates every
``world_size``-th image and the integer counts are summed across processes, so the result is
exactly that of a single process evaluating every image.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from . import distributed
from .config import PrecisionSection
from .data import eval_loader
from .inference import predict_labels
from .metrics import SegmentationMetrics
from .precision import AMP_DTYPES, resolve_device, resolve_precision

__all__ = ["evaluate"]


def _progress(iterable, enabled: bool, total: int, desc: str):
    if not enabled:
        return iterable
    from .progress import progress_bar

    return progress_bar(iterable, total=total, desc=desc)


def evaluate(
    model: nn.Module,
    dataset,
    *,
    split: str | None = None,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    boundary: bool = True,
    batch_size: int = 1,
    num_workers: int = 0,
    device: str | torch.device = "auto",
    amp: str | None = None,
    channels_last: bool | None = None,
    progress: bool = False,
    group: distributed.SingleProcess | None = None,
    on_image: Callable[[int, Tensor, Tensor], None] | None = None,
) -> dict:
    """Evaluate a segmentation model on a whole dataset.

    Args:
        model: RefineNet or any model mapping images ``(N,3,H,W)`` to logits ``(N,C,h,w)``
            (any ``h, w``: the logits are resized to the masks).
        dataset: yields ``(image float32 (3,H,W) normalised, mask int64 (H',W'))`` and has
            ``num_classes``, ``ignore_index``, ``class_names``. The mask may be larger (or
            smaller) than the image: metrics are computed at the mask's size.
        split: the split's name, reported in the result.
        scales: input scales whose softmax is averaged (the released code's multi-scale set is
            ``(0.4, 0.6, 0.8, 1.0, 1.2)``); scales that would shrink an image below 32 px are
            skipped and counted in ``skipped_scales``.
        flip: also average the left-right flipped prediction.
        on_image: called as ``on_image(index, prediction (H',W'), mask (H',W'))`` for every
            image, in dataset order (single process only), e.g. to score images one by one.
        boundary: compute boundary IoU (costs one erosion per class and image).
        batch_size: images per forward pass (>1 only for datasets of one image size).
        device: ``"auto"`` = the model's device.
        amp: ``"none"``, ``"bf16"`` or ``"fp16"`` autocast for the forward passes; ``None``:
            the ``auto`` default of the device (a run evaluates at its own precision through
            :meth:`Run.evaluate`).
        channels_last: likewise; ``None`` follows the device's default.
        group: the processes sharing the work (:mod:`refinenet.engine.distributed`); default:
            the group this process belongs to, a group of one outside torchrun.

    Returns a dict of plain Python values: ``miou``, ``iou`` (per class, NaN where a class is
    absent from truth and prediction), ``pixel_accuracy``, ``mean_class_accuracy``,
    ``class_accuracy``, ``boundary_iou``, ``boundary_iou_per_class`` (if ``boundary``),
    ``class_names``, ``confusion`` (rows truth, columns prediction), ``pixels``, ``images``,
    ``split``, ``scales``, ``flip``, ``skipped_scales``, ``seconds``. Scores are fractions in [0, 1].
    """
    if not isinstance(model, nn.Module):
        raise ValueError(
            f"evaluate takes a model and a dataset, got {type(model).__name__}; for a run or a "
            f"checkpoint use Run.load(run_dir).evaluate(split) or `refinenet evaluate`"
        )
    group = group or distributed.current()
    target = next(model.parameters()).device if device == "auto" else resolve_device(str(device))
    if amp is None or channels_last is None:
        resolved = resolve_precision(PrecisionSection(), target)
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

    loader = eval_loader(
        dataset, batch_size=batch_size, num_workers=num_workers, device=target, indices=group.shard(len(dataset))
    )
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
                model,
                images,
                scales=scales,
                flip=flip,
                amp_dtype=AMP_DTYPES[amp],
                channels_last=channels_last,
                out_size=tuple(masks.shape[-2:]),
            )
            metrics.update(pred, masks)
            if on_image is not None:
                for k in range(images.shape[0]):
                    on_image(images_seen + k, pred[k], masks[k])
            images_seen += images.shape[0]
            skipped += n_skipped * images.shape[0]
    finally:
        model.train(was_training)
    for count in metrics.counts():
        group.sum(count)
    counts = group.sum(torch.tensor([images_seen, skipped], dtype=torch.int64, device=target))
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
