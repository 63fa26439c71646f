"""refinenet: a faithful PyTorch re-implementation of RefineNet (Lin et al., CVPR 2017)."""

from . import models
from .models import refinenet, refinenet50, refinenet101, refinenet152
from .summary import count_macs, summary, summary_text

__version__ = "0.1.0"

# Training and evaluation (refinenet.engine), imported on first use.
_ENGINE_NAMES = ("train", "evaluate")


def __getattr__(name: str):
    if name in _ENGINE_NAMES:
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'refinenet' has no attribute {name!r}")

__all__ = [
    "__version__",
    "count_macs",
    "evaluate",
    "models",
    "refinenet",
    "refinenet50",
    "refinenet101",
    "refinenet152",
    "summary",
    "summary_text",
    "train",
]
