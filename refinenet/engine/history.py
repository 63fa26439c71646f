"""A run's history on disk: per-step and per-epoch CSV, evaluations as JSON lines.

Files in ``<run>/history/``:

- ``steps.csv``: one row per optimisation step: ``step`` (1-based, steps done), ``epoch``,
  ``loss`` (mean over processes), ``lr`` (head), ``lr_backbone``, ``images_per_s`` (training
  throughput over the logging window, all processes), ``elapsed_s`` (training time so far,
  without evaluation and checkpointing);
- ``epochs.csv``: one row per completed pass over the training split;
- ``evals.jsonl``: one JSON object per validation (``step``, ``epoch`` and the metrics of
  :func:`refinenet.engine.evaluate`).

Rows are appended and flushed as they come. On resume, rows past the checkpoint's step are
dropped (rewritten atomically), so a resumed run's history reads as if it never stopped.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from .checkpoint import atomic_write_text

__all__ = ["STEP_COLUMNS", "EPOCH_COLUMNS", "HistoryWriter", "read_history"]

STEP_COLUMNS = ["step", "epoch", "loss", "lr", "lr_backbone", "images_per_s", "elapsed_s"]
EPOCH_COLUMNS = ["epoch", "step", "loss", "images", "seconds", "images_per_s"]


def _num(text: str) -> float | int | None:
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [{k: _num(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line torn by a kill; everything after it is lost anyway
    return rows


def read_history(run_dir: str | Path) -> dict[str, list[dict]]:
    """``{"steps": [...], "epochs": [...], "evals": [...]}``: lists of row dicts."""
    d = Path(run_dir) / "history"
    return {
        "steps": _read_csv(d / "steps.csv"),
        "epochs": _read_csv(d / "epochs.csv"),
        "evals": _read_jsonl(d / "evals.jsonl"),
    }


def _csv_text(columns: list[str], rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


class HistoryWriter:
    """Appends history rows to ``<run>/history``; optionally mirrors scalars to TensorBoard."""

    def __init__(self, run_dir: str | Path, *, tensorboard: bool = False) -> None:
        self.dir = Path(run_dir) / "history"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:  # the tensorboard package is optional
                raise ValueError(
                    "log.tensorboard=true needs the tensorboard package (pip install tensorboard), "
                    "or set log.tensorboard=false"
                ) from err
            self.tb = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
        self._files: dict[str, io.TextIOBase] = {}

    def start(self, resume_step: int) -> dict[str, list[dict]]:
        """Keep only rows up to ``resume_step`` (0 = start afresh); returns the kept rows."""
        kept = read_history(self.dir.parent)
        kept["steps"] = [r for r in kept["steps"] if (r["step"] or 0) <= resume_step]
        kept["epochs"] = [r for r in kept["epochs"] if (r["step"] or 0) <= resume_step]
        kept["evals"] = [r for r in kept["evals"] if r.get("step", 0) <= resume_step]
        atomic_write_text(self.dir / "steps.csv", _csv_text(STEP_COLUMNS, kept["steps"]))
        atomic_write_text(self.dir / "epochs.csv", _csv_text(EPOCH_COLUMNS, kept["epochs"]))
        atomic_write_text(self.dir / "evals.jsonl", "".join(json.dumps(r) + "\n" for r in kept["evals"]))
        for name in ("steps.csv", "epochs.csv", "evals.jsonl"):
            self._files[name] = (self.dir / name).open("a", newline="")
        return kept

    def _append(self, name: str, text: str) -> None:
        f = self._files[name]
        f.write(text)
        f.flush()

    def steps(self, rows: list[dict]) -> None:
        buf = io.StringIO()
        csv.DictWriter(buf, fieldnames=STEP_COLUMNS, extrasaction="ignore", lineterminator="\n").writerows(rows)
        self._append("steps.csv", buf.getvalue())
        if self.tb is not None:
            for r in rows:
                if math.isfinite(r["loss"]):
                    self.tb.add_scalar("train/loss", r["loss"], r["step"])
                self.tb.add_scalar("train/lr", r["lr"], r["step"])

    def epoch(self, row: dict) -> None:
        buf = io.StringIO()
        csv.DictWriter(buf, fieldnames=EPOCH_COLUMNS, extrasaction="ignore", lineterminator="\n").writerow(row)
        self._append("epochs.csv", buf.getvalue())
        if self.tb is not None:
            self.tb.add_scalar("train/epoch_loss", row["loss"], row["step"])

    def eval(self, row: dict) -> None:
        self._append("evals.jsonl", json.dumps(row) + "\n")
        if self.tb is not None:
            for key in ("miou", "pixel_accuracy", "mean_class_accuracy", "boundary_iou"):
                if key in row and row[key] is not None and math.isfinite(row[key]):
                    self.tb.add_scalar(f"val/{key}", row[key], row["step"])

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
        if self.tb is not None:
            self.tb.close()
