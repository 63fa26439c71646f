"""requirements.lock is the environment: every package at the version the tests run with."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Installed around the lock, not by it: the project itself (editable) and pip's own tools.
NOT_LOCKED = {"refinenet-study", "pip", "setuptools", "wheel"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not name==version"
            pins[_norm(name)] = version.strip()
    return pins


def test_the_lock_pins_every_installed_package_at_its_version():
    pins = _lock()
    installed = {_norm(d.metadata["Name"]): d.version for d in metadata.distributions()}
    if installed.get("torch", "").split("+")[0] != pins["torch"]:
        pytest.skip(f"not the locked environment (torch {installed.get('torch')}): built by hand, not by make venv")
    wrong = {n: (v, installed.get(n)) for n, v in pins.items() if installed.get(n) != v}
    assert not wrong, f"installed versions differ from requirements.lock (run make lock): {wrong}"
    unlocked = sorted(set(installed) - set(pins) - NOT_LOCKED)
    assert not unlocked, f"installed but not in requirements.lock (run make lock): {unlocked}"


def test_the_lock_keeps_the_hand_chosen_pins():
    pins = _lock()
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if match:
            assert pins[_norm(match.group(1))] == match.group(2), line
