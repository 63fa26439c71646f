"""The study's training runs, built in one place so that notebooks share them.

Every run of notebooks 3 to 6 comes from :meth:`Experiments.config`: the profile's
``recipe`` (backbone, widths, crops, batch, steps, learning rates, seeds, ...) plus the one
thing a variant changes. Two notebooks asking for the same run therefore build the same
:class:`~refinenet.engine.TrainConfig`, the engine finds it under the same identity hash in
``runs/<profile>/`` and returns it without training again: the learning-rate sweep of
notebook 3 is the sweep of notebook 4, and the standard model of notebook 3 is the baseline of
every ablation.

.. code-block:: python

    exp = Experiments(study, image_size, recipe)
    lr = exp.chosen_lr()                     # the sweep, chosen on val mean mIoU
    standard = exp.train("standard")         # one Run per seed, at the chosen lr
    no_crp = exp.train("N = 0", crp_blocks=0)
    table = exp.records({"standard": standard, "N = 0": no_crp})   # one row per run
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Recipe", "Experiments", "DivergedRun", "THIN_CLASSES", "PUBLISHED_CAMVID",
           "PUBLISHED_CAMVID_PER_CLASS"]

#: The thin classes whose IoU the study follows (per data set).
THIN_CLASSES = {
    "camvid": ("Pole", "SignSymbol", "Pedestrian", "Bicyclist"),
    "synthetic": ("pole", "wire"),
}

#: Published mIoU (%) on the 233-image CamVid test split, 11 classes, 360 x 480, as tabulated
#: by the ENet and FC-DenseNet papers (see ../shared/data/camvid/README.md).
PUBLISHED_CAMVID = (
    {"method": "SegNet", "test mIoU %": 46.4, "from scratch": False},
    {"method": "ENet", "test mIoU %": 51.3, "from scratch": True},
    {"method": "FCN-8", "test mIoU %": 57.0, "from scratch": False},
    {"method": "DeepLab-LargeFOV", "test mIoU %": 61.6, "from scratch": False},
    {"method": "Dilation8", "test mIoU %": 65.3, "from scratch": False},
    {"method": "FC-DenseNet103", "test mIoU %": 66.9, "from scratch": True},
)

#: Published per-class test IoU (%) on the same split, from Table 2 of the FC-DenseNet paper
#: (Jegou et al. 2017), in our class names. Only the methods whose per-class row that table
#: gives; each row's mean is its published mIoU above (a test checks it to 0.05).
PUBLISHED_CAMVID_PER_CLASS = {
    "SegNet": {"Sky": 87.0, "Building": 68.7, "Pole": 16.0, "Road": 86.2, "Pavement": 60.5,
               "Tree": 52.0, "SignSymbol": 13.4, "Fence": 17.9, "Car": 58.5,
               "Pedestrian": 25.3, "Bicyclist": 24.8},
    "FCN-8": {"Sky": 88.7, "Building": 77.8, "Pole": 19.9, "Road": 91.2, "Pavement": 72.7,
              "Tree": 71.0, "SignSymbol": 32.7, "Fence": 24.4, "Car": 76.1,
              "Pedestrian": 41.7, "Bicyclist": 31.0},
    "DeepLab-LargeFOV": {"Sky": 89.0, "Building": 81.5, "Pole": 14.3, "Road": 92.2,
                         "Pavement": 75.4, "Tree": 74.6, "SignSymbol": 42.3, "Fence": 27.2,
                         "Car": 82.2, "Pedestrian": 48.4, "Bicyclist": 50.1},
    "FC-DenseNet103": {"Sky": 93.0, "Building": 83.0, "Pole": 37.8, "Road": 94.5,
                       "Pavement": 82.2, "Tree": 77.3, "SignSymbol": 43.9, "Fence": 37.1,
                       "Car": 77.3, "Pedestrian": 59.6, "Bicyclist": 50.5},
}


@dataclass(frozen=True)
class Recipe:
    """How every run of the study trains (the profile's ``recipe``; defaults: profile cpu).

    ``crop_size`` None trains on whole images (after the random rescaling); ``lrs`` is the
    learning-rate grid of the sweep, from which the standard recipe's rate is chosen on the
    validation split; ``scenes`` is the generator's scene count per split (None: its default).
    """

    backbone: str = "resnet18"
    widths: tuple[int, ...] = (64, 32, 32, 32)
    crop_size: tuple[int, int] | None = (128, 160)
    batch_size: int = 8
    steps: int = 500
    warmup_steps: int = 50
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lrs: tuple[float, ...] = (0.0025, 0.005, 0.01, 0.02)
    seeds: tuple[int, ...] = (0, 1, 2)
    eval_every: int = 250
    eval_batch: int = 8
    scenes: int | None = None
    checkpoint_every: int = 250
    #: loss.class_weights of every run: "median_frequency" (the profiles) or "none" (the paper).
    class_weights: str = "median_frequency"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | "Recipe" | None) -> "Recipe":
        if isinstance(data, Recipe):
            return data
        data = dict(data or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"recipe: unknown keys {unknown}; known: {sorted(names)}")
        for key in ("widths", "crop_size", "lrs", "seeds"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        recipe = cls(**data)
        if len(recipe.seeds) < 1 or len(recipe.lrs) < 1:
            raise ValueError("recipe: seeds and lrs must not be empty")
        return recipe

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def images_per_run(self) -> int:
        return self.steps * self.batch_size


def _fmt_lr(lr: float) -> str:
    return f"{lr:g}"


@dataclass
class Experiments:
    """The runs of one notebook: a :class:`~refinenet.study.notebook.Study`, the image size
    and the recipe. See the module docstring."""

    study: Any
    image_size: Sequence[int] | None
    recipe: Recipe | Mapping[str, Any] | None = None
    runs_dir: str | None = None
    verbose: bool = True
    _chosen: float | None = field(default=None, init=False, repr=False)
    _seen: dict = field(default_factory=dict, init=False, repr=False)
    _macs: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.recipe = Recipe.from_dict(self.recipe)
        self.image_size = tuple(self.image_size) if self.image_size else None
        self.runs_dir = self.runs_dir or f"runs/{self.study.profile}"
        self._prepare_data()

    # -- data ------------------------------------------------------------------------------

    def _prepare_data(self) -> None:
        """Pack CamVid at the study's size once if no pack exists (training decodes nothing)."""
        if self.study.dataset != "camvid" or self.image_size is None:
            return
        from ..data import CamVid, pack_camvid

        missing = []
        for split in ("train", "val", "test"):
            try:
                CamVid(split=split, size=self.image_size, packed=True)
            except FileNotFoundError:
                missing.append(split)
        if missing:
            paths = pack_camvid(self.image_size, splits=tuple(missing), progress=False)
            if self.verbose:
                where = paths[0].parent.as_posix()
                h, w = self.image_size
                print(f"packed CamVid {', '.join(missing)} at {h}x{w} into {where}/ (once)")

    @property
    def thin_classes(self) -> list[str]:
        return list(THIN_CLASSES.get(self.study.dataset, ()))

    @property
    def eval_size(self) -> tuple[int, int]:
        """(H, W) of the evaluation images."""
        if self.image_size is not None:
            return self.image_size
        ds = self.study.data("val", None, n=1)
        return tuple(ds[0][1].shape)

    # -- configs and runs ------------------------------------------------------------------

    def config(self, *, lr: float | None = None, seed: int | None = None, class_weights: str | None = None, **model: Any):
        """The TrainConfig of one run: the recipe, ``lr`` (default: the chosen one), ``seed``
        (default: the first), ``class_weights`` (default: the recipe's) and model overrides
        (``crp_relu=False``, ``cascade=2``, ...)."""
        from ..engine import TrainConfig

        r = self.recipe
        lr = self.chosen_lr() if lr is None else float(lr)
        seed = r.seeds[0] if seed is None else int(seed)
        options = {"n": r.scenes} if self.study.synthetic and r.scenes else {}
        return TrainConfig.from_dict(
            {
                "out_dir": self.runs_dir,
                "seed": seed,
                "device": self.study.device,
                "checkpoint_every": r.checkpoint_every,
                "model": {"backbone": r.backbone, "widths": list(r.widths), **model},
                "data": self._data_section(options),
                "optim": {
                    "name": r.optimizer,
                    "lr": lr,
                    "momentum": r.momentum,
                    "weight_decay": r.weight_decay,
                },
                "schedule": {"name": "poly", "steps": r.steps, "warmup_steps": r.warmup_steps},
                "loss": {"class_weights": r.class_weights if class_weights is None else class_weights},
                "eval": {"every": r.eval_every, "boundary": True, "batch_size": r.eval_batch},
                "log": {"progress": "none"},
            }
        )

    def _data_section(self, options: dict) -> dict:
        r = self.recipe
        return {
            "dataset": self.study.dataset,
            "size": list(self.image_size) if self.image_size else None,
            "crop_size": list(r.crop_size) if r.crop_size else None,
            "batch_size": r.batch_size,
            "options": options,
        }

    def train(self, label: str, *, lr: float | None = None, class_weights: str | None = None, **model: Any) -> list:
        """Train (or reuse) one run per seed; prints one line per run. Returns the Runs.

        A run whose loss becomes NaN or infinite is returned as a :class:`DivergedRun`, which
        scores 0 everywhere: it produced no usable model. (Run again, it resumes from its last
        good checkpoint and normally diverges again.)"""
        from ..engine import NonFiniteLossError, train

        runs = []
        for seed in self.recipe.seeds:
            cfg = self.config(lr=lr, seed=seed, class_weights=class_weights, **model)
            key = cfg.identity_hash()
            if key in self._seen:  # already trained or found by this notebook: no new line
                runs.append(self._seen[key])
                continue
            head = f"{label} | lr {_fmt_lr(cfg.optim.lr)} | seed {seed} |"
            try:
                run = train(cfg, resume=True)
            except NonFiniteLossError as err:
                run = DivergedRun(cfg.run_dir(), cfg, err.step)
                if self.verbose:
                    print(f"{head} DIVERGED at step {err.step}, scored 0")
                self._seen[key] = run
                runs.append(run)
                continue
            self._seen[key] = run
            runs.append(run)
            if self.verbose:
                seconds = run.summary.get("train_seconds", float("nan"))
                how = "found on disk, trained" if run.reused else "trained"
                print(f"{head} val mIoU {100 * run.miou:.1f}% | {how} in {seconds:.0f} s")
        return runs

    def sweep(self, label: str = "sweep", **model: Any) -> dict[float, list]:
        """The learning-rate sweep for a model (default: the standard one): ``{lr: runs}``."""
        return {lr: self.train(label, lr=lr, **model) for lr in self.recipe.lrs}

    def chosen_lr(self) -> float:
        """The standard recipe's learning rate: the sweep's highest mean validation mIoU
        (ties: the smaller rate). Chosen on val only; the test split plays no part."""
        if self._chosen is None:
            if len(self.recipe.lrs) == 1:
                self._chosen = float(self.recipe.lrs[0])
            else:
                sweep = self.sweep()
                means = {lr: sum(r.miou for r in runs) / len(runs) for lr, runs in sweep.items()}
                best = max(means.values())
                self._chosen = float(min(lr for lr, m in means.items() if m == best))
        return self._chosen

    # -- measurements ----------------------------------------------------------------------

    def cost(self, **model: Any) -> tuple[int, int]:
        """``(parameters, MACs)`` of a model variant; MACs of one forward pass at the
        evaluation size (counted on the meta device: nothing is computed)."""
        import torch

        from .. import count_macs, refinenet
        from ..data import dataset_class

        key = tuple(sorted(model.items()))
        if key not in self._macs:
            r = self.recipe
            classes = dataset_class(self.study.dataset).num_classes
            with torch.device("meta"):
                m = refinenet(r.backbone, classes, widths=r.widths, **model)
            params = sum(p.numel() for p in m.parameters())
            self._macs[key] = (params, count_macs(m, (1, 3, *self.eval_size)))
        return self._macs[key]

    def evaluate(self, run, split: str = "test") -> dict:
        """``run``'s final weights on ``split`` (cached in the run directory)."""
        return run.evaluate(split, batch_size=self.recipe.eval_batch, device=self.study.device)

    def records(self, variants: Mapping[str, Sequence], *, test: bool = True):
        """One row per run: variant, seed, lr, val and test scores (%), per-class test IoU
        (%), boundary IoU, parameters, MACs and training time."""
        import pandas as pd

        from ..data import dataset_class

        names = dataset_class(self.study.dataset).class_names
        rows = []
        for variant, runs in variants.items():
            for run in runs:
                cfg = run.config
                model = _model_overrides(cfg)
                diverged = bool(getattr(run, "diverged", False))
                row = {
                    "variant": variant,
                    "seed": cfg.seed,
                    "lr": cfg.optim.lr,
                    "diverged": diverged,
                    "val mIoU": 100 * run.metrics["miou"],
                    "val boundary IoU": 100 * run.metrics.get("boundary_iou", math.nan),
                }
                if test:
                    result = _ZERO(names) if diverged else self.evaluate(run, "test")
                    row["test mIoU"] = 100 * result["miou"]
                    row["test boundary IoU"] = 100 * result.get("boundary_iou", math.nan)
                    row["test pixel accuracy"] = 100 * result["pixel_accuracy"]
                    for name, iou in zip(result["class_names"], result["iou"]):
                        row[f"IoU {name}"] = _pct(iou)
                    per_class = result.get("boundary_iou_per_class") or []
                    for name, biou in zip(result["class_names"], per_class):
                        row[f"boundary IoU {name}"] = _pct(biou)
                    thin = [row.get(f"IoU {c}", math.nan) for c in self.thin_classes]
                    thin = [v for v in thin if math.isfinite(v)]  # NaN: absent from the split
                    row["thin-class mIoU"] = sum(thin) / len(thin) if thin else math.nan
                params, macs = self.cost(**model)
                row["parameters (M)"] = params / 1e6
                row["GMACs"] = macs / 1e9
                row["training s"] = run.summary.get("train_seconds", math.nan)
                row["run"] = run.dir.name
                rows.append(row)
        return pd.DataFrame(rows)


def _ZERO(names) -> dict:
    """The scores of a diverged run: 0 everywhere."""
    zeros = [0.0] * len(names)
    return {"miou": 0.0, "boundary_iou": 0.0, "pixel_accuracy": 0.0, "class_names": list(names),
            "iou": zeros, "boundary_iou_per_class": zeros}


@dataclass
class DivergedRun:
    """A run whose loss became NaN or infinite at ``step``: no usable model, scored 0."""

    dir: Any
    config: Any
    step: int
    diverged: bool = True
    reused: bool = False

    @property
    def miou(self) -> float:
        return 0.0

    @property
    def metrics(self) -> dict:
        return {"miou": 0.0, "boundary_iou": 0.0}

    @property
    def summary(self) -> dict:
        return {}

    def frame(self, kind: str = "steps"):
        """The history the run wrote before it diverged (as :meth:`Run.frame`)."""
        import pandas as pd

        from ..engine.history import read_history

        try:
            return pd.DataFrame(read_history(self.dir).get(kind, []))
        except (OSError, ValueError):
            return pd.DataFrame()


def _pct(value) -> float:
    """A fraction -> %, NaN for a missing (None / NaN) value."""
    if value is None:
        return math.nan
    value = float(value)
    return 100 * value if math.isfinite(value) else math.nan


def _model_overrides(cfg) -> dict:
    """The model fields of ``cfg`` that differ from the study's standard model."""
    m = cfg.model
    out = {}
    if m.cascade != 4:
        out["cascade"] = m.cascade
    if tuple(m.scales) != (1.0,):
        out["scales"] = tuple(m.scales)
    if m.crp_blocks != 2:
        out["crp_blocks"] = m.crp_blocks
    if not m.crp_relu:
        out["crp_relu"] = False
    return out
