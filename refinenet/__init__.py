"""refinenet: a faithful PyTorch re-implementation of RefineNet (Lin et al., CVPR 2017)."""

from . import models
from .models import refinenet, refinenet50, refinenet101, refinenet152
from .summary import count_macs, summary

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "count_macs",
    "models",
    "refinenet",
    "refinenet50",
    "refinenet101",
    "refinenet152",
    "summary",
]
