"""What a run is: its config's identity, the fingerprints of its data and of its weights.

:meth:`TrainConfig.identity` leaves out where the data lives (``data.root``): the same config
on another copy of the data must find the same run. But then other data at another root, or
backbone weights replaced at the same path, would find it too. :func:`run_identity` adds what
the run actually reads::

    {**cfg.identity(),                       # without model.backbone_weights (a path)
     "data_fingerprints": {"camvid/train": "<64 hex>", "camvid/val": ..., "camvid/test": ...},
     "backbone_weights_sha256": "<64 hex>" or None}

(``data_fingerprints``, not ``data``: that key is the config's data section.)

and :func:`run_id` is the first 12 hex digits of its SHA-256. The datasets are built as
:mod:`refinenet.engine.data` builds them (root, ``data.size``, ``data.options``), without
transforms, and fingerprinted with :func:`refinenet.data.fingerprint.dataset_fingerprint`.

Caching: files are hashed once per process (and once per machine through the on-disk
cache), keyed by their size and mtime, so a later call only lists and stats the files, and a
file changed during the process is noticed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from .config import TrainConfig

__all__ = ["data_splits", "run_dir", "run_id", "run_identity", "run_name"]


def data_splits(cfg: TrainConfig) -> list[tuple[str, str, str | None]]:
    """``(dataset, split, root)`` of every split a run reads or is scored on: the training
    split, the validation split (of ``data.val_dataset`` when set) and CamVid's test split."""
    from .data import eval_dataset_source

    d = cfg.data
    out = [(d.dataset, d.train_split, d.root), eval_dataset_source(cfg)]
    if out[-1][0] == "camvid":
        out.append(eval_dataset_source(cfg, "test"))
    return list(dict.fromkeys(out))  # once each, in order (val may be the train split)


def _parse_split(cfg: TrainConfig, key: str) -> tuple[str, str, str | None]:
    from .data import eval_dataset_source

    name, _, split = key.rpartition("/")
    name = name or cfg.data.dataset
    if name == cfg.data.dataset:
        return name, split, cfg.data.root
    if name == (cfg.data.val_dataset or cfg.data.dataset):
        return eval_dataset_source(cfg, split)
    return name, split, None


def _fingerprint(cfg: TrainConfig, name: str, split: str, root: str | None) -> str:
    from ..data import build_dataset
    from ..data.fingerprint import dataset_fingerprint
    from .data import _dataset_kwargs

    return dataset_fingerprint(build_dataset(name, split, root=root, **_dataset_kwargs(cfg)))


def _weights_sha256(cfg: TrainConfig) -> str | None:
    from ..data.fingerprint import file_sha256

    path = cfg.model.backbone_weights
    if path is None:
        return None
    if not Path(path).is_file():
        raise FileNotFoundError(f"model.backbone_weights: no file at {path!r} (the run id "
                                "covers the weights' SHA-256, so the file must exist)")
    return file_sha256(path)


def run_identity(cfg: TrainConfig, *, splits: Iterable[str] | None = None) -> dict:
    """``cfg.identity()`` with the data and the weights it reads (module docstring).

    Args:
        cfg: the run's config.
        splits: which splits to fingerprint, as ``"split"`` (of ``data.dataset``) or
            ``"dataset/split"``; default :func:`data_splits`.

    Returns a JSON-able dict; ``"data_fingerprints"`` maps ``"dataset/split"`` to a 64-digit
    fingerprint.
    Raises ``FileNotFoundError`` for missing data or a missing ``model.backbone_weights``.
    """
    found = data_splits(cfg) if splits is None else [_parse_split(cfg, s) for s in splits]
    identity = cfg.identity()
    # The weights count by content, not by path: a copy elsewhere is the same run.
    identity.get("model", {}).pop("backbone_weights", None)
    identity["data_fingerprints"] = {
        f"{name}/{split}": _fingerprint(cfg, name, split, root) for name, split, root in found
    }
    identity["backbone_weights_sha256"] = _weights_sha256(cfg)
    return identity


def run_id(cfg: TrainConfig) -> str:
    """12 hex digits of the SHA-256 of :func:`run_identity` as canonical JSON (sorted keys,
    no spaces): the same on every machine for the same config, data and weights."""
    text = json.dumps(run_identity(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def run_name(cfg: TrainConfig) -> str:
    """The run directory's name: ``cfg.name`` if set, else ``<dataset>-<backbone>-<run id>``."""
    if cfg.name:
        return cfg.name
    return f"{cfg.data.dataset}-{cfg.model.backbone}-{run_id(cfg)}"


def run_dir(cfg: TrainConfig) -> Path:
    """``<out_dir>/<run_name(cfg)>``: where ``train(cfg)`` writes, and finds a finished run."""
    return Path(cfg.out_dir) / run_name(cfg)
