"""The study's shared runs: one config builder, shared by notebooks 03-06, and the tables."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from refinenet.study import recipes, report, stats
from refinenet.study.profiles import PROFILE_NAMES, load_profile
from refinenet.study.recipes import Experiments, Recipe

ROOT = Path(__file__).resolve().parents[1]
SHARING = ("03_training", "04_ablation_crp", "05_ablation_cascade", "06_ablation_scales")


def _study(tmp_path, dataset="synthetic"):
    from refinenet.data import build_dataset

    def data(split, size=None, **kwargs):
        if size is not None:
            kwargs["size"] = tuple(size)
        return build_dataset(dataset, split, **kwargs)

    return SimpleNamespace(
        name="t", profile="t", device="cpu", dataset=dataset, synthetic=dataset == "synthetic",
        output_dir=tmp_path, hardware="cpu", data=data,
    )


TINY = {
    "backbone": "resnet18", "widths": [16, 8, 8, 8], "crop_size": None, "batch_size": 2,
    "steps": 1, "warmup_steps": 0, "lrs": [0.01], "seeds": [0, 1], "eval_every": 0,
    "eval_batch": 4, "scenes": 2, "checkpoint_every": 100,
}


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_notebooks_that_share_runs_get_the_same_recipe_and_size(name):
    profile = load_profile(name)
    seen = {
        nb: (
            profile.parameters_for(nb).get("image_size"),
            profile.parameters_for(nb).get("recipe"),
        )
        for nb in SHARING
    }
    assert len({repr(v) for v in seen.values()}) == 1, seen
    recipe = Recipe.from_dict(seen[SHARING[0]][1])  # valid keys, >= 3 seeds
    assert len(recipe.seeds) >= 3
    assert len(recipe.lrs) >= 2


def test_recipe_defaults_are_the_cpu_profile():
    # Run by hand, a notebook's defaults (recipe={}, image_size=(180, 240)) reproduce cpu's runs.
    params = load_profile("cpu").parameters_for("03_training")
    assert Recipe.from_dict(params["recipe"]) == Recipe()
    assert tuple(params["image_size"]) == (180, 240)


def test_recipe_validation():
    assert Recipe.from_dict({}) == Recipe()
    assert Recipe.from_dict({"lrs": [0.1, 0.2]}).lrs == (0.1, 0.2)
    with pytest.raises(ValueError, match="unknown keys"):
        Recipe.from_dict({"step": 3})
    with pytest.raises(ValueError, match="must not be empty"):
        Recipe.from_dict({"seeds": []})


def test_two_notebooks_build_identical_configs(tmp_path):
    a = Experiments(_study(tmp_path), (64, 64), TINY, runs_dir=str(tmp_path / "runs"), verbose=False)
    b = Experiments(_study(tmp_path), [64, 64], dict(TINY), runs_dir=str(tmp_path / "runs"), verbose=False)
    cfg = a.config(lr=0.01, seed=1)
    assert cfg.identity_hash() == b.config(lr=0.01, seed=1).identity_hash()
    assert cfg.data.options == {"n": 2} and cfg.data.size == (64, 64)
    assert cfg.log.progress == "none" and cfg.eval.boundary
    variant = a.config(lr=0.01, seed=1, crp_relu=False)
    assert variant.identity_hash() != cfg.identity_hash()
    assert variant.to_dict()["optim"] == cfg.to_dict()["optim"]
    assert recipes._model_overrides(variant) == {"crp_relu": False}
    assert recipes._model_overrides(a.config(lr=0.01, scales=(1.2, 0.6))) == {"scales": (1.2, 0.6)}
    assert cfg.loss.class_weights == "median_frequency"  # the recipe's default
    plain = Experiments(_study(tmp_path), (64, 64), {**TINY, "class_weights": "none"},
                        runs_dir=str(tmp_path / "runs"), verbose=False).config(lr=0.01, seed=1)
    assert plain.loss.class_weights == "none"
    assert plain.identity_hash() != cfg.identity_hash()
    assert a.config(lr=0.01, seed=1, class_weights="none").identity_hash() == plain.identity_hash()


def test_train_records_and_tables(tmp_path, capsys):
    exp = Experiments(_study(tmp_path), (64, 64), TINY, runs_dir=str(tmp_path / "runs"))
    assert exp.chosen_lr() == 0.01  # a grid of one rate: no sweep needed
    standard = exp.train("standard")
    again = exp.train("standard")  # same runs, no new line
    assert [r.dir for r in again] == [r.dir for r in standard]
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("standard | lr 0.01 | seed") for line in lines)

    records = exp.records({"standard": standard, "copy": standard})
    assert list(records.seed) == [0, 1, 0, 1]
    for column in ("test mIoU", "test boundary IoU", "parameters (M)", "GMACs", "training s"):
        assert records[column].notna().all(), column
    assert {"IoU pole", "boundary IoU wire", "thin-class mIoU"} <= set(records.columns)
    table = report.ablation_table(records, baseline="standard")
    assert list(table.variant) == ["standard", "copy"]
    assert table.iloc[0, 3] == "(reference)"
    assert table.iloc[1, 3].startswith("+0.0 [-")  # the same runs: 0, symmetric interval
    assert "±" in table.iloc[0, 2]
    thin = report.thin_table(records, exp.thin_classes, baseline="standard")
    assert list(thin.columns) == ["variant", "n", "pole %", "wire %"]
    row = report.claim("x", "y", "z", records["test mIoU"][:2], records["test mIoU"][2:],
                       better_label="a", worse_label="b", notebook="nb")
    assert row["verdict"] == stats.NOT_RESOLVED and row["difference"] == 0
    assert "diverged" not in row["ours"]
    row = report.claim("x", "y", "z", [30.0, 31.0, 29.0], [30.0, 0.0, 31.0], better_label="a",
                       worse_label="b", notebook="nb", diverged=(0, 1))
    assert row["ours"].endswith("diverged, scored 0: 0 of 3 a, 1 of 3 b")
    styled = report.styled(table, report.caption(exp.study, "T."))
    assert "±" in styled.to_html()


def test_a_diverged_run_scores_zero(tmp_path, monkeypatch, capsys):
    from refinenet import engine

    def diverge(cfg, **kwargs):
        raise engine.NonFiniteLossError(3, float("nan"), None, None)

    monkeypatch.setattr(engine, "train", diverge)
    exp = Experiments(_study(tmp_path), (64, 64), TINY, runs_dir=str(tmp_path / "runs"))
    runs = exp.train("hot", lr=0.01)
    assert all(r.diverged for r in runs)
    assert "DIVERGED at step 3" in capsys.readouterr().out
    records = exp.records({"hot": runs})
    assert (records["test mIoU"] == 0).all() and records["diverged"].all()


def test_published_per_class_rows_reproduce_the_published_means():
    from refinenet.data.camvid import CamVid
    from refinenet.study.recipes import PUBLISHED_CAMVID, PUBLISHED_CAMVID_PER_CLASS

    overall = {m["method"]: m["test mIoU %"] for m in PUBLISHED_CAMVID}
    for method, row in PUBLISHED_CAMVID_PER_CLASS.items():
        assert list(row) == list(CamVid.class_names), method  # our names, our order
        assert abs(sum(row.values()) / len(row) - overall[method]) < 0.05, method
