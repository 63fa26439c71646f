"""Benchmarks: ``refinenet bench`` (speed, memory, fraction of peak). Never run as tests."""

from .suite import PRESETS, BenchConfig, FastPath, default_paths, run_suite

__all__ = ["PRESETS", "BenchConfig", "FastPath", "default_paths", "run_suite"]
