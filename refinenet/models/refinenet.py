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

import dataclasses
import difflib
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from .backbone import ResNetBackbone
from .blocks import RefineNetBlock, ResidualConvUnit, conv3x3
from .config import CASCADES, RefineNetConfig

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

    def __init__(self, config: RefineNetConfig) -> None:
        super().__init__()
        if not isinstance(config, RefineNetConfig):
            raise TypeError(f"RefineNet takes a RefineNetConfig (or use refinenet(...)), got {type(config).__name__}")
        if config.num_classes is None:
            raise ValueError(
                "RefineNetConfig.num_classes is None (\"from the dataset\"); set it first, e.g. "
                "RefineNet(config.with_classes(21))"
            )
        self.config = config
        self.num_classes = config.num_classes
        self.output = config.output
        # One independent backbone (and set of adaptations) per input scale (paper Sec. 4.3).
        self.backbones = nn.ModuleList(
            ResNetBackbone(config.backbone, weights=config.backbone_weights) for _ in config.scales
        )
        tap_channels = self.backbones[0].channels[::-1]  # deepest first, like widths
        if not config.refinement:  # the FCN-32s reference: no decoder at all
            self.adapters, self.groups, self.blocks = nn.ModuleList(), [], nn.ModuleList()
            self.classifier = nn.Sequential(
                nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity(),
                nn.Conv2d(tap_channels[0], config.num_classes, kernel_size=1),
            )
            return
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
        """Decoder output before the classifier: ``(N, widths[-1], ~H/4, ~W/4)``; without
        refinement, the deepest backbone stage ``(N, C, ~H/32, ~W/32)``."""
        if not self.config.refinement:
            return self.backbones[0](x)[-1]
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
        return ", ".join(f"{k}={v}" for k, v in self.config.to_dict().items())


def refinenet(backbone: str = "resnet101", num_classes: int | None = 21, **switches: Any) -> RefineNet:
    """Build a RefineNet: ``RefineNet(RefineNetConfig(backbone=..., num_classes=..., **switches))``.

    ``switches`` are the other fields of :class:`~refinenet.models.RefineNetConfig`, whose
    docstrings say what each does: ``cascade=2``, ``scales=(1.2, 0.6)``, ``crp_blocks=4``,
    ``crp_relu=False``, ``crp_order="conv-pool"``, ``output="quarter"``,
    ``backbone_weights="resnet101.pth"``, ...

    Raises ``TypeError`` for an unknown keyword (with the closest field as a hint) and
    ``ValueError`` for a bad value (naming the field, the value and what is allowed).
    """
    known = [f.name for f in dataclasses.fields(RefineNetConfig)]
    for name in switches:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; the switches are {known[2:]}"
            raise TypeError(f"refinenet() got an unexpected keyword argument {name!r}{hint}")
    return RefineNet(RefineNetConfig(backbone=backbone, num_classes=num_classes, **switches))


def refinenet50(num_classes: int = 21, **switches: Any) -> RefineNet:
    """RefineNet on ResNet-50 (see :func:`refinenet` for the keyword arguments)."""
    return refinenet("resnet50", num_classes, **switches)


def refinenet101(num_classes: int = 21, **switches: Any) -> RefineNet:
    """RefineNet on ResNet-101, the paper's main model (see :func:`refinenet`)."""
    return refinenet("resnet101", num_classes, **switches)


def refinenet152(num_classes: int = 21, **switches: Any) -> RefineNet:
    """RefineNet on ResNet-152 (see :func:`refinenet`)."""
    return refinenet("resnet152", num_classes, **switches)


def build_from_config(config: RefineNetConfig | dict) -> RefineNet:
    """Rebuild a model from :attr:`RefineNet.config` or its ``to_dict()`` (e.g. a checkpoint's
    ``model_config``, which has no ``backbone_weights``: the checkpoint's weights replace them)."""
    if isinstance(config, dict):
        config = RefineNetConfig.from_dict(config)
    return RefineNet(config)
