"""A profile's study design: one partial training config, its grids, and what each run keeps.

The ``study`` section of a profile (``refinenet/study/profiles/*.yaml``) speaks the training
config's own vocabulary (:class:`refinenet.engine.TrainConfig`, the keys of a training YAML)::

    study:
      train:                 # a partial TrainConfig: every run of the study starts here
        model: {backbone: resnet18, widths: [64, 32, 32, 32]}
        data: {size: [180, 240], crop_size: [128, 160], batch_size: 8}
        schedule: {steps: 500, warmup_steps: 50}
      seeds: [0, 1, 2]       # every arm trains these seeds
      lrs: [0.005, 0.01]     # the standard model's learning-rate grid, chosen on val
      sweep_seeds: [0, 1]    # the seeds of the grid's runs (default: seeds); a subset of seeds
      test_scales: [0.4, 0.6, 0.8, 1.0, 1.2]   # multi-scale (+ flip) test row of the standard arm
      examples: 4            # test images whose predictions every ledger entry keeps
      failures: 3            # and its worst-scoring test images
      adopted: "SGD poly, lr 0.01"   # the pilot recipe ``train`` adopts (notebook 03)

An *arm* is the standard model with one change, written as dotted overrides of that config
(``{"model.crp_relu": false}``); the notebooks declare their arms in their parameters cell, so
the runner knows every run of a notebook without executing it (:mod:`refinenet.study.plan`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["StudyDesign", "STANDARD"]

#: The arm every other arm is compared with; the learning rate is chosen for it.
STANDARD = "standard"

_KEYS = {"train", "seeds", "lrs", "sweep_seeds", "test_scales", "examples", "failures", "scenes", "adopted"}


@dataclass(frozen=True)
class StudyDesign:
    """A profile's ``study`` section (see the module docstring)."""

    train: Mapping[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0, 1, 2)
    lrs: tuple[float, ...] = (0.01,)
    #: the seeds trained at every rate of ``lrs`` by the swept arms (None: ``seeds``); the
    #: chosen rate trains every seed. Fewer seeds over the grid than at the chosen rate: the
    #: grid only has to find the rate, the comparisons need the power.
    sweep_seeds: tuple[int, ...] | None = None
    test_scales: tuple[float, ...] = (0.4, 0.6, 0.8, 1.0, 1.2)
    examples: int = 4
    failures: int = 3
    #: generator scenes per split when the study runs on the synthetic generator.
    scenes: int | None = None
    #: the recipe of the notebooks' pilot that ``train`` adopts (checked: ``train`` must hold
    #: its settings). While a pilot is declared and this is unset, only the pilot trains.
    adopted: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "study") -> "StudyDesign":
        data = dict(data or {})
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}; allowed: {sorted(_KEYS)}")
        for key in ("seeds", "lrs", "sweep_seeds", "test_scales"):
            if key in data:
                if not isinstance(data[key], Sequence) or isinstance(data[key], str) or not data[key]:
                    raise ValueError(f"{where}.{key} must be a non-empty list, got {data[key]!r}")
                data[key] = tuple(data[key])
        if not isinstance(data.get("train", {}), Mapping):
            raise ValueError(f"{where}.train must be a mapping (a partial training config)")
        design = cls(**data)
        if len(set(design.seeds)) != len(design.seeds) or any(int(s) != s or s < 0 for s in design.seeds):
            raise ValueError(f"{where}.seeds must be distinct ints >= 0, got {list(design.seeds)}")
        if design.sweep_seeds is not None and not set(design.sweep_seeds) <= set(design.seeds):
            raise ValueError(f"{where}.sweep_seeds must be some of seeds {list(design.seeds)}, got {list(design.sweep_seeds)}")
        if any(not lr > 0 for lr in design.lrs):
            raise ValueError(f"{where}.lrs must be positive, got {list(design.lrs)}")
        # Fail at load time, not hours later: the partial config must be a valid one.
        design.base("synthetic", "cpu")
        return design

    @property
    def grid_seeds(self) -> tuple[int, ...]:
        """The seeds trained at every rate of the grid (``sweep_seeds``, else ``seeds``), in
        the order of ``seeds``."""
        return tuple(s for s in self.seeds if self.sweep_seeds is None or s in self.sweep_seeds)

    def base(self, dataset: str, device: str, *, out_dir: str = "runs") -> Any:
        """The standard model's :class:`~refinenet.engine.TrainConfig` on ``dataset``
        (``camvid`` or ``synthetic``), before its learning rate and seed are set."""
        from ..engine import TrainConfig

        data = copy.deepcopy(dict(self.train))
        data.setdefault("data", {})
        data["data"] = {**data["data"], "dataset": dataset}
        if dataset == "synthetic" and self.scenes:
            data["data"]["options"] = {**data["data"].get("options", {}), "n": self.scenes}
        data["out_dir"] = out_dir
        data["device"] = device
        data.setdefault("log", {})
        data["log"] = {**data["log"], "progress": "none"}
        return TrainConfig.from_dict(data)

    def config(self, base: Any, overrides: Mapping[str, Any] | None, *, lr: float, seed: int) -> Any:
        """One run: ``base`` with an arm's dotted ``overrides``, then ``lr`` and ``seed``.

        An arm that sets ``optim.lr`` itself keeps its own rate."""
        items = dict(overrides or {})
        items.setdefault("optim.lr", float(lr))
        items["seed"] = int(seed)
        return base.replace(items)
