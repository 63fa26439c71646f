"""One optimisation step, shared by the trainer and the benchmark so both time the same work."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .optim import segmentation_loss
from .precision import Precision

__all__ = ["train_step"]


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    images: Tensor,
    masks: Tensor,
    *,
    precision: Precision,
    ignore_index: int,
    grad_clip: float | None = None,
    clip_params=None,
    class_weight: Tensor | None = None,
) -> Tensor:
    """Forward under autocast, cross-entropy, backward through the grad scaler, update.

    ``images`` ``(N, 3, H, W)`` and ``masks`` ``(N, H, W)`` already on the device. ``model``
    may be a DDP or compiled wrapper; ``clip_params`` are the parameters whose gradient norm
    ``grad_clip`` bounds (default: ``model.parameters()``); ``class_weight`` ``(C,)`` weights
    the cross-entropy (``loss.class_weights``). Returns the loss (not synced).
    """
    if precision.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    model.train()
    with precision.autocast():
        logits = model(images)
    loss = segmentation_loss(logits, masks, ignore_index, class_weight)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if grad_clip is not None:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters() if clip_params is None else clip_params, grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return loss
