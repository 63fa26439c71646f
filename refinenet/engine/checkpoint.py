"""Atomic files and training checkpoints.

A checkpoint is one ``torch.save`` file holding everything a run needs to continue exactly:
model, optimiser, scheduler and grad-scaler states, the RNG states of every process, and the
position (optimisation steps done). It also holds the model's architecture and the dataset's
description, so ``evaluate`` and ``predict`` need nothing else.

Files are written atomically: to a temporary file in the same directory, flushed and fsynced,
then renamed over the target (and the directory fsynced). A process killed at any moment
leaves either the old file or the new one, never a torn one; a write that fails (disk full,
read-only folder) raises :class:`WriteError` and leaves the old file and no temporary one.
Files get the permissions the umask gives (like ``open``), not ``mkstemp``'s 0600.
"""

from __future__ import annotations

import io
import json
import os
import random
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.files import umask_mode

__all__ = [
    "CHECKPOINT_FORMAT",
    "NotWritableError",
    "WriteError",
    "check_writable_dir",
    "atomic_write",
    "atomic_write_text",
    "save_checkpoint",
    "read_checkpoint",
    "checkpoint_step",
    "load_model",
    "load_weights",
    "rng_state",
    "set_rng_state",
]

CHECKPOINT_FORMAT = "refinenet-checkpoint/1"


class WriteError(OSError):
    """Writing a file failed (disk full, read-only folder, ...); the previous version of the
    file, if any, is unchanged and no temporary file is left. ``errno`` is the cause's."""


class NotWritableError(PermissionError):
    """An output folder does not allow creating files; raised before any work is done."""


def check_writable_dir(path: str | os.PathLike, what: str, fix: str = "choose a writable folder") -> None:
    """Raise :class:`NotWritableError` unless files can be created in ``path`` or, if it does
    not exist yet, in the nearest folder above it (where it would be created).

    ``os.access`` also reports a read-only file system (EROFS), even to root.
    """
    wanted = Path(os.path.abspath(path))
    existing = wanted
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise NotWritableError(f"{what} {wanted}: {existing} is a file, not a folder; {fix}")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == wanted else f" (its nearest existing folder {existing} is not)"
        raise NotWritableError(f"{what} {wanted} is not writable{where}; {fix}, or make it writable")


def atomic_write(path: str | os.PathLike, write: Callable[[io.BufferedWriter], Any], *, hint: str = "") -> None:
    """Write ``path`` via ``write(file)`` into a temporary file, fsync it, then rename it into place.

    An ``OSError`` on the way (disk full, permissions) becomes :class:`WriteError` naming
    ``path`` (plus ``hint``); the old file stays and the temporary one is removed.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), umask_mode())  # mkstemp's 0600 would hide run files from the group
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        if isinstance(err, OSError) and not isinstance(err, WriteError):
            reason = err.strerror or str(err)
            kept = f"the previous {path.name} is unchanged" if path.is_file() else f"{path.name} was not written"
            error = WriteError(f"could not write {path}: {reason}; {kept}" + (f". {hint}" if hint else ""))
            error.errno = err.errno
            raise error from err
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform/file system.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=True) + "\n")


# -- RNG states ------------------------------------------------------------------------------


def rng_state() -> dict:
    """Python, NumPy, torch CPU and (if initialised) CUDA RNG states of this process."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping) -> None:
    random.setstate(_tuplify(state["python"]))
    np.random.set_state(_tuplify(state["numpy"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda = list(state["cuda"])
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


def _tuplify(obj: Any) -> Any:
    # weights_only loading may turn the tuples of random/numpy states into lists.
    if isinstance(obj, list):
        return tuple(_tuplify(v) for v in obj)
    return obj


# -- checkpoints -----------------------------------------------------------------------------


def save_checkpoint(path: str | os.PathLike, state: dict, *, hint: str = "") -> None:
    """Write a checkpoint dict atomically (adds the format tag); :class:`WriteError` (with
    ``hint`` appended) if it cannot be written, the previous checkpoint intact."""
    state = {"format": CHECKPOINT_FORMAT, **state}
    atomic_write(path, lambda f: torch.save(state, f), hint=hint)


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`; clear errors for anything else."""
    path = Path(path)
    if path.is_dir():
        candidate = path / "checkpoint.pt"
        if not candidate.is_file():
            raise FileNotFoundError(f"{str(path)!r} is a directory without checkpoint.pt; pass a run directory or a .pt checkpoint")
        path = candidate
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        # Our checkpoints hold RNG states (NumPy arrays, Python tuples); they are our own files.
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:
        from ..errors import torch_file_error

        raise torch_file_error("checkpoint", path, err, "a refinenet training checkpoint (a run directory's checkpoint.pt)") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{str(path)!r} is not a refinenet training checkpoint (format {CHECKPOINT_FORMAT}); "
            f"write one with `refinenet train`, or load a bare state dict with model.load_state_dict"
        )
    state["path"] = str(path)
    return state


def checkpoint_step(path: str | os.PathLike) -> int:
    """The step a checkpoint resumes from, read without loading its tensors (memory-mapped);
    0 when there is none or it cannot be read (a torn file is trained again from the start)."""
    path = Path(path)
    if not path.is_file():
        return 0
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception:  # the trainer says what is wrong with it when it resumes
        return 0
    return int(state.get("step", 0)) if isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT else 0


def _field_defaults(config) -> dict:
    """The default of every field of a config dataclass that has one, as ``to_dict`` writes
    it (tuples as lists)."""
    import dataclasses

    if not dataclasses.is_dataclass(config):
        return {}
    return {f.name: list(f.default) if isinstance(f.default, tuple) else f.default
            for f in dataclasses.fields(config) if f.default is not dataclasses.MISSING}


def _architecture_diff(saved: Mapping, current: Mapping) -> list[str]:
    keys = sorted(set(saved) | set(current))
    return [f"{k}: checkpoint {saved.get(k)!r} vs model {current.get(k)!r}" for k in keys if saved.get(k) != current.get(k)]


def load_weights(model: nn.Module, checkpoint: str | os.PathLike | dict, *, strict_config: bool = True) -> dict:
    """Load a checkpoint's weights into ``model`` after checking that the architectures match.

    Raises ``ValueError`` naming the differing architecture fields (or state-dict keys) when the
    checkpoint was trained with another architecture; the model is left untouched then.
    ``output`` ("full"/"quarter") does not change the weights and may differ.
    Returns the checkpoint dict.
    """
    state = checkpoint if isinstance(checkpoint, dict) else read_checkpoint(checkpoint)
    where = state.get("path", "checkpoint")
    target = getattr(model, "module", model)
    target = getattr(target, "_orig_mod", target)
    config = getattr(target, "config", None)
    if strict_config and config is not None and "model_config" in state:
        # a field added after the checkpoint was written holds its default there
        saved = {**_field_defaults(config), **state["model_config"]}
        saved = {k: v for k, v in saved.items() if k != "output"}
        current = {k: v for k, v in config.to_dict().items() if k != "output"}
        diff = _architecture_diff(saved, current)
        if diff:
            raise ValueError(
                f"checkpoint {where!r} holds a different architecture ({'; '.join(diff)}); build the model "
                f"from the checkpoint instead: refinenet.engine.load_model({where!r})"
            )
    own = target.state_dict()
    weights = state["model"]
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    shapes = sorted(k for k in set(own) & set(weights) if own[k].shape != weights[k].shape)
    if missing or unexpected or shapes:
        raise ValueError(
            f"checkpoint {where!r} does not fit this model: missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}, wrong shape {shapes[:5]}; build the model from the checkpoint with "
            f"refinenet.engine.load_model({where!r})"
        )
    target.load_state_dict(weights, strict=True)
    return state


def load_model(checkpoint: str | os.PathLike | dict, *, output: str = "full", map_location: str = "cpu") -> nn.Module:
    """Rebuild the model a checkpoint was trained with and load its weights (eval mode).

    ``checkpoint``: a ``.pt`` file, a run directory, or an already-read checkpoint dict.
    The model's ``.dataset_info`` holds the dataset's class names, palette, mean, std and
    ignore index as saved in the checkpoint.
    """
    from ..models import build_from_config

    state = checkpoint if isinstance(checkpoint, dict) else read_checkpoint(checkpoint, map_location)
    config = dict(state["model_config"], output=output)
    model = build_from_config(config)
    load_weights(model, state)
    model.dataset_info = state.get("dataset_info", {})
    return model.eval()
