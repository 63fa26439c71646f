"""Bad situations around training runs end in one clear line, and nothing is lost: a run
locked against a second process, file permissions, a full disk, read-only output folders,
unknown devices, a checkpoint scored on another data set, a corrupt partial checkpoint, NaN
backbone weights and bad validation labels."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from refinenet.cli import main
from refinenet.engine import read_checkpoint, train
from refinenet.engine.identity import run_dir

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def finished(tmp_path_factory, one_thread, tiny_config):
    return train(tiny_config(tmp_path_factory.mktemp("runs")))


def config_file(cfg, path: Path) -> str:
    path.write_text(cfg.to_yaml())
    return str(path)


def one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "\n" not in err, err
    assert err.startswith(f"refinenet {command}: error: "), err
    return err


@pytest.fixture
def read_only(tmp_path, monkeypatch):
    """A folder files cannot be created in. Root ignores permission bits, so for root
    ``os.access`` (what a writability check asks, and what honours read-only mounts) is told
    the same."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:
        real = os.access

        def access(path, mode, *args, **kwargs):
            if Path(os.path.abspath(path)) == folder and mode & os.W_OK:
                return False
            return real(path, mode, *args, **kwargs)

        monkeypatch.setattr(os, "access", access)
    yield folder
    folder.chmod(0o755)


# -- 1. one process per run ------------------------------------------------------------------


def test_a_locked_run_is_refused_and_a_killed_holder_leaves_no_lock(tmp_path, tiny_config, capsys):
    cfg = tiny_config(tmp_path / "out", "schedule.steps=2")
    # Another process training this run: it holds an exclusive flock on <run dir>/.lock.
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time; os.makedirs(sys.argv[1]); fd = os.open(sys.argv[1] + '/.lock', os.O_RDWR | os.O_CREAT); "
         "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'%d' % os.getpid()); print('locked', flush=True); time.sleep(120)",
         str(run_dir(cfg))],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        for flags in ([], ["--resume"], ["--force"]):
            assert main(["train", config_file(cfg, tmp_path / "c.yaml"), *flags]) == 1
            err = one_line_error(capsys, "train")
            assert f"{run_dir(cfg)} is in use by another process (pid {holder.pid})" in err
        assert not (run_dir(cfg) / "config.yaml").exists(), "the refused run wrote nothing"
    finally:
        holder.kill()  # SIGKILL: no clean-up runs in the holder
        holder.wait()
    assert (run_dir(cfg) / ".lock").is_file()
    assert train(cfg).finished, "the kernel released the dead process's lock; the file left is no lock"


# -- 2. permissions --------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o007])
def test_run_files_get_the_umasks_permissions(tmp_path, umask):
    from refinenet.engine.checkpoint import atomic_write_text, save_checkpoint

    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "metrics.json", "{}")
        save_checkpoint(tmp_path / "checkpoint.pt", {"step": 1})
    finally:
        os.umask(old)
    for name in ("metrics.json", "checkpoint.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name


# -- 3. disk full ----------------------------------------------------------------------------


def test_disk_full_during_a_checkpoint_is_one_line_and_keeps_the_last_one(tmp_path, tiny_config, monkeypatch, capsys):
    cfg = tiny_config(tmp_path / "out")  # checkpoints at steps 2 and 4
    real_save, calls = torch.save, []

    def save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            f.write(b"the first bytes of a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    path = config_file(cfg, tmp_path / "c.yaml")
    assert main(["train", path]) == 1
    err = one_line_error(capsys, "train")
    ckpt = run_dir(cfg) / "checkpoint.pt"
    assert f"could not write {ckpt}: No space left on device" in err
    assert "its checkpoint of step 2 is intact" in err and "--resume" in err
    assert read_checkpoint(ckpt)["step"] == 2
    assert not list(run_dir(cfg).glob("*.tmp")) and not list(run_dir(cfg).glob(".*.tmp"))
    monkeypatch.setattr(torch, "save", real_save)  # space freed
    assert main(["train", path, "--resume"]) == 0 and read_checkpoint(ckpt)["step"] == 4


# -- 4. read-only output folders -------------------------------------------------------------


def test_train_into_a_read_only_folder_fails_before_any_work(tmp_path, tiny_config, read_only, monkeypatch, capsys):
    from refinenet.engine import trainer

    def no_work(*args, **kwargs):
        raise AssertionError("the data was built before the output folder was checked")

    monkeypatch.setattr(trainer, "build_train_set", no_work)
    cfg = tiny_config(read_only / "runs")
    assert main(["train", config_file(cfg, tmp_path / "c.yaml")]) == 1
    assert f"run directory {run_dir(cfg)} is not writable" in one_line_error(capsys, "train")


def test_predict_and_evaluate_json_into_a_read_only_folder_fail_first(tmp_path, read_only, capsys):
    # The checkpoint does not even exist: the folder is checked before the model is read.
    missing = str(tmp_path / "no-such.pt")
    from PIL import Image

    Image.new("RGB", (40, 40)).save(tmp_path / "x.png")
    assert main(["predict", str(tmp_path / "x.png"), "--checkpoint", missing, "--out", str(read_only / "pred")]) == 1
    assert f"output folder {read_only / 'pred'} is not writable" in one_line_error(capsys, "predict")
    assert main(["evaluate", missing, "--json", str(read_only / "eval.json")]) == 1
    assert f"{read_only} is not writable" in one_line_error(capsys, "evaluate")


# -- 5. devices ------------------------------------------------------------------------------


def test_unknown_device_lists_the_allowed_ones(finished, tmp_path, capsys):
    assert main(["evaluate", str(finished.dir), "--device", "bogus"]) == 1
    assert "unknown device 'bogus'; use auto, cpu, cuda or cuda:N" in one_line_error(capsys, "evaluate")
    assert main(["predict", str(tmp_path / "x.png"), "--checkpoint", str(finished.dir), "--out", str(tmp_path), "--device", "bogus"]) == 1
    assert "unknown device 'bogus'; use auto, cpu, cuda or cuda:N" in one_line_error(capsys, "predict")
    assert main(["train", config_file(finished.config, tmp_path / "c.yaml"), "--device", "bogus"]) == 1
    assert "device='bogus': must be 'auto', 'cpu', 'cuda' or 'cuda:N'" in one_line_error(capsys, "train")


# -- 6. another data set ---------------------------------------------------------------------


def test_evaluating_on_a_data_set_with_other_classes_is_one_line(finished, capsys):
    assert main(["evaluate", str(finished.dir), "data.dataset=camvid"]) == 1
    err = one_line_error(capsys, "evaluate")
    assert "was trained on 'synthetic' (8 classes), but data.dataset=camvid has other classes (11)" in err


# -- 7. a corrupt partial checkpoint ---------------------------------------------------------


def test_force_starts_over_from_a_corrupt_partial_checkpoint(tmp_path, tiny_config, capsys):
    cfg = tiny_config(tmp_path / "out", "schedule.steps=2")
    run = train(cfg)
    (run.dir / "metrics.json").unlink()  # unfinished...
    (run.dir / "checkpoint.pt").write_bytes(b"torn")  # ...with a checkpoint that cannot be read
    path = config_file(cfg, tmp_path / "c.yaml")
    for flags in ([], ["--resume"]):
        assert main(["train", path, *flags]) == 1
        err = one_line_error(capsys, "train")
        assert "whose checkpoint cannot be read" in err and "(--force) to start it over" in err
    assert main(["train", path, "--force"]) == 0
    assert read_checkpoint(run.dir / "checkpoint.pt")["step"] == 2 and (run.dir / "metrics.json").is_file()


# -- 8. NaN backbone weights -----------------------------------------------------------------


def test_non_finite_backbone_weights_name_the_file(tmp_path):
    from refinenet.models.backbone import ResNetBackbone, load_backbone_state_dict

    state = ResNetBackbone("resnet18").state_dict()
    state["layer2.0.conv1.weight"][0, 0, 0, 0] = float("nan")
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    fresh = ResNetBackbone("resnet18")
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(ValueError, match=r"holds NaN or infinite values \(layer2.0.conv1.weight\); the file is bad"):
        load_backbone_state_dict(fresh, path)
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items()), "nothing loaded"


# -- 9. bad validation labels ----------------------------------------------------------------


def test_bad_validation_labels_fail_before_the_first_step(tmp_path, tiny_config, monkeypatch):
    from fakes import fake_camvid

    from refinenet.engine import trainer

    root = fake_camvid(tmp_path / "CamVid", counts={"train": 2, "val": 2, "test": 1}, size=(32, 32))
    label = root / "valannot" / "0001TP_val_0001.png"
    bad = np.asarray(Image.open(label)).copy()
    bad[0, 0] = 20  # CamVid has 11 classes and ignores 11
    Image.fromarray(bad, mode="L").save(label)
    steps = []
    real_step = trainer.train_step
    monkeypatch.setattr(trainer, "train_step", lambda *a, **k: steps.append(1) or real_step(*a, **k))
    cfg = tiny_config(tmp_path / "out", "data.dataset=camvid", f"data.root={root}", "data.options={}", "data.size=[32,32]")
    with pytest.raises(ValueError, match=r"0001TP_val_0001.png has values 20 outside"):
        train(cfg)
    assert steps == [], "no training step before the labels were checked"


def test_the_label_check_reads_every_sample_of_the_split():
    from refinenet.engine.data import DatasetInfo
    from refinenet.engine.trainer import check_eval_labels

    class Labels:
        num_classes, ignore_index = 3, 255

        def __init__(self, masks):
            self.masks = masks

        def __len__(self):
            return len(self.masks)

        def load(self, i):
            return None, torch.as_tensor(self.masks[i])

    info = DatasetInfo("fake", 3, 255, ("a", "b", "c"), ((0, 0, 0),) * 3, (0.5,) * 3, (0.5,) * 3)
    check_eval_labels(Labels([[0, 1, 2, 255]]), "val", info)
    with pytest.raises(ValueError, match=r"'val' split: sample 1 has label values 3, 7 outside the classes 0..2"):
        check_eval_labels(Labels([[0, 255], [3, 7, 1]]), "val", info)
