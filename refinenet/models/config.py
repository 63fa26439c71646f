"""``RefineNetConfig``: the one place where a RefineNet switch is declared.

Every architecture switch is a field here, with its type, its allowed values and a docstring
saying what the paper and the released code do. The builder :func:`refinenet.models.refinenet`
takes the fields as keywords, a training config holds a ``RefineNetConfig`` as its ``model``
section (``model.crp_relu=false`` on the command line), and ``refinenet model`` generates its
options from the fields (``--no-crp-relu``); none of them lists the switches again.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal, Optional

from pydantic import Field, model_validator

from ..schema import Bool, Float, Int, IntChoice, Invalid, PathStr, settings
from .backbone import BACKBONES

__all__ = ["RefineNetConfig", "CASCADES", "OUTPUTS"]

CASCADES = (1, 2, 4)
OUTPUTS = ("full", "quarter")
BackboneName = Literal[tuple(BACKBONES)]
Width = Annotated[Int, Field(gt=0)]
Scale = Annotated[Float, Field(gt=0)]
Cascade = IntChoice(*CASCADES)


@settings(frozen=True, noun="RefineNetConfig field", unknown=TypeError)
class RefineNetConfig:
    """Everything that determines a RefineNet's architecture, plus how its backbone starts.

    Frozen and hashable; ``dataclasses.replace(config, crp_blocks=4)`` (or
    :meth:`with_classes`) gives a validated variant. Build the network with
    ``RefineNet(config)`` once ``num_classes`` is set.
    """

    backbone: BackboneName = "resnet101"
    """Encoder: a torchvision ResNet, cut into its four stages. The paper's main model uses
    ResNet-101 (it also reports 50 and 152); resnet18/34 are additions for small runs."""

    num_classes: Optional[Annotated[Int, Field(gt=0)]] = None
    """Output classes. None: from the dataset (training fills it in); a model cannot be built
    before it is set."""

    cascade: Cascade = 4
    """RefineNet blocks in the cascade: 4 (the standard model, one block per backbone stage),
    2 or 1 (paper Fig. 7: the stages split into that many consecutive groups)."""

    refinement: Bool = True
    """False: no decoder at all, the study's reference arm for what refinement buys: a
    classifier (dropout, 1x1 conv) on the deepest backbone stage, bilinearly upsampled, as
    FCN-32s (Long et al. 2015). Not a model of the paper; single scale only."""

    scales: Annotated[tuple[Scale, ...], Field(min_length=1)] = (1.0,)
    """Input scales, each with its own backbone and adaptations (paper Sec. 4.3); (1.2, 0.6) is
    the paper's 2-scale model."""

    widths: tuple[Width, Width, Width, Width] = (512, 256, 256, 256)
    """Channels of each path, deepest first: 512 for the deepest and 256 for the others, as the
    released code."""

    crp_blocks: Annotated[Int, Field(ge=0)] = 2
    """Pooling blocks in each chained residual pooling: 2 in the paper's text (Fig. 3d), 4 in the
    released VOC model; 0 removes chained pooling."""

    crp_relu: Bool = True
    """The single ReLU at the entrance of chained residual pooling, the only non-linearity on a
    block's main path (paper Sec. 3.2-3.3); False removes it."""

    crp_order: Literal["pool-conv", "conv-pool"] = "pool-conv"
    """Order inside each pooling block: "pool-conv" (paper Fig. 3d, released code) or
    "conv-pool" (the later "improved" variant of the authors' code)."""

    dropout: Annotated[Float, Field(ge=0, lt=1)] = 0.5
    """Dropout on the two deepest backbone taps and before the classifier (released code: 0.5;
    it drops taps wider than 512 channels, the same two for ResNet-50/101/152)."""

    output: Literal["full", "quarter"] = "full"
    """Logit resolution. "quarter": 1/4 of the input, where the classifier computes them; the
    released code trained there, with labels downsampled. "full": bilinearly upsampled to the
    input size, a departure for the loss (the released code upsampled only to predict)."""

    backbone_weights: Optional[PathStr] = None
    """Path of a local torchvision-format ResNet state dict, loaded strictly into every backbone;
    None trains from scratch (a departure: the paper starts from ImageNet weights). It sets how
    training starts, not the architecture: :meth:`to_dict` (a checkpoint's model_config) leaves it out."""

    @model_validator(mode="after")
    def _one_scale_without_refinement(self) -> "RefineNetConfig":
        if not self.refinement and len(self.scales) != 1:
            raise Invalid("scales", list(self.scales), "a single scale with refinement=false (nothing fuses two)")
        return self

    def to_dict(self) -> dict:
        """The architecture as plain types (what checkpoints store as ``model_config``): every
        field but ``backbone_weights``; tuples become lists."""
        data = dataclasses.asdict(self)
        del data["backbone_weights"]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict) -> "RefineNetConfig":
        """Inverse of :meth:`to_dict`; also reads checkpoints saved before a field existed
        (missing fields take their defaults)."""
        return cls(**data)

    def with_classes(self, num_classes: int, source: str = "the data") -> "RefineNetConfig":
        """This config for ``source``, a dataset of ``num_classes`` classes.

        Raises ``ValueError`` if ``num_classes`` is already set to another count: a model
        trained for 12 classes cannot learn a dataset of 11.
        """
        if self.num_classes is None:
            return dataclasses.replace(self, num_classes=num_classes)
        if self.num_classes != num_classes:
            raise ValueError(
                f"model.num_classes={self.num_classes} but {source} has {num_classes} classes; "
                f"set model.num_classes={num_classes}, or null to take it from the data"
            )
        return self

    @staticmethod
    def field_help(name: str) -> str:
        """The docstring of field ``name`` (for command-line help)."""
        return RefineNetConfig.__pydantic_fields__[name].description or ""
