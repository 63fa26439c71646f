"""Does the data pipeline keep up? Loader throughput against the training step it feeds.

``refinenet bench --loader CONFIG [key=value ...]`` builds the trainer's own batch source for
``CONFIG`` (the packed split, augmented in DataLoader workers or, on CUDA, on the device) and
times how many training images per second it delivers with nothing else running; then it times
the training step of the same config on real batches from that source. The pipeline never
starves the model when it is several times faster than the step (the target is 3x).

On a CPU with ``data.num_workers: auto`` the loader runs in the training process, between
steps, so its time adds to every step: ``loader share`` is that fraction of a step.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Sequence

import torch

__all__ = ["loader_vs_step"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def loader_vs_step(
    config: str,
    overrides: Sequence[str] = (),
    *,
    device: str = "auto",
    batches: int = 20,
    warmup: int = 2,
    repeats: int = 5,
) -> dict:
    """Images/s of ``config``'s training batches and of its training step; one CSV row.

    The loader is timed over ``batches`` consecutive batches (after ``warmup`` more, which
    absorb worker start-up), each moved to the device and synchronised; the step is timed
    ``repeats`` times (after ``warmup``) with :func:`refinenet.engine.step.train_step`, the
    trainer's own, at the config's precision. Both are medians.
    """
    from ..engine import distributed
    from ..engine.class_weights import median_frequency_weights
    from ..engine.config import load_config
    from ..engine.data import build_train_set, resolve_workers
    from ..engine.optim import build_optimizer
    from ..engine.precision import resolve_device, resolve_precision
    from ..engine.step import train_step
    from ..engine.trainer import batch_source
    from ..models import RefineNet
    from .timing import Timing, time_fn

    if batches < 1 or warmup < 0 or repeats < 1:
        raise ValueError(f"need batches >= 1, warmup >= 0, repeats >= 1; got {batches}, {warmup}, {repeats}")
    cfg = load_config(config, list(overrides))
    dev = resolve_device(cfg.device if device == "auto" else device)
    precision = resolve_precision(cfg.precision, dev)
    train_set = build_train_set(cfg)
    source = batch_source(train_set, cfg, distributed.SingleProcess(), dev)
    # Epoch after epoch, as the trainer walks them, so a short split still gives enough batches.
    stream = itertools.chain.from_iterable(source.epoch(e, 0) for e in itertools.count())

    def fetch():
        images, masks = next(stream)
        images, masks = images.to(dev, non_blocking=True), masks.to(dev, non_blocking=True)
        _sync(dev)
        return images, masks

    for _ in range(warmup):
        fetch()
    times = []
    for _ in range(batches):
        start = time.perf_counter()
        images, masks = fetch()
        times.append(time.perf_counter() - start)
    loader_s = Timing(tuple(times)).median

    torch.manual_seed(cfg.seed)
    # Timing only: random initial weights, whatever model.backbone_weights says.
    arch = dataclasses.replace(cfg.model, backbone_weights=None)
    model = RefineNet(arch.with_classes(int(train_set.num_classes), f"dataset {cfg.data.dataset!r}")).to(dev)
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = build_optimizer(model, cfg.optim, pretrained=False, fused=precision.fused_optimizer and dev.type == "cuda")
    scaler = torch.amp.GradScaler(dev.type, enabled=precision.grad_scaler)
    runner = torch.compile(model) if precision.compile else model
    weight = None
    if cfg.loss.class_weights == "median_frequency":
        weight = median_frequency_weights(train_set, int(train_set.num_classes), int(train_set.ignore_index), cfg.loss.class_weight_power).to(dev)

    def step():
        train_step(runner, optimizer, scaler, images, masks, precision=precision,
                   ignore_index=int(train_set.ignore_index), class_weight=weight)

    step_s = time_fn(step, dev, warmup=warmup, repeats=repeats).median
    batch = images.shape[0]
    workers = resolve_workers(cfg.data.num_workers, dev)
    in_process = not source.on_device and workers == 0
    return {
        "device": str(dev),
        "config": str(config),
        "dataset": cfg.data.dataset,
        "height": int(images.shape[-2]),
        "width": int(images.shape[-1]),
        "batch": batch,
        "pipeline": "on the device" if source.on_device else f"DataLoader, {workers} workers",
        "amp": precision.amp,
        "channels_last": precision.channels_last,
        "loader_s_per_batch": round(loader_s, 5),
        "step_s": round(step_s, 5),
        "loader_images_per_s": round(batch / loader_s, 2),
        "step_images_per_s": round(batch / step_s, 2),
        "loader_over_step": round(step_s / loader_s, 2),
        # In the training process the loader adds its time to every step; with workers it
        # overlaps the step (and on the device it is part of the step's stream).
        "loader_share": round(loader_s / (loader_s + step_s), 4) if in_process else None,
    }
