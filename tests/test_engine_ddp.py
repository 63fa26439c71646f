"""DistributedDataParallel on CPU: torchrun, gloo, 2 processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch.distributed as dist

from refinenet.engine import Run, read_checkpoint
from refinenet.engine.identity import run_dir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo"),
]


def test_torchrun_two_processes_trains_and_evaluates_like_one(tmp_path, tiny_config, one_thread):
    # 4 training images, batch 2 per process: one step per epoch
    cfg = tiny_config(tmp_path, "name=ddp", "schedule.steps=3", "eval.every=0")
    (tmp_path / "ddp.yaml").write_text(cfg.to_yaml())
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "refinenet", "train", str(tmp_path / "ddp.yaml")],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("finished:") == 1  # only rank 0 reports

    run = Run.load(run_dir(cfg))
    assert run.summary["world_size"] == 2 and run.summary["batch_size"] == 4
    assert [r["step"] for r in run.history["steps"]] == [1, 2, 3]  # written once, by rank 0
    assert [r["epoch"] for r in run.history["epochs"]] == [0, 1, 2]
    ckpt = read_checkpoint(run.checkpoint)
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2  # every rank's RNG state
    assert not any(k.startswith("module.") for k in ckpt["model"])

    # Each process evaluated half of the validation images and the counts were summed: the
    # result equals one process evaluating them all (same single-threaded kernels).
    single = run.evaluate(cache=False)
    assert run.metrics["images"] == single["images"] == 4
    for key in ("confusion", "miou", "iou", "pixel_accuracy", "mean_class_accuracy", "boundary_iou", "boundary_iou_per_class"):
        assert run.metrics[key] == single[key], key
