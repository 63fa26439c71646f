"""RefineNet models and their components (``refinenet.models.refinenet(...)``)."""

from .backbone import BACKBONES, ResNetBackbone, load_backbone_state_dict
from .blocks import ChainedResidualPooling, MultiResolutionFusion, RefineNetBlock, ResidualConvUnit
from .config import RefineNetConfig
from .diagram import draw_cascade, draw_refinenet_block, show_source
from .refinenet import (
    MIN_INPUT_SIZE,
    RefineNet,
    build_from_config,
    cascade_groups,
    refinenet,
    refinenet50,
    refinenet101,
    refinenet152,
)

__all__ = [
    "BACKBONES",
    "MIN_INPUT_SIZE",
    "ChainedResidualPooling",
    "MultiResolutionFusion",
    "RefineNet",
    "RefineNetBlock",
    "RefineNetConfig",
    "ResNetBackbone",
    "ResidualConvUnit",
    "build_from_config",
    "cascade_groups",
    "draw_cascade",
    "draw_refinenet_block",
    "load_backbone_state_dict",
    "refinenet",
    "refinenet50",
    "refinenet101",
    "refinenet152",
    "show_source",
]
