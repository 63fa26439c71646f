"""Benchmarks: ``refinenet bench`` (speed, memory, fraction of peak). Never run as tests."""

from .suite import PRESET_NAMES, PRESETS, BenchConfig, FastPath, default_paths, preset_configs, run_suite

__all__ = ["PRESET_NAMES", "PRESETS", "preset_configs", "BenchConfig", "FastPath", "default_paths", "run_suite"]
