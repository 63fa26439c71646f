"""The configuration of one training run: a dataclass with a section per concern.

A run is fully described by a :class:`TrainConfig`. It is saved as ``config.yaml`` beside the
run, read back from YAML, and every field can be overridden as ``section.key=value`` on the
command line (values are parsed as YAML: ``optim.lr=0.01``, ``model.scales=[1.2,0.6]``,
``name=null``).

Validation is strict because a typo must not start a 2-hour run with a default in its place:
unknown keys and wrong types raise ``ValueError`` naming the key, the value and the fix.

The run directory is keyed by :meth:`TrainConfig.identity_hash`, a hash of every field that can
change the trained weights or the reported metrics (not where the run is written, how often it
logs, or how many loader workers it uses).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

__all__ = [
    "TrainConfig",
    "ModelSection",
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


@dataclass
class ModelSection:
    """Architecture (see :func:`refinenet.models.refinenet`); the class count comes from the data."""

    backbone: str = "resnet101"
    cascade: int = 4
    scales: tuple[float, ...] = (1.0,)
    widths: tuple[int, int, int, int] = (512, 256, 256, 256)
    crp_blocks: int = 2
    crp_relu: bool = True
    crp_order: Literal["pool-conv", "conv-pool"] = "pool-conv"
    dropout: float = 0.5
    #: path of a local torchvision-format ResNet state dict; None trains from scratch.
    backbone_weights: Union[str, None] = None

    def build(self, num_classes: int, **kwargs):
        """The RefineNet this section describes (keyword arguments go to ``refinenet()``)."""
        from ..models import refinenet

        return refinenet(
            self.backbone,
            num_classes,
            cascade=self.cascade,
            scales=self.scales,
            widths=self.widths,
            crp_blocks=self.crp_blocks,
            crp_relu=self.crp_relu,
            crp_order=self.crp_order,
            dropout=self.dropout,
            **kwargs,
        )


@dataclass
class DataSection:
    """Which data, at which resolution, with which augmentation and batch size."""

    #: a name known to :func:`refinenet.data.build_dataset` (camvid, voc, sbd, synthetic).
    dataset: str = "camvid"
    #: data root; None lets the dataset find its default location.
    root: Union[str, None] = None
    train_split: str = "train"
    val_split: str = "val"
    #: dataset of the validation split if not ``dataset`` (e.g. train on sbd, validate on voc),
    #: and its root (None: ``root`` for the same dataset, else the dataset's default search).
    val_dataset: Union[str, None] = None
    val_root: Union[str, None] = None
    #: resolution (H, W) the dataset is loaded at; None = native (CamVid 360x480).
    size: Union[tuple[int, int], None] = None
    #: random crop (H, W) after random scaling (padded with ignore where the scaled image is
    #: smaller); None = the loaded image size (fine for CamVid and synthetic; VOC needs a crop).
    crop_size: Union[tuple[int, int], None] = None
    scale_range: tuple[float, float] = (0.7, 1.3)
    hflip: bool = True
    #: images per optimisation step, per process (DDP: the global batch is this x world size).
    batch_size: int = 8
    #: DataLoader worker processes; "auto" = 0 on CPU (the cores train), up to 8 on CUDA.
    num_workers: Union[int, Auto] = "auto"
    #: keep the decoded training split on the device and augment batches there
    #: (refinenet.data.gpu); "auto" = on CUDA for the fixed-size datasets (camvid, synthetic).
    on_device: Union[bool, Auto] = "auto"
    #: extra keyword arguments for build_dataset (e.g. {"n": 64} for synthetic).
    options: dict = field(default_factory=dict)


@dataclass
class OptimSection:
    """Optimiser. Defaults: the released code's SGD (momentum 0.9, weight decay 5e-4).

    The released learning rate (5e-4, backbone x0.1) was for fine-tuning an ImageNet backbone;
    the default here, 5e-3 with the backbone at 1x, trains from scratch (on CamVid, SGD at
    2e-2 diverged within 15 steps: the RefineNet decoder has no BatchNorm).
    """

    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = 0.005
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    #: backbone lr = lr x this; "auto" = 0.1 with pretrained backbone weights (released code),
    #: 1.0 from scratch (a random backbone has nothing to preserve).
    backbone_lr_mult: Union[float, Auto] = "auto"
    #: clip the global gradient norm to this; None = no clipping.
    grad_clip: Union[float, None] = None


@dataclass
class ScheduleSection:
    """Learning-rate schedule over ``steps`` optimisation steps (the run's length)."""

    steps: int = 2000
    name: Literal["poly", "constant", "step"] = "poly"
    #: linear warm-up from lr x warmup_factor to lr over this many steps (a run shorter than
    #: its warm-up simply ends before reaching the full rate).
    warmup_steps: int = 100
    warmup_factor: float = 0.1
    #: poly: lr x (1 - step / steps) ** power.
    power: float = 0.9
    #: step: lr x gamma at each of these steps.
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1


@dataclass
class LossSection:
    """Cross-entropy with the dataset's ignore index."""

    #: "full": logits upsampled to the label size; "quarter": logits at 1/4, labels
    #: nearest-downsampled to them (how the released code trained).
    resolution: Literal["full", "quarter"] = "full"
    #: "none": plain cross-entropy, as the paper. "median_frequency": weight class c by
    #: median(f) / f_c, f_c = pixels of c / pixels of the training images holding c (Eigen &
    #: Fergus 2015; how SegNet trained on CamVid). A departure from the paper, for short runs
    #: from scratch in which rare thin classes would otherwise never be predicted.
    class_weights: Literal["none", "median_frequency"] = "none"


@dataclass
class PrecisionSection:
    """Precision and speed switches; "auto" = off on CPU, on for CUDA except ``compile``
    (see :mod:`refinenet.engine.precision` for the reasons)."""

    amp: Literal["auto", "none", "bf16", "fp16"] = "auto"
    channels_last: Union[bool, Auto] = "auto"
    compile: Union[bool, Auto] = "auto"
    cudnn_benchmark: Union[bool, Auto] = "auto"
    fused_optimizer: Union[bool, Auto] = "auto"


@dataclass
class EvalSection:
    """Validation during and at the end of training."""

    #: steps between validations; 0 = only at the end.
    every: int = 0
    #: input scales whose softmax is averaged; (1.0,) = single scale; the released code's
    #: multi-scale set is (0.4, 0.6, 0.8, 1.0, 1.2).
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    boundary: bool = True
    #: images per forward pass (1 handles datasets of mixed image sizes).
    batch_size: int = 1


@dataclass
class LogSection:
    """What the run reports while it trains."""

    #: steps between progress updates and history flushes (and the non-finite loss check on
    #: CUDA, which needs a device sync).
    every: int = 10
    #: "auto": a tqdm bar, refreshed at most once a minute when stderr is not a terminal
    #: (papermill, CI logs); "bar": refreshed twice a second everywhere; "none": silent.
    progress: Literal["auto", "bar", "none"] = "auto"
    tensorboard: bool = False


@dataclass
class DistributedSection:
    """Multi-process training, started with ``torchrun --nproc_per_node=N -m refinenet train``."""

    sync_bn: bool = False
    backend: Literal["auto", "nccl", "gloo"] = "auto"


@dataclass
class TrainConfig:
    """Everything that defines a training run (see the module docstring for YAML and overrides).

    Top-level fields: ``name`` (run directory name; None = derived from the config hash),
    ``out_dir`` (parent of run directories), ``seed``, ``deterministic`` (bit-identical CPU
    runs), ``device`` ("auto", "cpu", "cuda", "cuda:N"), ``checkpoint_every`` (steps). Sections:
    ``model``, ``data``, ``optim``, ``schedule``, ``loss``, ``precision``, ``eval``, ``log``,
    ``distributed``.
    """

    name: Union[str, None] = None
    out_dir: str = "runs"
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    checkpoint_every: int = 500
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    loss: LossSection = field(default_factory=LossSection)
    precision: PrecisionSection = field(default_factory=PrecisionSection)
    eval: EvalSection = field(default_factory=EvalSection)
    log: LogSection = field(default_factory=LogSection)
    distributed: DistributedSection = field(default_factory=DistributedSection)

    def __post_init__(self) -> None:
        # Accept plain dicts for sections (e.g. TrainConfig(optim={"lr": 0.1})).
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            section = _SECTIONS.get(f.name)
            if section is not None and isinstance(value, dict):
                setattr(self, f.name, _build(section, value, f.name + "."))
        _check_types(self, "")
        for name in _SECTIONS:
            _check_types(getattr(self, name), name + ".")
        self.validate()

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict | None) -> "TrainConfig":
        """Build and validate from a nested dict (missing keys take their defaults)."""
        return _build(cls, data or {}, "")

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
        """The fields that can change the trained weights or the reported metrics."""
        data = self.to_dict()
        for key in IDENTITY_EXCLUDED:
            section, _, name = key.rpartition(".")
            (data[section] if section else data).pop(name, None)
        # Fields added after runs were published count only when set, so that those runs
        # keep their names (and are still found and reused).
        for key, default in IDENTITY_ADDED_LATER.items():
            section, _, name = key.rpartition(".")
            if data[section].get(name) == default:
                data[section].pop(name)
        return data

    def identity_hash(self) -> str:
        """12 hex digits of the SHA-256 of :meth:`identity` (stable across machines)."""
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def run_name(self) -> str:
        """``name`` if set, else ``<dataset>-<backbone>-<identity hash>``."""
        if self.name:
            return self.name
        return f"{self.data.dataset}-{self.model.backbone}-{self.identity_hash()}"

    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.run_name()

    # -- files --------------------------------------------------------------------------------

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "TrainConfig":
        return load_config(path)

    # -- checks -------------------------------------------------------------------------------

    def validate(self) -> None:
        """Range checks beyond types; raises ``ValueError`` naming the key."""

        def bad(key: str, value: Any, need: str) -> ValueError:
            return ValueError(f"config key {key}={value!r}: must be {need}")

        if self.name is not None and (not self.name or "/" in self.name or self.name in (".", "..")):
            raise bad("name", self.name, "a plain directory name (no '/'), or null for the config hash")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise bad("device", self.device, "'auto', 'cpu', 'cuda' or 'cuda:N'")
        if self.seed < 0:
            raise bad("seed", self.seed, "an int >= 0")
        if self.checkpoint_every < 1:
            raise bad("checkpoint_every", self.checkpoint_every, "a positive number of steps")
        m = self.model
        from ..models.backbone import BACKBONES

        if m.backbone not in BACKBONES:
            raise bad("model.backbone", m.backbone, f"one of {sorted(BACKBONES)}")
        if any(w < 1 for w in m.widths):
            raise bad("model.widths", m.widths, "four positive ints, deepest path first")
        if m.cascade not in (1, 2, 4):
            raise bad("model.cascade", m.cascade, "1, 2 or 4")
        if not m.scales or any(s <= 0 for s in m.scales):
            raise bad("model.scales", m.scales, "a non-empty list of positive scales")
        if m.crp_blocks < 0:
            raise bad("model.crp_blocks", m.crp_blocks, "an int >= 0")
        if not 0 <= m.dropout < 1:
            raise bad("model.dropout", m.dropout, "a probability in [0, 1)")
        d = self.data
        if d.batch_size < 1:
            raise bad("data.batch_size", d.batch_size, "a positive int")
        for key, value in (("data.size", d.size), ("data.crop_size", d.crop_size)):
            if value is not None and min(value) < 32:
                raise bad(key, value, "(H, W) with both sides >= 32 (the model's minimum input)")
        if not 0 < d.scale_range[0] <= d.scale_range[1]:
            raise bad("data.scale_range", d.scale_range, "(low, high) with 0 < low <= high")
        if d.num_workers != "auto" and d.num_workers < 0:
            raise bad("data.num_workers", d.num_workers, "an int >= 0 or 'auto'")
        o = self.optim
        if o.lr <= 0:
            raise bad("optim.lr", o.lr, "a positive float")
        if o.weight_decay < 0 or not 0 <= o.momentum < 1:
            raise bad("optim.weight_decay/momentum", (o.weight_decay, o.momentum), ">= 0 / in [0, 1)")
        if o.backbone_lr_mult != "auto" and o.backbone_lr_mult < 0:
            raise bad("optim.backbone_lr_mult", o.backbone_lr_mult, "a float >= 0 or 'auto'")
        if o.grad_clip is not None and o.grad_clip <= 0:
            raise bad("optim.grad_clip", o.grad_clip, "a positive float or null")
        s = self.schedule
        if s.steps < 1:
            raise bad("schedule.steps", s.steps, "a positive int")
        if s.warmup_steps < 0 or not 0 < s.warmup_factor <= 1:
            raise bad("schedule.warmup_steps/warmup_factor", (s.warmup_steps, s.warmup_factor),
                      "warmup_steps >= 0 and 0 < warmup_factor <= 1")
        if s.power < 0 or s.gamma <= 0:
            raise bad("schedule.power/gamma", (s.power, s.gamma), "power >= 0 and gamma > 0")
        e = self.eval
        if e.every < 0 or e.batch_size < 1:
            raise bad("eval.every/batch_size", (e.every, e.batch_size), "every >= 0 and batch_size >= 1")
        if not e.scales or any(x <= 0 for x in e.scales):
            raise bad("eval.scales", e.scales, "a non-empty list of positive scales")
        if self.log.every < 1:
            raise bad("log.every", self.log.every, "a positive int")


# Keys that do not enter the identity hash: where and under what name a run is written, how
# it reports progress, how many loader workers and eval images per batch (same results), and
# how often it checkpoints (resume is exact).
IDENTITY_EXCLUDED = (
    "name",
    "out_dir",
    "checkpoint_every",
    "data.root",
    "data.val_root",
    "data.num_workers",
    "eval.batch_size",
    "log.every",
    "log.progress",
    "log.tensorboard",
)

IDENTITY_ADDED_LATER = {
    "loss.class_weights": "none",
}

_SECTIONS = {
    "model": ModelSection,
    "data": DataSection,
    "optim": OptimSection,
    "schedule": ScheduleSection,
    "loss": LossSection,
    "precision": PrecisionSection,
    "eval": EvalSection,
    "log": LogSection,
    "distributed": DistributedSection,
}


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
        raise ValueError(f"{path}: {err}") from err
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


def _all_keys() -> list[str]:
    keys = []
    for f in dataclasses.fields(TrainConfig):
        if f.name in _SECTIONS:
            keys += [f"{f.name}.{g.name}" for g in dataclasses.fields(_SECTIONS[f.name])]
        else:
            keys.append(f.name)
    return keys


def _unknown_key(key: str) -> ValueError:
    close = difflib.get_close_matches(key, _all_keys(), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else "; `refinenet train --print-config` lists every key"
    return ValueError(f"unknown config key {key!r}{hint}")


def _set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    if len(parts) > 2 or (len(parts) == 2 and parts[0] not in _SECTIONS):
        raise _unknown_key(key)
    if len(parts) == 2:
        section = data.setdefault(parts[0], {})
        if not isinstance(section, dict):
            raise ValueError(f"config key {parts[0]!r} is a section; set its keys as {parts[0]}.KEY=VALUE")
        section[parts[1]] = value
    else:
        if parts[0] in _SECTIONS and not isinstance(value, dict):
            raise ValueError(f"config key {parts[0]!r} is a section; set its keys as {parts[0]}.KEY=VALUE")
        data[parts[0]] = value


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"config section {prefix.rstrip('.') or 'root'!r} must be a mapping, got {data!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise _unknown_key(prefix + str(key))
    kwargs = {}
    for name, value in data.items():
        if name in _SECTIONS and cls is TrainConfig:
            kwargs[name] = _build(_SECTIONS[name], value if value is not None else {}, name + ".")
        else:
            kwargs[name] = value  # type-checked by TrainConfig.__post_init__
    return cls(**kwargs)


def _check_types(obj: Any, prefix: str) -> None:
    """Coerce every field of a config dataclass to its annotation, or raise ``ValueError``."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        if prefix == "" and f.name in _SECTIONS:
            section = getattr(obj, f.name)
            if not isinstance(section, _SECTIONS[f.name]):
                raise ValueError(
                    f"config section {f.name!r} must be a {_SECTIONS[f.name].__name__} or a mapping, "
                    f"got {type(section).__name__}"
                )
            continue
        setattr(obj, f.name, _coerce(getattr(obj, f.name), hints[f.name], prefix + f.name))


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_type_name(args[0])}"
        return f"a list of {len(args)} ({', '.join(_type_name(a) for a in args)})"
    if tp is type(None):
        return "null"
    return {int: "an int", float: "a float", bool: "true/false", str: "a string", dict: "a mapping"}.get(tp, str(tp))


class _NoMatch(Exception):
    pass


def _coerce(value: Any, tp: Any, key: str) -> Any:
    try:
        return _coerce_to(value, tp)
    except _NoMatch:
        raise ValueError(
            f"config key {key}={value!r} ({type(value).__name__}): expected {_type_name(tp)}"
        ) from None


def _coerce_to(value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value in typing.get_args(tp) and not isinstance(value, bool):
            return value
        raise _NoMatch
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _coerce_to(value, arg)
            except _NoMatch:
                continue
        raise _NoMatch
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _NoMatch
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce_to(v, args[0]) for v in value)
        if len(value) != len(args):
            raise _NoMatch
        return tuple(_coerce_to(v, a) for v, a in zip(value, args))
    if tp is type(None):
        if value is None:
            return None
        raise _NoMatch
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _NoMatch
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _NoMatch
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            # PyYAML reads "1e-3" (no dot) as a string; accept numbers written that way.
            try:
                return float(value)
            except ValueError:
                pass
        raise _NoMatch
    if tp is str:
        if isinstance(value, str):
            return value
        raise _NoMatch
    if tp is dict:
        if isinstance(value, dict):
            return dict(value)
        raise _NoMatch
    raise TypeError(f"config: unsupported annotation {tp!r}")


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
