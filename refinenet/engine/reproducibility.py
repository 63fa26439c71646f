"""Seeds, deterministic mode, and randomness that survives a resume.

Three sources of randomness in a run, and how each is made reproducible:

1. Model initialisation and dropout use the global torch RNG of the training process. It is
   seeded once from ``seed`` and saved in every checkpoint.
2. Data order: each epoch's permutation is a function of ``(seed, epoch)`` (DistributedSampler
   with ``set_epoch``), so a resumed run replays the rest of an epoch from its position.
3. Augmentation: every sample is augmented inside :func:`sample_rng`, which seeds Python,
   NumPy and torch from ``(seed, epoch, index)`` and restores the previous states afterwards.
   An augmented sample therefore does not depend on which worker process loads it, how many
   samples that worker loaded before, or whether the run was resumed; and the training
   process's own RNG (dropout) is left untouched when loading happens in it.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator

import numpy as np
import torch

__all__ = ["seed_everything", "set_deterministic", "sample_seed", "sample_rng", "seed_worker"]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds CUDA too


def set_deterministic(enabled: bool) -> None:
    """Deterministic kernels (bit-identical CPU runs; reproducible CUDA runs where possible).

    On CUDA a few kernels (e.g. the backward of bilinear upsampling) have no deterministic
    version; ``warn_only`` keeps them running with a warning instead of failing the run.
    """
    if enabled:
        # Required by cuBLAS for deterministic matmuls; must be set before cuBLAS starts.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.deterministic = enabled
    if enabled:
        torch.backends.cudnn.benchmark = False


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for sample ``index`` in ``epoch`` (well mixed by NumPy's SeedSequence)."""
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


@contextlib.contextmanager
def sample_rng(seed: int) -> Iterator[None]:
    """Seed Python, NumPy and torch (CPU) from ``seed`` inside the block; restore them after."""
    py_state = random.getstate()
    np_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed Python and NumPy from the worker's torch seed.

    torch seeds each worker with ``base_seed + worker_id`` (the base seed comes from the
    loader's own generator, which we seed from the run seed and epoch); Python and NumPy are
    not seeded by torch, so every worker would otherwise share one NumPy stream.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
