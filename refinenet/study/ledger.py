"""The run ledger: every finished training run of a profile, committed with the study.

``results/<profile>/runs/<run-id>/`` holds one finished run (never a checkpoint; about
100 KB)::

    config.yaml            the resolved training config
    entry.json             status, run identity, training time and machine, provenance, and the
                           metrics: val, test on native labels, multi-scale test (standard arm)
    history/steps.csv      per-step loss and learning rate
    history/evals.jsonl    every validation during training
    per_image.csv          test split, one row per image: mIoU, pixel accuracy
    predictions/*.png      indexed PNGs (class index per pixel, the data set's palette) of a
                           fixed set of test images and of the run's worst ones

An entry is written into a temporary folder beside its place and renamed when complete, so a
folder named after a run id is always a whole entry. A run whose loss diverged is an entry too
(``status: diverged``): a failure is a result, counted as such, never scored 0.

The notebooks read trained results only from here (:class:`Entry` offers what they used to
read from a run directory), so they execute in about a minute, anywhere, and papermill
re-execution reproduces their tables byte for byte.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from ..data.files import umask_mode

__all__ = ["Entry", "Ledger", "LEDGER_DIR", "ENTRY_FILE"]

LEDGER_DIR = "runs"
ENTRY_FILE = "entry.json"
# A temporary entry folder this old is a dead write's (Ledger.clean), not one in progress.
STALE_TMP_S = 600.0


@dataclass
class Entry:
    """One finished run of the ledger (read-only)."""

    dir: Path

    @cached_property
    def data(self) -> dict:
        return json.loads((self.dir / ENTRY_FILE).read_text(encoding="utf-8"))

    @cached_property
    def config(self):
        from ..engine import TrainConfig

        return TrainConfig.from_dict(yaml.safe_load((self.dir / "config.yaml").read_text(encoding="utf-8")))

    @property
    def run_id(self) -> str:
        return self.data["run_id"]

    @property
    def status(self) -> str:
        return self.data["status"]

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    @property
    def diverged_at(self) -> int | None:
        return self.data.get("diverged_at")

    # -- what the notebooks read -----------------------------------------------------------

    @property
    def metrics(self) -> dict:
        """Final validation metrics (empty for a diverged run)."""
        return self.data["metrics"].get("val") or {}

    @property
    def test(self) -> dict:
        """Test metrics on the data set's native labels (empty for a diverged run)."""
        return self.data["metrics"].get("test") or {}

    @property
    def test_multiscale(self) -> dict:
        """Multi-scale + flip test metrics (standard arm only; else empty)."""
        return self.data["metrics"].get("test_multiscale") or {}

    @property
    def miou(self) -> float:
        """Final validation mIoU (NaN for a diverged run: it has no model to score)."""
        return float(self.metrics.get("miou", math.nan))

    @property
    def summary(self) -> dict:
        """Training statistics: steps, seconds, images/s, precision, machine."""
        return self.data["train"]

    @property
    def machine(self) -> dict:
        return self.data["machine"]

    def frame(self, kind: str = "steps"):
        """The ``"steps"`` or ``"evals"`` history as a pandas DataFrame."""
        import pandas as pd

        if kind == "steps":
            path = self.dir / "history" / "steps.csv"
            return pd.read_csv(path) if path.is_file() else pd.DataFrame()
        if kind == "evals":
            path = self.dir / "history" / "evals.jsonl"
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
            return pd.DataFrame(rows)
        raise ValueError(f"history kind must be 'steps' or 'evals', got {kind!r}")

    def per_image(self):
        """Test split, one row per image: ``image`` (index), ``name``, ``miou``, ``pixel_accuracy``."""
        import pandas as pd

        return pd.read_csv(self.dir / "per_image.csv")

    def prediction(self, index: int):
        """The stored prediction of test image ``index``: int64 ``(H, W)`` at label size."""
        import numpy as np
        import torch
        from PIL import Image

        path = self.dir / "predictions" / f"test-{index:04d}.png"
        if not path.is_file():
            stored = sorted(p.stem for p in (self.dir / "predictions").glob("test-*.png"))
            raise KeyError(f"run {self.run_id} keeps no prediction of test image {index} (it keeps {stored})")
        return torch.from_numpy(np.array(Image.open(path), dtype=np.int64))

    @property
    def examples(self) -> list[int]:
        return list(self.data.get("artefacts", {}).get("examples", []))

    def inside(self) -> dict | None:
        """What the model's blocks did on two test images (:mod:`refinenet.study.inside`), or
        None: only the standard model's entries keep it."""
        if not (self.dir / "inside").is_dir():
            return None
        from .inside import load

        return load(self.dir / "inside")

    @property
    def failures(self) -> list[int]:
        return list(self.data.get("artefacts", {}).get("failures", []))

    def __repr__(self) -> str:
        state = "diverged" if self.diverged else f"val mIoU {self.miou:.4f}"
        return f"Entry({self.run_id}, {state})"


class Ledger:
    """The entries of one profile: ``results/<profile>/runs/``."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def path(self, run_id: str) -> Path:
        return self.folder / run_id

    def __contains__(self, run_id: str) -> bool:
        return (self.path(run_id) / ENTRY_FILE).is_file()

    def get(self, run_id: str) -> Entry | None:
        return Entry(self.path(run_id)) if run_id in self else None

    def ids(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if (p / ENTRY_FILE).is_file())

    def __iter__(self) -> Iterator[Entry]:
        return (Entry(self.path(i)) for i in self.ids())

    def __len__(self) -> int:
        return len(self.ids())

    def remove(self, run_id: str) -> None:
        """Delete an entry (``--retrain`` replaces it)."""
        if self.path(run_id).is_dir():
            shutil.rmtree(self.path(run_id))

    def write(
        self,
        run_id: str,
        *,
        config_yaml: str,
        entry: dict,
        history_dir: Path | None,
        per_image: list[dict] | None = None,
        predictions: dict[int, Any] | None = None,
        palette: list | None = None,
        inside: dict | None = None,
    ) -> Entry:
        """Write one entry atomically (a temporary folder, renamed when complete).

        ``predictions``: ``{test index: int (H, W) tensor or array of class indices}``, stored
        as indexed PNGs with ``palette`` (void/ignore values are kept as they are).
        ``inside``: what :func:`refinenet.study.inside.capture` kept, saved under ``inside/``.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{run_id}.tmp-", dir=self.folder))
        try:
            os.chmod(tmp, umask_mode(directory=True))  # mkdtemp makes 0700; entries are shared files
            (tmp / "config.yaml").write_text(config_yaml, encoding="utf-8")
            (tmp / ENTRY_FILE).write_text(json.dumps(_finite(entry), indent=1, sort_keys=False) + "\n", encoding="utf-8")
            if history_dir is not None:
                _copy_history(history_dir, tmp / "history")
            if per_image is not None:
                _write_csv(tmp / "per_image.csv", per_image)
            if predictions:
                (tmp / "predictions").mkdir()
                for index, labels in sorted(predictions.items()):
                    _write_indexed_png(tmp / "predictions" / f"test-{index:04d}.png", labels, palette)
            if inside:
                from .inside import save

                save(tmp / "inside", inside)
            final = self.path(run_id)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return Entry(final)

    def amend(self, run_id: str, fields: dict) -> Entry:
        """Replace top-level ``fields`` of an entry's ``entry.json`` (atomically)."""
        path = self.path(run_id) / ENTRY_FILE
        data = json.loads(path.read_text(encoding="utf-8"))
        data.update(fields)
        tmp = path.with_name(f".{ENTRY_FILE}.tmp")
        tmp.write_text(json.dumps(_finite(data), indent=1, sort_keys=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return Entry(self.path(run_id))

    def clean(self, *, older_than_s: float = STALE_TMP_S) -> int:
        """Remove temporary folders left by an interrupted write; returns how many.

        Only those untouched for ``older_than_s`` seconds: another process (a training run
        beside a notebook execution) may be writing one now, and a write takes seconds.
        """
        n = 0
        if self.folder.is_dir():
            now = time.time()
            for p in self.folder.glob(".*.tmp-*"):
                try:
                    if now - p.stat().st_mtime < older_than_s:
                        continue
                except FileNotFoundError:  # renamed into place meanwhile
                    continue
                shutil.rmtree(p, ignore_errors=True)
                n += 1
        return n


# -- files ----------------------------------------------------------------------------------

# The step history columns kept (throughput columns are machine noise, not results).
_STEP_COLUMNS = ("step", "epoch", "loss", "lr", "lr_backbone", "elapsed_s")


def _copy_history(source: Path, dest: Path) -> None:
    dest.mkdir()
    steps = source / "steps.csv"
    if steps.is_file():
        with open(steps, newline="", encoding="utf-8") as f:
            rows = [{k: r[k] for k in _STEP_COLUMNS if k in r} for r in csv.DictReader(f)]
        _write_csv(dest / "steps.csv", rows)
    evals = source / "evals.jsonl"
    if evals.is_file():
        shutil.copyfile(evals, dest / "evals.jsonl")


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        path.write_text("", encoding="utf-8")
        return
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _write_indexed_png(path: Path, labels: Any, palette: list | None) -> None:
    import numpy as np
    from PIL import Image

    array = np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels).astype(np.uint8)
    image = Image.fromarray(array, mode="P")
    flat = [v for colour in (palette or []) for v in colour]
    image.putpalette(flat + [0] * (768 - len(flat)))
    image.save(path, optimize=True)


def _finite(obj: Any) -> Any:
    """JSON has no NaN: NaN and infinities become null (read back as missing)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj
