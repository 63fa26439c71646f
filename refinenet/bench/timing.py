"""Wall-clock timing and peak-memory measurement for benchmarks (never used in tests)."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["Timing", "time_fn", "time_interleaved", "PeakMemory"]


@dataclass(frozen=True)
class Timing:
    """Seconds per call over the timed repetitions (warm-up excluded)."""

    times: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def q1(self) -> float:
        return _quantile(self.times, 0.25)

    @property
    def q3(self) -> float:
        return _quantile(self.times, 0.75)


def _quantile(values, q: float) -> float:
    v = sorted(values)
    pos = (len(v) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(fn: Callable[[], object], device: torch.device, *, warmup: int = 2, repeats: int = 5) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed (device-synchronised).

    On CUDA each repetition is bracketed by synchronisations, so queued kernels are counted;
    warm-up absorbs cuDNN autotuning, torch.compile and allocator growth.
    """
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return Timing(tuple(times))


def time_interleaved(
    fns: dict[str, Callable[[], object]], device: torch.device, *, warmup: int = 2, repeats: int = 5
) -> dict[str, Timing]:
    """Time several functions round-robin: warm each up, then ``repeats`` rounds of one call each.

    Interleaving spreads any drift in the machine's load (other processes, thermal state)
    evenly over the candidates, so their ratios stay fair even when absolute times wander.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: Timing(tuple(t)) for name, t in times.items()}


class PeakMemory:
    """Memory the ``with`` block adds at its peak, in bytes (``self.peak``).

    The increase over what was in use when the block began: activations, gradients and
    workspaces of the call, not the weights already in memory. CUDA: the caching allocator's
    peak of allocated tensors. CPU: the process's resident set size, sampled every 2 ms from
    ``/proc/self/statm`` (Linux; ``None`` elsewhere); memory the allocator kept from an
    earlier call is not counted again, so measure a path's first call after warm-up in a
    process that ran nothing bigger. A CPU reading of 0 (the call only reused pages the
    process already held, so its resident set size cannot see what it needed) becomes
    ``None``: not measured, rather than "needed nothing".
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak: int | None = None
        self._start = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def _rss(self) -> int | None:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * self._page
        except OSError:
            return None

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = self._rss()
            if rss is not None:
                self.peak = max(self.peak or 0, rss - self._start)
            self._stop.wait(0.002)

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
        elif self._rss() is not None:
            self._start = self._rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) - self._start
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            if not self.peak:
                # The call reused pages an earlier call had already touched: the process's
                # resident memory cannot see what it needed, so report nothing rather than 0.
                self.peak = None
