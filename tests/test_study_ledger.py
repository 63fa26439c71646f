"""The run ledger: the plan over it, filling it, reading it back, and the tables from it."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from refinenet.study import report, stats
from refinenet.study.design import StudyDesign
from refinenet.study.experiments import Experiments, MissingRuns
from refinenet.study.ledger import Ledger
from refinenet.study.plan import PlannedRun, arm_rate, choose_lr, fill, make_plan
from refinenet.study.profiles import load_profile
from refinenet.study.training import StudyRuns

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "train": {
        "model": {"backbone": "resnet18", "widths": [16, 8, 8, 8]},
        "data": {"size": [64, 64], "crop_size": None, "batch_size": 2},
        "schedule": {"steps": 2, "warmup_steps": 0},
        "eval": {"every": 0, "batch_size": 4},
        "checkpoint_every": 100,
    },
    "seeds": [0, 1],
    "lrs": [0.01, 0.02],
    "test_scales": [0.75, 1.0],
    "scenes": 3,
    "examples": 2,
    "failures": 1,
}
ARMS = {"standard": {}, "N = 0": {"model.crp_blocks": 0}}


def _profile(tmp_path: Path, design: dict = TINY):
    path = tmp_path / "tiny.yaml"
    notebooks = {"03_training": {}}
    path.write_text(yaml.safe_dump({"name": "tiny", "common": {"dataset": "synthetic"}, "study": design,
                                    "notebooks": notebooks}))
    return load_profile(path)


def _runs(tmp_path: Path, arms=ARMS, sweeps=("standard",)) -> StudyRuns:
    profile = _profile(tmp_path)
    wants = {"nb": {"arms": arms, "sweeps": list(sweeps)}}
    return StudyRuns(profile, "synthetic", "cpu", Ledger(tmp_path / "results" / "runs"), wants,
                     root=ROOT, checkpoints=tmp_path / "checkpoints")


def test_the_plan_orders_the_sweep_first_and_waits_for_the_chosen_rate(tmp_path):
    runs = _runs(tmp_path, sweeps=("standard", "N = 0"))
    plan = runs.plan()
    ready = [r for r in plan.runs if r.ready]
    # the standard sweep (2 rates x 2 seeds), then the N = 0 sweep; the chosen-rate runs wait
    assert [(r.arm, r.lr, r.seed) for r in ready[:4]] == [
        ("standard", 0.01, 0), ("standard", 0.01, 1), ("standard", 0.02, 0), ("standard", 0.02, 1)]
    assert {r.arm for r in ready[4:]} == {"N = 0"} and len(ready) == 8
    waiting = [r for r in plan.runs if not r.ready]
    assert {(r.arm, r.seed) for r in waiting} == {("standard", 0), ("standard", 1), ("N = 0", 0), ("N = 0", 1)}
    assert plan.chosen_lr is None
    assert len({r.run_id for r in ready}) == len(ready)  # every run its own id


def test_the_standard_models_own_page_completes_before_the_other_sweeps(tmp_path):
    """Its unswept arms train right after the standard model's seeds, before the other
    notebooks' grids: the order changes which page is complete first, not any run."""
    profile = _profile(tmp_path)
    wants = {"03_training": {"arms": {"standard": {}, "plain": {"loss.class_weights": None}}},
             "04_ablation": {"arms": {"standard": {}, "N = 0": {"model.crp_blocks": 0}}, "sweeps": ["N = 0"]}}
    runs = StudyRuns(profile, "synthetic", "cpu", Ledger(tmp_path / "runs"), wants, root=ROOT,
                     checkpoints=tmp_path / "ck")
    order = [(r.arm, r.lr, r.seed) for r in runs.plan().runs]
    plain = [i for i, (arm, _, _) in enumerate(order) if arm == "plain"]
    grid = [i for i, (arm, lr, _) in enumerate(order) if arm == "N = 0" and lr is not None]
    standard_seeds = [i for i, (arm, lr, _) in enumerate(order) if arm == "standard" and lr is None]
    assert len(plain) == 2 and len(grid) == 4
    assert max(standard_seeds) < min(plain) and max(plain) < min(grid)
    # the same runs as a notebook-blind order would have: only their order differs
    alone = StudyRuns(profile, "synthetic", "cpu", Ledger(tmp_path / "runs"),
                      {"04_ablation": wants["04_ablation"], "03_training": wants["03_training"]},
                      root=ROOT, checkpoints=tmp_path / "ck")
    assert sorted(map(str, order)) == sorted(str((r.arm, r.lr, r.seed)) for r in alone.plan().runs)


def test_a_resumed_run_is_estimated_for_the_steps_it_has_left(tmp_path, monkeypatch):
    from refinenet.engine.checkpoint import checkpoint_step, save_checkpoint
    from refinenet.engine.identity import run_dir

    runs = _runs(tmp_path)
    monkeypatch.setattr("refinenet.study.training.estimate_seconds", lambda run, entries, cpu, device, steps, **kw: float(steps))
    run = runs.plan().runs[0]
    steps = run.config.schedule.steps
    assert runs.estimate(run) == steps
    path = run_dir(run.config) / "checkpoint.pt"
    path.parent.mkdir(parents=True)
    save_checkpoint(path, {"step": 1, "model": {"w": torch.zeros(3)}})
    assert checkpoint_step(path) == 1
    assert runs.estimate(run) == steps - 1
    path.write_bytes(b"torn")  # unreadable: it trains from the start, and is estimated so
    assert checkpoint_step(path) == 0 and runs.estimate(run) == steps


def test_choose_lr_counts_divergence_as_a_worse_rate():
    design = StudyDesign(lrs=(0.01, 0.02))
    ok = SimpleNamespace(diverged=False, miou=0.4)
    bad = SimpleNamespace(diverged=True, miou=float("nan"))
    high = SimpleNamespace(diverged=False, miou=0.5)
    assert choose_lr(design, {0.01: [ok, ok], 0.02: [high, bad]}) == 0.01
    assert choose_lr(design, {0.01: [ok, ok], 0.02: [high, high]}) == 0.02
    assert choose_lr(design, {0.01: [ok], 0.02: [ok]}) == 0.01  # ties: the smaller rate


@pytest.mark.slow
def test_fill_records_entries_then_trains_nothing_and_retrains_one(tmp_path):
    runs = _runs(tmp_path)
    lines: list[str] = []
    trained, why = runs.fill(say=lines.append)
    # 4 sweep runs, then N = 0 at the chosen rate (the standard arm there is a sweep run)
    assert trained == 6, lines
    assert why == "every planned run is in the ledger"
    ledger = runs.ledger
    assert len(ledger) == 6
    entry = next(e for e in ledger if e.data["arm"] == "standard" and e.metrics)
    assert entry.status == "trained" and 0 <= entry.miou <= 1
    for key in ("miou", "iou", "boundary_iou", "pixel_accuracy", "mean_class_accuracy", "confusion",
                "thin_class_miou"):
        assert key in entry.test and key in entry.metrics, key
    assert entry.test["thin_classes"] == ["pole", "wire"]
    assert entry.machine["cpu"] and entry.data["provenance"]["versions"]["torch"]
    assert len(entry.frame("steps")) == 2 and {"loss", "lr"} <= set(entry.frame("steps").columns)
    assert len(entry.per_image()) == 3  # every test scene scored on its own
    for i in entry.examples + entry.failures:
        assert entry.prediction(i).shape == (64, 64)
    size = sum(p.stat().st_size for p in entry.dir.rglob("*") if p.is_file())
    assert size < 1_000_000
    chosen = runs.plan().chosen_lr
    standard = [e for e in ledger if e.data["arm"] == "standard" and e.config.optim.lr == chosen]
    assert all("test_multiscale" in e.data["metrics"] for e in standard)
    # the standard model's entries keep what its blocks did on two shown test images
    inside = entry.inside()
    assert [im["index"] for im in inside["images"]] == entry.examples[:2]
    assert len(inside["blocks"]) == 4 and inside["images"][0]["prediction"].shape == (64, 64)
    assert all(e.inside() is None for e in ledger if e.data["arm"] == "N = 0")

    again, why = runs.fill(say=lines.append)
    assert again == 0
    rows = runs.status()
    assert rows[-1] == {"notebook": "all (distinct runs)", "done": 6, "total": 6, "waiting": 0, "waiting_for_pilot": 0,
                        "seconds_left": 0}
    victim = next(e.run_id for e in ledger if e.data["arm"] == "N = 0")
    ledger.remove(victim)
    left = runs.status()[-1]
    assert left["done"] == 5 and left["seconds_left"] > 0  # timed from this machine's entries
    once_more, _ = runs.fill(say=lines.append)
    assert once_more == 1 and victim in ledger


@pytest.mark.slow
def test_a_diverged_run_is_an_entry_and_a_failure_not_a_zero(tmp_path):
    hot = {**TINY, "lrs": [1e6], "seeds": [0, 1]}
    profile = _profile(tmp_path, hot)
    runs = StudyRuns(profile, "synthetic", "cpu", Ledger(tmp_path / "runs"), {"nb": {"arms": {"standard": {}}}},
                     root=ROOT, checkpoints=tmp_path / "ck")
    runs.fill(say=lambda _: None)
    entries = list(runs.ledger)
    assert entries and all(e.diverged and e.diverged_at >= 1 for e in entries)
    assert all(e.miou != e.miou for e in entries)  # NaN, not 0
    study = SimpleNamespace(name="nb", profile=str(profile.path), device="cpu", dataset="synthetic",
                            synthetic=True, profile_name="tiny", hardware="cpu")
    records = _experiments(study, runs).records({"standard": entries})
    assert records["diverged"].all() and records["test mIoU"].isna().all()
    table = report.ablation_table(records.assign(variant="standard"), baseline="standard")
    assert table["diverged runs [95% CI]"].iloc[0] == "2 of 2 [16%, 100%]"


def _experiments(study, runs):
    exp = Experiments.__new__(Experiments)
    exp.study, exp.runs, exp.ledger, exp.design = study, runs, runs.ledger, runs.design
    exp.arms, exp.sweeps, exp.base, exp._plan, exp._macs = {"standard": {}}, [], runs.base, None, {}
    return exp


def test_missing_runs_name_the_command(tmp_path):
    runs = _runs(tmp_path)
    study = SimpleNamespace(name="nb", profile="tiny", device="cpu", dataset="synthetic", synthetic=True)
    exp = _experiments(study, runs)
    exp.profile = SimpleNamespace(name="tiny")
    with pytest.raises(MissingRuns, match="refinenet study run --profile tiny"):
        exp.chosen_lr()


class FakePlan:
    """A plan whose missing runs are a given list (fill only asks for those)."""

    def __init__(self, todo):
        self.todo = todo

    def missing(self):
        return self.todo


def test_fill_stops_at_a_run_boundary_within_the_budget(tmp_path):
    made = []
    now = [0.0]

    todo = [PlannedRun("standard", s, 0.01, {}, run_id=f"r{s}") for s in range(3)]

    def record(run):
        made.append(run.run_id)
        todo.remove(run)
        now[0] += 55.0  # each run takes 55 s
        return SimpleNamespace(diverged=False, miou=0.5, summary={"train_seconds": 1.0})

    trained, why = fill(lambda: FakePlan(list(todo)), record, budget_s=100.0,
                        estimate=lambda r: 60.0, say=lambda _: None, clock=lambda: now[0])
    assert trained == 1 and made == ["r0"]
    assert why.startswith("time budget: the next run (standard | lr 0.01 | seed 1) needs about")


def test_fill_takes_a_later_run_that_fits_when_the_next_does_not(tmp_path):
    """At the end of a budget a shorter run later in the plan order trains, rather than none."""
    made = []
    now = [0.0]
    need = {"r0": 60.0, "r1": 60.0, "r2": 30.0, "r3": 60.0}
    todo = [PlannedRun("standard", s, 0.01, {}, run_id=f"r{s}") for s in range(4)]

    def record(run):
        made.append(run.run_id)
        todo.remove(run)
        now[0] += need[run.run_id] - 5.0
        return SimpleNamespace(diverged=False, miou=0.5, summary={"train_seconds": 1.0})

    trained, why = fill(lambda: FakePlan(list(todo)), record, budget_s=100.0,
                        estimate=lambda r: need[r.run_id], say=lambda _: None, clock=lambda: now[0])
    assert made == ["r0", "r2"]  # r1 (60 s) did not fit the 45 s left after r0; r2 (30 s) did
    assert trained == 2 and [r.run_id for r in todo] == ["r1", "r3"]
    assert why.startswith("time budget: the next run (standard | lr 0.01 | seed 1) needs about 60 s")
    assert why.endswith("and no later run fits; 2 runs to go")


def test_ledger_write_is_atomic(tmp_path, monkeypatch):
    ledger = Ledger(tmp_path / "runs")
    history = tmp_path / "h"
    history.mkdir()
    (history / "steps.csv").write_text("step,epoch,loss,lr,lr_backbone,images_per_s,elapsed_s\n1,0,2.0,0.1,0.1,5.0,1.0\n")
    ledger.write("abc", config_yaml="seed: 0\n", entry={"run_id": "abc", "status": "trained", "x": float("nan")},
                 history_dir=history)
    assert "abc" in ledger and json.loads((tmp_path / "runs/abc/entry.json").read_text())["x"] is None
    assert (tmp_path / "runs/abc/history/steps.csv").read_text().splitlines()[0] == "step,epoch,loss,lr,lr_backbone,elapsed_s"

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("refinenet.study.ledger._write_csv", broken)
    with pytest.raises(OSError):
        ledger.write("def", config_yaml="", entry={}, history_dir=history)
    assert "def" not in ledger and not list((tmp_path / "runs").glob(".def.tmp-*"))


def test_clean_removes_dead_writes_but_not_one_in_progress(tmp_path):
    """A notebook execution cleans the ledger while training runs may be writing entries."""
    import os
    import time

    ledger = Ledger(tmp_path / "runs")
    dead = tmp_path / "runs" / ".abc.tmp-1"
    live = tmp_path / "runs" / ".def.tmp-2"
    for folder in (dead, live):
        folder.mkdir(parents=True)
        (folder / "entry.json").write_text("{}")
    old = time.time() - 3600
    os.utime(dead, (old, old))
    assert ledger.clean() == 1
    assert not dead.exists() and live.is_dir()
    assert ledger.clean(older_than_s=0) == 1 and not live.exists()


def test_failure_interval_is_clopper_pearson():
    low, high = stats.failure_interval(0, 3)
    assert low == 0 and high == pytest.approx(0.7076, abs=1e-4)
    assert report.failure_text(1, 3) == "1 of 3 [1%, 91%]"


@pytest.mark.slow
def test_papermill_reexecution_from_the_ledger_reproduces_the_tables_and_trains_nothing(tmp_path):
    """An ablation notebook, run by the runner, then re-executed by hand with papermill from
    its parameters.yaml (as the README says): byte-identical tables, no training (the
    checkpoints are gone; the ledger is untouched)."""
    import filecmp
    import shutil

    import papermill

    from refinenet.study.runner import _kernel_of_this_python, convert, run_study

    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    (root / "refinenet").symlink_to(ROOT / "refinenet")
    shutil.copy(ROOT / "notebooks" / "05_ablation_cascade.py", root / "notebooks")
    design = {**TINY, "lrs": [0.01], "test_scales": [1.0]}
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump({"name": "tiny", "common": {"dataset": "synthetic"}, "study": design,
                                    "notebooks": {"05_ablation_cascade": {}}}))
    profile = load_profile(path)
    results = run_study(profile, root=root, echo=None)
    assert [r.status for r in results] == ["ok"]
    out = root / "results" / "tiny" / "05_ablation_cascade"
    ledger = root / "results" / "tiny" / "runs"
    before = {p.relative_to(ledger): p.read_bytes() for p in ledger.rglob("*") if p.is_file()}
    assert len(list(ledger.iterdir())) == 8  # 4 arms x 2 seeds
    shutil.rmtree(root / "runs")  # no checkpoint: anything that needed training would fail

    params = yaml.safe_load((out / "parameters.yaml").read_text())
    nb = convert(root / "notebooks" / "05_ablation_cascade.py")
    source = tmp_path / "05.ipynb"
    import nbformat

    nbformat.write(nb, source)
    with _kernel_of_this_python():
        papermill.execute_notebook(str(source), str(tmp_path / "05-rerun.ipynb"), cwd=str(root),
                                   kernel_name="python3", progress_bar=False,
                                   parameters={**params, "output_dir": str(tmp_path / "rerun")})
    tables = sorted((out / "tables").glob("*.csv"))
    assert len(tables) >= 4
    for table in tables:
        assert filecmp.cmp(table, tmp_path / "rerun" / "tables" / table.name, shallow=False), table.name
    assert not (root / "runs").exists()
    after = {p.relative_to(ledger): p.read_bytes() for p in ledger.rglob("*") if p.is_file()}
    assert after == before


def test_an_arm_identical_to_another_is_the_same_runs(tmp_path):
    # The tiny profile's loss is the plain cross-entropy already: the "plain" arm is the
    # standard model, so its runs are the standard runs at the chosen rate, not missing ones.
    runs = _runs(tmp_path, arms={"standard": {}, "plain": {"loss.class_weights": "none"}})

    class Complete:  # a ledger holding every run, all equally good
        def get(self, run_id):
            return SimpleNamespace(diverged=False, miou=0.5)

        def __contains__(self, run_id):
            return True

    plan = make_plan(runs.design, runs.wants, runs.base, Complete())
    assert plan.chosen_lr == 0.01  # ties: the smaller rate
    plain = [r for r in plan.runs if r.is_arm("plain")]
    assert [(r.arm, r.seed, r.config.optim.lr) for r in plain] == [("standard", 0, 0.01), ("standard", 1, 0.01)]
    assert len(plan.runs) == 4  # the sweep, nothing more


def test_fill_keeps_jobs_runs_training_and_lets_the_others_finish_after_a_failure():
    import threading
    from concurrent.futures import ThreadPoolExecutor

    todo = [PlannedRun("standard", s, 0.01, {}, run_id=f"r{s}") for s in range(5)]
    lock, busy, most = threading.Lock(), [0], [0]

    def work(run):
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        threading.Event().wait({"r2": 0.5, "r3": 0.0}.get(run.run_id, 0.05))  # r3 fails while r2 runs
        with lock:
            busy[0] -= 1
            todo.remove(run)
        if run.run_id == "r3":
            raise RuntimeError("out of memory")
        return SimpleNamespace(diverged=False, miou=0.5, summary={})

    with ThreadPoolExecutor(2) as pool:
        lines = []
        with pytest.raises(RuntimeError, match="out of memory"):
            fill(lambda: FakePlan(list(todo)), None, jobs=2, submit=lambda r: pool.submit(work, r), say=lines.append)
    assert most[0] == 2  # two at once, never more
    # r3 failed; r2, beside it, finished; nothing started after the failure
    assert [r.run_id for r in todo] == ["r4"] and any("FAILED standard | lr 0.01 | seed 3" in line for line in lines)
    with pytest.raises(ValueError, match="submit"):
        fill(lambda: FakePlan([]), None, jobs=2)


@pytest.mark.slow
def test_runs_trained_two_at_once_equal_the_same_runs_trained_alone(tmp_path):
    import torch

    from refinenet.study.training import job_threads

    runs = _runs(tmp_path, arms={"standard": {}})
    runs.jobs = 2
    trained, why = runs.fill(say=lambda _: None)
    assert trained == 4 and why == "every planned run is in the ledger"
    entries = {e.run_id: e for e in runs.ledger}
    assert {e.machine["threads"] for e in entries.values()} == {job_threads(2)}
    # each run is deterministic for its own settings: retrained alone, in this process, with the
    # worker's thread count, it gives the very same scores
    victim = sorted(entries)[0]
    before = entries[victim].data["metrics"]
    runs.ledger.remove(victim)
    runs.jobs = 1
    threads = torch.get_num_threads()
    torch.set_num_threads(job_threads(2))
    try:
        assert runs.fill(say=lambda _: None)[0] == 1
    finally:
        torch.set_num_threads(threads)
    assert runs.ledger.get(victim).data["metrics"]["val"] == before["val"]


def test_the_pilot_trains_first_and_keeps_its_run_ids_when_the_recipe_is_adopted(tmp_path):
    from refinenet.study.plan import PILOT

    pilot_base = {"schedule.steps": 6, "eval.every": 2, "optim.name": "sgd", "schedule.name": "poly"}
    pilot = {"sgd": {"optim.lr": 0.03}, "adamw cosine": {"optim.name": "adamw", "optim.lr": 0.001, "schedule.name": "cosine"}}
    wants = {"nb": {"arms": {"standard": {}}, "pilot": pilot, "pilot_base": pilot_base, "pilot_seeds": [0, 1]}}
    runs = StudyRuns(_profile(tmp_path), "synthetic", "cpu", Ledger(tmp_path / "runs"), wants, root=ROOT,
                     checkpoints=tmp_path / "ck")
    plan = runs.plan()
    first = plan.runs[:4]
    assert [(r.arm, r.seed) for r in first] == [
        (PILOT + "sgd", 0), (PILOT + "sgd", 1), (PILOT + "adamw cosine", 0), (PILOT + "adamw cosine", 1)]
    assert all(r.ready for r in first)  # no wait for the sweep: each recipe has its own rate
    adamw = first[2].config
    assert (adamw.optim.name, adamw.optim.lr, adamw.schedule.name, adamw.schedule.steps) == ("adamw", 0.001, "cosine", 6)
    # the profile adopts the AdamW recipe: the pilot's runs keep their ids (pilot_base names
    # every setting the pilot varies), so the ledger's pilot entries stay valid
    adopted = {**TINY, "train": {**TINY["train"], "optim": {"name": "adamw"}, "schedule": {"name": "cosine", "steps": 6,
                                                                                            "warmup_steps": 0}}}
    again = StudyRuns(_profile(tmp_path, adopted), "synthetic", "cpu", Ledger(tmp_path / "runs"), wants, root=ROOT,
                      checkpoints=tmp_path / "ck").plan()
    assert [r.run_id for r in again.runs[:4]] == [r.run_id for r in first]
    # until the profile says which recipe it adopted, nothing but the pilot trains
    assert [r.waits_for for r in plan.runs[4:]] == ["the pilot's choice (the profile's study.adopted)"] * len(plan.runs[4:])
    assert {r.arm for r in plan.missing() if r.ready} == {PILOT + "sgd", PILOT + "adamw cosine"}

    def plan_adopting(name, train=adopted["train"]):
        design = {**adopted, "train": train, "adopted": name}
        return StudyRuns(_profile(tmp_path, design), "synthetic", "cpu", Ledger(tmp_path / "runs"), wants, root=ROOT,
                         checkpoints=tmp_path / "ck").plan()

    assert all(r.waits_for is None for r in plan_adopting("adamw cosine").runs)
    with pytest.raises(ValueError, match=r"differs: optim.name: 'adamw' in the profile, 'sgd' in the recipe"):
        plan_adopting("sgd")
    with pytest.raises(ValueError, match="not a pilot recipe"):
        plan_adopting("lbfgs")
    with pytest.raises(ValueError, match="must set optim.lr"):
        StudyRuns(_profile(tmp_path), "synthetic", "cpu", Ledger(tmp_path / "runs"),
                  {"nb": {"pilot": {"x": {"schedule.steps": 4}}}}, root=ROOT, checkpoints=tmp_path / "ck").plan()


def test_an_adopted_pilot_run_that_is_also_a_grid_run_counts_in_the_grid_at_its_rate(tmp_path):
    """The adopted recipe's pilot run with the grid's settings is the grid's run (one id):
    planned once, it is the standard model's run at that rate, so the sweep finds every seed."""
    from refinenet.study.plan import PILOT

    wants = {"nb": {"arms": {"standard": {}}, "sweeps": ["standard"], "pilot": {"same": {"optim.lr": 0.01}},
                    "pilot_base": {}, "pilot_seeds": [0]}}
    plan = StudyRuns(_profile(tmp_path, {**TINY, "adopted": "same"}), "synthetic", "cpu",
                     Ledger(tmp_path / "runs"), wants, root=ROOT, checkpoints=tmp_path / "ck").plan()
    ids = [r.run_id for r in plan.runs if r.run_id]
    assert len(ids) == len(set(ids))
    shared = plan.runs[0]
    assert shared.arm == PILOT + "same" and shared.is_arm("standard") and shared.lr == 0.01
    grid = sorted((r.lr, r.seed) for r in plan.runs if r.is_arm("standard") and r.lr is not None)
    assert grid == [(0.01, 0), (0.01, 1), (0.02, 0), (0.02, 1)]


def test_a_pilot_recipe_may_train_more_seeds_of_its_own(tmp_path):
    """A recipe's "seeds" adds seeds for it alone, and changes no run id of the others or of
    its own first seed (it is not a config key)."""
    from refinenet.study.plan import PILOT

    base = {"schedule.steps": 6, "eval.every": 2}
    one = {"a": {"optim.lr": 0.03}, "b": {"optim.lr": 0.01}}
    more = {"a": {"optim.lr": 0.03, "seeds": [1, 2]}, "b": {"optim.lr": 0.01}}

    def pilot_runs(pilot):
        wants = {"nb": {"pilot": pilot, "pilot_base": base, "pilot_seeds": [0]}}
        plan = StudyRuns(_profile(tmp_path), "synthetic", "cpu", Ledger(tmp_path / "runs"), wants, root=ROOT,
                         checkpoints=tmp_path / "ck").plan()
        return {(r.arm, r.seed): r.run_id for r in plan.runs if r.arm.startswith(PILOT)}

    before, after = pilot_runs(one), pilot_runs(more)
    assert sorted(after) == [(PILOT + "a", 0), (PILOT + "a", 1), (PILOT + "a", 2), (PILOT + "b", 0)]
    assert {k: after[k] for k in before} == before
    with pytest.raises(ValueError, match="seeds must be a list of ints"):
        pilot_runs({"a": {"optim.lr": 0.03, "seeds": 3}})


def test_the_grid_trains_its_own_seeds_and_the_chosen_rate_every_seed(tmp_path):
    """sweep_seeds: the grid's rates train 2 of the 3 seeds; the chosen rate waits for the
    grid and then trains all 3, for the swept arms and the others alike."""
    design = {**TINY, "seeds": [0, 1, 2], "sweep_seeds": [0, 1]}
    profile = _profile(tmp_path, design)
    runs = StudyRuns(profile, "synthetic", "cpu", Ledger(tmp_path / "results" / "runs"),
                     {"nb": {"arms": ARMS, "sweeps": ["standard", "N = 0"]}}, root=ROOT, checkpoints=tmp_path / "c")
    plan = runs.plan()
    ready = {(r.arm, r.lr, r.seed) for r in plan.runs if r.ready}
    lrs = [float(x) for x in design["lrs"]]
    assert ready == {(a, lr, s) for a in ("standard", "N = 0") for lr in lrs for s in (0, 1)}
    waiting = {(r.arm, r.seed) for r in plan.runs if not r.ready}
    assert waiting == {(a, s) for a in ARMS for s in (0, 1, 2)}
    # right after its grid, the standard model's seeds at the chosen rate (not known yet)
    assert [(r.arm, r.lr, r.seed) for r in plan.runs][4:7] == [("standard", None, s) for s in (0, 1, 2)]
    with pytest.raises(ValueError, match=r"sweep_seeds must be some of seeds \[0, 1, 2\], got \[3\]"):
        _profile(tmp_path, {**TINY, "seeds": [0, 1, 2], "sweep_seeds": [3]})


def test_arm_rate_keeps_the_common_rate_within_noise():
    run = lambda miou, diverged=False: SimpleNamespace(diverged=diverged, miou=miou)  # noqa: E731
    close = {0.01: [run(0.50), run(0.54)], 0.02: [run(0.55), run(0.56)]}
    assert arm_rate(0.01, close) == 0.01  # 0.555 vs 0.52: within the spread 0.04
    far = {0.01: [run(0.50), run(0.51)], 0.02: [run(0.55), run(0.56)]}
    assert arm_rate(0.01, far) == 0.02  # 0.035 above: more than both spreads (0.01)
    diverged = {0.01: [run(0.50), run(0.52)], 0.02: [run(0.70), run(float("nan"), True)]}
    assert arm_rate(0.01, diverged) == 0.01  # counted as 0: mean 0.35


def test_a_swept_arm_trains_at_its_own_rate_when_the_common_one_is_not_within_noise(tmp_path):
    """N = 0 scores far better at 0.02 than at the standard's 0.01: its study runs use 0.02,
    and Experiments-style lookups (in_study) find them; the standard arm keeps 0.01."""
    runs = _runs(tmp_path, sweeps=("standard", "N = 0"))
    n0 = {r.run_id for r in runs.plan().runs if r.arm == "N = 0" and r.lr == 0.02}

    class Ledger:
        def get(self, run_id):
            return SimpleNamespace(diverged=False, miou=0.8 if run_id in n0 else 0.5)

        def __contains__(self, run_id):
            return True

    plan = make_plan(runs.design, runs.wants, runs.base, Ledger())
    assert plan.chosen_lr == 0.01 and plan.rates == {"standard": 0.01, "N = 0": 0.02}
    # the standard sweep, then the standard model's other seeds, then the other sweep
    order = [(r.arm, r.lr) for r in plan.runs]
    assert order[:4] == [("standard", 0.01), ("standard", 0.01), ("standard", 0.02), ("standard", 0.02)]
    assert order[4] == ("N = 0", 0.01)
    study = {a: sorted((r.seed, r.config.optim.lr) for r in plan.runs if a in r.in_study) for a in ARMS}
    assert study == {"standard": [(0, 0.01), (1, 0.01)], "N = 0": [(0, 0.02), (1, 0.02)]}


def test_run_ids_do_not_depend_on_which_packs_a_machine_already_has(tmp_path, monkeypatch):
    """A run id fingerprints the data it reads, and CamVid from a pack fingerprints apart from
    its PNGs: the study packs every size its runs train at before it computes an id, so a pilot
    recipe at its own size gets the same id in a fresh cache as where that pack was made by hand."""
    from fakes import fake_camvid
    from refinenet.data.camvid import pack_camvid
    from refinenet.study.plan import planned_sizes

    fake_camvid(tmp_path / "data" / "camvid", size=(64, 96))
    monkeypatch.setenv("REFINENET_DATA", str(tmp_path / "data"))
    profile = _profile(tmp_path, {**TINY, "train": {**TINY["train"], "data": {**TINY["train"]["data"], "size": [32, 48]}}})
    wants = {"03_training": {"pilot_base": {"data.size": [32, 48]}, "pilot_seeds": [0],
                             "pilot": {"small": {"optim.lr": 0.01}, "big": {"optim.lr": 0.01, "data.size": [64, 96]}}}}
    assert planned_sizes(wants, profile.study.base("camvid", "cpu", out_dir="x")) == [(32, 48), (64, 96)]

    def ids(cache: Path) -> dict[str, str]:
        monkeypatch.setenv("REFINENET_CACHE", str(cache))
        monkeypatch.setattr("refinenet.data.camvid.cache_dirs", lambda root=None: [cache])
        runs = StudyRuns(profile, "camvid", "cpu", Ledger(tmp_path / "runs"), wants, root=ROOT,
                         checkpoints=tmp_path / "ck")
        return {r.arm: r.run_id for r in runs.plan().runs}

    fresh = ids(tmp_path / "fresh")
    assert sorted(p.name for p in (tmp_path / "fresh").glob("*.pack")) == sorted(
        f"camvid-{s}-{h}x{w}.pack" for s in ("train", "val", "test") for h, w in ((32, 48), (64, 96)))
    by_hand = tmp_path / "by-hand"
    for size in ((32, 48), (64, 96)):
        pack_camvid(size, out=by_hand, progress=False)
    assert ids(by_hand) == fresh and len(set(fresh.values())) == 2


def test_step_macs_counts_the_batch_and_every_backbone():
    from refinenet.engine import TrainConfig
    from refinenet.study.cost import step_macs

    one = TrainConfig.from_dict({"model": {"backbone": "resnet18", "widths": [64, 32, 32, 32]},
                                 "data": {"size": [180, 240], "crop_size": [128, 160], "batch_size": 8}})
    assert step_macs(one.replace({"data.batch_size": 4})) * 2 == step_macs(one)
    assert step_macs(one.replace({"data.crop_size": None})) > step_macs(one)  # whole 180 x 240 images
    twice = step_macs(one.replace({"model.scales": [1.0, 1.0]}))  # the capacity control
    assert 1.8 < twice / step_macs(one) < 2.0  # two backbones and paths, the rest shared


def test_an_arm_not_trained_here_is_timed_from_the_others_scaled_by_its_cost():
    from refinenet.study.plan import estimate_seconds

    def entry(arm: str, per_step: float, work: float):
        return SimpleNamespace(diverged=False, machine={"cpu": "x", "device": "cpu", "threads": 1},
                               summary={"seconds_per_step": per_step}, data={"arm": arm, "score_seconds": 10.0},
                               config=work)

    entries = [entry("standard", 0.4, 1.0), entry("standard", 0.5, 1.0), entry("N = 0", 0.3, 0.75)]
    new = PlannedRun("two backbones", 0, 0.001, {}, [])
    new.config = 2.0  # twice the standard model's work per step
    cost = float  # a config's work per step (here the config is that number)
    # 0.4 and 0.5 s at cost 1, 0.3 s at cost 0.75: scaled to cost 2, 0.8, 1.0 and 0.8 s per step
    assert estimate_seconds(new, entries, "x", "cpu", 100, threads=1, cost=cost) == pytest.approx(100 * 0.8 + 20.0)
    assert estimate_seconds(new, entries, "x", "cpu", 100, threads=1) == pytest.approx(100 * 0.4 + 10.0)  # unscaled
    # an arm with entries of its own is timed from them alone, unscaled
    known = PlannedRun("N = 0", 0, 0.001, {}, [])
    known.config = 0.75
    assert estimate_seconds(known, entries, "x", "cpu", 100, threads=1, cost=cost) == pytest.approx(100 * 0.3 + 10.0)
    assert estimate_seconds(new, entries, "other cpu", "cpu", 100, threads=1, cost=cost) is None
