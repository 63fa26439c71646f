"""What a study notebook reads of the trained runs: the ledger, through the profile's plan.

.. code-block:: python

    exp = Experiments(study, arms=arms, sweeps=sweeps)   # the notebook's parameters
    lr = exp.chosen_lr()                    # the standard sweep, chosen on val mean mIoU
    runs = {name: exp.arm(name) for name in arms}        # one ledger Entry per seed
    records = exp.records(runs)             # one row per run (val, test on native labels, ...)

Nothing here trains: a run missing from the ledger raises :class:`MissingRuns`, naming the
runs and the command that trains them (``refinenet study run --profile P``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .analysis import collapsed, loss_above_chance
from .design import STANDARD
from .ledger import Entry, Ledger
from .plan import PILOT, Plan, PlannedRun
from .published import THIN_CLASSES

__all__ = ["Experiments", "MissingRuns"]


class MissingRuns(LookupError):
    """Runs a notebook needs are not in the ledger."""


class Experiments:
    """The runs of one notebook (see the module docstring).

    ``study``: the notebook's :class:`~refinenet.study.notebook.Study` (profile, data set,
    device, results folder); ``arms`` and ``sweeps``: the notebook's parameters.
    """

    def __init__(
        self,
        study: Any,
        arms: Mapping[str, Mapping] | None = None,
        sweeps: Sequence[str] = (),
        *,
        pilot: Mapping[str, Mapping] | None = None,
        pilot_base: Mapping[str, Any] | None = None,
        pilot_seeds: Sequence[int] = (0,),
    ) -> None:
        from .profiles import load_profile
        from .training import StudyRuns

        self.study = study
        self.profile = load_profile(study.profile)
        self.design = self.profile.study
        results = Path(study.results_dir)
        root, name = results.parent.parent, results.name
        self.ledger = Ledger(results / "runs")
        self.arms = {STANDARD: {}, **{k: dict(v) for k, v in (arms or {}).items()}}
        self.sweeps = list(sweeps)
        self.pilot_recipes = dict(pilot or {})
        wants = {study.name: {"arms": self.arms, "sweeps": self.sweeps, "pilot": self.pilot_recipes,
                              "pilot_base": dict(pilot_base or {}), "pilot_seeds": list(pilot_seeds)}}
        self.runs = StudyRuns(self.profile, study.dataset, study.device, self.ledger, wants,
                              root=root, checkpoints=root / "runs" / name)
        self.base = self.runs.base
        self._plan: Plan | None = None
        self._macs: dict = {}

    def study_plan(self) -> Plan:
        """The plan of every notebook of the profile (not only this one's arms)."""
        from .runner import notebook_wants
        from .training import StudyRuns

        every = StudyRuns(self.profile, self.study.dataset, self.study.device, self.ledger,
                          notebook_wants(self.profile, self.runs.root), root=self.runs.root,
                          checkpoints=Path(self.base.out_dir))
        return every.plan()

    @property
    def plan(self) -> Plan:
        if self._plan is None:
            self._plan = self.runs.plan()
        return self._plan

    # -- lookups ---------------------------------------------------------------------------

    def _entries(self, planned: Sequence[PlannedRun], what: str) -> list[Entry]:
        missing = [r for r in planned if not (r.ready and r.run_id in self.ledger)]
        if missing:
            shown = "; ".join(r.label() for r in missing[:4]) + (f"; ... ({len(missing)} in all)" if len(missing) > 4 else "")
            raise MissingRuns(
                f"{what}: {len(missing)} of {len(planned)} runs are not in the ledger "
                f"{self.ledger.folder} ({shown}). Train them with `refinenet study run --profile "
                f"{self.profile.name}`; `refinenet study status` shows what is done"
            )
        return [self.ledger.get(r.run_id) for r in planned]

    def chosen_lr(self) -> float:
        """The standard model's learning rate, chosen on the validation split."""
        sweep = [r for r in self.plan.runs if r.arm == STANDARD and r.lr is not None]
        self._entries(sweep, "the learning-rate sweep")
        return float(self.plan.chosen_lr)

    def arm(self, name: str) -> list[Entry]:
        """The arm's runs at its rate (the chosen one, or a swept arm's own: :meth:`rate`), one
        per seed, in seed order."""
        if name not in self.arms:
            raise KeyError(f"{name!r} is not an arm of this notebook; its arms: {sorted(self.arms)}")
        self.chosen_lr()  # the sweep first: its absence is the clearer error
        planned = [r for r in self.plan.runs if name in r.in_study]
        return self._entries(sorted(planned, key=lambda r: r.seed), f"arm {name!r}")

    def rate(self, name: str) -> float:
        """The rate arm ``name`` trains at: its own ``optim.lr`` if it sets one, else the
        chosen rate, or a swept arm's own best when the common rate is not within noise of it
        (:func:`refinenet.study.plan.arm_rate`)."""
        own = self.arms.get(name, {}).get("optim.lr")
        if own is not None:
            return float(own)
        if name not in self.plan.rates:
            self.arm(name)  # raises MissingRuns naming what is missing
        return self.plan.rates.get(name, self.chosen_lr())

    def pilot(self, recipe: str) -> list[Entry]:
        """The pilot runs of ``recipe``, one per pilot seed, in seed order."""
        if recipe not in self.pilot_recipes:
            raise KeyError(f"{recipe!r} is not a pilot recipe of this notebook; its recipes: {sorted(self.pilot_recipes)}")
        planned = sorted([r for r in self.plan.runs if r.is_arm(PILOT + recipe)], key=lambda r: r.seed)
        return self._entries(planned, f"pilot recipe {recipe!r}")

    def sweep(self, name: str = STANDARD) -> dict[float, list[Entry]]:
        """``{lr: runs}`` of an arm over the profile's learning-rate grid, the grid's seeds at
        every rate (the chosen rate's other seeds are not part of the sweep)."""
        out = {}
        for lr in self.design.lrs:
            planned = sorted(
                [r for r in self.plan.runs if r.is_arm(name) and r.lr == float(lr) and r.seed in self.design.grid_seeds],
                key=lambda r: r.seed,
            )
            if not planned:
                raise KeyError(f"{name!r} is not swept in this notebook (sweeps: {[STANDARD] + self.sweeps})")
            out[float(lr)] = self._entries(planned, f"sweep of {name!r} at lr {lr:g}")
        return out

    def rate_check(self, names: Sequence[str]):
        """Per swept arm: the val mIoU (mean over the grid's seeds) at the common rate and at
        its best rate, the noise (the larger of the two rates' seed spreads), and the rate its
        comparisons use (:func:`refinenet.study.plan.arm_rate`)."""
        import pandas as pd

        from .plan import rate_evidence

        common, rows = self.chosen_lr(), []
        for name in names:
            mean, spread, best = rate_evidence(self.sweep(name))
            rows.append({"arm": name, "common rate": f"{common:g}", "val mIoU % at it": 100 * mean[common],
                         "its best rate": f"{best:g}", "val mIoU % at that": 100 * mean[best],
                         "gain": 100 * (mean[best] - mean[common]),
                         "noise (larger spread)": 100 * max(spread[best], spread[common]),
                         "trains at": f"{self.rate(name):g}"})
        return pd.DataFrame(rows)

    # -- what the tables need --------------------------------------------------------------

    @property
    def thin_classes(self) -> list[str]:
        return list(THIN_CLASSES.get(self.study.dataset, ()))

    @property
    def eval_size(self) -> tuple[int, int]:
        """(H, W) the models see at evaluation."""
        if self.base.data.size is not None:
            return tuple(self.base.data.size)
        ds = self.study.data("val", None, n=1)
        return tuple(ds[0][1].shape)

    def cost(self, overrides: Mapping[str, Any]) -> tuple[int, int]:
        """``(parameters, MACs)`` of an arm; MACs of one forward pass at the evaluation size
        (counted on the meta device: nothing is computed)."""
        import torch

        from .. import count_macs
        from ..data import dataset_class
        from ..models import RefineNet

        key = tuple(sorted((k, repr(v)) for k, v in overrides.items()))
        if key not in self._macs:
            cfg = self.base.replace(dict(overrides))
            classes = dataset_class(self.study.dataset).num_classes
            with torch.device("meta"):
                model = RefineNet(cfg.model.with_classes(classes))
            params = sum(p.numel() for p in model.parameters())
            self._macs[key] = (params, count_macs(model, (1, 3, *self.eval_size)))
        return self._macs[key]

    def loss_above_chance(self, run: Entry) -> bool:
        """Whether ``run``'s training loss ended above a uniform guess's over this data set's
        classes (:func:`~refinenet.study.analysis.loss_above_chance`): a run that did not
        train although its loss stayed finite."""
        from ..data import dataset_class

        losses = run.frame("steps").get("loss")
        if losses is None or losses.empty:
            return False  # no history to judge (a diverged run counts as failed anyway)
        return loss_above_chance(losses, dataset_class(self.study.dataset).num_classes)

    def records(self, variants: Mapping[str, Sequence[Entry]], *, test: bool = True):
        """One row per run: variant, seed, lr, whether it diverged or collapsed to one class on
        val (:func:`~refinenet.study.analysis.collapsed`), val and test scores (%), the
        multi-scale test mIoU (NaN where not scored),
        per-class test IoU, boundary IoU, thin-class mIoU, parameters, MACs, training time.

        A diverged run has no model to score: its scores are NaN (missing), never 0; the
        tables count it as a failure."""
        import pandas as pd

        rows = []
        for variant, runs in variants.items():
            overrides = self.arms.get(variant, {})
            for run in runs:
                cfg = run.config
                val = run.metrics
                row = {
                    "variant": variant,
                    "seed": cfg.seed,
                    "lr": cfg.optim.lr,
                    "diverged": run.diverged,
                    "val mIoU": _pct(val.get("miou")),
                    "val boundary IoU": _pct(val.get("boundary_iou")),
                    # a failure of training that did not diverge: one class nearly everywhere
                    "val collapsed": bool(val.get("confusion")) and collapsed(val["confusion"]),
                }
                if test:
                    t = run.test
                    row["test mIoU"] = _pct(t.get("miou"))
                    row["test boundary IoU"] = _pct(t.get("boundary_iou"))
                    row["test pixel accuracy"] = _pct(t.get("pixel_accuracy"))
                    row["test mean class accuracy"] = _pct(t.get("mean_class_accuracy"))
                    row["multi-scale test mIoU"] = _pct(run.test_multiscale.get("miou"))
                    for name, iou in zip(t.get("class_names", []), t.get("iou", [])):
                        row[f"IoU {name}"] = _pct(iou)
                    names = t.get("class_names", [])
                    # eval.boundary=false (or no model): the columns exist, the values are missing
                    per_class = t.get("boundary_iou_per_class") or [None] * len(names)
                    for name, biou in zip(names, per_class):
                        row[f"boundary IoU {name}"] = _pct(biou)
                    thin = [row.get(f"IoU {c}", math.nan) for c in self.thin_classes]
                    thin = [v for v in thin if math.isfinite(v)]  # NaN: absent, or no model
                    row["thin-class mIoU"] = sum(thin) / len(thin) if thin else math.nan
                params, macs = self.cost(overrides)
                row["parameters (M)"] = params / 1e6
                row["GMACs"] = macs / 1e9
                seconds = run.summary.get("train_seconds")
                row["training s"] = math.nan if seconds is None else float(seconds)
                row["run"] = run.run_id
                rows.append(row)
        return pd.DataFrame(rows)


def _pct(value) -> float:
    """A fraction -> %, NaN for a missing (None / NaN) value."""
    if value is None:
        return math.nan
    value = float(value)
    return 100 * value if math.isfinite(value) else math.nan
