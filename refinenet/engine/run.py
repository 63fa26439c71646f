"""Run directories and the :class:`Run` handle returned by ``train``.

A run directory (``<out_dir>/<name or dataset-backbone-confighash>``) holds::

    config.yaml       the full TrainConfig (written first)
    checkpoint.pt     the latest checkpoint (atomic; the final weights once finished)
    history/          steps.csv, epochs.csv, evals.jsonl (see refinenet.engine.history)
    summary.json      training statistics: steps, time, images/s, resolved precision, versions
    metrics.json      final validation metrics (written last: its presence = finished)
    eval-*.json       cached results of Run.evaluate(...)
    .lock             held (flock) by the process training the run, removed when it stops

A directory is one run: if it already holds a run with a different configuration (different
identity hash), nothing is touched and ``FileExistsError`` says so. Only one process
trains a run at a time: :class:`RunLock` takes an exclusive ``flock`` on ``.lock``, which the
kernel releases when the process ends, however it ends (no stale lock after a kill).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import TrainConfig
from .history import read_history

__all__ = ["Run", "RunBusyError", "RunLock", "RunState", "inspect_run_dir", "LOCK_FILE", "RUN_FILES"]

RUN_FILES = ("config.yaml", "checkpoint.pt", "metrics.json", "summary.json", "history")
LOCK_FILE = ".lock"


class RunBusyError(FileExistsError):
    """Another process holds the run directory's lock (it is training or resuming that run)."""


class RunLock:
    """An exclusive lock on a run directory: ``acquire()`` creates the directory (after checking
    that it can) and ``.lock`` in it, and fails at once with :class:`RunBusyError` if another
    process holds it; ``release()`` removes ``.lock``, and the folders ``acquire`` created if
    the run wrote nothing in them (a run that failed before writing leaves no trace)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.dir = Path(directory)
        self.path = self.dir / LOCK_FILE
        self._fd: int | None = None
        self._created: list[Path] = []

    def acquire(self) -> "RunLock":
        from .checkpoint import check_writable_dir

        check_writable_dir(self.dir, "run directory", "choose another out_dir")
        self._created = [p for p in (self.dir, *self.dir.parents) if not p.exists()]
        # A process releasing an empty directory may delete it (and .lock) while we open it:
        # retry until the file we locked is the one at the path.
        for _ in range(5):
            self.dir.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                os.close(fd)
                raise RunBusyError(
                    f"{self.dir} is in use by another process{f' (pid {holder})' if holder.isdigit() else ''} "
                    f"training this run; wait for it to finish (or stop it), then run again"
                ) from None
            if self._same_file(fd):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # who holds it, for the message above
                self._fd = fd
                return self
            os.close(fd)
        raise RunBusyError(f"could not lock {self.path}: other processes keep creating and removing it; run again")

    def _same_file(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            # Unlinked while still held, so nobody takes it in between; acquire() checks that
            # it locked the file at the path, not one unlinked meanwhile.
            self.path.unlink(missing_ok=True)
            for folder in self._created:  # deepest first; only if the run wrote nothing
                try:
                    folder.rmdir()
                except OSError:
                    break
        finally:
            os.close(self._fd)  # releases the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@dataclass
class RunState:
    """What a run directory holds for a given config: "new", "finished", "partial" or "empty-partial".

    ``unreadable``: for a partial run whose checkpoint cannot be read, why (its step is then None).
    """

    dir: Path
    status: str
    checkpoint_step: int | None = None
    unreadable: str | None = None


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
        if any(p.name != LOCK_FILE for p in d.iterdir()):
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

        try:
            step = int(read_checkpoint(d / "checkpoint.pt").get("step", 0))
        except ValueError as err:  # torn or corrupt: starting over (force) needs no step
            return RunState(d, "partial", None, unreadable=str(err))
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
