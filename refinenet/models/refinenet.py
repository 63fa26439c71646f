"""RefineNet: the full network and its builders (torchvision-style).

Layout of the standard, 4-cascaded model (paper Fig. 2c; released VOC model)::

    ResNet stage 4 (1/32) -> adapt -> RefineNet-4 ------------------.
    ResNet stage 3 (1/16) -> adapt -> RefineNet-3 <-----------------'  (and so on down to)
    ResNet stage 1 (1/4)  -> adapt -> RefineNet-1 -> dropout -> 3x3 conv -> logits (1/4)

"adapt" is the input adaptation of the released code: dropout on the two deepest taps, a 3x3
conv (no bias) to the path width, then 2 RCUs. Every backbone stage reaches the output through
residual connections only (the long-range residual paths of Section 3.3).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from .backbone import BACKBONES, ResNetBackbone
from .blocks import CRP_ORDERS, RefineNetBlock, ResidualConvUnit, conv3x3

__all__ = [
    "RefineNet",
    "RefineNetConfig",
    "refinenet",
    "refinenet50",
    "refinenet101",
    "refinenet152",
    "build_from_config",
    "cascade_groups",
    "MIN_INPUT_SIZE",
]

MIN_INPUT_SIZE = 32  # a 32 px input leaves a 1x1 map at stride 32
CASCADES = (1, 2, 4)
OUTPUTS = ("full", "quarter")


def cascade_groups(cascade: int) -> list[list[int]]:
    """Which backbone taps (0 = deepest, 3 = shallowest) each block fuses, deepest block first.

    Our reading of the paper's Fig. 7: the four taps, deepest first, are split into ``cascade``
    consecutive groups, and each block fuses its group plus the previous block's output.

    >>> cascade_groups(4)
    [[0], [1], [2], [3]]
    >>> cascade_groups(2)
    [[0, 1], [2, 3]]
    >>> cascade_groups(1)
    [[0, 1, 2, 3]]
    """
    if cascade not in CASCADES:
        raise ValueError(f"cascade must be one of {CASCADES}, got {cascade!r}")
    size = 4 // cascade
    return [list(range(i, i + size)) for i in range(0, 4, size)]


@dataclass(frozen=True)
class RefineNetConfig:
    """Everything that determines a RefineNet's architecture (see :func:`refinenet`)."""

    backbone: str = "resnet101"
    num_classes: int = 21
    cascade: int = 4
    scales: tuple[float, ...] = (1.0,)
    widths: tuple[int, int, int, int] = (512, 256, 256, 256)
    crp_blocks: int = 2
    crp_relu: bool = True
    crp_order: str = "pool-conv"
    dropout: float = 0.5
    output: str = "full"

    def __post_init__(self) -> None:
        def bad(name: str, allowed: str) -> ValueError:
            return ValueError(f"{name} must be {allowed}, got {getattr(self, name)!r}")

        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; choose one of {sorted(BACKBONES)}")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise bad("num_classes", "a positive int")
        if isinstance(self.cascade, bool) or self.cascade not in CASCADES:
            raise bad("cascade", f"one of {CASCADES} (blocks in the cascade)")
        scales = tuple(self.scales) if isinstance(self.scales, Sequence) else None
        if not scales or not all(
            isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) and s > 0
            for s in scales
        ):
            raise bad("scales", "a non-empty sequence of positive input scales, e.g. (1.0,) or (1.2, 0.6)")
        object.__setattr__(self, "scales", tuple(float(s) for s in scales))
        widths = tuple(self.widths) if isinstance(self.widths, Sequence) else ()
        if len(widths) != 4 or not all(
            isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths
        ):
            raise bad("widths", "four positive ints, deepest path first, e.g. (512, 256, 256, 256)")
        object.__setattr__(self, "widths", widths)
        if isinstance(self.crp_blocks, bool) or not isinstance(self.crp_blocks, int) or self.crp_blocks < 0:
            raise bad("crp_blocks", "an int >= 0 (0 = no chained pooling)")
        if not isinstance(self.crp_relu, bool):
            raise bad("crp_relu", "True or False")
        if self.crp_order not in CRP_ORDERS:
            raise bad("crp_order", f"one of {CRP_ORDERS}")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise bad("dropout", "a probability in [0, 1)")
        if self.output not in OUTPUTS:
            raise bad("output", f"one of {OUTPUTS} ('full' = input size, 'quarter' = 1/4 of it)")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["scales"] = list(d["scales"])
        d["widths"] = list(d["widths"])
        return d


class InputAdaptation(nn.Sequential):
    """Released-code adaptation of one backbone tap: [dropout] -> 3x3 conv (no bias) -> 2 RCUs.

    Shape: ``(N, C_in, H, W) -> (N, width, H, W)``.
    """

    def __init__(self, in_channels: int, width: int, dropout: float) -> None:
        layers: list[nn.Module] = []
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [conv3x3(in_channels, width), ResidualConvUnit(width), ResidualConvUnit(width)]
        super().__init__(*layers)


class RefineNet(nn.Module):
    """Multi-path refinement network. Build it with :func:`refinenet`.

    ``forward(x)``: ``x`` is ``(N, 3, H, W)`` with ``H, W >= 32`` (any size, not only
    multiples of 32). Returns logits ``(N, num_classes, H, W)`` for ``output="full"`` or
    ``(N, num_classes, ceil(H/4), ceil(W/4))`` for ``output="quarter"``.
    """

    def __init__(self, config: RefineNetConfig, backbone_weights: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.config = config
        self.num_classes = config.num_classes
        self.output = config.output
        # One independent backbone (and set of adaptations) per input scale (paper Sec. 4.3).
        self.backbones = nn.ModuleList(
            ResNetBackbone(config.backbone, weights=backbone_weights) for _ in config.scales
        )
        tap_channels = self.backbones[0].channels[::-1]  # deepest first, like widths
        # The released code drops out only taps wider than 512 channels, which for
        # ResNet-50/101/152 are exactly the two deepest; we use "the two deepest" for all depths.
        self.adapters = nn.ModuleList(
            nn.ModuleList(
                InputAdaptation(c, w, config.dropout if tap < 2 else 0.0)
                for tap, (c, w) in enumerate(zip(tap_channels, config.widths))
            )
            for _ in config.scales
        )
        self.groups = cascade_groups(config.cascade)
        blocks = []
        prev_width = None
        for group in self.groups:
            widths = [config.widths[t] for t in group for _ in config.scales]
            if prev_width is not None:
                widths = [prev_width] + widths
            block = RefineNetBlock(
                widths,
                crp_blocks=config.crp_blocks,
                crp_relu=config.crp_relu,
                crp_order=config.crp_order,
            )
            blocks.append(block)
            prev_width = block.out_channels
        self.blocks = nn.ModuleList(blocks)
        self.classifier = nn.Sequential(
            nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity(),
            conv3x3(prev_width, config.num_classes, bias=True),
        )

    def check_input(self, x: Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(N, 3, H, W)`` with ``H, W >= 32``."""
        if not isinstance(x, Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"RefineNet expects a batch of images (N, 3, H, W), got {shape}")
        if x.shape[1] != 3:
            raise ValueError(
                f"RefineNet expects 3-channel RGB input (N, 3, H, W), got {x.shape[1]} channels "
                f"(shape {tuple(x.shape)})"
            )
        if min(x.shape[-2:]) < MIN_INPUT_SIZE:
            raise ValueError(
                f"input is {x.shape[-2]}x{x.shape[-1]} px; RefineNet needs at least "
                f"{MIN_INPUT_SIZE}x{MIN_INPUT_SIZE} (the backbone has stride 32)"
            )

    def features(self, x: Tensor) -> Tensor:
        """Decoder output before the classifier: ``(N, widths[-1], ~H/4, ~W/4)``."""
        height, width = x.shape[-2:]
        adapted = []  # adapted[scale][tap], deepest tap first
        for scale, backbone, adapters in zip(self.config.scales, self.backbones, self.adapters):
            xs = x
            if scale != 1.0:
                size = (max(1, round(height * scale)), max(1, round(width * scale)))
                # MATLAB's imresize (used by the released code) anti-aliases when shrinking.
                xs = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=scale < 1)
            taps = backbone(xs)[::-1]
            adapted.append([adapt(t) for adapt, t in zip(adapters, taps)])
        out = None
        for block, group in zip(self.blocks, self.groups):
            inputs = [adapted[s][t] for t in group for s in range(len(adapted))]
            if out is not None:
                inputs = [out] + inputs
            out = block(inputs)
        return out

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        logits = self.classifier(self.features(x))
        height, width = x.shape[-2:]
        size = (height, width) if self.output == "full" else (-(-height // 4), -(-width // 4))
        if logits.shape[-2:] != size:
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"backbone={c.backbone}, num_classes={c.num_classes}, cascade={c.cascade}, "
            f"scales={c.scales}, crp_blocks={c.crp_blocks}, crp_relu={c.crp_relu}, output={c.output}"
        )


def refinenet(
    backbone: str = "resnet101",
    num_classes: int = 21,
    *,
    cascade: int = 4,
    scales: Sequence[float] = (1.0,),
    widths: Sequence[int] = (512, 256, 256, 256),
    crp_blocks: int = 2,
    crp_relu: bool = True,
    crp_order: str = "pool-conv",
    dropout: float = 0.5,
    backbone_weights: str | os.PathLike | None = None,
    output: str = "full",
) -> RefineNet:
    """Build a RefineNet.

    Args:
        backbone: ``resnet18``, ``resnet34``, ``resnet50``, ``resnet101`` or ``resnet152``.
        num_classes: number of output classes.
        cascade: blocks in the cascade, 1, 2 or 4 (paper Fig. 7; 4 is the standard model).
        scales: input scales, one independent backbone each; ``(1.2, 0.6)`` is the paper's
            2-scale model.
        widths: width of each backbone path, deepest first.
        crp_blocks: pooling blocks in each chained residual pooling (paper text: 2; released
            VOC model: 4; 0 removes chained pooling).
        crp_relu: keep the single ReLU at the entrance of chained residual pooling.
        crp_order: ``"pool-conv"`` (paper) or ``"conv-pool"`` (later improved variant).
        dropout: dropout on the two deepest taps and before the classifier.
        backbone_weights: path to a local torchvision-format ResNet state dict (loaded
            strictly into every backbone); ``None`` trains from scratch.
        output: ``"full"`` for logits at the input size, ``"quarter"`` for 1/4 of it (how the
            released code trained).
    """
    config = RefineNetConfig(
        backbone=backbone,
        num_classes=num_classes,
        cascade=cascade,
        scales=tuple(scales) if isinstance(scales, Sequence) else scales,
        widths=tuple(widths) if isinstance(widths, Sequence) else widths,
        crp_blocks=crp_blocks,
        crp_relu=crp_relu,
        crp_order=crp_order,
        dropout=dropout,
        output=output,
    )
    return RefineNet(config, backbone_weights=backbone_weights)


def refinenet50(num_classes: int = 21, **kwargs) -> RefineNet:
    """RefineNet on ResNet-50 (see :func:`refinenet` for the keyword arguments)."""
    return refinenet("resnet50", num_classes, **kwargs)


def refinenet101(num_classes: int = 21, **kwargs) -> RefineNet:
    """RefineNet on ResNet-101, the paper's main model (see :func:`refinenet`)."""
    return refinenet("resnet101", num_classes, **kwargs)


def refinenet152(num_classes: int = 21, **kwargs) -> RefineNet:
    """RefineNet on ResNet-152 (see :func:`refinenet`)."""
    return refinenet("resnet152", num_classes, **kwargs)


def build_from_config(config: RefineNetConfig | dict, **kwargs) -> RefineNet:
    """Rebuild a model from :attr:`RefineNet.config` or its ``to_dict()`` (e.g. a checkpoint)."""
    if isinstance(config, dict):
        config = RefineNetConfig(**config)
    return RefineNet(config, **kwargs)

