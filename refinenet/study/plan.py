"""Which runs a profile needs, in which order, and filling the ledger with them.

Each training notebook declares its runs in its parameters cell::

    arms = {"standard": {}, "ReLU off": {"model.crp_relu": False}}  # arm -> config overrides
    sweeps = ["standard", "ReLU off"]                                # arms trained at every lr

The plan is the union over the notebooks, in a fixed order: first the standard arm at every
learning rate of the grid (the sweep that chooses the rate, on val), then every arm at the
chosen rate, seed by seed (so that a partial ledger holds whole seeds of every arm), then the
other sweeps. Runs at the chosen rate wait until the sweep is in the ledger.

:func:`fill` trains the missing runs in that order and stops at a run boundary when the next
run would not fit the time budget, estimated from the seconds per step that earlier entries
measured on this machine.
"""

from __future__ import annotations

import ast
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .design import STANDARD, StudyDesign
from .ledger import Entry, Ledger

__all__ = ["PlannedRun", "Plan", "make_plan", "choose_lr", "fill", "estimate_seconds", "notebook_runs",
           "declared_values"]


@dataclass
class PlannedRun:
    """One run of the plan. ``lr`` None: the chosen rate, not known before the sweep."""

    arm: str
    seed: int
    lr: float | None
    overrides: dict
    notebooks: list[str] = field(default_factory=list)
    config: Any = None
    run_id: str | None = None
    multiscale: bool = False
    #: other arms that turned out to be this very run (the same run id)
    aliases: list[str] = field(default_factory=list)

    def is_arm(self, name: str) -> bool:
        return name == self.arm or name in self.aliases

    @property
    def ready(self) -> bool:
        return self.run_id is not None

    def label(self) -> str:
        lr = "chosen lr" if self.lr is None else f"lr {self.lr:g}"
        return f"{self.arm} | {lr} | seed {self.seed}"


@dataclass
class Plan:
    runs: list[PlannedRun]
    chosen_lr: float | None
    ledger: Ledger

    def missing(self) -> list[PlannedRun]:
        return [r for r in self.runs if not (r.ready and r.run_id in self.ledger)]

    def for_notebook(self, name: str) -> list[PlannedRun]:
        return [r for r in self.runs if name in r.notebooks]


def parameters_source(path: str | Path) -> str:
    """The ``parameters`` cell of a jupytext percent-format notebook, read as plain text (so
    that planning needs no notebook libraries: a training-only machine may lack them)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("# %%") and '"parameters"' in line), None)
    if start is None:
        raise ValueError(f"{path}: no cell tagged 'parameters'")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("# %%")), len(lines))
    return "\n".join(lines[start + 1 : end])


def declared_values(nb) -> dict:
    """The literal values assigned in a notebook's ``parameters`` cell (``nb``: a notebook
    read with jupytext, or the path of its percent-format source)."""
    if isinstance(nb, (str, Path)):
        sources = [parameters_source(nb)]
    else:
        sources = [c.source for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    out = {}
    for source in sources:
        for node in ast.parse(source).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                try:
                    out[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    pass
    return out


def notebook_runs(parameters: Mapping[str, Any], name: str) -> tuple[dict[str, dict], list[str]]:
    """``(arms, sweeps)`` a notebook asks for (none for a notebook that trains nothing)."""
    arms = dict(parameters.get("arms") or {})
    sweeps = list(parameters.get("sweeps") or [])
    for arm in sweeps:
        if arm not in arms:
            raise ValueError(f"notebook {name}: sweep {arm!r} is not one of its arms {sorted(arms)}")
    for arm, overrides in arms.items():
        if not isinstance(overrides, Mapping):
            raise ValueError(f"notebook {name}: arm {arm!r} must map config keys to values, got {overrides!r}")
    if arms and STANDARD not in arms:
        raise ValueError(f"notebook {name}: its arms must include {STANDARD!r}, the baseline of every comparison")
    return arms, sweeps


def choose_lr(design: StudyDesign, entries: Mapping[float, Sequence[Entry]]) -> float:
    """The standard model's rate: highest mean val mIoU over the seeds (ties: the smaller).

    For this choice only, a diverged run counts as 0: a rate at which training diverges is a
    worse rate. Chosen on the validation split; the test split plays no part."""
    if len(design.lrs) == 1:
        return float(design.lrs[0])

    def score(e: Entry) -> float:
        return 0.0 if e.diverged else e.miou

    means = {lr: sum(score(e) for e in runs) / len(runs) for lr, runs in entries.items()}
    best = max(means.values())
    return float(min(lr for lr, m in means.items() if m == best))


def make_plan(
    design: StudyDesign,
    notebooks: Mapping[str, Mapping[str, Any]],
    base: Any,
    ledger: Ledger,
    *,
    run_id: Callable[[Any], str] | None = None,
) -> Plan:
    """The runs of ``notebooks`` (``{name: parameters}``) on ``base``, in training order."""
    if run_id is None:
        from ..engine.identity import run_id
    arms: dict[str, dict] = {}
    sweeps: list[str] = []
    users: dict[str, list[str]] = {}
    for name, params in notebooks.items():
        nb_arms, nb_sweeps = notebook_runs(params, name)
        for arm, overrides in nb_arms.items():
            if arm in arms and arms[arm] != dict(overrides):
                raise ValueError(f"arm {arm!r} means {arms[arm]} in one notebook and {dict(overrides)} in {name}")
            arms[arm] = dict(overrides)
            users.setdefault(arm, []).append(name)
        sweeps += [a for a in nb_sweeps if a not in sweeps]
    runs: dict[tuple, PlannedRun] = {}

    def add(arm: str, lr: float | None, seed: int) -> PlannedRun:
        key = (arm, lr, seed)
        if key not in runs:
            r = PlannedRun(arm, seed, lr, arms.get(arm, {}), list(users.get(arm, [])))
            if lr is not None or "optim.lr" in r.overrides:
                r.config = design.config(base, r.overrides, lr=lr if lr is not None else 0.0, seed=seed)
                r.run_id = run_id(r.config)
            runs[key] = r
        return runs[key]

    if not arms:
        return Plan([], None, ledger)
    arms.setdefault(STANDARD, {})
    sweep_arms = [STANDARD] + [a for a in sweeps if a != STANDARD]
    # 1. the standard sweep
    standard_sweep = {lr: [add(STANDARD, float(lr), s) for s in design.seeds] for lr in design.lrs}
    chosen = None
    found = {lr: [ledger.get(r.run_id) for r in rs] for lr, rs in standard_sweep.items()}
    if all(e is not None for es in found.values() for e in es):
        chosen = choose_lr(design, found)
    # 2. every arm at the chosen rate, seed by seed
    for seed in design.seeds:
        for arm in arms:
            r = add(arm, chosen, seed) if chosen is not None else add(arm, None, seed)
            r.multiscale = r.multiscale or arm == STANDARD
    # 3. the other sweeps
    for arm in sweep_arms[1:]:
        for lr in design.lrs:
            for seed in design.seeds:
                add(arm, float(lr), seed)
    # The sweep's notebooks (and the standard arm's) need the whole sweep.
    for lr in design.lrs:
        for s in design.seeds:
            runs[(STANDARD, float(lr), s)].notebooks = list(users.get(STANDARD, []))
    ordered = _dedupe(list(runs.values()))
    return Plan(ordered, chosen, ledger)


def _dedupe(runs: list[PlannedRun]) -> list[PlannedRun]:
    """One planned run per run id (the standard arm at the chosen rate is also a sweep run)."""
    seen: dict[str, PlannedRun] = {}
    out = []
    for r in runs:
        if r.run_id is None:
            out.append(r)
            continue
        if r.run_id in seen:
            first = seen[r.run_id]
            first.notebooks += [n for n in r.notebooks if n not in first.notebooks]
            first.multiscale = first.multiscale or r.multiscale
            if not first.is_arm(r.arm):
                first.aliases.append(r.arm)
            continue
        seen[r.run_id] = r
        out.append(r)
    return out


def estimate_seconds(run: PlannedRun, entries: Sequence[Entry], cpu: str, device: str, steps: int) -> float | None:
    """Seconds to train and score ``run`` on this machine, from entries measured on it.

    The median seconds per step of this machine's entries of the same arm (else of any arm)
    times the run's steps, plus their median evaluation time. None when this machine has
    trained nothing yet."""
    mine = [
        e for e in entries
        if not e.diverged and e.machine.get("cpu") == cpu and str(e.machine.get("device")) == device
        and e.summary.get("seconds_per_step")
    ]
    if not mine:
        return None
    same = [e for e in mine if _arm_of(e) == run.arm] or mine
    per_step = statistics.median(e.summary["seconds_per_step"] for e in same)
    overhead = statistics.median(float(e.data.get("score_seconds") or 0.0) for e in same)
    return per_step * steps + overhead


def _arm_of(entry: Entry) -> str | None:
    return entry.data.get("arm")


def fill(
    make: Callable[[], Plan],
    record: Callable[[PlannedRun], Entry],
    *,
    budget_s: float | None = None,
    estimate: Callable[[PlannedRun], float | None] = lambda r: None,
    say: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
    started: float | None = None,
) -> tuple[int, str]:
    """Train missing runs in plan order until none is left or the budget would be exceeded.

    ``make`` rebuilds the plan after every run (the chosen rate becomes known when the sweep
    is complete). ``started``: when the budget began, on ``clock`` (default: now). Returns
    ``(runs trained, why it stopped)``."""
    start = clock() if started is None else started
    trained = 0
    while True:
        plan = make()
        todo = [r for r in plan.missing() if r.ready]
        if not todo:
            waiting = len(plan.missing())
            return trained, "every planned run is in the ledger" if not waiting else f"{waiting} runs wait for the sweep"
        run = todo[0]
        need = estimate(run)
        used = clock() - start
        if budget_s is not None and need is not None and used + need > budget_s:
            return trained, (
                f"time budget: the next run ({run.label()}) needs about {_minutes(need)}, "
                f"{_minutes(max(0.0, budget_s - used))} of {_minutes(budget_s)} left; {len(todo)} runs to go"
            )
        say(f"train [{trained + 1}] {run.label()} -> {run.run_id}" + (f" (about {_minutes(need)})" if need else ""))
        entry = record(run)
        trained += 1
        state = f"DIVERGED at step {entry.diverged_at}" if entry.diverged else f"val mIoU {100 * entry.miou:.1f}%"
        seconds = entry.summary.get("train_seconds")
        say(f"       {state}" + (f" | trained in {seconds:.0f} s" if seconds else ""))
        if budget_s is not None and clock() - start >= budget_s:
            left = len([r for r in make().missing()])
            return trained, f"time budget spent; {left} runs to go"


def _minutes(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
