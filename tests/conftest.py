"""Fixtures shared by the tests: torch on one thread, tiny training configs.

Fake datasets are in ``tests/fakes.py`` (``from fakes import ...``).
"""

from __future__ import annotations

import pytest
import torch

from refinenet.engine import TrainConfig


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread for a module: tiny tensors and models gain nothing from threads,
    and on a busy 2-core machine OpenMP threads waiting for each other make every op many
    times slower. Also the thread count of the subprocesses the tests start
    (``OMP_NUM_THREADS=1``), so that in-process results equal theirs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny_config(out_dir, *overrides: str) -> TrainConfig:
    """resnet18 with narrow paths on 4 synthetic 64x64 scenes, batch 2 (2 steps per epoch),
    4 steps, deterministic on CPU: a few seconds per run on 2 cores. ``overrides`` are
    ``key=value`` strings."""
    cfg = TrainConfig.from_dict(
        {
            "out_dir": str(out_dir),
            "device": "cpu",
            "deterministic": True,
            "checkpoint_every": 2,
            "model": {"backbone": "resnet18", "widths": [16, 8, 8, 8]},
            "data": {"dataset": "synthetic", "size": [64, 64], "batch_size": 2, "options": {"n": 4}},
            "schedule": {"steps": 4, "warmup_steps": 1},
            "eval": {"every": 2},
            "log": {"progress": "none"},
        }
    )
    return cfg.replace(list(overrides))


@pytest.fixture(scope="session")
def tiny_config():
    """``tiny_config(out_dir, "key=value", ...) -> TrainConfig``: see :func:`_tiny_config`."""
    return _tiny_config


@pytest.fixture
def isolated_data_caches(tmp_path, monkeypatch):
    """No packs of the developer's, a private on-disk digest cache, an empty memory cache."""
    from refinenet.data import fingerprint as fp

    monkeypatch.setattr("refinenet.data.camvid.cache_dirs", lambda root=None: [tmp_path / "packs"])
    monkeypatch.setenv("REFINENET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fp, "_memory", {"file": {}, "pack": {}})
    monkeypatch.setattr(fp, "_disk", fp._DiskCache())
