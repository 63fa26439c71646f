"""The configuration of one training run: a dataclass with a section per concern.

A run is fully described by a :class:`TrainConfig`. It is saved as ``config.yaml`` beside the
run, read back from YAML, and every field can be overridden as ``section.key=value`` on the
command line (values are parsed as YAML: ``optim.lr=0.01``, ``model.scales=[1.2,0.6]``,
``name=null``). The ``model`` section is a :class:`refinenet.models.RefineNetConfig`, where
every architecture switch is declared, once.

Validation is strict because a typo must not start a 2-hour run with a default in its place:
unknown keys, wrong types and out-of-range values raise one ``ValueError`` naming the key, the
value and what is allowed. The rules are the field types below (:mod:`refinenet.schema` says
what is coerced: an int is a float, ``"1e-3"`` is a float, ``"yes"`` is not a bool).

The run directory is keyed by :meth:`TrainConfig.identity_hash`, a hash of every field that can
change the trained weights or the reported metrics (not where the run is written, how often it
logs, or how many loader workers it uses).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import typing
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import yaml
from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_validator

from ..models.config import RefineNetConfig
from ..schema import Bool, Float, Int, Invalid, PathStr, all_keys, did_you_mean, readable_error, settings

__all__ = [
    "TrainConfig",
    "DataSection",
    "OptimSection",
    "ScheduleSection",
    "LossSection",
    "PrecisionSection",
    "EvalSection",
    "LogSection",
    "DistributedSection",
    "load_config",
    "parse_overrides",
]

Auto = Literal["auto"]
Positive = Annotated[Int, Field(ge=1)]
Count = Annotated[Int, Field(ge=0)]
Side = Annotated[Int, Field(ge=32)]  # the model's minimum input (stride 32)
Scale = Annotated[Float, Field(gt=0)]


@settings
class DataSection:
    """Which data, at which resolution, with which augmentation and batch size."""

    dataset: str = "camvid"
    """A name known to :func:`refinenet.data.build_dataset` (camvid, voc, sbd, synthetic)."""
    root: Optional[PathStr] = None
    """Data root; None lets the dataset find its default location."""
    train_split: str = "train"
    val_split: str = "val"
    val_dataset: Optional[str] = None
    """Dataset of the validation split if not ``dataset`` (e.g. train on sbd, validate on voc)."""
    val_root: Optional[PathStr] = None
    """Root of the validation dataset (None: ``root`` for the same dataset, else its default)."""
    size: Optional[tuple[Side, Side]] = None
    """Resolution (H, W) the dataset is loaded at; None = native (CamVid 360x480)."""
    crop_size: Optional[tuple[Side, Side]] = None
    """Random crop (H, W) after random scaling (padded with ignore where the scaled image is
    smaller); None = the loaded image size (fine for CamVid and synthetic; VOC needs a crop)."""
    scale_range: tuple[Scale, Scale] = (0.7, 1.3)
    """Random scaling (low, high), low <= high; the released code: 0.7-1.3."""
    hflip: Bool = True
    color_jitter: Annotated[Float, Field(ge=0, le=1)] = 0.0
    """Colour jitter strength x: brightness, contrast and saturation each multiplied by a
    factor drawn from [1 - x, 1 + x] per image (torchvision's formulas, in that order).
    0 = none, as the released code; an addition for training from scratch on few scenes."""
    batch_size: Positive = 8
    """Images per optimisation step, per process (DDP: the global batch is this x world size)."""
    num_workers: Union[Count, Auto] = "auto"
    """DataLoader worker processes; "auto" = 0 on CPU (the cores train), up to 8 on CUDA."""
    on_device: Union[Bool, Auto] = "auto"
    """Keep the decoded training split on the device and augment batches there
    (refinenet.data.gpu); "auto" = on CUDA for the fixed-size datasets (camvid, synthetic)."""
    options: dict = field(default_factory=dict)
    """Extra keyword arguments for build_dataset (e.g. {"n": 64} for synthetic)."""

    @model_validator(mode="after")
    def _scale_order(self) -> "DataSection":
        if self.scale_range[0] > self.scale_range[1]:
            raise Invalid("scale_range", list(self.scale_range), "(low, high) with low <= high")
        return self


@settings
class OptimSection:
    """Optimiser. Defaults: the released code's SGD (momentum 0.9, weight decay 5e-4).

    The released learning rate (5e-4, backbone x0.1) was for fine-tuning an ImageNet backbone;
    the default here, 5e-3 with the backbone at 1x, trains from scratch (on CamVid, SGD at
    2e-2 diverged within 15 steps: the RefineNet decoder has no BatchNorm).
    """

    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: Annotated[Float, Field(gt=0)] = 0.005
    momentum: Annotated[Float, Field(ge=0, lt=1)] = 0.9
    nesterov: Bool = False
    weight_decay: Annotated[Float, Field(ge=0)] = 5e-4
    betas: tuple[Annotated[Float, Field(ge=0, lt=1)], Annotated[Float, Field(ge=0, lt=1)]] = (0.9, 0.999)
    backbone_lr_mult: Union[Annotated[Float, Field(ge=0)], Auto] = "auto"
    """Backbone lr = lr x this; "auto" = 0.1 with pretrained backbone weights (released code),
    1.0 from scratch (a random backbone has nothing to preserve)."""
    grad_clip: Optional[Annotated[Float, Field(gt=0)]] = None
    """Clip the global gradient norm to this; None = no clipping."""


@settings
class ScheduleSection:
    """Learning-rate schedule over ``steps`` optimisation steps (the run's length)."""

    steps: Positive = 2000
    name: Literal["poly", "cosine", "constant", "step"] = "poly"
    warmup_steps: Count = 100
    """Linear warm-up from lr x warmup_factor to lr over this many steps; shorter than the run."""
    warmup_factor: Annotated[Float, Field(gt=0, le=1)] = 0.1
    power: Annotated[Float, Field(ge=0)] = 0.9
    """poly: lr x (1 - step / steps) ** power. cosine: lr x (1 + cos(pi x step / steps)) / 2."""
    milestones: tuple[Count, ...] = ()
    """step: lr x gamma at each of these steps."""
    gamma: Annotated[Float, Field(gt=0)] = 0.1

    @model_validator(mode="after")
    def _warmup_within_run(self) -> "ScheduleSection":
        # A warm-up as long as the run never trains at the configured rate: almost surely a
        # schedule.steps lowered without its warm-up.
        if 0 < self.steps <= self.warmup_steps:
            raise Invalid("warmup_steps", self.warmup_steps, f"< schedule.steps={self.steps}, or 0 for no warm-up")
        return self


@settings
class LossSection:
    """Cross-entropy with the dataset's ignore index, at the logits' size (``model.output``:
    "quarter" downsamples the labels to 1/4, as the released code trained)."""

    class_weights: Literal["none", "median_frequency"] = "none"
    """"none": plain cross-entropy, as the paper. "median_frequency": weight class c by
    median(f) / f_c, f_c = pixels of c / pixels of the training images holding c (Eigen &
    Fergus 2015; how SegNet trained on CamVid). A departure from the paper, for short runs
    from scratch in which rare thin classes would otherwise never be predicted."""
    class_weight_power: Annotated[Float, Field(ge=0, le=1)] = 1.0
    """With median_frequency: weight class c by (median(f) / f_c) ** power; 1 = the full
    weighting, 0.5 = a softened one (its square root), 0 = plain cross-entropy."""

    @model_validator(mode="after")
    def _power_needs_weights(self) -> "LossSection":
        if self.class_weight_power != 1.0 and self.class_weights == "none":
            raise Invalid("class_weight_power", self.class_weight_power, "1.0 unless class_weights=median_frequency")
        return self


@settings
class PrecisionSection:
    """Precision and speed switches; "auto" = off on CPU, on for CUDA except ``compile``
    (see :mod:`refinenet.engine.precision` for the reasons)."""

    amp: Literal["auto", "none", "bf16", "fp16"] = "auto"
    channels_last: Union[Bool, Auto] = "auto"
    compile: Union[Bool, Auto] = "auto"
    cudnn_benchmark: Union[Bool, Auto] = "auto"
    fused_optimizer: Union[Bool, Auto] = "auto"


@settings
class EvalSection:
    """Validation during and at the end of training."""

    every: Count = 0
    """Steps between validations; 0 = only at the end."""
    scales: Annotated[tuple[Scale, ...], Field(min_length=1)] = (1.0,)
    """Input scales whose softmax is averaged; (1.0,) = single scale; the released code's
    multi-scale set is (0.4, 0.6, 0.8, 1.0, 1.2)."""
    flip: Bool = False
    boundary: Bool = True
    batch_size: Positive = 1
    """Images per forward pass (1 handles datasets of mixed image sizes)."""


@settings
class LogSection:
    """What the run reports while it trains."""

    every: Positive = 10
    """Steps between progress updates and history flushes (and the non-finite loss check on
    CUDA, which needs a device sync)."""
    progress: Literal["auto", "bar", "none"] = "auto"
    """"auto": a tqdm bar, refreshed at most once a minute when stderr is not a terminal
    (papermill, CI logs); "bar": refreshed twice a second everywhere; "none": silent."""
    tensorboard: Bool = False


@settings
class DistributedSection:
    """Multi-process training, started with ``torchrun --nproc_per_node=N -m refinenet train``."""

    sync_bn: Bool = False
    backend: Literal["auto", "nccl", "gloo"] = "auto"


@settings
class TrainConfig:
    """Everything that defines a training run (see the module docstring for YAML and overrides).

    Sections: ``model`` (a :class:`~refinenet.models.RefineNetConfig`), ``data``, ``optim``,
    ``schedule``, ``loss``, ``precision``, ``eval``, ``log``, ``distributed``. Build the model
    of a run with ``RefineNet(cfg.model.with_classes(num_classes))``.
    """

    name: Optional[str] = None
    """Run directory name; None = derived from the config hash."""
    out_dir: PathStr = "runs"
    """Parent of run directories."""
    seed: Count = 0
    deterministic: Bool = False
    """Bit-identical CPU runs."""
    device: str = "auto"
    """"auto", "cpu", "cuda" or "cuda:N"."""
    checkpoint_every: Positive = 500
    """Steps between checkpoints."""
    model: RefineNetConfig = field(default_factory=RefineNetConfig)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    loss: LossSection = field(default_factory=LossSection)
    precision: PrecisionSection = field(default_factory=PrecisionSection)
    eval: EvalSection = field(default_factory=EvalSection)
    log: LogSection = field(default_factory=LogSection)
    distributed: DistributedSection = field(default_factory=DistributedSection)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str | None) -> str | None:
        if name is not None and (not name or "/" in name or name in (".", "..")):
            raise ValueError("must be a plain directory name (no '/'), or null for the config hash")
        return name

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if not (device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit())):
            raise ValueError("must be 'auto', 'cpu', 'cuda' or 'cuda:N'")
        return device

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict | None) -> "TrainConfig":
        """Build and validate from a nested dict (missing keys take their defaults)."""
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ValueError(f"a config must be a mapping of sections, got {type(data).__name__}")
        # A section given as null (``model:`` with nothing under it in YAML) takes its defaults.
        data = {k: ({} if v is None and k in _SECTIONS else v) for k, v in data.items()}
        for key, new in MOVED.items():
            section, _, name = key.partition(".")
            if isinstance(data.get(section), dict) and name in data[section]:
                raise ValueError(f"config key {key!r} is now {new}")
        try:
            return _ADAPTER.validate_python(data)
        except ValidationError as err:
            raise readable_error(err, cls, data) from None

    @classmethod
    def from_saved(cls, data: dict) -> "TrainConfig":
        """:meth:`from_dict` for a config saved by an earlier version of this code (a run's
        ``config.yaml``, a checkpoint's ``train_config``): ``loss.resolution`` became
        ``model.output``."""
        data = copy.deepcopy(data or {})
        loss = data.get("loss") or {}
        if "resolution" in loss:
            data.setdefault("model", {}).setdefault("output", loss.pop("resolution"))
        return cls.from_dict(data)

    def to_dict(self) -> dict:
        """A nested dict of plain YAML/JSON types (tuples become lists)."""
        return _plain(dataclasses.asdict(self))

    def replace(self, overrides: dict | list[str] | None = None, **flat: Any) -> "TrainConfig":
        """A validated copy with overrides applied.

        ``overrides``: ``["optim.lr=0.1", ...]`` strings or a ``{"optim.lr": 0.1}`` dict;
        keyword arguments use ``__`` for the dot: ``cfg.replace(optim__lr=0.1, seed=3)``.
        """
        data = self.to_dict()
        items: list[tuple[str, Any]] = []
        if isinstance(overrides, dict):
            items += list(overrides.items())
        elif overrides:
            items += parse_overrides(overrides)
        items += [(k.replace("__", "."), v) for k, v in flat.items()]
        for key, value in items:
            _set_dotted(data, key, value)
        return TrainConfig.from_dict(data)

    def copy(self) -> "TrainConfig":
        return copy.deepcopy(self)

    # -- identity -----------------------------------------------------------------------------

    def identity(self) -> dict:
        """The fields that can change the trained weights or the reported metrics (a field
        added after runs existed leaves the identity while it holds the value that means
        "as before": see ``IDENTITY_ADDED``)."""
        data = self.to_dict()
        for key in IDENTITY_EXCLUDED:
            section, _, name = key.rpartition(".")
            (data[section] if section else data).pop(name, None)
        for key, before in IDENTITY_ADDED.items():
            section, _, name = key.rpartition(".")
            holder = data[section] if section else data
            if holder.get(name) == before:
                del holder[name]
        return data

    def identity_hash(self) -> str:
        """12 hex digits of the SHA-256 of :meth:`identity` (stable across machines)."""
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    # -- files --------------------------------------------------------------------------------

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "TrainConfig":
        return load_config(path)


# Keys that do not enter the identity hash: where and under what name a run is written, how
# it reports progress, how many loader workers and eval images per batch (same results), how
# often it checkpoints (resume is exact), and the *path* of the backbone weights (the file's
# content, not where it lies, changes a run). model.num_classes is either null or, checked at
# training, the data's class count: both are the same run.
IDENTITY_EXCLUDED = (
    "name",
    "out_dir",
    "checkpoint_every",
    "model.num_classes",
    "model.backbone_weights",
    "data.root",
    "data.val_root",
    "data.num_workers",
    "eval.batch_size",
    "log.every",
    "log.progress",
    "log.tensorboard",
)

# Fields added after ledger entries existed, with the value that trains exactly as before the
# field existed: at that value a field stays out of the identity, so the entries keep their run
# ids; any other value enters it. (A new field must be listed here, with that value.)
IDENTITY_ADDED = {
    "data.color_jitter": 0.0,
    "model.refinement": True,
}

# Keys that moved, for a message that says where (TrainConfig.from_saved upgrades saved runs).
MOVED = {"loss.resolution": "model.output ('full' or 'quarter'; the loss is computed at the logits' size)"}

_ADAPTER = TypeAdapter(TrainConfig)
_SECTIONS = {name for name, tp in typing.get_type_hints(TrainConfig).items() if dataclasses.is_dataclass(tp)}


# -- loading, overrides ----------------------------------------------------------------------


def load_config(path: str | os.PathLike, overrides: list[str] | dict | None = None) -> TrainConfig:
    """Read a YAML config (a nested mapping; missing keys take defaults), then apply overrides."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist (pass a YAML file, e.g. configs/camvid-cpu.yaml)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"config file {str(path)!r} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping of sections, got {type(data).__name__}")
    try:
        cfg = TrainConfig.from_dict(data)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return cfg.replace(overrides) if overrides else cfg


def parse_overrides(items: list[str]) -> list[tuple[str, Any]]:
    """``["optim.lr=0.1", "model.scales=[1.2,0.6]"]`` -> ``[("optim.lr", 0.1), ...]`` (YAML values)."""
    out = []
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} is not key=value (e.g. optim.lr=0.01)")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        out.append((key.strip(), value))
    return out


def _set_dotted(data: dict, key: str, value: Any) -> None:
    if key in MOVED:
        raise ValueError(f"config key {key!r} is now {MOVED[key]}")
    parts = key.split(".")
    if len(parts) > 2 or (len(parts) == 2 and parts[0] not in _SECTIONS):
        hint = did_you_mean(key, all_keys(TrainConfig)) or "; `refinenet train --print-config` lists every key"
        raise ValueError(f"unknown config key {key!r}{hint}")
    if len(parts) == 2:
        section = data.setdefault(parts[0], {})
        if not isinstance(section, dict):
            raise ValueError(f"config key {parts[0]!r} is a section; set its keys as {parts[0]}.KEY=VALUE")
        section[parts[1]] = value
    else:
        if parts[0] in _SECTIONS and not isinstance(value, dict):
            raise ValueError(f"config key {parts[0]!r} is a section; set its keys as {parts[0]}.KEY=VALUE")
        data[parts[0]] = value


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
