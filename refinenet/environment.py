"""Where and with what a result was made: git commit, library versions, hardware."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata as _metadata
from pathlib import Path

__all__ = ["collect_environment", "describe_hardware", "cpu_name"]

_VERSIONED = (
    "refinenet-study", "torch", "torchvision", "numpy", "pandas", "matplotlib",
    "papermill", "jupytext", "nbformat", "ipykernel", "jupyter-book", "myst-nb",
)


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def cpu_name() -> str:
    """The CPU model, e.g. ``AMD EPYC 9R14 (family 25, model 17)``, from /proc/cpuinfo (the
    platform's processor elsewhere). Virtual machines often report a bare ``AMD EPYC``: the
    family and model numbers still tell a Zen 4 (family 25) from a Zen 5 (family 26), whose
    speeds differ by 2x, so timings measured on one are not used to plan on the other."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if not sep:
                    if fields:
                        break  # the first processor is enough
                    continue
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name")
    if not name:
        return platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def collect_environment(root: str | os.PathLike, device: str) -> dict:
    """Git commit, package versions and hardware, for the metadata file."""
    import torch

    root = Path(root)
    commit = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    versions = {"python": platform.python_version()}
    for dist in _VERSIONED:
        try:
            versions[dist] = _metadata.version(dist)
        except _metadata.PackageNotFoundError:
            pass
    hardware = {
        "device": device,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        hardware.update(
            gpu=props.name,
            gpu_count=torch.cuda.device_count(),
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
        )
    return {
        "git": {"commit": commit, "dirty": bool(status) if status is not None else None},
        "versions": versions,
        "lock": lock_digest(root),
        "hardware": hardware,
        "platform": platform.platform(),
    }


LOCK_FILE = "requirements.lock"


def lock_digest(root: str | os.PathLike) -> dict | None:
    """``{"file": "requirements.lock", "sha256": ...}`` of the repository's environment lock
    (what ``make venv`` installs), or None where there is none."""
    import hashlib

    path = Path(root) / LOCK_FILE
    if not path.is_file():
        return None
    return {"file": LOCK_FILE, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def describe_hardware(hardware: dict) -> str:
    """A phrase, e.g. ``cuda, NVIDIA H100 80GB HBM3`` or ``cpu, 2 cores of AMD EPYC (family 25,
    model 17)``: no parentheses around the model name, which may hold its own."""
    if hardware.get("device") == "cuda":
        return f"cuda, {hardware.get('gpu', '?')}"
    return f"cpu, {hardware.get('cpu_count', '?')} cores of {hardware.get('cpu', '?')}"

