"""Optimiser, learning-rate schedule and loss.

Released-code recipe (MatConvNet): SGD, momentum 0.9, weight decay 5e-4, learning rate 5e-4
with the (pretrained) backbone at 0.1x, stepped down by hand. Here the backbone multiplier is a
parameter, the schedule is poly with a linear warm-up by default (the usual choice when
training a segmentation network for a fixed number of steps), and Adam/AdamW are options.
"""

from __future__ import annotations

import math

import inspect

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.transforms import resize_mask
from .config import OptimSection, ScheduleSection

__all__ = ["param_groups", "build_optimizer", "LrFactor", "build_scheduler", "segmentation_loss"]


def backbone_lr_mult(optim: OptimSection, pretrained: bool) -> float:
    """The configured multiplier, or for "auto" 0.1 with pretrained weights and 1.0 without."""
    if optim.backbone_lr_mult == "auto":
        return 0.1 if pretrained else 1.0
    return float(optim.backbone_lr_mult)


def param_groups(model: nn.Module, lr: float, mult: float) -> list[dict]:
    """Two groups: ``"backbone"`` (ResNet stages, lr x mult) and ``"head"`` (the rest, lr)."""
    backbone_ids = {id(p) for p in model.backbones.parameters()}
    backbone = [p for p in model.parameters() if id(p) in backbone_ids and p.requires_grad]
    head = [p for p in model.parameters() if id(p) not in backbone_ids and p.requires_grad]
    return [
        {"name": "backbone", "params": backbone, "lr": lr * mult},
        {"name": "head", "params": head, "lr": lr},
    ]


def _supports(cls: type, name: str) -> bool:
    return name in inspect.signature(cls.__init__).parameters


def build_optimizer(model: nn.Module, optim: OptimSection, *, pretrained: bool, fused: bool) -> torch.optim.Optimizer:
    """SGD / Adam / AdamW over :func:`param_groups`; ``fused`` uses the fused kernels if this
    torch has them for the optimiser (otherwise the default foreach implementation)."""
    groups = param_groups(model, optim.lr, backbone_lr_mult(optim, pretrained))
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[optim.name]
    kwargs: dict = {"lr": optim.lr, "weight_decay": optim.weight_decay}
    if optim.name == "sgd":
        kwargs.update(momentum=optim.momentum, nesterov=optim.nesterov and optim.momentum > 0)
    else:
        kwargs.update(betas=optim.betas)
    if fused and _supports(cls, "fused"):
        kwargs["fused"] = True
    return cls(groups, **kwargs)


class LrFactor:
    """Learning-rate factor at a step: warm-up x (poly | cosine | constant | step decay).

    ``factor(step)`` for ``step`` optimisation steps already taken (``LambdaLR`` convention):
    warm-up rises linearly from ``warmup_factor`` at step 0 to 1 at ``warmup_steps``; poly is
    ``(1 - step / steps) ** power``, so the last step uses a small but non-zero rate.
    A class (not a lambda) so that ``LambdaLR.state_dict()`` can save it.
    """

    def __init__(self, schedule: ScheduleSection) -> None:
        self.name = schedule.name
        self.steps = schedule.steps
        self.warmup_steps = schedule.warmup_steps
        self.warmup_factor = schedule.warmup_factor
        self.power = schedule.power
        self.milestones = tuple(schedule.milestones)
        self.gamma = schedule.gamma

    def __call__(self, step: int) -> float:
        factor = 1.0
        if step < self.warmup_steps:
            factor = self.warmup_factor + (1.0 - self.warmup_factor) * step / self.warmup_steps
        if self.name == "poly":
            factor *= max(0.0, 1.0 - step / self.steps) ** self.power
        elif self.name == "cosine":  # Loshchilov & Hutter's annealing to 0, without restarts
            factor *= 0.5 * (1.0 + math.cos(math.pi * min(step, self.steps) / self.steps))
        elif self.name == "step":
            factor *= self.gamma ** sum(step >= m for m in self.milestones)
        return factor


def build_scheduler(optimizer: torch.optim.Optimizer, schedule: ScheduleSection) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, LrFactor(schedule))


def segmentation_loss(logits: Tensor, target: Tensor, ignore_index: int, weight: Tensor | None = None) -> Tensor:
    """Mean cross-entropy over labelled pixels; labels are downsampled to the logits' size.

    ``logits`` ``(N, C, h, w)``, ``target`` ``(N, H, W)`` int64 (nearest-downsampled to
    ``(h, w)`` for ``model.output="quarter"``). With class weights ``weight`` ``(C,)``
    the mean is weighted (each pixel counts ``weight[label]``), as
    ``F.cross_entropy(weight=...)`` does. A batch with no labelled pixel gives 0 (not
    0/0 = NaN, which would stop the run as a divergence).
    """
    if target.shape[-2:] != logits.shape[-2:]:
        # nearest-exact: for a 1/4 map, the centre pixel of each 4x4 cell, where a stride-4
        # feature sits
        target = resize_mask(target, logits.shape[-2:])
    total = F.cross_entropy(logits.float(), target, weight=weight, ignore_index=ignore_index, reduction="sum")
    labelled = target != ignore_index
    if weight is None:
        count = labelled.sum()
    else:
        count = weight[target[labelled]].sum()
    return total / count.clamp(min=1e-12 if weight is not None else 1)
