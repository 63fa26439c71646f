"""``refinenet study run`` on bad input or Ctrl-C: one line saying what happened, nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from refinenet.cli import main
from refinenet.study.profiles import load_profile
from refinenet.study.runner import StudyError, resolve_device

from fakes import interruptible


def test_cuda_asked_for_without_cuda_blames_the_request_not_the_profile(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(StudyError, match=r"^--device cuda was asked for, but torch sees no CUDA device"):
        resolve_device("cuda")
    with pytest.raises(StudyError, match="this profile needs a CUDA device"):
        resolve_device("auto", requires_cuda=True)
    assert resolve_device("auto") == "cpu"


def test_a_missing_profile_file_is_said_to_be_missing(tmp_path, capsys):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(FileNotFoundError, match=f"profile file {missing} does not exist"):
        load_profile(missing)
    assert main(["study", "run", "--profile", str(missing), "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"refinenet study: error: profile file {missing} does not exist; give an existing .yaml file or one of smoke, cpu, gpu"
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        load_profile("huge")  # a plain word is still a profile name


SLEEPY = '''# %% tags=["parameters"]
output_dir = None

# %%
import time
print("sleeping", flush=True)
time.sleep(120)
'''


def test_ctrl_c_stops_with_one_line_and_marks_the_notebook_interrupted(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_sleepy.py").write_text(SLEEPY)
    (tmp_path / "tiny.yaml").write_text("name: tiny\ncommon: {dataset: synthetic}\nnotebooks:\n  01_sleepy: {}\n")
    entry = tmp_path / "results" / "tiny" / "runs" / "abc123"  # a finished ledger entry
    entry.mkdir(parents=True)
    (entry / "entry.json").write_text("{}")
    # Its own process group, as a terminal's foreground job: Ctrl-C signals the whole group.
    study = subprocess.Popen(
        [sys.executable, "-m", "refinenet", "study", "run", "--root", str(tmp_path), "--profile",
         str(tmp_path / "tiny.yaml"), "--no-train"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=interruptible,
        cwd=Path(__file__).resolve().parents[1], env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    try:
        for line in study.stdout:
            if "sleeping" in line:
                break
        os.killpg(study.pid, signal.SIGINT)
        out, err = study.communicate(timeout=120)
    finally:
        if study.poll() is None:
            study.kill()
    assert study.returncode == 130
    assert "Traceback" not in out + err and "Error" not in out + err, out + err
    assert err.strip().splitlines() == [
        "refinenet study run: interrupted; runs already trained stay in the ledger and the notebook "
        "that was running is marked interrupted; run the same command again to continue"
    ]
    meta = json.loads((tmp_path / "results" / "tiny" / "01_sleepy" / "metadata.json").read_text())
    assert meta["status"] == "interrupted"
    assert (entry / "entry.json").is_file()


def _wait_for(path: Path, seconds: float = 60.0) -> None:
    import time

    end = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < end, f"{path} did not appear"
        time.sleep(0.05)


def test_an_interrupted_study_stops_its_workers_at_once_not_at_their_runs_end(tmp_path):
    """Ctrl-C (or SIGTERM, made one) in the parent interrupts the runs its workers train: a
    worker waited for would train on for up to an hour."""
    from fakes import sleepy
    from refinenet.study.training import run_jobs

    marker, started = tmp_path / "marker", tmp_path / "started"
    with pytest.raises(KeyboardInterrupt):
        with run_jobs(1) as pool:
            pool.submit(sleepy, str(marker), str(started), 60.0)
            _wait_for(started)
            raise KeyboardInterrupt
    assert marker.read_text() == "interrupted"


WORKER_PARENT = '''
import os, signal, sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from fakes import sleepy
from refinenet.study.training import run_jobs

if __name__ == "__main__":
    with run_jobs(1) as pool:
        pool.submit(sleepy, {marker!r}, {started!r}, 60.0)
        while not Path({started!r}).exists():
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGKILL)  # no unwinding, no shutdown of the pool
'''


def test_a_worker_whose_parent_is_killed_stops_its_run(tmp_path):
    marker, started = tmp_path / "marker", tmp_path / "started"
    script = tmp_path / "parent.py"
    script.write_text(WORKER_PARENT.format(tests=str(Path(__file__).parent), marker=str(marker), started=str(started)))
    parent = subprocess.run([sys.executable, str(script)], cwd=Path(__file__).resolve().parents[1],
                            env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=120)
    assert parent.returncode == -signal.SIGKILL
    _wait_for(marker)
    assert marker.read_text() == "interrupted"


def test_sigterm_stops_a_study_as_ctrl_c_does(tmp_path):
    """`kill PID` or `timeout` signal the study's process alone: it stops as on Ctrl-C, with
    the same line, and marks the notebook it was running interrupted."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_sleepy.py").write_text(SLEEPY)
    (tmp_path / "tiny.yaml").write_text("name: tiny\ncommon: {dataset: synthetic}\nnotebooks:\n  01_sleepy: {}\n")
    study = subprocess.Popen(
        [sys.executable, "-m", "refinenet", "study", "run", "--root", str(tmp_path), "--profile",
         str(tmp_path / "tiny.yaml"), "--no-train"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        cwd=Path(__file__).resolve().parents[1], env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    try:
        for line in study.stdout:
            if "sleeping" in line:
                break
        study.send_signal(signal.SIGTERM)  # to the study alone, not its group
        out, err = study.communicate(timeout=120)
    finally:
        if study.poll() is None:
            study.kill()
    assert study.returncode == 130, out + err
    assert err.strip().splitlines()[-1].startswith("refinenet study run: interrupted;"), out + err
    meta = json.loads((tmp_path / "results" / "tiny" / "01_sleepy" / "metadata.json").read_text())
    assert meta["status"] == "interrupted"
