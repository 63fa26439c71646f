"""TrainConfig: defaults, YAML round trip, key=value overrides, strict validation, identity."""

from __future__ import annotations

import pytest
import yaml

from refinenet.engine import TrainConfig, load_config
from refinenet.engine.config import parse_overrides
from refinenet.models import RefineNet, RefineNetConfig


def test_defaults_are_the_released_optimiser():
    cfg = TrainConfig()
    assert (cfg.optim.name, cfg.optim.momentum, cfg.optim.weight_decay) == ("sgd", 0.9, 5e-4)
    assert cfg.model.backbone == "resnet101" and cfg.model.cascade == 4
    assert cfg.precision.amp == "auto"


def test_yaml_round_trip(tmp_path):
    cfg = TrainConfig().replace(["model.scales=[1.2, 0.6]", "data.size=[180, 240]", "optim.name=adamw"])
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    back = load_config(path)
    assert back == cfg
    assert back.model.scales == (1.2, 0.6) and back.data.size == (180, 240)
    assert back.identity_hash() == cfg.identity_hash()


def test_overrides_parse_yaml_values_and_coerce():
    cfg = TrainConfig().replace(["optim.lr=1e-3", "seed=3", "model.crp_relu=false", "name=null", "eval.scales=[1]"])
    assert cfg.optim.lr == 1e-3 and isinstance(cfg.optim.lr, float)
    assert cfg.seed == 3 and cfg.model.crp_relu is False and cfg.name is None
    assert cfg.eval.scales == (1.0,)
    cfg = TrainConfig().replace(optim__lr=0.5, schedule__steps=10, schedule__warmup_steps=2)
    assert (cfg.optim.lr, cfg.schedule.steps) == (0.5, 10)
    assert parse_overrides(["a.b=x=y"]) == [("a.b", "x=y")]


def test_partial_yaml_takes_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 0.05\nseed: 2\n")
    cfg = load_config(path, ["schedule.steps=7", "schedule.warmup_steps=0"])
    assert cfg.optim.lr == 0.05 and cfg.seed == 2 and cfg.schedule.steps == 7
    assert cfg.optim.momentum == 0.9


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=0.1", "unknown config key 'optim.lrr'; did you mean 'optim.lr'"),
        ("sead=1", "did you mean 'seed'"),
        ("optimizer.lr=1", "unknown config key 'optimizer.lr'"),
        ("model.crp_rlu=false", "unknown config key 'model.crp_rlu'; did you mean 'model.crp_relu'"),
        ("loss.resolution=quarter", "'loss.resolution' is now model.output"),
        ("optim.lr=fast", r"optim.lr='fast' \(str\): expected a float > 0"),
        ("seed=1.5", r"seed=1.5 \(float\): expected an int >= 0"),
        ("schedule.steps=2.0", "expected an int"),
        ("model.crp_relu=3", "expected true/false"),
        ("model.crp_relu='yes'", r"model.crp_relu='yes' \(str\): expected true/false"),
        ("optim.lr=true", r"optim.lr=True \(bool\): expected a float"),
        ("model.scales=1.0", "expected a non-empty list of floats > 0"),
        ("model.scales=[]", "expected a non-empty list of floats > 0"),
        ("model.widths=[64, 32]", "expected a list of 4 ints > 0"),
        ("data.size=[1, 2, 3]", "data.size"),
        ("precision.amp=fp8", "expected 'auto' or 'none' or 'bf16' or 'fp16'"),
        ("model.cascade=3", r"model.cascade=3 \(int\): expected 1 or 2 or 4"),
        ("model.cascade=true", "expected 1 or 2 or 4"),
        ("model.output=half", "expected 'full' or 'quarter'"),
        ("model.num_classes=0", r"model.num_classes=0 \(int\): expected an int > 0 or null"),
        ("optim.lr=-1", r"optim.lr=-1 \(int\): expected a float > 0"),
        ("optim.lr=.inf", "optim.lr=inf .*expected a float > 0"),
        ("optim.lr=inf", "optim.lr='inf' .*expected a float > 0"),
        ("optim.lr=.nan", "optim.lr=nan .*expected a float > 0"),
        ("optim.momentum=1", "expected a float >= 0 and < 1"),
        ("optim.backbone_lr_mult=-1", "expected a float >= 0 or 'auto'"),
        ("data.crop_size=[16, 16]", ">= 32"),
        ("data.scale_range=[1.3, 0.7]", r"data.scale_range=\[1.3, 0.7\]: must be \(low, high\) with low <= high"),
        ("schedule.warmup_steps=-1", "warmup_steps"),
        ("schedule.warmup_steps=2000", "schedule.warmup_steps=2000: must be < schedule.steps=2000"),
        ("schedule.steps=50", "schedule.warmup_steps=100: must be < schedule.steps=50"),
        ("optim=3", "is a section"),
        ("device=tpu", "device"),
        ("device=cuda:x", "device"),
        ("name=a/b", "plain directory name"),
        ("novalue", "not key=value"),
    ],
)
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ValueError, match=message) as info:
        TrainConfig().replace([override])
    # one readable ValueError, not pydantic's ValidationError (nor one chained to it)
    assert type(info.value) is ValueError and info.value.__cause__ is None
    assert "pydantic" not in str(info.value) and "\n" not in str(info.value)


def test_lax_where_yaml_is():
    cfg = TrainConfig().replace(["optim.lr=1", "optim.grad_clip=2", "data.scale_range=[1, 2]"])
    assert isinstance(cfg.optim.lr, float) and cfg.optim.grad_clip == 2.0 and cfg.data.scale_range == (1.0, 2.0)
    assert TrainConfig.from_dict({"optim": {"lr": "1e-3"}}).optim.lr == 1e-3  # how PyYAML reads 1e-3
    # a warm-up of 0 never conflicts with the run's length
    assert TrainConfig().replace(["schedule.steps=1", "schedule.warmup_steps=0"]).schedule.steps == 1


def test_several_errors_in_one_message():
    with pytest.raises(ValueError) as info:
        TrainConfig.from_dict({"optim": {"lr": 0, "momentum": 2}, "model": {"cascade": 3}})
    text = str(info.value)
    assert "optim.lr=0" in text and "optim.momentum=2" in text and "model.cascade=3" in text


def test_unknown_key_in_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  learning_rate: 0.1\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown config key 'optim.learning_rate'"):
        load_config(path)
    path.write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match="must hold a mapping"):
        load_config(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_identity_ignores_where_and_how_it_is_logged():
    base = TrainConfig()
    same = base.replace(["name=x", "out_dir=/elsewhere", "log.every=1", "data.num_workers=3", "checkpoint_every=7",
                         "data.root=/data/camvid", "data.val_root=/data/val", "eval.batch_size=4", "log.progress=none",
                         "log.tensorboard=true", "model.backbone_weights=/weights/resnet101.pth",
                         "model.num_classes=12"])
    assert same.identity_hash() == base.identity_hash()
    assert same.replace(["model.backbone_weights=/elsewhere/r101.pth"]).identity_hash() == base.identity_hash()
    for change in ("optim.lr=0.02", "seed=1", "model.crp_blocks=4", "precision.amp=bf16", "eval.flip=true",
                   "model.output=quarter", "model.crp_relu=false", "loss.class_weights=median_frequency"):
        assert base.replace([change]).identity_hash() != base.identity_hash(), change
    assert same.name == "x"


def test_sections_accept_dicts_and_to_dict_is_plain():
    cfg = TrainConfig(optim={"lr": 0.2}, model={"scales": [1.2, 0.6]})
    assert cfg.optim.lr == 0.2 and cfg.model.scales == (1.2, 0.6)
    assert isinstance(cfg.model, RefineNetConfig)
    d = cfg.to_dict()
    assert d["model"]["scales"] == [1.2, 0.6]
    assert yaml.safe_load(yaml.safe_dump(d)) == d
    with pytest.raises(ValueError, match="unknown config key 'optim.bogus'"):
        TrainConfig(optim={"bogus": 1})


def test_model_section_is_the_model_config():
    cfg = TrainConfig().replace(["model.backbone=resnet18", "model.widths=[16, 8, 8, 8]", "model.output=quarter"])
    model = RefineNet(cfg.model.with_classes(5))
    assert model.config.num_classes == 5 and model.output == "quarter" and model.config.backbone == "resnet18"
    with pytest.raises(ValueError, match="model.num_classes=12 but dataset 'camvid' has 11 classes"):
        cfg.replace(["model.num_classes=12"]).model.with_classes(11, "dataset 'camvid'")
    assert cfg.replace(["model.num_classes=11"]).model.with_classes(11).num_classes == 11


def test_saved_configs_of_earlier_versions_are_read():
    old = TrainConfig().to_dict()
    old["loss"]["resolution"] = "quarter"
    del old["model"]["output"], old["model"]["num_classes"], old["model"]["backbone_weights"]
    cfg = TrainConfig.from_saved(old)
    assert cfg.model.output == "quarter" and "resolution" not in cfg.to_dict()["loss"]
    with pytest.raises(ValueError, match="is now model.output"):
        TrainConfig.from_dict(old)


def test_released_voc_config_trains_at_quarter():
    cfg = load_config("configs/released-voc.yaml")
    assert cfg.model.output == "quarter" and cfg.model.crp_blocks == 4
