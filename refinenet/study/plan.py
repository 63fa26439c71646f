"""Which runs a profile needs, in which order, and filling the ledger with them.

Each training notebook declares its runs in its parameters cell::

    arms = {"standard": {}, "ReLU off": {"model.crp_relu": False}}  # arm -> config overrides
    sweeps = ["standard", "ReLU off"]                                # arms trained at every lr

A notebook may also declare a recipe pilot (``pilot``, ``pilot_base``, ``pilot_seeds``; see
:func:`notebook_pilot`): runs of whole recipes, each with its own rate, that choose the
profile's recipe on val.

The plan is the union over the notebooks, in a fixed order: the pilot's runs; the standard arm
at every learning rate of the grid (``sweep_seeds``; the sweep that chooses the rate, on val);
the standard arm's other seeds at the chosen rate; the other swept arms at every rate of the
grid (is the common rate their own? :func:`arm_rate`); then every arm at its rate, seed by seed
(so that a partial ledger holds whole seeds of every arm). Runs at the chosen rate wait until
the standard sweep is in the ledger, a swept arm's until its own grid is.

:func:`fill` trains the missing runs in that order within a time budget, estimated from the
seconds per step that earlier entries measured on this machine: when the next run would not
fit, it takes the first later run that does, and stops at a run boundary when none fits.
"""

from __future__ import annotations

import ast
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .design import STANDARD, StudyDesign
from .ledger import Entry, Ledger

__all__ = ["PILOT", "PlannedRun", "Plan", "make_plan", "choose_lr", "fill", "estimate_seconds", "notebook_runs",
           "notebook_pilot", "declared_values", "arm_rate", "rate_evidence", "planned_sizes"]


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
    #: what the run waits for besides its rate (the pilot's choice), or None
    waits_for: str | None = None
    #: the arms whose comparisons use this run (the arm at its rate, not a grid run)
    in_study: list[str] = field(default_factory=list)

    def is_arm(self, name: str) -> bool:
        return name == self.arm or name in self.aliases

    @property
    def ready(self) -> bool:
        return self.run_id is not None and self.waits_for is None

    def label(self) -> str:
        own = self.overrides.get("optim.lr")
        lr = f"lr {self.lr:g}" if self.lr is not None else f"lr {own:g}" if own is not None else "chosen lr"
        return f"{self.arm} | {lr} | seed {self.seed}"


@dataclass
class Plan:
    runs: list[PlannedRun]
    chosen_lr: float | None
    ledger: Ledger
    #: each swept arm's rate once its grid is in the ledger (:func:`arm_rate`); the other
    #: arms train at ``chosen_lr``
    rates: dict[str, float] = field(default_factory=dict)

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
    """The values assigned in a notebook's ``parameters`` cell (``nb``: a notebook read with
    jupytext, or the path of its percent-format source).

    Every value must be a literal (no names, calls or ``**`` merges): the planner reads the
    cell without running it, and a value it could not read would silently plan other runs
    than the notebook trains. ``ValueError`` names the parameter and its line."""
    where = str(nb) if isinstance(nb, (str, Path)) else "the notebook"
    if isinstance(nb, (str, Path)):
        sources = [parameters_source(nb)]
    else:
        sources = [c.source for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    out = {}
    for source in sources:
        for node in ast.parse(source).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                name = node.targets[0].id
                try:
                    out[name] = ast.literal_eval(node.value)
                except (ValueError, TypeError, SyntaxError):
                    raise ValueError(
                        f"{where}: parameter {name!r} (line {node.lineno} of its parameters cell) is not "
                        "a literal; the study plans its runs from the cell without running it, so write "
                        "the value out (numbers, strings, lists, dicts, None, True, False)"
                    ) from None
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


#: Pilot runs are planned under the arm name ``PILOT + recipe`` (no notebook's arm starts so).
PILOT = "pilot: "


def notebook_pilot(parameters: Mapping[str, Any], name: str) -> tuple[dict[str, dict], list[int]]:
    """``(recipes, seeds)`` of a notebook's recipe pilot: ``{recipe: overrides}``, each the
    notebook's ``pilot_base`` plus the recipe's own dotted overrides (its own ``optim.lr``
    included: a pilot run waits for no sweep), trained for each of ``pilot_seeds``. A recipe
    may name more seeds of its own under the key ``"seeds"`` (trained besides
    ``pilot_seeds``; :func:`recipe_seeds`).

    ``pilot_base`` names every setting the pilot varies, so a pilot run's config (and run id)
    stays the same when the profile later adopts one of its recipes."""
    base = dict(parameters.get("pilot_base") or {})
    recipes = {}
    for recipe, overrides in dict(parameters.get("pilot") or {}).items():
        if not isinstance(overrides, Mapping):
            raise ValueError(f"notebook {name}: pilot recipe {recipe!r} must map config keys to values, got {overrides!r}")
        merged = {**base, **overrides}
        if "optim.lr" not in merged:
            raise ValueError(f"notebook {name}: pilot recipe {recipe!r} must set optim.lr (in it or in pilot_base)")
        recipes[recipe] = merged
    seeds = list(parameters.get("pilot_seeds") or [0])
    if len(set(seeds)) != len(seeds) or any(not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"notebook {name}: pilot_seeds must be distinct ints >= 0, got {seeds}")
    return recipes, seeds


def recipe_seeds(overrides: Mapping[str, Any], seeds: Sequence[int]) -> tuple[dict, list[int]]:
    """``(config overrides, seeds)`` of one pilot recipe: its ``"seeds"`` entry (more seeds
    of that recipe alone, e.g. for the best ones) joins the pilot's ``seeds``."""
    overrides = dict(overrides)
    own = overrides.pop("seeds", [])
    if not isinstance(own, list) or any(not isinstance(s, int) or s < 0 for s in own):
        raise ValueError(f"a pilot recipe's seeds must be a list of ints >= 0, got {own!r}")
    return overrides, sorted(set(seeds) | set(own))


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


def rate_evidence(entries: Mapping[float, Sequence[Entry]]) -> tuple[dict, dict, float]:
    """``(mean, spread, best)`` of a sweep ``{lr: runs}``: per rate the mean val mIoU and its
    seed spread (highest minus lowest), a diverged run counting as 0 (as in :func:`choose_lr`),
    and the best rate (ties: the smaller)."""
    scores = {float(lr): [0.0 if e.diverged else e.miou for e in runs] for lr, runs in entries.items()}
    mean = {lr: sum(v) / len(v) for lr, v in scores.items()}
    spread = {lr: max(v) - min(v) for lr, v in scores.items()}
    top = max(mean.values())
    return mean, spread, min(lr for lr, m in mean.items() if m == top)


def arm_rate(common: float, entries: Mapping[float, Sequence[Entry]]) -> float:
    """A swept arm's rate (the study design page, "Learning rates"): the ``common`` rate (the
    standard model's) unless the arm's best rate on val beats it by more than noise, that is
    by more than the larger of the two rates' seed spreads (:func:`rate_evidence`); then its
    best rate."""
    mean, spread, best = rate_evidence(entries)
    common = float(common)
    return best if mean[best] - mean[common] > max(spread[best], spread[common]) else common


def planned_sizes(notebooks: Mapping[str, Mapping[str, Any]], base: Any) -> list:
    """Every ``data.size`` the runs of ``notebooks`` train at, the base's first, once each
    (``None``: native; a size as a tuple).

    A run id fingerprints the data it reads, and CamVid read from a pack fingerprints
    differently from the PNGs, so the study packs each of these sizes before it computes an
    id: an arm or a pilot recipe at its own size (notebook 03's 360 x 480 recipe) then has
    the same id on a fresh machine as in the committed ledger."""
    overrides: list[Mapping[str, Any]] = [{}]
    for name, params in notebooks.items():
        overrides += list(notebook_runs(params, name)[0].values())
        overrides += [recipe_seeds(o, [])[0] for o in notebook_pilot(params, name)[0].values()]
    sizes: list = []
    for o in overrides:
        size = base.replace(dict(o)).data.size  # as design.config applies an arm, less lr and seed
        size = None if size is None else tuple(size)
        if size not in sizes:
            sizes.append(size)
    return sizes


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
    pilots: dict[str, tuple[dict, list[int]]] = {}
    for name, params in notebooks.items():
        recipes, seeds = notebook_pilot(params, name)
        for recipe, overrides in recipes.items():
            arm = PILOT + recipe
            if arm in pilots and pilots[arm] != (overrides, seeds):
                raise ValueError(f"pilot recipe {recipe!r} means {pilots[arm]} in one notebook and {(overrides, seeds)} in {name}")
            pilots[arm] = (overrides, seeds)
            users.setdefault(arm, []).append(name)
    runs: dict[tuple, PlannedRun] = {}

    def add(arm: str, lr: float | None, seed: int) -> PlannedRun:
        key = (arm, lr, seed)
        if key not in runs:
            overrides = pilots[arm][0] if arm in pilots else arms.get(arm, {})
            r = PlannedRun(arm, seed, lr, overrides, list(users.get(arm, [])))
            if lr is not None or "optim.lr" in r.overrides:
                r.config = design.config(base, r.overrides, lr=lr if lr is not None else 0.0, seed=seed)
                r.run_id = run_id(r.config)
            runs[key] = r
        return runs[key]

    # 0. the recipe pilot: the profile's recipe is chosen from it, before any of its runs
    for arm, (overrides, seeds) in list(pilots.items()):
        config, own = recipe_seeds(overrides, seeds)
        pilots[arm] = (config, own)
        for seed in own:
            add(arm, None, seed)
    if not arms:
        return Plan(_dedupe(list(runs.values())), None, ledger)
    arms.setdefault(STANDARD, {})
    sweep_arms = [STANDARD] + [a for a in sweeps if a != STANDARD]
    # 1. the standard sweep
    standard_sweep = {lr: [add(STANDARD, float(lr), s) for s in design.grid_seeds] for lr in design.lrs}
    chosen = None
    found = {lr: [ledger.get(r.run_id) for r in rs] for lr, rs in standard_sweep.items()}
    if all(e is not None for es in found.values() for e in es):
        chosen = choose_lr(design, found)
    # 1b. the standard model's other seeds: its seed spread sizes the study (the design page)
    for seed in design.seeds:
        add(STANDARD, chosen, seed)
    # 1c. the other arms of the standard model's own page (the first that uses it), when they
    # need no sweep of their own: that page then executes before the long grids of step 2.
    # The order of training changes no run and no result, only which page is complete first.
    own_page = users[STANDARD][0] if users.get(STANDARD) else None
    for arm in arms:
        if arm != STANDARD and arm not in sweeps and own_page in users.get(arm, []):
            for seed in design.seeds:
                add(arm, chosen, seed)
    # 2. the other sweeps: is the common rate each arm's own?
    grids = {arm: {lr: [add(arm, float(lr), s) for s in design.grid_seeds] for lr in design.lrs}
             for arm in sweep_arms[1:]}
    rates = {STANDARD: chosen} if chosen is not None else {}
    for arm, grid in grids.items():
        found = {lr: [ledger.get(r.run_id) for r in rs] for lr, rs in grid.items()}
        if chosen is not None and all(e is not None for es in found.values() for e in es):
            rates[arm] = arm_rate(chosen, found)
    # 3. every arm at its rate, seed by seed (a swept arm waits for its grid)
    for seed in design.seeds:
        for arm in arms:
            lr = rates.get(arm, None if arm in grids else chosen)
            r = add(arm, lr, seed)
            r.multiscale = r.multiscale or arm == STANDARD
            r.in_study.append(arm)
    # The sweep's notebooks (and the standard arm's) need the whole sweep.
    for lr in design.lrs:
        for s in design.grid_seeds:
            runs[(STANDARD, float(lr), s)].notebooks = list(users.get(STANDARD, []))
    if pilots:
        if design.adopted is None:
            for r in runs.values():
                if r.arm not in pilots:
                    r.waits_for = "the pilot's choice (the profile's study.adopted)"
        else:
            check_adopted(design, base, {arm[len(PILOT):]: o for arm, (o, _) in pilots.items()})
    ordered = _dedupe(list(runs.values()))
    return Plan(ordered, chosen, ledger, {a: float(lr) for a, lr in rates.items()})


def check_adopted(design: StudyDesign, base: Any, recipes: Mapping[str, Mapping[str, Any]]) -> None:
    """The profile's ``train`` must hold every setting of the pilot recipe it says it adopts
    that shapes the trained weights (not the rate, which the study sweeps, nor how often it
    validates or checkpoints); raises ``ValueError`` naming the differences."""
    from ..engine.config import IDENTITY_EXCLUDED

    if design.adopted not in recipes:
        raise ValueError(f"study.adopted: {design.adopted!r} is not a pilot recipe; the pilot's recipes: {sorted(recipes)}")
    differ = []
    for key, value in recipes[design.adopted].items():
        if key == "optim.lr" or key.startswith("eval.") or key in IDENTITY_EXCLUDED:
            continue
        section, _, name = key.rpartition(".")
        have = getattr(getattr(base, section), name) if section else getattr(base, name)
        want = getattr(getattr(base.replace({key: value}), section), name) if section else value
        if have != want:
            differ.append(f"{key}: {have!r} in the profile, {want!r} in the recipe")
    if differ:
        raise ValueError(f"study.adopted says the profile adopts pilot recipe {design.adopted!r}, but its train section "
                         f"differs: {'; '.join(differ)}")


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
            first.in_study += [a for a in r.in_study if a not in first.in_study]
            if not first.is_arm(r.arm):
                first.aliases.append(r.arm)
            if first.lr is None:  # a pilot run that is also a grid run: it counts at its rate
                first.lr = r.lr
            continue
        seen[r.run_id] = r
        out.append(r)
    return out


def estimate_seconds(
    run: PlannedRun, entries: Sequence[Entry], cpu: str, device: str, steps: int, *,
    threads: int | None = None, cost: Callable[[Any], float] | None = None,
) -> float | None:
    """Seconds to train and score ``run`` on this machine, from entries measured on it.

    The median seconds per step of this machine's entries of the same arm times the run's
    steps, plus their median evaluation time. An arm not trained here yet is timed from every
    arm's entries, each scaled by ``cost`` (work per step of a config, e.g.
    :func:`refinenet.study.cost.step_macs`) of the run over the entry's, so that a model with
    two backbones counts about twice; without ``cost``, unscaled. ``threads``: only entries
    trained with that many threads (a run sharing the machine with another trains slower).
    None when this machine has trained nothing yet in that setting."""
    mine = [
        e for e in entries
        if not e.diverged and e.machine.get("cpu") == cpu and str(e.machine.get("device")) == device
        and e.summary.get("seconds_per_step")
        and (threads is None or e.machine.get("threads") in (None, threads))
    ]
    if not mine:
        return None
    same = [e for e in mine if _arm_of(e) == run.arm]
    if same or cost is None or run.config is None:
        timed, scale = same or mine, lambda e: 1.0
    else:
        timed, scale = mine, lambda e: cost(run.config) / cost(e.config)
    per_step = statistics.median(e.summary["seconds_per_step"] * scale(e) for e in timed)
    overhead = statistics.median(float(e.data.get("score_seconds") or 0.0) * scale(e) for e in timed)
    return per_step * steps + overhead


def _arm_of(entry: Entry) -> str | None:
    return entry.data.get("arm")


def fill(
    make: Callable[[], Plan],
    record: Callable[[PlannedRun], Entry] | None,
    *,
    budget_s: float | None = None,
    estimate: Callable[[PlannedRun], float | None] = lambda r: None,
    say: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
    started: float | None = None,
    jobs: int = 1,
    submit: Callable[[PlannedRun], Future] | None = None,
) -> tuple[int, str]:
    """Train missing runs in plan order until none is left or the budget would be exceeded.

    ``make`` rebuilds the plan after every run (the chosen rate becomes known when the sweep
    is complete). ``record`` trains a run in this process (None when ``submit`` starts every
    run). ``started``: when the budget began, on ``clock`` (default: now).
    ``jobs`` > 1 keeps that many runs training at once through ``submit`` (which starts a run
    elsewhere and returns a future of its entry): while the sweep is still training, the free
    job takes the next run that does not wait for it. A run is started only if this machine's
    estimate says it ends within the budget; when the next one would not, the first later run
    that would is started instead. Returns ``(runs trained, why it stopped)``."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if submit is None and (jobs > 1 or record is None):
        raise ValueError("jobs > 1 needs submit (a way to start a run in another process); jobs = 1 needs "
                         "record or submit")
    start = clock() if started is None else started
    trained, started_runs = 0, 0
    running: dict[Future, PlannedRun] = {}
    stop: str | None = None
    error: BaseException | None = None

    def now(run: PlannedRun) -> Future:
        done: Future = Future()
        done.set_result(record(run))  # in this process: an error propagates at once
        return done

    while True:
        plan = make()
        busy = {r.run_id for r in running.values()}
        todo = [r for r in plan.missing() if r.ready and r.run_id not in busy]
        while stop is None and error is None and todo and len(running) < jobs:
            used = clock() - start
            pick = _first_that_fits(todo, estimate, None if budget_s is None else budget_s - used)
            if pick is None:
                need = estimate(todo[0])
                stop = (
                    f"time budget: the next run ({todo[0].label()}) needs about {_minutes(need)}, "
                    f"{_minutes(max(0.0, budget_s - used))} of {_minutes(budget_s)} left"
                    + (", and no later run fits" if len(todo) > 1 else "") + f"; {len(todo)} runs to go"
                )
                break
            run, need = todo.pop(pick[0]), pick[1]
            started_runs += 1
            say(f"train [{started_runs}] {run.label()} -> {run.run_id}" + (f" (about {_minutes(need)})" if need else ""))
            running[(submit or now)(run)] = run
        if not running:
            if error is not None:
                raise error
            if stop is not None:
                return trained, stop
            waiting = plan.missing()
            if not waiting:
                return trained, "every planned run is in the ledger"
            pilot = sum(r.waits_for is not None for r in waiting)
            return trained, (f"{len(waiting) - pilot} runs wait for the sweep" if not pilot else
                             f"{len(waiting)} runs wait for the pilot's choice (set study.adopted in the profile)")
        done, _ = wait(list(running), return_when=FIRST_COMPLETED)
        for future in done:
            run = running.pop(future)
            try:
                entry = future.result()
            except BaseException as err:  # let the other jobs finish and keep their entries
                error = error or err
                say(f"       FAILED {run.label()}: {type(err).__name__}: {err}")
                continue
            trained += 1
            state = f"DIVERGED at step {entry.diverged_at}" if entry.diverged else f"val mIoU {100 * entry.miou:.1f}%"
            seconds = entry.summary.get("train_seconds")
            say(f"       {run.label()}: {state}" + (f" | trained in {seconds:.0f} s" if seconds else ""))
        if stop is None and budget_s is not None and clock() - start >= budget_s:
            stop = f"time budget spent; {len(make().missing()) - len(running)} runs to go"


def _first_that_fits(
    todo: Sequence[PlannedRun], estimate: Callable[[PlannedRun], float | None], left_s: float | None,
) -> tuple[int, float | None] | None:
    """``(index, estimate)`` of the first run of ``todo`` estimated to end within ``left_s``
    seconds (any run when ``left_s`` is None or a run has no estimate); None if none fits.
    A run later in the plan order that fits is taken rather than stopping: the end of a sitting
    would otherwise leave a job idle for as long as the run that did not fit."""
    for i, run in enumerate(todo):
        need = estimate(run)
        if left_s is None or need is None or need <= left_s:
            return i, need
    return None


def _minutes(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
