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
