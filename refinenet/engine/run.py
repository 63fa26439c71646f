"""Run directories and the :class:`Run` handle returned by ``train``.

A run directory (``<out_dir>/<name or dataset-backbone-confighash>``) holds::

    config.yaml       the full TrainConfig (written first)
    checkpoint.pt     the latest checkpoint (atomic; the final weights once finished)
    history/          steps.csv, epochs.csv, evals.jsonl (see refinenet.engine.history)
    summary.json      training statistics: steps, time, images/s, resolved precision, versions
    metrics.json      final validation metrics (written last: its presence = finished)
    eval-*.json       cached results of Run.evaluate(...)

A directory is one run: if it already holds a run with a different configuration (different
identity hash), nothing is touched and ``FileExistsError`` says so.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import TrainConfig
from .history import read_history

__all__ = ["Run", "RunState", "inspect_run_dir", "RUN_FILES"]

RUN_FILES = ("config.yaml", "checkpoint.pt", "metrics.json", "summary.json", "history")


@dataclass
class RunState:
    """What a run directory holds for a given config: "new", "finished", "partial" or "empty-partial"."""

    dir: Path
    status: str
    checkpoint_step: int | None = None


def _read_saved_config(path: Path) -> TrainConfig:
    try:
        return TrainConfig.from_saved(yaml.safe_load(path.read_text()) or {})
    except (ValueError, yaml.YAMLError) as err:
        raise FileExistsError(
            f"{path.parent} holds a run whose config.yaml cannot be read ({err}); choose another "
            f"name/out_dir or remove that directory"
        ) from err


def _identity_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            diffs += _identity_diff(va, vb, f"{prefix}{key}.")
        elif va != vb:
            diffs.append(f"{prefix}{key}: {va!r} there, {vb!r} here")
    return diffs


def inspect_run_dir(cfg: TrainConfig) -> RunState:
    """Classify ``run_dir(cfg)`` without writing anything.

    Raises ``FileExistsError`` if the directory holds something other than a run of ``cfg``
    (a run with another identity, or files that are not a run).
    """
    from .identity import run_dir

    d = run_dir(cfg)
    if not d.exists():
        return RunState(d, "new")
    if not d.is_dir():
        raise FileExistsError(f"run directory {d} exists and is not a directory; choose another name/out_dir")
    saved_path = d / "config.yaml"
    if not saved_path.is_file():
        if any(d.iterdir()):
            raise FileExistsError(
                f"{d} is not empty and holds no run (no config.yaml); refusing to write into it. "
                f"Choose another name/out_dir or empty it"
            )
        return RunState(d, "new")
    saved = _read_saved_config(saved_path)
    if saved.identity() != cfg.identity():
        diff = _identity_diff(saved.identity(), cfg.identity())
        shown = "; ".join(diff[:6]) + (f"; ... ({len(diff)} in all)" if len(diff) > 6 else "")
        raise FileExistsError(
            f"{d} already holds a different run ({shown}). Nothing was overwritten: choose another "
            f"name (or name=null for a directory keyed by the config hash) or out_dir, or remove {d}"
        )
    if (d / "metrics.json").is_file() and (d / "checkpoint.pt").is_file():
        return RunState(d, "finished")
    if (d / "checkpoint.pt").is_file():
        from .checkpoint import read_checkpoint

        step = int(read_checkpoint(d / "checkpoint.pt").get("step", 0))
        return RunState(d, "partial", step)
    return RunState(d, "empty-partial")


@dataclass
class Run:
    """A training run on disk: its directory, config, history and final metrics.

    Attributes:
        dir: the run directory.
        config: the run's :class:`TrainConfig`.
        metrics: final validation metrics (see :func:`refinenet.engine.evaluate`); empty if
            the run has not finished.
        summary: training statistics (``steps``, ``train_seconds``, ``images_per_s``,
            ``precision``, ``device``, ``world_size``, ``torch``).
        history: ``{"steps": [...], "epochs": [...], "evals": [...]}`` lists of row dicts;
            ``frame("steps")`` gives a pandas DataFrame.
        reused: True when ``train`` found this run finished on disk and did not train.
    """

    dir: Path
    config: TrainConfig
    metrics: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    reused: bool = False

    @classmethod
    def load(cls, run_dir: str | os.PathLike, *, reused: bool = True) -> "Run":
        """Open an existing run directory (finished or not)."""
        d = Path(run_dir)
        if not (d / "config.yaml").is_file():
            raise FileNotFoundError(f"{d} is not a run directory (no config.yaml)")
        config = _read_saved_config(d / "config.yaml")

        def read_json(name: str) -> dict:
            p = d / name
            return json.loads(p.read_text()) if p.is_file() else {}

        return cls(d, config, read_json("metrics.json"), read_json("summary.json"), read_history(d), reused)

    @property
    def checkpoint(self) -> Path:
        return self.dir / "checkpoint.pt"

    @property
    def finished(self) -> bool:
        return (self.dir / "metrics.json").is_file()

    @property
    def miou(self) -> float:
        return self.metrics.get("miou", float("nan"))

    def frame(self, kind: str = "steps"):
        """The ``"steps"``, ``"epochs"`` or ``"evals"`` history as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.history.get(kind, []))

    def load_model(self, output: str = "full"):
        """The trained model (eval mode, CPU)."""
        from .checkpoint import load_model

        return load_model(self.checkpoint, output=output)

    def evaluate(
        self,
        split: str | None = None,
        *,
        cache: bool = True,
        root: str | None = None,
        device: str = "auto",
        amp: str | None = None,
        channels_last: bool | None = None,
        native_labels: bool = False,
        **kwargs: Any,
    ) -> dict:
        """Evaluate the final weights on ``split`` (default: validation), cached in the run dir.

        ``native_labels``: score on the data set's native labels (CamVid 360 x 480), the
        logits upsampled to them, whatever size the model ran at.

        The split is rebuilt from the run's config (same dataset, resolution and options;
        ``root`` if the data has moved) and the model loaded from its checkpoint.
        ``device="auto"`` picks CUDA if available; ``amp`` and ``channels_last`` default to the
        run's own precision, so the metrics match the ones it reported. ``kwargs`` go to
        :func:`refinenet.engine.evaluate` (``scales``, ``flip``, ``boundary``, ``batch_size``,
        ...). Results are cached as ``eval-<split>-<key>.json`` keyed by the arguments that
        change them, and read back instead of recomputed.
        """
        from .checkpoint import atomic_write_json
        from .data import build_eval_set
        from .evaluation import evaluate
        from .precision import resolve_device, resolve_precision

        split = split or self.config.data.val_split
        identity = {
            "split": split,
            "scales": [float(s) for s in kwargs.get("scales", (1.0,))],
            "flip": bool(kwargs.get("flip", False)),
            "boundary": bool(kwargs.get("boundary", True)),
            "amp": amp or "run",  # None: the run's own precision
        }
        if native_labels:
            identity["labels"] = "native"
        key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
        path = self.dir / f"eval-{split}-{key}.json"
        if cache and path.is_file():
            return json.loads(path.read_text())
        dataset = build_eval_set(self.config, split, root, native_labels=native_labels)
        target = resolve_device(str(device))
        own = resolve_precision(self.config.precision, target)
        result = evaluate(
            self.load_model().to(target),
            dataset,
            split=split,
            device=target,
            amp=own.amp if amp is None else amp,
            channels_last=own.channels_last if channels_last is None else channels_last,
            **kwargs,
        )
        if cache:
            atomic_write_json(path, result)
        return result

    def __repr__(self) -> str:
        state = f"miou={self.miou:.4f}" if self.finished else "unfinished"
        return f"Run({str(self.dir)!r}, {state}{', reused' if self.reused else ''})"
