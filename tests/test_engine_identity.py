"""Run identity: the config plus fingerprints of the data and of the backbone weights."""

import json
import shutil

import pytest

from refinenet.data import fingerprint as fp
from fakes import fake_camvid, fake_sbd, fake_voc
from refinenet.engine.config import TrainConfig
from refinenet.engine.identity import data_splits, run_id, run_identity


# No packs of the developer's, private digest caches (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("isolated_data_caches")


def _cfg(root, **model):
    return TrainConfig.from_dict({
        "data": {"dataset": "camvid", "root": str(root), "size": [36, 48],
                 "options": {"packed": False}},
        "model": {"backbone": "resnet18", **model},
    })


@pytest.fixture
def roots(tmp_path):
    counts = {"train": 2, "val": 1, "test": 1}
    a = fake_camvid(tmp_path / "a" / "camvid", counts=counts)
    same = shutil.copytree(a, tmp_path / "same" / "camvid")
    other = fake_camvid(tmp_path / "other" / "camvid", counts=counts, seed=7)
    return a, same, other


def test_identity_holds_the_config_and_every_split(roots):
    a, _, _ = roots
    cfg = _cfg(a)
    ident = run_identity(cfg)
    assert set(ident["data_fingerprints"]) == {"camvid/train", "camvid/val", "camvid/test"}
    assert all(len(v) == 64 for v in ident["data_fingerprints"].values())
    assert ident["backbone_weights_sha256"] is None
    expected = cfg.identity()
    assert "backbone_weights" not in expected["model"]  # the path is not part of the identity
    assert {k: v for k, v in ident.items() if k not in ("data_fingerprints",
                                                        "backbone_weights_sha256")} == expected
    json.dumps(ident)  # plain JSON
    rid = run_id(cfg)
    assert len(rid) == 12 and int(rid, 16) >= 0 and run_id(cfg) == rid
    assert set(run_identity(cfg, splits=["train"])["data_fingerprints"]) == {"camvid/train"}


def test_run_id_follows_the_data_not_the_root(roots):
    a, same, other = roots
    assert run_id(_cfg(a)) == run_id(_cfg(same))  # the config hash alone says this too ...
    assert _cfg(a).identity_hash() == _cfg(other).identity_hash()
    assert run_id(_cfg(a)) != run_id(_cfg(other))  # ... but only the run id tells these apart
    # Only the test split differs: still another run (its scores would differ).
    shutil.copy(other / "test" / "0001TP_test_0000.png", same / "test" / "0001TP_test_0000.png")
    assert run_id(_cfg(same)) != run_id(_cfg(a))


def test_run_id_follows_the_weights_bytes_not_their_path(roots, tmp_path):
    a, _, _ = roots
    weights = tmp_path / "resnet18.pth"
    weights.write_bytes(b"first weights" * 100)
    first = run_id(_cfg(a, backbone_weights=str(weights)))
    assert first != run_id(_cfg(a))
    assert run_identity(_cfg(a, backbone_weights=str(weights)))["backbone_weights_sha256"] == \
        fp.file_sha256(weights)
    copy = tmp_path / "elsewhere.pth"
    shutil.copy(weights, copy)
    assert run_id(_cfg(a, backbone_weights=str(copy))) == first
    weights.write_bytes(b"other weights" * 100)  # replaced at the same path
    assert run_id(_cfg(a, backbone_weights=str(weights))) != first


def test_missing_weights_name_the_key(roots, tmp_path):
    a, _, _ = roots
    with pytest.raises(FileNotFoundError, match="model.backbone_weights.*nope.pth"):
        run_id(_cfg(a, backbone_weights=str(tmp_path / "nope.pth")))


def test_val_dataset_and_synthetic(tmp_path, monkeypatch):
    fake_voc(tmp_path / "data" / "voc")
    fake_sbd(tmp_path / "data" / "sbd")
    monkeypatch.setenv("REFINENET_DATA", str(tmp_path / "data"))
    cfg = TrainConfig.from_dict({"data": {"dataset": "sbd", "train_split": "train_aug",
                                          "val_dataset": "voc", "crop_size": [64, 64]}})
    assert [s[:2] for s in data_splits(cfg)] == [("sbd", "train_aug"), ("voc", "val")]
    assert set(run_identity(cfg)["data_fingerprints"]) == {"sbd/train_aug", "voc/val"}
    assert set(run_identity(cfg, splits=["voc/train"])["data_fingerprints"]) == {"voc/train"}

    def synth(n):
        return TrainConfig.from_dict({"data": {"dataset": "synthetic", "size": [32, 40],
                                               "options": {"n": n}}})

    assert set(run_identity(synth(4))["data_fingerprints"]) == {"synthetic/train",
                                                                 "synthetic/val"}
    assert run_id(synth(4)) == run_id(synth(4)) != run_id(synth(5))


def _flat(d, prefix=""):
    out = set()
    for k, v in d.items():
        out |= _flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k}
    return out


# The identity's fields when the ledger began holding entries (2026-11-29). A field added since
# must be listed in IDENTITY_ADDED with the value that trains as before it existed, so that the
# entries already trained keep their run ids.
LEDGER_FIELDS = {
    "data.batch_size", "data.crop_size", "data.dataset", "data.hflip", "data.on_device", "data.scale_range",
    "data.size", "data.train_split", "data.val_dataset", "data.val_split", "deterministic", "device",
    "distributed.backend", "distributed.sync_bn", "eval.boundary", "eval.every", "eval.flip", "eval.scales",
    "loss.class_weight_power", "loss.class_weights", "model.backbone", "model.cascade", "model.crp_blocks",
    "model.crp_order", "model.crp_relu", "model.dropout", "model.output", "model.scales", "model.widths",
    "optim.backbone_lr_mult", "optim.betas", "optim.grad_clip", "optim.lr", "optim.momentum", "optim.name",
    "optim.nesterov", "optim.weight_decay", "precision.amp", "precision.channels_last", "precision.compile",
    "precision.cudnn_benchmark", "precision.fused_optimizer", "schedule.gamma", "schedule.milestones",
    "schedule.name", "schedule.power", "schedule.steps", "schedule.warmup_factor", "schedule.warmup_steps", "seed",
}


def test_a_field_added_since_the_ledger_began_keeps_its_run_ids():
    from refinenet.engine.config import IDENTITY_ADDED

    cfg = TrainConfig()
    new = _flat(cfg.identity()) - LEDGER_FIELDS
    assert not new, f"new config fields {sorted(new)}: list each in IDENTITY_ADDED with the value that trains as before"
    assert LEDGER_FIELDS - _flat(cfg.identity()) == set()
    for key, before in IDENTITY_ADDED.items():
        assert cfg.replace({key: before}).identity_hash() == cfg.identity_hash()
        other = {"data.color_jitter": 0.3, "model.refinement": False}[key]
        assert cfg.replace({key: other}).identity_hash() != cfg.identity_hash(), key
