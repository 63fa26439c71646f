"""The training side of a study: its plan over the ledger, filling it, and its state.

:class:`StudyRuns` ties a profile (its design and its notebooks' arms) to a data set, a device,
the ledger (``results/<name>/runs/``) and the checkpoint folder (``runs/<name>/``, outside git,
where an interrupted run keeps its resume point).
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from .cost import step_macs
from .design import STANDARD
from .ledger import Ledger
from .plan import Plan, PlannedRun, estimate_seconds, fill, make_plan, planned_sizes

__all__ = ["StudyRuns", "default_jobs", "job_threads", "run_jobs"]


class StudyRuns:
    """The runs of ``profile``'s notebooks (``wants``: ``{notebook: its parameters}``)."""

    def __init__(
        self,
        profile: Any,
        dataset: str,
        device: str,
        ledger: Ledger,
        wants: Mapping[str, Mapping[str, Any]],
        *,
        root: Path,
        checkpoints: Path,
        jobs: int = 1,
    ) -> None:
        self.profile, self.dataset, self.device, self.ledger = profile, dataset, device, ledger
        self.wants, self.root = dict(wants), Path(root)
        self.design = profile.study
        self.base = self.design.base(dataset, device, out_dir=str(checkpoints))
        self._retrain: set[str] = set()
        self._prepared = False
        if jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        self.jobs = jobs  # runs trained at once (see run_jobs)

    def plan(self) -> Plan:
        self.prepare_data()  # before any run id: the ids fingerprint the data as trained on
        return make_plan(self.design, self.wants, self.base, self.ledger)

    # -- data --------------------------------------------------------------------------------

    def prepare_data(self, say: Callable[[str], None] | None = print) -> None:
        """Pack CamVid once at every size the study's runs train at (:func:`planned_sizes`)
        where no pack exists: the study always trains and scores from the packs, so its data
        fingerprints (and run ids) are the same on every machine that builds or receives them."""
        if self._prepared or self.dataset != "camvid":
            return
        from ..data import CamVid, pack_camvid

        for size in planned_sizes(self.wants, self.base):
            missing = []
            for split in ("train", "val", "test"):
                try:
                    CamVid(split=split, size=size, packed=True)
                except FileNotFoundError:
                    missing.append(split)
            if missing:
                paths = pack_camvid(size, splits=tuple(missing), progress=False)
                if say is not None:
                    shown = "native size" if size is None else f"{size[0]} x {size[1]}"
                    say(f"study: packed CamVid {', '.join(missing)} at {shown} into {paths[0].parent} (once)")
        self._prepared = True

    # -- training ----------------------------------------------------------------------------

    def forget(self, which: Iterable[str]) -> list[str]:
        """Remove the entries of ``which`` (run ids, notebook names or ``all``) so that they
        are trained again, from scratch. Returns the run ids removed."""
        which = [w.strip() for item in which for w in str(item).split(",") if w.strip()]
        plan = self.plan()
        chosen = []
        for r in plan.runs:
            if not r.ready:
                continue
            if "all" in which or r.run_id in which or any(n in which or n[:2] == w.zfill(2) for n in r.notebooks for w in which):
                chosen.append(r.run_id)
        for run_id in chosen:
            self.ledger.remove(run_id)
        self._retrain.update(chosen)
        return chosen

    def record(self, run: PlannedRun):
        """Train and record ``run`` in this process (the same job a worker gets)."""
        entry = _record_job(self._job(run))
        self._retrain.discard(run.run_id)
        return entry

    def estimate(self, run: PlannedRun) -> float | None:
        """Seconds ``run`` needs here: the steps it has left (a run with a checkpoint resumes
        from it) at the pace of this machine's entries (:func:`~refinenet.study.plan.estimate_seconds`)."""
        from ..environment import cpu_name

        steps = (run.config or self.base).schedule.steps
        steps = max(0, steps - self._resumes_at(run))
        return estimate_seconds(run, list(self.ledger), cpu_name(), self.device, steps,
                                threads=job_threads(self.jobs), cost=step_macs)

    def _resumes_at(self, run: PlannedRun) -> int:
        from ..engine.checkpoint import checkpoint_step
        from ..engine.identity import run_dir

        if run.config is None or run.run_id in self._retrain or run.run_id in self.ledger:
            return 0
        return checkpoint_step(run_dir(run.config) / "checkpoint.pt")

    def fill(self, *, budget_s: float | None = None, say: Callable[[str], None] = print) -> tuple[int, str]:
        """Train the missing runs in plan order within ``budget_s`` seconds, ``self.jobs`` at a
        time (see :func:`refinenet.study.plan.fill` and :func:`run_jobs`)."""
        started = time.monotonic()
        self.add_multiscale(say)  # left by an earlier sitting that stopped after the sweep
        jobs = self.jobs
        if jobs == 1:
            def record(run: PlannedRun):
                entry = self.record(run)
                self.add_multiscale(say)  # once the sweep is complete, within the same budget
                return entry

            return fill(self.plan, record, budget_s=budget_s, estimate=self.estimate, say=say, started=started)
        with run_jobs(jobs) as pool:
            def submit(run: PlannedRun) -> Future:
                future = pool.submit(_record_job, self._job(run))
                self._retrain.discard(run.run_id)
                return future

            def make() -> Plan:
                self.add_multiscale(say)  # in this process, between runs: rare (the chosen rate's standard runs)
                return self.plan()

            return fill(make, None, budget_s=budget_s, estimate=self.estimate, say=say, started=started,
                        jobs=jobs, submit=submit)

    def _job(self, run: PlannedRun) -> dict:
        """What a worker process needs to train and record ``run`` (plain data: it is pickled)."""
        d = self.design
        return {
            "config": run.config.to_dict(), "run_id": run.run_id, "ledger": str(self.ledger.folder),
            "arm": run.arm, "examples": d.examples, "failures": d.failures,
            "test_scales": list(d.test_scales) if run.multiscale else None,
            "retrain": run.run_id in self._retrain, "root": str(self.root),
            # the standard model's entries keep what its blocks do (refinenet.study.inside)
            "inside": run.arm == STANDARD,
        }

    def add_multiscale(self, say: Callable[[str], None] = print) -> int:
        """Score the standard arm's runs at the chosen rate with the multi-scale (+ flip) test
        too. They are sweep runs, recorded before the rate was chosen, so their entries get
        it afterwards, from their checkpoints. Returns how many entries were amended."""
        from ..engine.identity import run_dir
        from .record import multiscale_test

        amended = 0
        for r in self.plan().runs:
            entry = self.ledger.get(r.run_id) if r.ready else None
            if not r.multiscale or entry is None or entry.diverged or entry.test_multiscale:
                continue
            if not (run_dir(r.config) / "checkpoint.pt").is_file():
                say(f"study: {r.run_id} has no checkpoint here; its multi-scale test waits for a retrain")
                continue
            metrics = multiscale_test(r.config, self.design.test_scales)
            self.ledger.amend(r.run_id, {"metrics": {**entry.data["metrics"], "test_multiscale": metrics}})
            amended += 1
        return amended

    # -- state -------------------------------------------------------------------------------

    def status(self) -> list[dict]:
        """Per notebook: runs done, runs in all, and the time the missing ones need here."""
        plan = self.plan()
        rows = []
        for name in self.wants:
            runs = plan.for_notebook(name)
            if not runs:
                continue
            rows.append(self._row(name, runs))
        rows.append(self._row("all (distinct runs)", plan.runs))
        return rows

    def _row(self, name: str, runs: list[PlannedRun]) -> dict:
        done = [r for r in runs if r.ready and r.run_id in self.ledger]
        todo = [r for r in runs if r not in done]
        times = [self.estimate(r) for r in todo]
        return {
            "notebook": name, "done": len(done), "total": len(runs),
            # runs at the chosen rate wait until the sweep is complete (their rate is unknown),
            # and every run but the pilot's until the profile adopts a pilot recipe
            "waiting": sum(not r.ready for r in todo),
            "waiting_for_pilot": sum(r.waits_for is not None for r in todo),
            # jobs runs train at once: the wall time is about their sum shared out
            "seconds_left": None if any(t is None for t in times) else sum(times) / self.jobs,
        }


def job_threads(jobs: int) -> int:
    """Threads of each of ``jobs`` runs training at once: this machine's cores, shared out."""
    import torch

    return max(1, torch.get_num_threads() // jobs) if jobs > 1 else torch.get_num_threads()


def default_jobs(device: str) -> int:
    """Runs to train at once on ``device``.

    On a CPU of two cores or more, two runs of half the threads each: measured by
    ``refinenet bench --runs`` on a 2-core AMD EPYC (results/bench/cpu-runs.csv, the book's
    performance chapter), two one-thread runs trained more images per second together than one
    two-thread run, because a small model's step leaves threads idle (between operators, in
    the data preparation and the optimiser step). On CUDA one run has the device to itself.
    """
    import os

    return 2 if device == "cpu" and (os.cpu_count() or 1) >= 2 else 1


@contextlib.contextmanager
def run_jobs(jobs: int):
    """A pool of ``jobs`` worker processes, each training one run and then exiting (a fresh
    process per run: no state, no memory carried from one run to the next; Python 3.10, which
    lacks ``max_tasks_per_child``, reuses its workers instead), each with
    :func:`job_threads` threads. Workers are spawned, not forked, so no thread pool or open
    file of this process is inherited.

    When the block is left by an exception (Ctrl-C, or SIGTERM under
    :func:`~refinenet.signals.terminate_as_interrupt`), the workers are interrupted at their
    next step rather than waited for to the end of their runs, and a worker whose parent dies
    interrupts itself (:func:`~refinenet.signals.stop_with_parent`): no worker trains on alone,
    holding its run's lock. An interrupted run resumes from its last checkpoint."""
    import multiprocessing

    threads = job_threads(jobs)
    fresh = {"max_tasks_per_child": 1} if sys.version_info >= (3, 11) else {}  # else workers are reused
    context = multiprocessing.get_context("spawn")
    stop = context.RawValue("b", 0)  # set to 1 on an exception; see refinenet.signals.stop_with_parent
    pool = ProcessPoolExecutor(
        max_workers=jobs, mp_context=context,
        initializer=_job_init, initargs=(threads, stop), **fresh,
    )
    try:
        yield _Jobs(pool)
    except BaseException:
        stop.value = 1
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Jobs:
    """What :func:`run_jobs` yields: ``submit(fn, *args, **kwargs) -> Future``, as the pool's,
    with the worker marked busy while ``fn`` runs (only a busy worker is interrupted)."""

    def __init__(self, pool: ProcessPoolExecutor) -> None:
        self.pool = pool

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        return self.pool.submit(_busy_call, fn, *args, **kwargs)


_busy = threading.Event()  # in a worker: set while it runs a job


def _busy_call(fn: Callable, /, *args: Any, **kwargs: Any) -> Any:
    _busy.set()
    try:
        return fn(*args, **kwargs)
    finally:
        _busy.clear()


def _job_init(threads: int, stop: Any = None) -> None:
    import torch

    from ..signals import stop_with_parent

    torch.set_num_threads(threads)
    if stop is not None:
        stop_with_parent(stop, only_while=_busy)


def _record_job(job: dict):
    """Train and record one run in a worker process (see :meth:`StudyRuns._job`)."""
    from ..engine import TrainConfig
    from .record import record_run

    return record_run(
        TrainConfig.from_dict(job["config"]), job["run_id"], Ledger(job["ledger"]), arm=job["arm"],
        examples=job["examples"], failures=job["failures"], test_scales=job["test_scales"],
        retrain=job["retrain"], root=Path(job["root"]), inside=job.get("inside", False),
    )


def format_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "unknown here (no run timed on this machine yet)"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
