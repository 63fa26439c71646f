"""The three building blocks of a RefineNet block, and the block itself.

Lin, Milan, Shen, Reid, "RefineNet: Multi-Path Refinement Networks for High-Resolution
Semantic Segmentation", CVPR 2017, Section 3.2 and Fig. 3; details that the paper leaves open
follow the authors' released MatConvNet code.

Identity mappings (Section 3.3): the only non-linearity on the main path of a block is the
single ReLU at the entrance of chained residual pooling; every other ReLU sits inside a
residual branch. Nothing here uses BatchNorm, as in the paper.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ResidualConvUnit",
    "MultiResolutionFusion",
    "ChainedResidualPooling",
    "RefineNetBlock",
    "conv3x3",
]

CRP_ORDERS = ("pool-conv", "conv-pool")


def conv3x3(in_channels: int, out_channels: int, bias: bool = False) -> nn.Conv2d:
    """3x3 convolution, stride 1, padding 1 (keeps the spatial size)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=bias)


def _check_width(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


class ResidualConvUnit(nn.Module):
    """Residual conv unit (RCU): ``x + conv(relu(conv(relu(x))))``.

    The first conv has a bias and the second has none, as in the released code. The skip
    connection takes ``x`` before the first ReLU, so the unit is the identity when its
    second conv is zero.

    Shape: ``(N, C, H, W) -> (N, C, H, W)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = _check_width("channels", channels)
        self.conv1 = conv3x3(channels, channels, bias=True)
        self.conv2 = conv3x3(channels, channels, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        # Not in-place: the identity must keep the pre-activation input.
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class MultiResolutionFusion(nn.Module):
    """Fuse k feature maps of any widths and resolutions into one.

    For k > 1, every input goes through a 3x3 conv (no bias) to the smallest width among the
    inputs, is upsampled to the largest height and width among them, and all are summed. For
    k == 1 the input passes through unchanged (the paper: "the input path is directly passed
    through this block").

    Departure: the released code resizes with MATLAB ``imresize`` (bicubic); we use bilinear
    interpolation with ``align_corners=False``, as PyTorch ports do.

    Shapes: inputs ``(N, C_i, H_i, W_i)``; output ``(N, min C_i, max H_i, max W_i)``.
    """

    def __init__(self, in_channels: Sequence[int]) -> None:
        super().__init__()
        in_channels = tuple(in_channels)
        if not in_channels:
            raise ValueError("MultiResolutionFusion needs at least one input width")
        for i, c in enumerate(in_channels):
            _check_width(f"in_channels[{i}]", c)
        self.in_channels = in_channels
        self.out_channels = min(in_channels)
        if len(in_channels) > 1:
            self.convs = nn.ModuleList(conv3x3(c, self.out_channels) for c in in_channels)
        else:
            self.convs = nn.ModuleList()

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        if len(inputs) != len(self.in_channels):
            raise ValueError(
                f"MultiResolutionFusion was built for {len(self.in_channels)} inputs, "
                f"got {len(inputs)}"
            )
        for i, (x, c) in enumerate(zip(inputs, self.in_channels)):
            if x.dim() != 4 or x.shape[1] != c:
                raise ValueError(
                    f"input {i} must have shape (N, {c}, H, W), got {tuple(x.shape)}"
                )
        if len(inputs) == 1:
            return inputs[0]
        height = max(x.shape[-2] for x in inputs)
        width = max(x.shape[-1] for x in inputs)
        out = None
        for conv, x in zip(self.convs, inputs):
            y = conv(x)
            if y.shape[-2:] != (height, width):
                y = F.interpolate(y, size=(height, width), mode="bilinear", align_corners=False)
            out = y if out is None else out + y
        return out


class ChainedResidualPooling(nn.Module):
    """Chained residual pooling (CRP): context from ever larger pooling windows.

    ``x = relu(x)`` (the block's only main-path non-linearity, switchable with ``relu``), then
    a chain of ``blocks`` pooling blocks, each a 5x5 max-pool (stride 1, padding 2) followed by
    a 3x3 conv without bias. Block i takes block i-1's output, so its receptive field keeps
    growing; every block's output is added to the (ReLU'd) input.

    ``order="conv-pool"`` swaps conv and pool inside each block (the later "improved" variant
    of the authors' code). ``blocks=0`` leaves only the ReLU.

    Shape: ``(N, C, H, W) -> (N, C, H, W)``.
    """

    def __init__(
        self, channels: int, blocks: int = 2, relu: bool = True, order: str = "pool-conv"
    ) -> None:
        super().__init__()
        self.channels = _check_width("channels", channels)
        if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 0:
            raise ValueError(f"crp_blocks must be an int >= 0 (0 = no pooling), got {blocks!r}")
        if order not in CRP_ORDERS:
            raise ValueError(f"crp_order must be one of {CRP_ORDERS}, got {order!r}")
        self.order = order
        self.relu = nn.ReLU() if relu else nn.Identity()
        self.pool = nn.MaxPool2d(kernel_size=5, stride=1, padding=2)
        self.convs = nn.ModuleList(conv3x3(channels, channels) for _ in range(blocks))

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(x)
        out = x
        path = x
        for conv in self.convs:
            path = conv(self.pool(path)) if self.order == "pool-conv" else self.pool(conv(path))
            out = out + path
        return out


class RefineNetBlock(nn.Module):
    """One RefineNet block: multi-resolution fusion -> chained residual pooling -> output RCUs.

    Takes any number of inputs of any widths and resolutions; returns one map at the largest
    resolution and the smallest width among them.

    Output convolutions: the released code puts 3 RCUs after the pooling. The paper instead
    draws 1 output RCU per block and 2 adaptive RCUs on every block input (plus 2 extra RCUs
    before the classifier); counted between two blocks both arrangements give three RCUs of
    the same width, hence the same function class and parameter count. We follow the code.

    Shapes: inputs ``(N, C_i, H_i, W_i)``; output ``(N, min C_i, max H_i, max W_i)``.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        *,
        crp_blocks: int = 2,
        crp_relu: bool = True,
        crp_order: str = "pool-conv",
        out_rcus: int = 3,
    ) -> None:
        super().__init__()
        self.fusion = MultiResolutionFusion(in_channels)
        width = self.fusion.out_channels
        self.out_channels = width
        self.crp = ChainedResidualPooling(width, crp_blocks, relu=crp_relu, order=crp_order)
        self.output = nn.Sequential(*(ResidualConvUnit(width) for _ in range(out_rcus)))

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        if isinstance(inputs, torch.Tensor):
            inputs = [inputs]
        return self.output(self.crp(self.fusion(inputs)))
