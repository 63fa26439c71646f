"""TrainConfig: defaults, YAML round trip, key=value overrides, strict validation, identity."""

from __future__ import annotations

import pytest
import yaml

from refinenet.engine import TrainConfig, load_config
from refinenet.engine.config import parse_overrides


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
    cfg = TrainConfig().replace(optim__lr=0.5, schedule__steps=10)
    assert (cfg.optim.lr, cfg.schedule.steps) == (0.5, 10)
    assert parse_overrides(["a.b=x=y"]) == [("a.b", "x=y")]


def test_partial_yaml_takes_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 0.05\nseed: 2\n")
    cfg = load_config(path, ["schedule.steps=7"])
    assert cfg.optim.lr == 0.05 and cfg.seed == 2 and cfg.schedule.steps == 7
    assert cfg.optim.momentum == 0.9


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=0.1", "unknown config key 'optim.lrr'; did you mean 'optim.lr'"),
        ("sead=1", "did you mean 'seed'"),
        ("optimizer.lr=1", "unknown config key 'optimizer.lr'"),
        ("optim.lr=fast", r"optim.lr='fast' \(str\): expected a float"),
        ("seed=1.5", "seed=1.5 .*expected an int"),
        ("model.crp_relu=3", "expected true/false"),
        ("model.scales=1.0", "expected a list of a float"),
        ("data.size=[1, 2, 3]", "data.size"),
        ("precision.amp=fp8", "expected 'auto' or 'none' or 'bf16' or 'fp16'"),
        ("model.cascade=3", "model.cascade=3: must be 1, 2 or 4"),
        ("optim.lr=-1", "optim.lr=-1.0: must be a positive float"),
        ("data.crop_size=[16, 16]", ">= 32"),
        ("schedule.warmup_steps=-1", "warmup_steps"),
        ("optim=3", "is a section"),
        ("device=tpu", "device"),
        ("name=a/b", "plain directory name"),
        ("novalue", "not key=value"),
    ],
)
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig().replace([override])


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
    same = base.replace(["name=x", "out_dir=/elsewhere", "log.every=1", "data.num_workers=3", "checkpoint_every=7"])
    assert same.identity_hash() == base.identity_hash()
    for change in ("optim.lr=0.02", "seed=1", "model.crp_blocks=4", "precision.amp=bf16", "eval.flip=true"):
        assert base.replace([change]).identity_hash() != base.identity_hash(), change
    assert base.run_name() == f"camvid-resnet101-{base.identity_hash()}"
    assert same.run_name() == "x"


def test_sections_accept_dicts_and_to_dict_is_plain():
    cfg = TrainConfig(optim={"lr": 0.2}, model={"scales": [1.2, 0.6]})
    assert cfg.optim.lr == 0.2 and cfg.model.scales == (1.2, 0.6)
    d = cfg.to_dict()
    assert d["model"]["scales"] == [1.2, 0.6]
    assert yaml.safe_load(yaml.safe_dump(d)) == d
    with pytest.raises(ValueError, match="unknown config key 'optim.bogus'"):
        TrainConfig(optim={"bogus": 1})
