"""The training side of a study: its plan over the ledger, filling it, and its state.

:class:`StudyRuns` ties a profile (its design and its notebooks' arms) to a data set, a device,
the ledger (``results/<name>/runs/``) and the checkpoint folder (``runs/<name>/``, outside git,
where an interrupted run keeps its resume point).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .ledger import Ledger
from .plan import Plan, PlannedRun, estimate_seconds, fill, make_plan

__all__ = ["StudyRuns"]


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
    ) -> None:
        self.profile, self.dataset, self.device, self.ledger = profile, dataset, device, ledger
        self.wants, self.root = dict(wants), Path(root)
        self.design = profile.study
        self.base = self.design.base(dataset, device, out_dir=str(checkpoints))
        self._retrain: set[str] = set()
        self._prepared = False

    def plan(self) -> Plan:
        self.prepare_data()  # before any run id: the ids fingerprint the data as trained on
        return make_plan(self.design, self.wants, self.base, self.ledger)

    # -- data --------------------------------------------------------------------------------

    def prepare_data(self, say: Callable[[str], None] | None = print) -> None:
        """Pack CamVid at the study's size once if no pack exists: the study always trains and
        scores from the pack, so its data fingerprint is the same on every machine that
        receives that pack."""
        if self._prepared or self.dataset != "camvid":
            return
        from ..data import CamVid, pack_camvid

        size = self.base.data.size
        missing = []
        for split in ("train", "val", "test"):
            try:
                CamVid(split=split, size=size, packed=True)
            except FileNotFoundError:
                missing.append(split)
        if missing:
            paths = pack_camvid(size, splits=tuple(missing), progress=False)
            if say is not None:
                say(f"study: packed CamVid {', '.join(missing)} into {paths[0].parent} (once)")
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
        from .record import record_run

        d = self.design
        entry = record_run(
            run.config,
            run.run_id,
            self.ledger,
            arm=run.arm,
            examples=d.examples,
            failures=d.failures,
            test_scales=d.test_scales if run.multiscale else None,
            retrain=run.run_id in self._retrain,
            root=self.root,
        )
        self._retrain.discard(run.run_id)
        return entry

    def estimate(self, run: PlannedRun) -> float | None:
        from ..environment import cpu_name

        steps = (run.config or self.base).schedule.steps
        return estimate_seconds(run, list(self.ledger), cpu_name(), self.device, steps)

    def fill(self, *, budget_s: float | None = None, say: Callable[[str], None] = print) -> tuple[int, str]:
        """Train the missing runs in plan order within ``budget_s`` seconds (see
        :func:`refinenet.study.plan.fill`)."""
        started = time.monotonic()
        self.add_multiscale(say)  # left by an earlier sitting that stopped after the sweep

        def record(run: PlannedRun):
            entry = self.record(run)
            self.add_multiscale(say)  # once the sweep is complete, within the same budget
            return entry

        return fill(self.plan, record, budget_s=budget_s, estimate=self.estimate, say=say, started=started)

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
            # runs at the chosen rate wait until the sweep is complete (their rate is unknown)
            "waiting": sum(not r.ready for r in todo),
            "seconds_left": None if any(t is None for t in times) else sum(times),
        }


def format_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "unknown here (no run timed on this machine yet)"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
