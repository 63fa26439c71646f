"""ResNet backbones from torchvision, cut into the four stages RefineNet taps.

No weights are ever downloaded: training in this project starts from scratch, and a user with
an ImageNet checkpoint passes the path of a local torchvision-format state dict.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torchvision.models import resnet

from ..errors import torch_file_error

__all__ = ["BACKBONES", "ResNetBackbone", "load_backbone_state_dict"]

# name -> (torchvision builder, output width of layer1..layer4)
BACKBONES = {
    "resnet18": (resnet.resnet18, (64, 128, 256, 512)),
    "resnet34": (resnet.resnet34, (64, 128, 256, 512)),
    "resnet50": (resnet.resnet50, (256, 512, 1024, 2048)),
    "resnet101": (resnet.resnet101, (256, 512, 1024, 2048)),
    "resnet152": (resnet.resnet152, (256, 512, 1024, 2048)),
}

# A torchvision checkpoint holds the ImageNet classifier too; RefineNet does not use it.
_UNUSED_PREFIXES = ("fc.",)


class ResNetBackbone(nn.Module):
    """A torchvision ResNet without its pooling and classifier.

    ``forward`` returns the outputs of ``layer1..layer4`` (strides 4, 8, 16, 32), shallowest
    first, with widths ``self.channels``. For an input of ``(N, 3, H, W)`` the stage-1 map is
    ``(N, C1, ceil(H/4), ceil(W/4))``. Parameter names match torchvision's, so a torchvision
    state dict loads into it directly.
    """

    def __init__(self, name: str = "resnet101", weights: str | os.PathLike | None = None) -> None:
        super().__init__()
        if name not in BACKBONES:
            raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
        builder, channels = BACKBONES[name]
        net = builder(weights=None)
        self.name = name
        self.channels: tuple[int, int, int, int] = channels
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            net.layer1,
            net.layer2,
            net.layer3,
            net.layer4,
        )
        if weights is not None:
            load_backbone_state_dict(self, weights)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c1 = self.layer1(x)
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        return [c1, c2, c3, c4]


def load_backbone_state_dict(backbone: ResNetBackbone, path: str | os.PathLike) -> None:
    """Load a local torchvision ResNet state dict into ``backbone``, strictly.

    The classifier (``fc.*``) may be present or absent; every other key must match exactly.
    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the missing,
    unexpected or mis-shaped keys, or the tensors holding NaN or infinity, otherwise.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"backbone_weights: no file at {path!r}; pass the path of a torchvision-format "
            f"{backbone.name} state dict (saved with torch.save(model.state_dict(), path))"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or foreign files
        expected = (f"a torchvision-format {backbone.name} state dict "
                    "(saved with torch.save(model.state_dict(), path))")
        raise torch_file_error("backbone_weights: file", path, err, expected) from err
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(
            f"backbone_weights: {path!r} does not hold a state dict (a mapping of names to "
            f"tensors); save one with torch.save(model.state_dict(), path)"
        )
    state = {k: v for k, v in state.items() if not k.startswith(_UNUSED_PREFIXES)}
    own = backbone.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if state[k].shape != own[k].shape
    )
    if missing or unexpected or mismatched:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)):
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
                parts.append(f"{label} keys: {shown}")
        raise ValueError(
            f"backbone_weights: {path!r} does not fit backbone {backbone.name!r} ("
            + "; ".join(parts)
            + "). Is it a torchvision state dict of the same ResNet depth?"
        )
    _check_finite(state, path)
    backbone.load_state_dict(state, strict=True)


def _check_finite(state: Mapping[str, Tensor], path: str) -> None:
    """A NaN or infinite weight makes the very first loss NaN, which reads as a learning-rate
    problem; name the file instead."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        shown = ", ".join(bad[:5]) + (f", ... ({len(bad)} in all)" if len(bad) > 5 else "")
        raise ValueError(
            f"backbone_weights: {path!r} holds NaN or infinite values ({shown}); the file is bad: "
            f"export the weights again or use another file"
        )
