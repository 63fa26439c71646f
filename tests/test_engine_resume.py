"""Exact resume: a training process killed with SIGKILL, resumed, ends bit-identical to one
that never stopped (deterministic mode, CPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from refinenet.engine import Run, read_checkpoint, train
from refinenet.engine.identity import run_dir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)"),
]


def command(yaml_path, *extra) -> list[str]:
    return [sys.executable, "-m", "refinenet", "train", str(yaml_path), *extra]


def test_sigkill_then_resume_equals_uninterrupted(tmp_path, tiny_config, one_thread):
    # One thread everywhere: the same kernels in every process, and no OpenMP oversubscription
    # on a busy machine.
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # 2 steps per epoch, so 8 steps cross 4 epochs (data order) and the checkpoint at step 3
    # sits mid-epoch. Dropout and augmentation are on (RNG state).
    resumable = ("checkpoint_every=3", "schedule.steps=8", "schedule.warmup_steps=2", "eval.every=4")
    a, b = tiny_config(tmp_path / "a", *resumable), tiny_config(tmp_path / "b", *resumable)
    (tmp_path / "b.yaml").write_text(b.to_yaml())

    # The run that is killed: SIGKILL as soon as its first checkpoint (step 3) is on disk.
    killed = subprocess.Popen(command(tmp_path / "b.yaml"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ckpt = run_dir(b) / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not ckpt.exists():
        assert killed.poll() is None, killed.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint after 300 s"
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    assert killed.returncode == -signal.SIGKILL
    assert not (run_dir(b) / "metrics.json").exists(), "the run finished before it could be killed"
    killed_at = read_checkpoint(ckpt)["step"]
    assert killed_at < 8

    # Without --resume the partial run is refused, and left as it is.
    with pytest.raises(FileExistsError, match="--resume"):
        train(b)
    assert read_checkpoint(ckpt)["step"] == killed_at

    resumed = subprocess.run(command(tmp_path / "b.yaml", "--resume"), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # The uninterrupted run, in this process (one thread, as the subprocesses).
    train(a)

    run_a, run_b = Run.load(run_dir(a)), Run.load(run_dir(b))
    assert run_b.summary["resumed_from_step"] == killed_at
    wa, wb = read_checkpoint(run_a.checkpoint), read_checkpoint(run_b.checkpoint)
    for key in ("model", "optimizer"):
        flat_a, flat_b = _tensors(wa[key]), _tensors(wb[key])
        assert flat_a.keys() == flat_b.keys()
        for name in flat_a:
            assert torch.equal(flat_a[name], flat_b[name]), f"{key}: {name}"
    for key in ("miou", "iou", "pixel_accuracy", "mean_class_accuracy", "boundary_iou", "confusion"):
        assert run_a.metrics[key] == run_b.metrics[key], key
    # the history reads as if the run had never stopped
    assert [(r["step"], r["loss"], r["lr"]) for r in run_a.history["steps"]] == [
        (r["step"], r["loss"], r["lr"]) for r in run_b.history["steps"]
    ]
    assert [r["miou"] for r in run_a.history["evals"]] == [r["miou"] for r in run_b.history["evals"]]
    assert [r["epoch"] for r in run_b.history["epochs"]] == [0, 1, 2, 3]


def _tensors(obj, prefix="") -> dict[str, torch.Tensor]:
    out = {}
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_tensors(v, f"{prefix}.{k}"))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_tensors(v, f"{prefix}.{i}"))
    return out
