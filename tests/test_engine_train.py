"""Training end to end on a tiny model: run directory, reuse, determinism, divergence, bad input, CLI."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from refinenet.cli import main
from refinenet.engine.config import PrecisionSection
from refinenet.engine.precision import resolve_precision
from refinenet.engine import NonFiniteLossError, Run, TrainConfig, evaluate, load_weights, read_checkpoint, train
from refinenet.models import refinenet
from refinenet.engine.identity import run_dir, run_id, run_name

METRIC_KEYS = ("miou", "iou", "pixel_accuracy", "mean_class_accuracy", "boundary_iou", "boundary_iou_per_class", "confusion")


def state_of(path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)["model"]


def digest(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def finished(tmp_path_factory, one_thread, tiny_config) -> Run:
    out = tmp_path_factory.mktemp("runs")
    return train(tiny_config(out))


def test_run_directory_contents(finished):
    d = finished.dir
    assert not finished.reused and finished.finished
    for name in ("config.yaml", "checkpoint.pt", "metrics.json", "summary.json", "history/steps.csv", "history/epochs.csv", "history/evals.jsonl"):
        assert (d / name).is_file(), name
    assert d.name == f"synthetic-resnet18-{run_id(finished.config)}"  # config, data and weights
    assert TrainConfig.from_dict(yaml.safe_load((d / "config.yaml").read_text())) == finished.config
    steps = finished.history["steps"]
    assert [r["step"] for r in steps] == [1, 2, 3, 4]
    assert all(math.isfinite(r["loss"]) and r["lr"] > 0 for r in steps)
    assert [r["epoch"] for r in finished.history["epochs"]] == [0, 1]  # 4 images / batch 2
    assert [r["step"] for r in finished.history["evals"]] == [2, 4]
    ckpt = read_checkpoint(finished.checkpoint)
    assert ckpt["step"] == 4 and ckpt["model_config"]["num_classes"] == 8
    assert ckpt["dataset_info"]["class_names"][0] == "sky"
    m = finished.metrics
    assert set(METRIC_KEYS) <= set(m) and 0 <= m["miou"] <= 1 and len(m["iou"]) == 8
    default = resolve_precision(PrecisionSection(), torch.device("cpu"))  # the CPU's "auto"
    assert finished.summary["images"] == 8 and finished.summary["precision"]["amp"] == default.amp
    assert finished.frame("steps").shape[0] == 4


def test_evaluating_the_checkpoint_gives_the_run_metrics(finished):
    again = finished.evaluate(cache=False)  # rebuilds the split, loads the checkpoint
    for key in METRIC_KEYS:
        assert again[key] == finished.metrics[key], key
    assert again["images"] == 4 and again["split"] == "val"
    assert not list(finished.dir.glob("eval-*.json"))


def test_evaluate_takes_a_model_and_a_dataset_not_a_path(finished):
    with pytest.raises(ValueError, match="Run.load"):
        evaluate(finished.checkpoint, None)


def test_finished_run_is_reused_and_force_retrains_bit_identically(finished):
    before = digest(finished.dir)
    weights = state_of(finished.checkpoint)
    again = train(finished.config)
    assert again.reused and again.dir == finished.dir
    assert digest(finished.dir) == before  # nothing rewritten
    # force: trains again in the same process; deterministic mode gives identical bits
    forced = train(finished.config, force=True)
    assert not forced.reused
    new = state_of(forced.checkpoint)
    assert new.keys() == weights.keys()
    for key in weights:
        assert torch.equal(new[key], weights[key]), key
    assert [r["loss"] for r in forced.history["steps"]] == [r["loss"] for r in finished.history["steps"]]
    for key in METRIC_KEYS:
        assert forced.metrics[key] == finished.metrics[key], key


def test_a_different_run_in_the_same_directory_is_refused(finished):
    before = digest(finished.dir)
    other = finished.config.replace(["optim.lr=0.02", f"name={finished.dir.name}"])
    with pytest.raises(FileExistsError, match=r"already holds a different run \(optim.lr: 0.005 there, 0.02 here\)"):
        train(other)
    with pytest.raises(FileExistsError, match="different run"):
        train(other, force=True)  # force never overwrites another config's run
    assert digest(finished.dir) == before


def test_a_directory_that_is_not_a_run_is_refused(tmp_path, tiny_config):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="holds no run"):
        train(tiny_config(tmp_path, "name=mine"))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_partial_run_needs_resume(finished, tmp_path):
    partial = tmp_path / finished.dir.name
    shutil.copytree(finished.dir, partial)
    (partial / "metrics.json").unlink()  # as if killed after the last checkpoint
    cfg = finished.config.replace([f"out_dir={tmp_path}"])
    with pytest.raises(FileExistsError, match=r"unfinished run .*step 4.*--resume"):
        train(cfg)
    run = train(cfg, resume=True)  # nothing left to train: only the final evaluation
    assert run.finished and run.summary["steps_this_session"] == 0
    for key in METRIC_KEYS:
        assert run.metrics[key] == finished.metrics[key]


def test_nonfinite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, tiny_config):
    cfg = tiny_config(tmp_path, "optim.lr=1e30", "schedule.warmup_steps=0", "checkpoint_every=1", "eval.every=0")
    with pytest.raises(NonFiniteLossError, match=r"loss is (nan|inf) at step 2; .*last good checkpoint is .*checkpoint.pt \(step 1\)") as info:
        train(cfg)
    assert info.value.step == 2
    d = run_dir(cfg)
    assert read_checkpoint(d / "checkpoint.pt")["step"] == 1
    for tensor in state_of(d / "checkpoint.pt").values():
        assert torch.isfinite(tensor.float()).all()
    assert not (d / "metrics.json").exists()
    rows = Run.load(d).history["steps"]
    assert [r["step"] for r in rows] == [1, 2] and not math.isfinite(rows[-1]["loss"])


def test_class_count_that_disagrees_with_the_data_fails_before_training(tmp_path, tiny_config):
    cfg = tiny_config(tmp_path, "model.num_classes=3")  # the synthetic scenes have 8 classes
    with pytest.raises(ValueError, match="model.num_classes=3 but dataset 'synthetic' has 8 classes"):
        train(cfg)
    assert not run_dir(cfg).exists()
    # the right count, set by hand, is the same run as taking it from the data
    assert tiny_config(tmp_path, "model.num_classes=8").identity_hash() == tiny_config(tmp_path).identity_hash()


def test_missing_data_root_writes_nothing(tmp_path, tiny_config):
    cfg = tiny_config(tmp_path / "out", "data.dataset=camvid", f"data.root={tmp_path / 'no-such-dir'}", "data.options={}")
    with pytest.raises(FileNotFoundError, match="no-such-dir"):
        train(cfg)
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_older_than_a_config_field_loads_with_its_default(finished):
    """A checkpoint written before a field existed (here: refinement) holds the field's
    default: it loads into the model that default builds, and not into another."""
    state = torch.load(finished.checkpoint, map_location="cpu", weights_only=False)
    state["model_config"].pop("refinement")
    model = refinenet("resnet18", 8, widths=(16, 8, 8, 8))
    load_weights(model, state)
    other = refinenet("resnet18", 8, widths=(16, 8, 8, 8), refinement=False)
    with pytest.raises(ValueError, match=r"refinement: checkpoint True vs model False"):
        load_weights(other, state)


def test_checkpoint_of_another_architecture_is_refused(finished):
    model = refinenet("resnet18", 8, widths=(16, 8, 8, 8), cascade=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"different architecture \(cascade: checkpoint 4 vs model 2\).*load_model"):
        load_weights(model, finished.checkpoint)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="not a refinenet training checkpoint"):
        bare = finished.dir / "bare.pt"
        torch.save(model.state_dict(), bare)
        try:
            load_weights(model, bare)
        finally:
            bare.unlink()


# -- command line ----------------------------------------------------------------------------


def test_cli_train_reuses_and_evaluate_and_predict(finished, tmp_path, capsys):
    cfg_file = tmp_path / "tiny.yaml"
    cfg_file.write_text(finished.config.to_yaml())
    assert main(["train", str(cfg_file), f"out_dir={finished.config.out_dir}"]) == 0
    out = capsys.readouterr().out
    assert f"found finished run: {finished.dir}" in out and "mIoU" in out

    assert main(["train", str(cfg_file), "--print-config", "optim.lr=0.5"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["optim"]["lr"] == 0.5

    result = tmp_path / "eval.json"
    assert main(["evaluate", str(finished.dir), "--json", str(result)]) == 0
    out = capsys.readouterr().out
    assert "sky" in out and "mIoU" in out
    assert json.loads(result.read_text())["miou"] == finished.metrics["miou"]
    assert main(["evaluate", "--checkpoint", str(finished.checkpoint), "--scales", "0.4,1.0,1.5", "--flip", "--no-boundary"]) == 0
    assert "note: 4 image-scale pairs skipped" in capsys.readouterr().out  # 0.4 x 64 px < 32 px

    from PIL import Image

    from refinenet.data import SyntheticScenes

    image, _ = SyntheticScenes(1, (50, 70), split="test").arrays(0)
    Image.fromarray(image).save(tmp_path / "street.png")
    assert main(["predict", str(tmp_path / "street.png"), "--checkpoint", str(finished.dir), "--out", str(tmp_path / "pred")]) == 0
    for suffix in ("mask", "overlay", "labels"):
        with Image.open(tmp_path / "pred" / f"street_{suffix}.png") as img:
            assert img.size == (70, 50)
    with Image.open(tmp_path / "pred" / "street_labels.png") as img:
        assert img.mode == "L" and int(np.asarray(img).max()) < 8


def test_cli_bad_input_is_one_line(finished, tmp_path, capsys):
    cfg_file = tmp_path / "tiny.yaml"
    cfg_file.write_text(finished.config.to_yaml())
    assert main(["train", str(cfg_file), "optim.lrr=0.1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("refinenet train: error: unknown config key 'optim.lrr'; did you mean 'optim.lr'?")
    assert main(["train", str(tmp_path / "missing.yaml")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["evaluate", str(finished.checkpoint), "model.crp_blocks=4"]) == 1
    assert "different architecture (crp_blocks: checkpoint 2 vs model 4)" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nothing.pt")]) == 1
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    "switches",
    [
        # fp16 autocast with a GradScaler, channels_last, loss at 1/4, AdamW
        ("precision.amp=fp16", "precision.channels_last=true", "model.output=quarter", "optim.name=adamw", "optim.lr=1e-3"),
        # bf16 autocast, batches augmented on the device (refinenet.data.gpu), multi-scale + flip eval
        ("precision.amp=bf16", "data.on_device=true", "eval.scales=[0.75, 1.0]", "eval.flip=true", "optim.grad_clip=1.0"),
    ],
    ids=["fp16-quarter-adamw", "bf16-on-device-multiscale"],
)
def test_precision_and_speed_switches_train_on_cpu(tmp_path, switches, tiny_config):
    cfg = tiny_config(tmp_path, "schedule.steps=2", "eval.every=0", "eval.boundary=false", "deterministic=false", *switches)
    run = train(cfg)
    assert run.finished and all(math.isfinite(r["loss"]) for r in run.history["steps"])
    p = run.summary["precision"]
    assert p["amp"] == cfg.precision.amp
    assert p["channels_last"] == resolve_precision(cfg.precision, torch.device("cpu")).channels_last
    assert "boundary_iou" not in run.metrics and run.metrics["scales"] == list(cfg.eval.scales)
    scaler = read_checkpoint(run.checkpoint)["scaler"]
    assert bool(scaler) == (cfg.precision.amp == "fp16")  # only fp16 scales the loss


def test_sync_bn_needs_cuda(tmp_path, monkeypatch, tiny_config):
    monkeypatch.setenv("WORLD_SIZE", "2")  # as under torchrun; fails before joining a group
    with pytest.raises(ValueError, match="sync_bn=true needs CUDA"):
        train(tiny_config(tmp_path, "distributed.sync_bn=true"))
    assert not tmp_path.joinpath(run_name(tiny_config(tmp_path))).exists()


def test_loader_workers_do_not_change_the_result(finished, tmp_path):
    # Augmentation is seeded per (seed, epoch, sample), so which process loads a sample and
    # how many it loaded before do not matter: two workers give the same bits as none.
    workers = train(finished.config.replace(["data.num_workers=2", "name=workers", "eval.every=0"]))
    plain = state_of(finished.checkpoint)
    for key, value in state_of(workers.checkpoint).items():
        assert torch.equal(value, plain[key]), key


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    from refinenet.engine.checkpoint import atomic_write, atomic_write_text

    target = tmp_path / "checkpoint.pt"
    atomic_write_text(target, "old")

    def torn(f):
        f.write(b"half of the new")
        raise KeyboardInterrupt  # e.g. interrupted mid-write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, torn)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary left


def test_tensorboard_without_the_package_fails_before_writing(tmp_path, tiny_config):
    try:
        import tensorboard  # noqa: F401

        pytest.skip("tensorboard is installed")
    except ImportError:
        pass
    with pytest.raises(ValueError, match="pip install tensorboard"):
        train(tiny_config(tmp_path, "log.tensorboard=true"))
    assert list(tmp_path.iterdir()) == []


def test_run_evaluate_other_splits_is_cached(finished, monkeypatch):
    result = finished.evaluate("test", scales=(1.0, 1.25))
    assert result["split"] == "test" and result["images"] == 4 and result["scales"] == [1.0, 1.25]
    cached = list(finished.dir.glob("eval-test-*.json"))
    assert len(cached) == 1

    def fail(*args, **kwargs):
        raise AssertionError("recomputed a cached evaluation")

    monkeypatch.setattr("refinenet.engine.evaluation.evaluate", fail)
    assert finished.evaluate("test", scales=(1.0, 1.25)) == json.loads(cached[0].read_text())
