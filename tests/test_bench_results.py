"""Reading ``refinenet bench``'s files (refinenet.bench.results): which CSVs are step timings,
how they are joined, and how paths and commands are shown without the machine's folders."""

from __future__ import annotations

import json
import shlex

import pandas as pd
import pytest

from refinenet.bench.results import BenchResults, command_text, machine_paths, shown

PATHS = {"/repo/": "", "/home/me/": "~/", "/scratch/": "$TMPDIR/"}
STEP_COLUMNS = ["config", "mode", "path", "speedup", "device"]


def _write(folder, stem, rows, columns, **meta):
    pd.DataFrame(rows, columns=columns).to_csv(folder / f"{stem}.csv", index=False)
    (folder / f"{stem}.json").write_text(json.dumps(meta))


@pytest.fixture
def bench_folder(tmp_path):
    folder = tmp_path / "results" / "bench"
    folder.mkdir(parents=True)
    _write(folder, "cpu-study", [["m-standard", "train", "baseline", 1.0, "cpu"]], STEP_COLUMNS,
           command="refinenet bench --preset study --out /repo/results/bench/cpu-study.csv", wall_s=12.4,
           date="2026-01-02")
    _write(folder, "cpu-paper", [["paper", "inference", "baseline", 1.0, "cpu"],
                                 ["paper", "inference", "bf16", 1.5, "cpu"]], STEP_COLUMNS,
           command=None, wall_s=99.6, date="2026-01-01")
    _write(folder, "cpu-loader", [["c.yaml", 10.0]], ["config", "loader_images_per_s"], command="x")
    _write(folder, "gpu-loader", [["g.yaml", 20.0]], ["config", "loader_images_per_s"], command="y")
    _write(folder, "cpu-runs", [["p", 1]], ["path", "jobs"], command="refinenet bench --runs")
    _write(folder, "cpu-runs-each", [["p", 0]], ["path", "seed"])
    _write(folder, "precision_parity", [["fp32", 0.2]], ["precision", "val_miou"], verdict={})
    return folder


def test_shown_shortens_folders_only_at_the_start_of_a_path():
    text = "refinenet bench --out /repo/results/x.csv --runs-dir /scratch/p /home/me/data /a/scratch/b"
    assert shown(text, paths=PATHS) == (
        "refinenet bench --out results/x.csv --runs-dir $TMPDIR/p ~/data /a/scratch/b")


def test_machine_paths_put_the_root_first_and_end_every_folder_in_a_slash(tmp_path):
    paths = machine_paths(tmp_path / "repo")
    assert list(paths.values()) == ["", "~/", "$TMPDIR/"]
    assert next(iter(paths)) == f"{tmp_path / 'repo'}/"
    assert all(path.endswith("/") for path in paths)


def test_command_text_wraps_at_the_width_and_keeps_every_word():
    command = ("refinenet bench --parity configs/camvid-cpu.yaml --runs-dir /scratch/parity/runs "
               "data.crop_size=[128,160] optim.lr=0.01 schedule.steps=120 schedule.warmup_steps=12 "
               "eval.every=0 eval.boundary=false")
    text = command_text(command, paths=PATHS)
    lines = text.splitlines()
    assert lines[0].startswith("command: refinenet bench")
    assert len(lines) > 2 and all(len(line) <= 79 for line in lines)
    assert all(line.endswith(" \\") for line in lines[:-1])
    assert all(line.startswith("    ") for line in lines[1:])
    # The continued lines, joined as a shell joins them, give the shown command back.
    joined = shlex.split(text.removeprefix("command:").replace("\\\n", " "))
    assert joined == shlex.split(shown(command, paths=PATHS))
    assert "'$TMPDIR/parity/runs'" in text  # quoted: the shell must not expand it


def test_command_text_of_a_missing_command():
    assert command_text(None) == "command: None"
    assert command_text("") == "command: "


def test_only_step_timings_are_joined_with_a_label(bench_folder):
    results = BenchResults(bench_folder)
    assert [p.name for p in results.timing_files] == ["cpu-paper.csv", "cpu-study.csv"]
    assert [p.name for p in results.loader_files] == ["cpu-loader.csv", "gpu-loader.csv"]
    bench = results.timings()
    assert list(bench["config"]) == ["paper", "paper", "m-standard"]
    assert list(bench["label"]) == ["paper (cpu)", "paper (cpu)", "m-standard (cpu)"]
    assert list(results.loaders()["loader_images_per_s"]) == [10.0, 20.0]


def test_an_empty_folder_gives_empty_tables(tmp_path):
    results = BenchResults(tmp_path)
    assert results.timings().empty and results.loaders().empty
    assert results.meta("cpu-runs") is None
    assert results.describe(paths={}, width=500) == f"benchmark files in {tmp_path}: none"


def test_meta_and_commands_come_from_the_json_files(bench_folder):
    results = BenchResults(bench_folder)
    assert results.meta("cpu-runs") == {"command": "refinenet bench --runs"}
    assert results.meta("gpu-runs") is None
    commands = results.commands(paths=PATHS)
    assert list(commands.columns) == ["file", "command", "wall s", "date"]
    assert commands.to_dict("records") == [
        {"file": "cpu-paper.csv", "command": "", "wall s": 99.6, "date": "2026-01-01"},
        {"file": "cpu-study.csv", "command": "refinenet bench --preset study --out results/bench/cpu-study.csv",
         "wall s": 12.4, "date": "2026-01-02"},
    ]
    assert results.table("precision_parity")["precision"].tolist() == ["fp32"]


def test_describe_names_the_folder_shortened_and_the_files(bench_folder):
    paths = {f"{bench_folder.parents[1]}/": ""}
    assert BenchResults(bench_folder).describe(paths=paths) == (
        "benchmark files in results/bench: cpu-paper.csv, cpu-study.csv")
    for n in range(8):
        _write(bench_folder, f"machine-{n}", [], STEP_COLUMNS)
    lines = BenchResults(bench_folder).describe(paths=paths, width=40).splitlines()
    assert len(lines) > 3 and all(len(line) <= 40 for line in lines)
    assert " ".join(lines).endswith("machine-6.csv, machine-7.csv")


def test_find_looks_upwards_for_results_bench(bench_folder, tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    assert BenchResults.find(start=notebooks).folder == bench_folder
    assert BenchResults.find("elsewhere", start=notebooks).folder.name == "elsewhere"
    lonely = tmp_path.parent / f"{tmp_path.name}-lonely"
    lonely.mkdir()
    assert BenchResults.find(start=lonely).folder == lonely / "results" / "bench"
