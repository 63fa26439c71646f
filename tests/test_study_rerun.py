"""The rerun table (refinenet/study/rerun.py): commands, times and runs per chapter, built
from a fake results folder and ledger."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from refinenet.study.ledger import Ledger
from refinenet.study.profiles import load_profile
from refinenet.study.rerun import chapter_table, format_table, main, rerun_command

# Three notebooks: one that reads no runs, one that trains, one that gathers the other's tables.
NOTEBOOKS = {
    "01_first": 'profile = "cpu"\ndevice = "auto"\ndataset = "auto"\noutput_dir = None\n',
    "03_train": ('profile = "cpu"\ndevice = "auto"\ndataset = "auto"\noutput_dir = None\n'
                 'arms = {"standard": {}, "N = 0": {"model.crp_blocks": 0}}\nsweeps = ["standard"]\n'),
    "07_gather": ('profile = "cpu"\ndevice = "auto"\ndataset = "auto"\noutput_dir = None\n'
                  'gathers = ["03_train"]\n'),
}
DESIGN = {
    "train": {
        "model": {"backbone": "resnet18", "widths": [16, 8, 8, 8]},
        "data": {"size": [64, 64], "crop_size": None, "batch_size": 2},
        "schedule": {"steps": 2, "warmup_steps": 0},
        "eval": {"every": 0, "batch_size": 4},
    },
    "seeds": [0, 1],
    "lrs": [0.01, 0.02],
    "scenes": 3,
}


def _root(tmp_path: Path, name: str = "tiny"):
    """A repository with NOTEBOOKS and a profile ``name`` on the synthetic generator."""
    root = tmp_path / "repo"
    (root / "refinenet").mkdir(parents=True)
    (root / "notebooks").mkdir()
    for nb, params in NOTEBOOKS.items():
        (root / "notebooks" / f"{nb}.py").write_text(
            f'# %% [markdown]\n# # {nb}\n\n# %% tags=["parameters"]\n{params}\n# %%\nprint(profile)\n')
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "common": {"dataset": "synthetic"}, "study": DESIGN,
                                    "notebooks": {nb: {} for nb in NOTEBOOKS}}))
    return root, load_profile(path)


def _page(results: Path, nb: str, wall_s: float, status: str = "ok") -> None:
    """A finished page as the runner leaves it: executed notebook, metadata, parameters."""
    (results / nb).mkdir(parents=True)
    (results / f"{nb}.ipynb").write_text("{}")
    params = {"profile": "tiny", "device": "cpu", "dataset": "synthetic", "output_dir": f"results/{results.name}/{nb}"}
    (results / nb / "parameters.yaml").write_text(yaml.safe_dump(params))
    meta = {"notebook": nb, "status": status, "wall_time_s": wall_s, "parameters": params,
            "hardware": {"device": "cpu", "cpu": "Fake CPU", "cpu_count": 2}}
    (results / nb / "metadata.json").write_text(json.dumps(meta))


def _entry(results: Path, run_id: str, *, train_s, eval_s=0.0, score_s=0.0, threads=2, diverged=False,
           validations=None):
    """A ledger entry with the timing fields record_run writes; ``validations``: the seconds
    of each validation in its history (none: no history file)."""
    folder = results / "runs" / run_id
    folder.mkdir(parents=True)
    if validations is not None:
        (folder / "history").mkdir()
        (folder / "history" / "evals.jsonl").write_text(
            "".join(json.dumps({"step": i, "split": "val", "miou": 0.5, "seconds": s}) + "\n"
                    for i, s in enumerate(validations, 1)))
    entry = {
        "run_id": run_id, "arm": "standard", "status": "diverged" if diverged else "trained",
        "diverged_at": 1 if diverged else None,
        "train": {"steps": 2, "steps_done": 2, "train_seconds": train_s, "eval_seconds": eval_s},
        "metrics": {"val": None if diverged else {"miou": 0.5}, "test": None},
        "machine": {"device": "cpu", "cpu": "Fake CPU", "cpu_count": 2, "threads": threads},
    }
    if not diverged:
        entry["score_seconds"] = score_s
    (folder / "entry.json").write_text(json.dumps(entry))


def _fake(tmp_path: Path, name: str = "tiny"):
    """Pages 01 and 03 (not 07), and two of 03's three runs in the ledger plus a diverged one."""
    root, profile = _root(tmp_path, name)
    results = root / "results" / name
    _page(results, "01_first", 30.0)
    _page(results, "03_train", 90.0)
    # 60 s training + 4 + 2 s of validations (the last one is eval_seconds) + 54 s scoring, on the
    # whole machine (2 threads of 2 cores): 2 min
    _entry(results, "aaaaaaaaaaaa", train_s=60.0, eval_s=2.0, score_s=54.0, threads=2, validations=[4.0, 2.0])
    # 120 s on one thread of two cores, beside another run: 1 min of the machine
    _entry(results, "bbbbbbbbbbbb", train_s=120.0, threads=1)
    _entry(results, "dddddddddddd", train_s=None, diverged=True)
    planned = {"01_first": [], "03_train": ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc", "dddddddddddd"],
               "07_gather": []}
    return root, profile, results, planned


def test_times_are_the_pages_and_the_entries_measured_times(tmp_path):
    root, profile, results, planned = _fake(tmp_path)
    table = chapter_table(profile, root, planned=planned)
    rows = {c.notebook: c for c in table.chapters}
    assert list(rows) == ["01_first", "03_train", "07_gather"]
    assert table.results == "results/tiny"
    assert rows["01_first"].page_minutes == pytest.approx(0.5)
    assert rows["03_train"].page_minutes == pytest.approx(1.5)
    assert rows["07_gather"].page_minutes is None  # no page
    # 2 min + 1 min; the diverged run has no training time and is counted as untimed
    assert rows["03_train"].training_minutes == pytest.approx(3.0)
    assert rows["03_train"].untimed == 1
    assert rows["01_first"].training_minutes is None  # reads no runs
    assert table.training_minutes == pytest.approx(3.0)
    assert table.machines == ["Fake CPU (cpu, 2 cores)"]


def test_a_failed_page_has_no_command_and_no_time(tmp_path):
    root, profile, results, planned = _fake(tmp_path)
    _page(results, "07_gather", 12.0, status="failed")
    rows = {c.notebook: c for c in chapter_table(profile, root, planned=planned).chapters}
    assert rows["07_gather"].command is None and rows["07_gather"].page_minutes is None


def _targets(lines: list[str]) -> list[str]:
    """The paths the commands write: jupytext's -o, papermill's output, the output_dir."""
    words = shlex.split(" ".join(line.rstrip("\\") for line in lines))
    jupytext, papermill = words.index("jupytext"), words.index("papermill")
    return [words[words.index("-o", jupytext) + 1], words[papermill + 2],
            words[words.index("output_dir", papermill) + 1]]


def test_the_commands_write_into_out_and_never_into_results(tmp_path):
    root, profile, results, planned = _fake(tmp_path)
    table = chapter_table(profile, root, planned=planned)
    commands = [c for c in table.chapters if c.command is not None]
    assert [c.notebook for c in commands] == ["01_first", "03_train"]
    for c in commands:
        words = shlex.split(" ".join(line.rstrip("\\") for line in c.command))
        assert _targets(c.command) == [f"out/tiny/{c.notebook}.ipynb", f"out/tiny/{c.notebook}.ipynb",
                                       f"out/tiny/{c.notebook}"]
        # papermill reads the page's own parameters, which exist
        params = words[words.index("-f") + 1]
        assert params == f"results/tiny/{c.notebook}/parameters.yaml" and (root / params).is_file()
        assert words[words.index("papermill") + 1] == f"out/tiny/{c.notebook}.ipynb"
        assert words[words.index("--to") + 2] == f"notebooks/{c.notebook}.py"
    for bad in ("results", "results/mine", "/tmp/out", "../out", "out/../results"):
        with pytest.raises(ValueError, match="outside results"):
            rerun_command("01_first", "results/tiny", bad)
    with pytest.raises(ValueError, match="outside results"):
        chapter_table(profile, root, planned=planned, out="results/again")
    assert _targets(rerun_command("01_first", "results/tiny", "elsewhere/runs"))[0] == "elsewhere/runs/tiny/01_first.ipynb"


def test_missing_runs_are_reported_with_the_command_that_trains_them(tmp_path):
    root, profile, results, planned = _fake(tmp_path)
    table = chapter_table(profile, root, planned=planned)
    rows = {c.notebook: c for c in table.chapters}
    train = rows["03_train"]
    assert train.in_ledger == ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "dddddddddddd"] and train.missing == 1
    assert train.train_command == f"refinenet study run --profile {profile.ref} --only 03"
    # a gathering page also needs the pages it gathers
    assert rows["07_gather"].train_command.endswith("--only 03,07")
    assert rows["07_gather"].gathers == ("03_train",)
    text = format_table(table)
    flat = " ".join(text.replace("# ", "").split())
    assert "03_train: 1 of 4 runs are not in the ledger" in flat and "MissingRuns" in flat
    assert f"`refinenet study run --profile {profile.ref} --only 03` trains them" in flat
    assert "07_gather: no page in results/tiny/ yet" in flat
    row = next(line for line in text.splitlines() if line.startswith("03_train "))
    assert row.split() == ["03_train", "1.5", "min", "3.0", "min", "3", "/", "4", "(1", "untimed)"]
    total = next(line for line in text.splitlines() if line.startswith("all (distinct runs)"))
    assert total.split()[3:] == ["2.0", "min", "3.0", "min", "3", "/", "4"]  # 30 s + 90 s of pages
    # with every run in the ledger, nothing is reported missing
    _entry(results, "cccccccccccc", train_s=30.0, threads=2)
    text = format_table(chapter_table(profile, root, planned=planned))
    assert "not in the ledger" not in text and "MissingRuns" not in text


def test_every_line_fits_the_books_code_column(tmp_path):
    root, profile, results, planned = _fake(tmp_path, name="long_profile_name")
    text = format_table(chapter_table(profile, root, planned=planned))
    assert "mkdir -p out/long_profile_name" in text
    # (a shipped profile is named by its name; this one by the path of its file, in tmp_path)
    assert max(len(line.replace(profile.ref, "cpu")) for line in text.splitlines()) <= 77
    long = rerun_command("06_ablation_scales", "results/cpu-synthetic")
    assert max(len(line) for line in long) <= 77


def test_the_runs_come_from_the_plan_over_the_ledger(tmp_path):
    """Without ``planned``, the table plans the notebooks' runs as they do (on the data set and
    device of the pages' parameters) and finds in the ledger those it holds."""
    from refinenet.study.rerun import planned_runs

    root, profile = _root(tmp_path)
    results = root / "results" / "tiny"
    _page(results, "03_train", 5.0)
    plan = planned_runs(profile, root, results, "synthetic", "cpu")
    ready = [i for i in plan["03_train"] if i is not None]
    assert plan["01_first"] == [] and plan["07_gather"] == [] and len(ready) >= 4
    assert None in plan["03_train"]  # the runs at the rate the sweep has not chosen yet
    _entry(results, ready[0], train_s=60.0)
    rows = {c.notebook: c for c in chapter_table(profile, root).chapters}
    assert rows["03_train"].run_ids == plan["03_train"]
    assert rows["03_train"].in_ledger == [ready[0]]
    assert rows["03_train"].training_minutes == pytest.approx(1.0)
    assert len(Ledger(results / "runs")) == 1


def test_command_line(tmp_path, capsys, monkeypatch):
    root, profile, results, planned = _fake(tmp_path)
    monkeypatch.chdir(root)
    assert main(["--profile", profile.path]) == 0
    printed = capsys.readouterr().out
    assert "papermill out/tiny/03_train.ipynb" in printed and "profile tiny" in printed
    assert main(["--profile", profile.path, "--out", "results/x"]) == 1
    assert "outside results/" in capsys.readouterr().err
