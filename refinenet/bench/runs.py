"""Whole runs, as the study trains them: images per second from process start to ledger entry.

``refinenet bench --runs`` trains the study's standard model (its profile's recipe, at
``--steps`` steps with ``--evals`` validations) on each *run path* in turn and times the whole
thing: Python and torch start-up, data, every training step, the validations, the test scoring
with its kept predictions and the ledger entry, exactly what ``refinenet study run`` does per
run. A path with ``jobs`` > 1 trains that many runs at once, each in its own process with its
share of the threads (as ``refinenet study run --jobs``); its images per second are all its
runs' training images over the wall time from the first start to the last finish. The ratios
are to the first path, measured in the same command on the same machine.

Each run also reports its val and test mIoU, so the same command checks that a faster path
trains as well (parity: its mean val mIoU within the seed spread of the first path's).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RunPath", "RUN_PATHS", "run_paths", "eval_every", "main"]


@dataclass(frozen=True)
class RunPath:
    """How runs are trained: ``jobs`` at once, config ``overrides``, and which boundary-IoU
    implementation scores them (``per_class``: the earlier one, an erosion per class)."""

    name: str
    jobs: int = 1
    overrides: dict[str, Any] = field(default_factory=dict)
    boundary: str = "label"  # label | per_class
    seeds: tuple[int, ...] = (0,)


#: The paths ``refinenet bench --runs`` measures by default: what the study did before this
#: benchmark (one run of two threads, per-class boundary IoU) first, then each change alone,
#: then together. Seeds fill whole waves of ``jobs`` runs, so no job idles at the end.
RUN_PATHS = {
    "before": RunPath("before: 1 run x 2 threads, boundary per class", boundary="per_class", seeds=(0, 1, 2)),
    "boundary": RunPath("1 run x 2 threads", seeds=(0,)),
    "fused": RunPath("1 run x 2 threads, fused SGD", overrides={"precision.fused_optimizer": True}, seeds=(0,)),
    "compile": RunPath("1 run x 2 threads, torch.compile", overrides={"precision.compile": True}, seeds=(0,)),
    "jobs": RunPath("2 runs x 1 thread", jobs=2, seeds=(0, 1, 2, 3)),
}


def run_paths(
    paths: Sequence[RunPath],
    *,
    profile: str = "cpu",
    steps: int,
    evals: int = 2,
    threads: int | None = None,
    work_dir: str | os.PathLike | None = None,
    progress: Callable[[str], None] = print,
) -> tuple[list[dict], list[dict]]:
    """Time whole runs on every path; returns ``(one row per path, one row per run)``.

    ``threads``: the machine's threads, shared out among a path's jobs (default: torch's).
    Every run trains into a fresh folder under ``work_dir`` (a temporary one by default), so
    nothing is resumed and the study's ledger is never touched.
    """
    import torch

    threads = threads or torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="refinenet-runs-", dir=work_dir) as tmp:
        path_rows, run_rows = [], []
        for i, path in enumerate(paths):
            per_job = max(1, threads // path.jobs)
            specs = [
                {"profile": profile, "steps": steps, "evals": evals, "seed": seed, "threads": per_job,
                 "overrides": path.overrides, "boundary": path.boundary, "out": str(Path(tmp) / f"p{i}-s{seed}")}
                for seed in path.seeds
            ]
            start = time.perf_counter()
            results = _run_all(specs, path.jobs, path.name)
            wall = time.perf_counter() - start
            images = sum(r["images"] for r in results)
            rows = [{"path": path.name, **r} for r in results]
            run_rows += rows
            row = {
                "path": path.name, "jobs": path.jobs, "threads_per_job": per_job, "runs": len(results),
                "steps": steps, "evals": evals, "wall_s": round(wall, 1), "images": images,
                "images_per_s": round(images / wall, 2),
                "val_miou_mean": _mean(r["val_miou"] for r in results),
                "val_miou_std": _std([r["val_miou"] for r in results]),
                **{f"{k}_mean": _mean(r[k] for r in results) for k in ("run_wall_s", "record_s", "train_s", "score_s", "first_step_s")},
            }
            path_rows.append(row)
            progress(
                f"{path.name:<48} {row['images_per_s']:7.2f} images/s over {len(results)} whole runs "
                f"({wall:.0f} s); val mIoU {100 * row['val_miou_mean']:.1f}"
            )
        base = path_rows[0]["images_per_s"]
        for row in path_rows:
            row["speedup"] = round(row["images_per_s"] / base, 3)
        return path_rows, run_rows


def _run_all(specs: list[dict], jobs: int, name: str = "") -> list[dict]:
    """Run the specs ``jobs`` at a time, each in a fresh process; results in spec order.

    A child's stdout and stderr go to temporary files, read once it has exited: a pipe read
    only then would block a child that writes more than the pipe's buffer (training logs).
    ``name``: the run path, for the error messages.
    """
    pending, running, done = list(enumerate(specs)), {}, {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                i, spec = pending.pop(0)
                env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"])}
                cmd = [sys.executable, "-m", "refinenet.bench.runs", json.dumps(spec)]
                out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
                running[i] = (subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True), out, err,
                              time.perf_counter())
            time.sleep(0.2)
            for i, (proc, out, err, began) in list(running.items()):
                if proc.poll() is None:
                    continue
                wall = time.perf_counter() - began
                del running[i]
                stdout, stderr = _read_back(out), _read_back(err)
                where = f"benchmark run of path {name!r}, seed {specs[i]['seed']} ({specs[i]})"
                if proc.returncode != 0:
                    raise RuntimeError(f"{where} failed (exit {proc.returncode}):\n{stderr[-3000:]}")
                lines = stdout.strip().splitlines()
                if not lines:
                    raise RuntimeError(f"{where} printed no result:\n{stderr[-3000:]}")
                done[i] = {**json.loads(lines[-1]), "run_wall_s": round(wall, 2)}
    finally:
        for proc, out, err, _ in running.values():  # only after a failure: stop the others
            proc.kill()
            proc.wait()
            out.close()
            err.close()
    return [done[i] for i in range(len(specs))]


def _read_back(f) -> str:
    """The whole text of a child's output file, which is then closed (and deleted)."""
    with f:
        f.seek(0)
        return f.read()


def eval_every(steps: int, evals: int) -> int:
    """``eval.every`` for ``evals`` validations in a run of ``steps`` steps, the last at the end
    (the trainer always validates at the end; 0: only there). ``ceil``, not ``//``: 500 steps
    with 3 validations validate at 167, 334 and 500, not 166, 332, 498 and 500."""
    return math.ceil(steps / evals) if evals > 1 else 0


def _mean(values) -> float:
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 5) if values else float("nan")


def _std(values: list[float]) -> float:
    if len(values) < 2:
        return float("nan")
    m = sum(values) / len(values)
    return round((sum((v - m) ** 2 for v in values) / (len(values) - 1)) ** 0.5, 5)


# -- one run, in its own process ------------------------------------------------------------


def _per_class_boundary():
    """Boundary IoU as it was computed before (one erosion per class and label map): the same
    counts, slower; measured here so the change's gain is timed in the same command."""
    from ..engine import metrics

    class PerClassBoundaryIoU(metrics.BoundaryIoU):
        def update(self, pred, target):
            import torch

            target = target.to(pred.device)
            if pred.dim() == 2:
                pred, target = pred[None], target[None]
            d = metrics.boundary_dilation(*pred.shape[-2:], self.dilation_ratio)
            valid = torch.ones_like(target, dtype=torch.bool) if self.ignore_index is None else target != self.ignore_index
            for c in range(self.num_classes):
                gt = metrics.boundary_band(target == c, d) & valid
                pr = metrics.boundary_band(pred == c, d) & valid
                self.intersection[c] += (gt & pr).sum().to(self.intersection.device)
                self.union[c] += (gt | pr).sum().to(self.union.device)

    metrics.BoundaryIoU = PerClassBoundaryIoU


def _one_run(spec: dict) -> dict:
    import torch

    torch.set_num_threads(int(spec["threads"]))
    if spec["boundary"] == "per_class":
        _per_class_boundary()
    from ..engine.identity import run_id
    from ..study.ledger import Ledger
    from ..study.profiles import load_profile
    from ..study.record import record_run
    from ..study.runner import find_root, resolve_dataset

    profile = load_profile(spec["profile"])
    design = profile.study
    size = design.base("camvid", "cpu").data.size
    dataset, _ = resolve_dataset(str(profile.common.get("dataset", "auto")), size)
    base = design.base(dataset, "cpu", out_dir=str(Path(spec["out"]) / "checkpoints"))
    steps, evals = int(spec["steps"]), int(spec["evals"])
    overrides = {
        "schedule.steps": steps,
        "schedule.warmup_steps": min(base.schedule.warmup_steps, steps // 10),
        "eval.every": eval_every(steps, evals),
        "checkpoint_every": steps,
        **spec["overrides"],
    }
    cfg = design.config(base, overrides, lr=sorted(design.lrs)[len(design.lrs) // 2], seed=int(spec["seed"]))
    began = time.perf_counter()
    entry = record_run(cfg, run_id(cfg), Ledger(Path(spec["out"]) / "ledger"), arm="standard",
                       examples=design.examples, failures=design.failures, root=find_root())
    record_s = time.perf_counter() - began
    summary, history = entry.summary, entry.frame("steps")
    train_s = summary.get("train_seconds")
    return {
        "seed": spec["seed"],
        "threads": torch.get_num_threads(),
        "images": steps * cfg.data.batch_size,
        "record_s": round(record_s, 2),  # training, validations, test scoring, entry
        "train_s": train_s,  # the training steps alone (data included)
        "score_s": entry.data.get("score_seconds"),
        # the first step holds torch.compile's compilation when the path compiles
        "first_step_s": float(history["elapsed_s"].iloc[0]) if "elapsed_s" in history else None,
        "val_miou": entry.miou,
        "val_boundary_iou": entry.metrics.get("boundary_iou"),
        "test_miou": entry.test.get("miou") if entry.test else None,
        "diverged": entry.diverged,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one whole run of refinenet bench --runs (internal)")
    parser.add_argument("spec", help="JSON: profile, steps, evals, seed, threads, overrides, boundary, out")
    args = parser.parse_args(argv)
    result = _one_run(json.loads(args.spec))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
