"""The benchmark command runs on a tiny configuration (CI checks it runs; no timing asserted)."""

import csv
import json

import pytest

from refinenet.cli import main


def test_bench_tiny_runs_and_writes_csv(tmp_path, capsys):
    out = tmp_path / "bench.csv"
    assert main(["bench", "--preset", "tiny", "--repeats", "1", "--warmup", "0", "--device", "cpu",
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out)))
    paths = ["baseline", "channels_last", "bf16", "bf16+channels_last"]
    assert [(r["mode"], r["path"]) for r in rows] == (
        [("inference", p) for p in paths] + [("train", p) for p in [*paths, "bf16+channels_last+fused"]])
    for row in rows:
        assert float(row["median_s"]) > 0 and float(row["peak_tflops"]) > 0
        assert row["device"] == "cpu" and row["torch"]
    base = rows[0]
    assert float(base["speedup"]) == 1.0 and base["argmax_agreement"] == ""
    assert 0.0 <= float(rows[1]["argmax_agreement"]) <= 1.0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["rows"] == len(rows)


def test_bench_rejects_unknown_preset(capsys):
    assert main(["bench", "--preset", "huge"]) == 1
    assert "unknown preset(s) ['huge']; choose from ['paper', 'study', 'tiny']" in capsys.readouterr().err


@pytest.mark.parametrize("modes", ["", "inference,eval"])
def test_bench_rejects_bad_modes(modes, capsys):
    assert main(["bench", "--preset", "tiny", "--modes", modes]) == 1
    assert "--modes must be" in capsys.readouterr().err


def test_bench_parity_trains_both_precisions(tmp_path, capsys):
    out = tmp_path / "parity.csv"
    args = ["bench", "--parity", "configs/smoke.yaml", "--seeds", "0,1", "--runs-dir", str(tmp_path / "runs"),
            "--out", str(out), "schedule.steps=2", "schedule.warmup_steps=1", "eval.every=0",
            "eval.boundary=false", "data.size=[64,64]", "data.options={n: 4}"]
    assert main(args) == 0
    rows = list(csv.DictReader(open(out)))
    assert [(r["precision"], r["seed"]) for r in rows] == [
        ("fp32", "0"), ("bf16+channels_last", "0"), ("fp32", "1"), ("bf16+channels_last", "1")]
    assert len({r["run"] for r in rows}) == 4  # four distinct runs
    meta = json.loads(out.with_suffix(".json").read_text())
    assert set(meta["verdict"]) >= {"fp32", "bf16+channels_last", "difference", "within_seed_spread"}
    # A second call reuses the finished runs instead of training again.
    assert main(args) == 0
    assert [r["run"] for r in csv.DictReader(open(out))] == [r["run"] for r in rows]


def test_bench_overrides_need_parity(capsys):
    assert main(["bench", "--preset", "tiny", "optim.lr=0.1"]) == 1
    assert "only apply with --parity or --loader" in capsys.readouterr().err


def test_bench_loader_times_pipeline_and_step(tmp_path, capsys):
    out = tmp_path / "loader.csv"
    args = ["bench", "--loader", "configs/smoke.yaml", "--device", "cpu", "--batches", "3", "--warmup", "1",
            "--repeats", "1", "--out", str(out), "data.size=[64,64]", "data.options={n: 4}", "data.batch_size=2",
            "loss.class_weights=median_frequency"]
    assert main(args) == 0
    (row,) = list(csv.DictReader(open(out)))
    assert (row["dataset"], row["height"], row["width"], row["batch"]) == ("synthetic", "64", "64", "2")
    assert row["pipeline"] == "DataLoader, 0 workers"  # CPU, num_workers auto: in the training process
    loader_s, step_s = float(row["loader_s_per_batch"]), float(row["step_s"])
    assert loader_s > 0 and step_s > 0
    assert float(row["loader_over_step"]) == pytest.approx(step_s / loader_s, rel=0.01)
    # written to 4 decimals: a share under 1% (a slow step beside other work) is exact to 5e-5
    assert float(row["loader_share"]) == pytest.approx(loader_s / (loader_s + step_s), rel=0.01, abs=5e-5)
    assert float(row["loader_images_per_s"]) == pytest.approx(2 / loader_s, rel=0.01)
    assert "the loader is" in capsys.readouterr().out
    assert json.loads(out.with_suffix(".json").read_text())["rows"] == 1


def test_bench_loader_and_parity_are_exclusive(capsys):
    assert main(["bench", "--loader", "configs/smoke.yaml", "--parity", "configs/smoke.yaml"]) == 1
    assert "give one of them" in capsys.readouterr().err


TINY_STUDY = """
name: tiny
common: {dataset: synthetic}
study:
  train:
    model: {backbone: resnet18, widths: [16, 8, 8, 8]}
    data: {size: [48, 64], crop_size: [32, 32], batch_size: 2}
    schedule: {steps: 4, warmup_steps: 0}
    eval: {batch_size: 4}
  lrs: [0.01]
  seeds: [0]
  scenes: 3
  examples: 1
  failures: 1
notebooks: {}
"""


@pytest.mark.slow
def test_bench_runs_times_whole_runs_per_path(tmp_path):
    """Whole runs per run path: one row per path and per run; the per-class boundary IoU of
    the path "before" gives the very same run and scores as the one-band-per-map default."""
    from refinenet.bench.runs import RUN_PATHS, RunPath, run_paths

    profile = tmp_path / "tiny.yaml"
    profile.write_text(TINY_STUDY)
    paths = [RunPath("before", boundary="per_class"), RUN_PATHS["boundary"], RunPath("two at once", jobs=2, seeds=(0, 1))]
    rows, each = run_paths(paths, profile=str(profile), steps=2, evals=2, threads=2, progress=lambda _: None)
    assert [r["path"] for r in rows] == ["before", RUN_PATHS["boundary"].name, "two at once"]
    assert rows[0]["speedup"] == 1.0 and all(r["images_per_s"] > 0 for r in rows)
    assert [r["threads_per_job"] for r in rows] == [2, 2, 1]
    assert [(r["path"], r["seed"], r["threads"]) for r in each][-2:] == [("two at once", 0, 1), ("two at once", 1, 1)]
    assert all(r["images"] == 2 * 2 and r["train_s"] > 0 and r["score_s"] is not None for r in each)
    before, after = each[0], each[1]
    assert before["val_miou"] == after["val_miou"] and before["test_miou"] == after["test_miou"]
    assert before["val_boundary_iou"] == after["val_boundary_iou"] is not None


def test_bench_runs_rejects_unknown_paths(capsys):
    assert main(["bench", "--runs", "--paths", "before,warp"]) == 1
    assert "--paths: unknown ['warp']" in capsys.readouterr().err


def test_bench_runs_rejects_empty_paths(capsys):
    assert main(["bench", "--runs", "--paths", ""]) == 1
    err = capsys.readouterr().err
    assert "--paths: no run path given; choose from ['before', 'boundary', 'fused', 'compile', 'jobs']" in err
    assert "unknown" not in err


def validations(steps: int, every: int) -> int:
    """How many validations the trainer runs in ``steps`` steps with ``eval.every=every``:
    one at each multiple of ``every`` before the last step, and one at the end (its rule in
    refinenet.engine.trainer), counted by hand."""
    return sum(1 for step in range(1, steps) if every > 0 and step % every == 0) + 1


@pytest.mark.parametrize(
    "steps, evals, every",
    [(500, 1, 0), (500, 2, 250), (500, 3, 167), (500, 4, 125), (500, 7, 72), (10, 3, 4), (7, 7, 1), (1, 1, 0)],
)
def test_bench_runs_evals_means_that_many_validations(steps, evals, every):
    """``--evals N``: N validations, the last at the end (the trainer always validates there)."""
    from refinenet.bench.runs import eval_every

    assert eval_every(steps, evals) == every
    assert validations(steps, every) == evals


def test_bench_runs_validations_follow_the_trainer():
    assert validations(500, 500 // 3) == 4  # the old steps // evals: one too many
    assert validations(500, 0) == 1  # only at the end
    assert validations(500, 500) == 1  # the step at the end is not validated twice
    assert validations(10, 4) == 3  # at 4, 8 and 10


def _fake_children(monkeypatch, code):
    """Children of ``_run_all`` that run ``code`` instead of a whole training run."""
    import subprocess
    import sys

    from refinenet.bench import runs

    real = subprocess.Popen
    monkeypatch.setattr(runs.subprocess, "Popen", lambda cmd, **kw: real([sys.executable, "-c", code], **kw))
    return runs._run_all


@pytest.mark.timeout(120)
def test_bench_runs_children_may_write_more_than_a_pipe_holds(monkeypatch):
    code = "import sys; sys.stderr.write('e' * 300000); sys.stdout.write('o' * 300000 + '\\n'); print('{\"images\": 4}')"
    run_all = _fake_children(monkeypatch, code)
    results = run_all([{"threads": 1, "seed": s} for s in (0, 1)], 2, "two at once")
    assert [r["images"] for r in results] == [4, 4] and all(r["run_wall_s"] >= 0 for r in results)


@pytest.mark.timeout(120)
def test_bench_runs_failing_child_names_its_path_and_shows_stderr(monkeypatch):
    code = "import sys; sys.stderr.write('x' * 300000 + 'the cause'); sys.exit(3)"
    run_all = _fake_children(monkeypatch, code)
    with pytest.raises(RuntimeError, match="path 'broken', seed 5") as err:
        run_all([{"threads": 1, "seed": 5}], 1, "broken")
    assert "(exit 3)" in str(err.value) and str(err.value).endswith("x" * 100 + "the cause")
