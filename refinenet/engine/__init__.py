"""Training and evaluation engine: ``train(cfg) -> Run``, ``evaluate(...) -> dict``, metrics.

Quick start::

    from refinenet.engine import TrainConfig, train, evaluate

    cfg = TrainConfig.from_yaml("configs/camvid-cpu.yaml").replace(["schedule.steps=200"])
    run = train(cfg)                 # or: refinenet train configs/camvid-cpu.yaml schedule.steps=200
    run.metrics["miou"], run.dir     # final validation metrics, run directory
    run.evaluate("test", scales=(0.4, 0.6, 0.8, 1.0, 1.2))   # cached in the run directory

A second ``train(cfg)`` with the same config returns the finished run from disk
(``run.reused``) unless ``force=True``. See :mod:`refinenet.engine.trainer` for the loop,
:mod:`refinenet.engine.config` for every config key, :mod:`refinenet.engine.metrics` for the
metrics' definitions.
"""

from . import metrics
from .checkpoint import load_model, load_weights, read_checkpoint
from .config import (
    DataSection,
    DistributedSection,
    EvalSection,
    LogSection,
    LossSection,
    OptimSection,
    PrecisionSection,
    ScheduleSection,
    TrainConfig,
    load_config,
)
from .evaluation import evaluate
from .inference import predict_labels, predict_probabilities
from .run import Run
from .trainer import NonFiniteLossError, train

__all__ = [
    "DataSection",
    "DistributedSection",
    "EvalSection",
    "LogSection",
    "LossSection",
    "NonFiniteLossError",
    "OptimSection",
    "PrecisionSection",
    "Run",
    "ScheduleSection",
    "TrainConfig",
    "evaluate",
    "load_config",
    "load_model",
    "load_weights",
    "metrics",
    "predict_labels",
    "predict_probabilities",
    "read_checkpoint",
    "train",
]
