"""Prediction at one or several input scales, with optional flip averaging.

Multi-scale evaluation as in the released code: the image is resized by each scale, the
model's softmax at each scale is resized back to the image size (bilinear) and the maps are
averaged; the prediction is the arg-max. Flip averaging adds the left-right mirrored image's
softmax, mirrored back. Works on images of any size, subject to one constraint: the model needs
inputs of at least 32 px (its stride). A scale that would make the short side smaller is
skipped; if every scale would, the image is run once, resized so that its short side is 32 px.
Skips are counted and reported (``skipped``).

``out_size`` asks for the prediction at another size than the image's, e.g. that of labels
stored at a higher resolution than the images fed to the model: each scale's logits are
resized (bilinear, ``align_corners=False``) straight to ``out_size`` before the softmax and
the arg-max, so a finer label map is scored against the model's own upsampled output.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models import MIN_INPUT_SIZE

__all__ = ["usable_scales", "predict_probabilities", "predict_labels"]


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    # Anti-alias when shrinking, as the model does for its own input scales.
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def usable_scales(height: int, width: int, scales: Sequence[float]) -> tuple[list[tuple[int, int]], int]:
    """Input sizes to run for an ``height x width`` image, and how many scales were skipped.

    A scale gives ``(round(H*s), round(W*s))``; sizes with a side below 32 px are skipped. If
    none is left, the one size whose short side is 32 px is returned instead.
    """
    sizes, skipped = [], 0
    for s in scales:
        size = (max(1, round(height * s)), max(1, round(width * s)))
        if min(size) >= MIN_INPUT_SIZE:
            sizes.append(size)
        else:
            skipped += 1
    if not sizes:
        s = MIN_INPUT_SIZE / min(height, width)
        sizes = [(max(MIN_INPUT_SIZE, round(height * s)), max(MIN_INPUT_SIZE, round(width * s)))]
    return sizes, skipped


def _logits(model: nn.Module, x: Tensor, out_size: tuple[int, int], channels_last: bool) -> Tensor:
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    logits = model(x).float()
    if tuple(logits.shape[-2:]) != out_size:  # "quarter" models, a rescaled input, finer labels
        logits = F.interpolate(logits, size=out_size, mode="bilinear", align_corners=False)
    return logits


@torch.no_grad()
def predict_probabilities(
    model: nn.Module,
    images: Tensor,
    *,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    out_size: tuple[int, int] | None = None,
) -> tuple[Tensor, int]:
    """Averaged softmax ``(N, C, *out_size)`` float32 for normalised images ``(N, 3, H, W)``;
    ``out_size`` defaults to ``(H, W)``.

    Returns ``(probabilities, skipped)`` where ``skipped`` counts scales that were left out
    because they would shrink the image below 32 px (per image: multiply by N for images).
    The model must be in eval mode (the caller's choice; dropout would make this random).
    """
    height, width = images.shape[-2:]
    out_size = (height, width) if out_size is None else (int(out_size[0]), int(out_size[1]))
    sizes, skipped = usable_scales(height, width, scales)
    autocast = (
        torch.autocast(images.device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()
    )
    total = None
    count = 0
    with autocast:
        for size in sizes:
            x = _resize(images, size)
            for flipped in (False, True) if flip else (False,):
                xi = x.flip(-1) if flipped else x
                logits = _logits(model, xi, out_size, channels_last)
                probs = logits.softmax(1)
                if flipped:
                    probs = probs.flip(-1)
                total = probs if total is None else total + probs
                count += 1
    return total / count, skipped


@torch.no_grad()
def predict_labels(
    model: nn.Module,
    images: Tensor,
    *,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    out_size: tuple[int, int] | None = None,
) -> tuple[Tensor, int]:
    """Class indices ``(N, *out_size)`` int64 (default ``(N, H, W)``) and the skipped-scale
    count (see :func:`predict_probabilities`).

    A single scale of 1.0 without flip takes the arg-max of the logits directly (the softmax
    does not change it).
    """
    height, width = images.shape[-2:]
    out_size = (height, width) if out_size is None else (int(out_size[0]), int(out_size[1]))
    if tuple(scales) == (1.0,) and not flip and min(height, width) >= MIN_INPUT_SIZE:
        autocast = (
            torch.autocast(images.device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()
        )
        with autocast:
            return _logits(model, images, out_size, channels_last).argmax(1), 0
    probs, skipped = predict_probabilities(
        model, images, scales=scales, flip=flip, amp_dtype=amp_dtype, channels_last=channels_last, out_size=out_size
    )
    return probs.argmax(1), skipped
