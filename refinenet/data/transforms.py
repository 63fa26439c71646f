"""Joint image/mask transforms on ``torchvision.transforms.v2``.

A v2 transform draws its random parameters once per call and applies them to every input it
is given, dispatching on type: ``tv_tensors.Image`` is resampled bilinearly, ``tv_tensors.Mask``
by nearest neighbour. Passing ``(image, mask)`` together is what keeps them aligned: there is
no second random draw that could send the mask elsewhere.

Training (the released code's augmentation): random scale 0.7-1.3, random crop padded where
the scaled image is smaller than the crop, horizontal flip, normalisation; optionally a colour
jitter (an addition: the released code has none). Padding is filled
with the mean colour in the image (so it normalises to 0) and with ``ignore_index`` in the
mask (so the loss never sees it).

Masks are resized with "nearest-exact" (source pixel ``floor((i + 0.5) * in / out)``), which
samples at the same pixel centres as bilinear interpolation with ``align_corners=False``;
PyTorch's legacy "nearest" shifts labels by up to half a source pixel against the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

__all__ = [
    "JointResize",
    "RandomColour",
    "RandomScale",
    "draw_colour_factors",
    "jitter_colours",
    "eval_transform",
    "resize_mask",
    "train_transform",
]


def _pair(name: str, size) -> tuple[int, int]:
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or (H, W), got {size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"{name} must be positive, got {size!r}")
    return h, w


def resize_mask(mask: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Nearest-exact resize of ``(..., H, W)`` labels of any dtype (an index gather, no floats)."""
    h, w = mask.shape[-2:]
    oh, ow = size
    rows = ((torch.arange(oh, dtype=torch.float64) + 0.5) * (h / oh)).long().clamp_(max=h - 1)
    cols = ((torch.arange(ow, dtype=torch.float64) + 0.5) * (w / ow)).long().clamp_(max=w - 1)
    out = mask[..., rows.to(mask.device)[:, None], cols.to(mask.device)[None, :]]
    return tv_tensors.wrap(out, like=mask) if isinstance(mask, tv_tensors.TVTensor) else out


def _query_size(flat_inputs: list[Any]) -> tuple[int, int]:
    # Like v2.query_size (public only in recent torchvision), for images and masks.
    sizes = {tuple(x.shape[-2:]) for x in flat_inputs if isinstance(x, torch.Tensor)}
    if len(sizes) != 1:
        raise ValueError(f"image and mask must have one size, got {sorted(sizes)}")
    return sizes.pop()


def _resize(inpt: Any, size: tuple[int, int]) -> Any:
    if isinstance(inpt, tv_tensors.Mask):
        return resize_mask(inpt, size)
    if isinstance(inpt, torch.Tensor):  # images (tv_tensors.Image or a plain tensor)
        return TF.resize(inpt, list(size), interpolation=v2.InterpolationMode.BILINEAR,
                         antialias=True)
    return inpt


class RandomScale(v2.Transform):
    """Resize image and mask together by one factor drawn uniformly from ``scale_range``.

    Shapes: ``(C, H, W)`` image and ``(H, W)`` mask -> ``(C, round(s H), round(s W))`` and
    ``(round(s H), round(s W))``.
    """

    def __init__(self, scale_range: tuple[float, float] = (0.7, 1.3)) -> None:
        super().__init__()
        lo, hi = (float(s) for s in scale_range)
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range must be (low, high) with 0 < low <= high, "
                             f"got {scale_range!r}")
        self.scale_range = (lo, hi)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        h, w = _query_size(flat_inputs)
        lo, hi = self.scale_range
        s = lo + (hi - lo) * torch.rand(()).item()
        return {"size": (max(1, round(h * s)), max(1, round(w * s)))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return _resize(inpt, params["size"])


def _grey(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of ``(..., 3, H, W)`` as ``(..., 1, H, W)`` (torchvision's weights)."""
    r, g, b = x.unbind(-3)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)


def jitter_colours(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast and saturation jitter, in that order, of float images in [0, 1].

    ``images`` ``(B, 3, H, W)``; ``factors`` ``(B, 3)``, the brightness, contrast and saturation
    multipliers of each image (1 leaves it unchanged). The formulas are torchvision's
    ``adjust_brightness`` (scale), ``adjust_contrast`` (blend with the image's mean grey) and
    ``adjust_saturation`` (blend with its grey version), each clamped to [0, 1]; torchvision's
    ``ColorJitter`` shuffles their order, here it is fixed so that the device loader computes
    the same thing for a whole batch. Returns ``(B, 3, H, W)``.
    """
    b, c, s = (f[:, None, None, None].to(images.dtype) for f in factors.unbind(1))
    x = (images * b).clamp(0, 1)
    mean = _grey(x).mean(dim=(-3, -2, -1), keepdim=True)
    x = (mean + c * (x - mean)).clamp(0, 1)
    grey = _grey(x)
    return (grey + s * (x - grey)).clamp(0, 1)


def draw_colour_factors(n: int, strength: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(n, 3)`` multipliers drawn uniformly from ``[max(0, 1 - strength), 1 + strength]``."""
    lo, hi = max(0.0, 1.0 - strength), 1.0 + strength
    return lo + (hi - lo) * torch.rand(n, 3, generator=generator, dtype=torch.float64)


class RandomColour(v2.Transform):
    """Colour jitter of the image (the mask passes through): :func:`jitter_colours` with
    factors drawn from ``[1 - strength, 1 + strength]``. Takes and returns float images in
    [0, 1] ``(3, H, W)``, so it goes after the conversion to float and before normalisation."""

    def __init__(self, strength: float) -> None:
        super().__init__()
        if not 0 <= strength <= 1:
            raise ValueError(f"colour jitter strength must be in [0, 1], got {strength!r}")
        self.strength = float(strength)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"factors": draw_colour_factors(1, self.strength)}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not isinstance(inpt, tv_tensors.Image):
            return inpt
        return tv_tensors.wrap(jitter_colours(inpt[None], params["factors"])[0], like=inpt)


class JointResize(v2.Transform):
    """Resize image (bilinear, antialiased) and mask (nearest-exact) to a fixed ``(H, W)``."""

    def __init__(self, size) -> None:
        super().__init__()
        self.size = _pair("size", size)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, torch.Tensor) and tuple(inpt.shape[-2:]) != self.size:
            return _resize(inpt, self.size)
        return inpt


def _finish(mean, std, colour: float = 0.0) -> list[v2.Transform]:
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"mean and std must have 3 values each, got {mean!r} and {std!r}")
    return [
        v2.ToDtype({tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64, "others": None},
                   scale=True),
        *([RandomColour(colour)] if colour else []),
        v2.Normalize(mean=list(mean), std=list(std)),
    ]


def train_transform(
    crop_size,
    *,
    scale_range: tuple[float, float] = (0.7, 1.3),
    hflip: bool = True,
    color_jitter: float = 0.0,
    ignore_index: int,
    mean: Sequence[float],
    std: Sequence[float],
) -> v2.Compose:
    """Training augmentation: random scale, padded random crop, flip, colour jitter, normalisation.

    Args:
        crop_size: int or ``(H, W)`` of the output; ``None`` keeps the scaled size.
        scale_range: factor range for :class:`RandomScale`; ``(1, 1)`` disables scaling.
        hflip: flip left-right with probability 0.5.
        color_jitter: strength of :class:`RandomColour` (0: none), drawn after the geometry,
            so a run with and without it crops and flips alike.
        ignore_index: the mask value for padding.
        mean, std: the dataset's channel statistics (for images scaled to [0, 1]).

    Call it as ``image, mask = t(image, mask)`` on uint8 ``tv_tensors.Image (3, H, W)`` and
    ``tv_tensors.Mask (H, W)``; returns float32 ``(3, h, w)`` and int64 ``(h, w)``.
    """
    steps: list[v2.Transform] = []
    if tuple(scale_range) != (1, 1):
        steps.append(RandomScale(scale_range))
    if crop_size is not None:
        # Pad the image with the mean colour: after normalisation it is 0, like no signal.
        fill_rgb = tuple(int(round(255 * m)) for m in mean)
        steps.append(
            v2.RandomCrop(
                _pair("crop_size", crop_size),
                pad_if_needed=True,
                fill={tv_tensors.Image: fill_rgb, tv_tensors.Mask: int(ignore_index)},
            )
        )
    if hflip:
        steps.append(v2.RandomHorizontalFlip(p=0.5))
    return v2.Compose(steps + _finish(mean, std, color_jitter))


def eval_transform(*, mean: Sequence[float], std: Sequence[float], size=None) -> v2.Compose:
    """Evaluation: optional resize of both image and mask to ``size = (H, W)``, then normalise.

    ``size`` is for reduced-resolution profiles: the labels are resized too (nearest-exact), so
    scores are then measured at that resolution, not at the dataset's native one.
    """
    steps: list[v2.Transform] = [] if size is None else [JointResize(size)]
    return v2.Compose(steps + _finish(mean, std))
