"""The performance chapter's tables and figures (refinenet.bench.report), on small hand-made
benchmark tables: every value checked against the rows it comes from."""

from __future__ import annotations

import math
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from refinenet.bench import report  # noqa: E402
from refinenet.bench.runs import RUN_PATHS  # noqa: E402
from refinenet.study.readable import MIN_TEXT_PX, check_readable  # noqa: E402


def _bench(devices=("cpu",)) -> pd.DataFrame:
    """Step benchmark rows: two configs x modes x paths, one device each (a second device
    repeats the first config)."""
    rows = []
    specs = [("m-standard", "train", ["baseline", "channels_last", "bf16+channels_last"]),
             ("m-standard", "inference", ["baseline", "bf16"]),
             ("big", "inference", ["baseline", "bf16+channels_last"])]
    for d, device in enumerate(devices):
        for config, mode, paths in specs if d == 0 else specs[:1]:
            for k, path in enumerate(paths):
                amp = "none" if path in ("baseline", "channels_last") else "bf16"
                median = 0.4 / (1 + 0.25 * k)
                rows.append({
                    "config": config, "mode": mode, "path": path, "amp": amp, "height": 128, "width": 160,
                    "batch": 8, "median_s": median, "q1_s": median - 0.01, "q3_s": median + 0.02,
                    "images_per_s": 8 / median, "speedup": 0.4 / median,
                    "achieved_tflops": 0.1 + 0.01 * k, "peak_tflops": 0.15 if amp == "none" else 0.6,
                    "fraction_of_peak": 0.5, "peak_memory_mb": 70.0 + k,
                    "argmax_agreement": math.nan if path == "baseline" else 0.99,
                    "device": device, "device_name": f"{device} chip", "threads": 2, "torch": "2.x",
                })
    bench = pd.DataFrame(rows)
    bench["label"] = bench["config"] + " (" + bench["device"] + ")"
    return bench


def _html(style) -> str:
    return style.to_html()


def _cells(style) -> list[list[str]]:
    """The displayed text of each data cell, row by row."""
    body = style._translate(True, True)["body"]
    return [[cell["display_value"] for cell in row if cell["type"] == "td"] for row in body]


def test_styled_formats_captions_and_hides_the_index():
    table = pd.DataFrame({"a": [1.234, math.nan], "b": [0.5, 0.25]}, index=["x", "y"])
    html = _html(report.styled(table, {"a": "{:.1f}x"}, precision=3, caption="Cap", na_rep="—"))
    assert "1.2x" in html and "—" in html and "0.250" in html and "<caption>Cap</caption>" in html
    assert ">x<" not in html  # index hidden
    assert ">x<" in _html(report.styled(table, "{:.2f}", index=True))


def test_styled_has_the_books_table_look():
    """The look of the other chapters' tables (refinenet.study.report.styled): the theme's
    dataframe class, padded cells, the caption below."""
    html = _html(report.styled(pd.DataFrame({"a": [1.0]}), caption="Cap"))
    assert 'class="dataframe"' in html
    assert "padding: 0.25em 0.5em" in html and "caption-side: bottom" in html


def test_styled_formats_only_the_columns_it_names_and_rounds_the_rest():
    table = pd.DataFrame({"name": ["a"], "n": [3], "rate": [19.85], "seconds": [201.52333]})
    assert _cells(report.styled(table, {"rate": "{:.1f}", "absent": "{:.3f}"})) == [["a", "3", "19.9", "201.52"]]
    # One format for every numeric column leaves the text columns alone.
    assert _cells(report.styled(table, "{:.0f}")) == [["a", "3", "20", "202"]]
    assert _cells(report.styled(table, {"rate": report.significant})) == [["a", "3", "19.9", "201.52"]]


@pytest.mark.parametrize("x, text", [
    (0.38593, "0.386"), (3.6957, "3.70"), (25.931, "25.9"), (0.0771, "0.0771"), (1234.5, "1234"),
    (0.0, "0.00"), (math.nan, ""),
])
def test_significant(x, text):
    assert report.significant(x) == text


def test_styled_keeps_the_nowrap_columns_on_one_line():
    table = pd.DataFrame({"file": ["cpu-paper.csv"], "command": ["refinenet bench --out x"]})
    html = _html(report.styled(table, nowrap=["file"]))
    # The file's column alone, by a rule more specific than the look's "td".
    assert re.search(r"#T_\w+ td\.col0 \{\s*white-space: nowrap;", html)
    assert re.search(r"#T_\w+ th\.col0 \{\s*white-space: nowrap;", html)  # its header
    assert html.count("white-space: nowrap") == 2


def test_commands_view_rounds_the_wall_time_and_shortens_the_date():
    commands = pd.DataFrame({"file": ["a.csv"], "command": ["refinenet bench"], "wall s": [461.7],
                             "date": ["2026-11-22T02:00:30+0100"]})
    view = report.commands_view(commands)
    (row,) = _cells(view)
    # The date in UTC, as the page writes dates.
    assert row[0] == "a.csv" and row[2:] == ["462", "2026-11-22 01:00 UTC"]
    # A header that does not wrap ("wall (s)", on one line), and a caption.
    assert list(view.data.columns) == ["file", "command", "wall (s)", "date"]
    assert re.search(r"#T_\w+ th\.col2 \{\s*white-space: nowrap;", _html(view))
    assert "the commands that wrote them" in view.caption
    # The command breaks between its words only.
    nowrap = '<span style="white-space: nowrap">'
    assert row[1] == f"{nowrap}refinenet</span> {nowrap}bench</span>"
    assert report.whole_words("a --out x<y") == f"{nowrap}a</span> {nowrap}--out</span> {nowrap}x&lt;y</span>"
    missing = commands.assign(date=[None], **{"wall s": [math.nan]})
    assert _cells(report.commands_view(missing))[0][2:] == [report.NOT_MEASURED] * 2


def test_commands_view_explains_the_mark_only_when_a_cell_shows_it():
    commands = pd.DataFrame({"file": ["a.csv"], "command": ["refinenet bench"], "wall s": [461.7],
                             "date": ["2026-11-22T02:00:30+0100"]})
    mark = f"{report.NOT_MEASURED}: not recorded"
    assert mark not in report.commands_view(commands).caption
    for missing in (commands.assign(date=[None]), commands.assign(**{"wall s": [math.nan]}),
                    commands.assign(command=[""])):
        view = report.commands_view(missing)
        assert mark in view.caption and report.NOT_MEASURED in _cells(view)[0]


@pytest.mark.parametrize("date, text", [
    ("2026-11-29T19:25:40+0000", "2026-11-29 19:25 UTC"), ("2026-11-29T20:25:40+01:00", "2026-11-29 19:25 UTC"),
    ("2026-11-29T19:25:40", "2026-11-29 19:25"), ("2026-01-02", "2026-01-02"), ("yesterday", "yesterday"),
    (None, None), (math.nan, None),
])
def test_when_writes_dates_to_the_minute_in_utc(date, text):
    assert report.when(date) == text


def test_machines_view_has_a_caption_and_words_for_headers():
    view = report.machines_view(report.machines_table(_bench()))
    assert list(view.data.columns) == ["device", "name", "torch threads", "torch version"]
    assert _cells(view) == [["cpu", "cpu chip", "2", "2.x"]]
    assert view.caption.startswith("The machines of the step benchmarks")


def test_machines_table_has_one_row_per_device():
    machines = report.machines_table(_bench(("cpu", "cuda")))
    assert machines.to_dict("records") == [
        {"device": "cpu", "device_name": "cpu chip", "threads": 2, "torch": "2.x"},
        {"device": "cuda", "device_name": "cuda chip", "threads": 2, "torch": "2.x"},
    ]


def test_speedup_table_and_view():
    bench = _bench()
    speed = report.speedup_table(bench)
    assert list(speed.index) == [("m-standard (cpu)", "train"), ("m-standard (cpu)", "inference"),
                                 ("big (cpu)", "inference")]
    for row in bench.itertuples():
        assert speed.loc[(row.label, row.mode), row.path] == pytest.approx(row.speedup)
    assert math.isnan(speed.loc[("big (cpu)", "inference"), "bf16"])  # not measured there
    view = report.speedup_view(speed)
    assert "baseline" not in view.data.columns
    assert list(view.data.columns) == ["config", "mode", "channels_last", "bf16 + channels_last", "bf16"]
    html = _html(view)
    assert "1.50×" in html and "Speed-up over fp32 NCHW eager" in html
    # One dash for "not measured" on the whole page, and the caption says what it means.
    assert "—" not in html and f"{report.NOT_MEASURED}: that path was not measured" in view.caption
    assert _cells(view)[0] == ["m-standard (cpu)", "train", "1.25×", "1.50×", report.NOT_MEASURED]


def test_speedups_figure_draws_each_speedup_in_its_mode_panel():
    bench = _bench()
    fig = report.speedups_figure(bench)
    try:
        axes = fig.axes
        titles = [ax.get_title(loc="left") for ax in axes]
        assert titles == ["training", "inference"]
        for ax, mode in zip(axes, ["train", "inference"]):
            widths = sorted(round(p.get_width(), 6) for p in ax.patches if p.get_width() > 0)
            expected = sorted(round(v, 6) for v in bench.loc[bench["mode"] == mode, "speedup"])
            assert widths == expected
            assert any(list(line.get_xdata()) == [1.0, 1.0] for line in ax.get_lines())
            labels = [t.get_text() for t in ax.get_yticklabels()]
            assert labels == list(dict.fromkeys(bench.loc[bench["mode"] == mode, "label"]))
        assert axes[-1].get_xlabel() == "speed-up over fp32 NCHW eager"
        (legend,) = fig.legends
        assert [t.get_text() for t in legend.get_texts()] == list(dict.fromkeys(bench["path"]))
        # Readable on the page: every text at least 10 pixels high.
        assert check_readable(fig) >= MIN_TEXT_PX
    finally:
        plt.close(fig)


def test_speedups_figure_gives_a_path_the_same_colour_in_every_panel():
    bench = _bench()
    fig = report.speedups_figure(bench)
    try:
        legend = {t.get_text(): tuple(h.get_facecolor()) for t, h in
                  zip(fig.legends[0].get_texts(), fig.legends[0].legend_handles)}
        for ax, mode in zip(fig.axes, ["train", "inference"]):
            paths = set(bench.loc[bench["mode"] == mode, "path"])
            assert {tuple(p.get_facecolor()) for p in ax.patches} == {legend[path] for path in paths}
    finally:
        plt.close(fig)


def test_detail_table_and_its_two_views():
    bench = _bench()
    detail = report.detail_table(bench)
    assert list(detail.columns) == list(report.DETAIL_COLUMNS.values())
    assert list(detail["median s"]) == list(bench["median_s"])
    times, rest = report.detail_views(detail, bench)
    # Few columns, so that each fits the text column: the rows are headed by group and path.
    assert list(times.data.columns) == ["median (s)", "q1–q3 (s)", "images/s"]
    assert list(rest.data.columns) == ["TFLOP/s", "of peak", "memory (MiB)", "same argmax"]
    # The time headers stay on one line ("median (s)", never "median / (s)"); the memory
    # header may wrap, so that the second view fits the text column.
    for view, columns in ((times, [0, 1]), (rest, [1])):
        for col in columns:
            assert re.search(rf"#T_\w+ th\.col{col} \{{\s*white-space: nowrap;", _html(view))
    assert not re.search(r"#T_\w+ th\.col2 \{\s*white-space: nowrap;", _html(rest))
    group, path = times.data.index[0]
    # One device: named in the machines table. A line each, as the page shows it.
    assert group == "m-standard\ntrain\n8 × 128×160"
    assert "white-space: pre;" in _html(times)
    assert path == "baseline"
    assert "bf16 + channels_last" in set(times.data.index.get_level_values(1))
    assert times.data.iloc[0]["q1–q3 (s)"] == "0.390–0.420"
    assert _cells(times)[0] == ["0.400", "0.390–0.420", "20.0"]
    assert _cells(rest)[0] == ["0.100", "50%", "70", report.NOT_MEASURED]  # none for the baseline
    # Both captions name the source; the second says how memory was taken on this device and
    # what the dash means.
    assert "step benchmarks' CSV files" in times.caption and "step benchmarks' CSV files" in rest.caption
    assert report.memory_note(["cpu"]) in rest.caption and "lower bound" in rest.caption
    assert "CUDA" not in rest.caption
    assert f"{report.NOT_MEASURED}: not measured" in rest.caption
    html = _html(times)
    assert 'rowspan="3"' in html  # the group heads its three paths once
    assert '<th class="index_name level0" >path</th>' in html
    both = _bench(("cpu", "cuda"))
    times, rest = report.detail_views(report.detail_table(both), both)
    assert times.data.index[-1][0].startswith("m-standard (cuda)\ntrain\n")
    assert "on CUDA, the allocator's peak" in rest.caption and "on the CPU" in rest.caption


def test_memory_note_per_kind_of_device():
    assert report.memory_note(["cuda:0", "cuda:1"]) == f"Memory (MiB): {report.MEMORY_NOTES['cuda']}."
    assert "resident memory" in report.memory_note(["cpu"])
    assert report.memory_note(["mps"]) == ""


def test_peaks_table_has_one_column_per_precision():
    peaks = report.peaks_table(_bench())
    assert list(peaks.columns) == ["fp32", "bf16"]
    assert list(peaks.index) == ["m-standard (cpu)", "big (cpu)"]
    assert (peaks["fp32"] == 0.15).all() and (peaks["bf16"] == 0.6).all()
    view = report.peaks_view(peaks)
    assert list(view.data.columns) == ["config", "fp32 TFLOP/s", "bf16 TFLOP/s"]
    assert _cells(view)[0] == ["m-standard (cpu)", "0.150", "0.600"]


def test_loader_table():
    feed = pd.DataFrame({
        "config": ["c.yaml"], "dataset": ["camvid"], "height": [128], "width": [160], "batch": [8],
        "pipeline": ["DataLoader"], "amp": ["bf16"], "loader_images_per_s": [388.5], "step_images_per_s": [33.8],
        "loader_over_step": [11.5], "loader_share": [0.08],
    })
    table = report.loader_table(feed)
    assert list(table.columns) == list(report.LOADER_COLUMNS.values())
    assert table.iloc[0].to_dict() == {
        "config": "c.yaml", "pipeline": "DataLoader", "crop": "128×160", "batch": 8, "amp": "bf16",
        "loader images/s": 388.5, "step images/s": 33.8, "loader / step": 11.5, "loader share": 0.08,
    }
    view = report.loader_view(table)
    assert _cells(view) == [
        ["c.yaml", "DataLoader", "128×160", "8", "bf16", "388.5", "33.8", "11.5×", "8.0%"]]
    # One file, one command; no row overlapped, so the caption does not explain the mark.
    assert "refinenet bench --loader" in view.caption and "its command below" in view.caption
    assert "commands" not in view.caption and "(overlapped)" not in view.caption
    overlapped = report.loader_view(table.assign(**{"loader share": [math.nan]}), files=["c-loader.csv"])
    assert _cells(overlapped)[0][-1] == "(overlapped)"
    assert "(overlapped): it runs beside the step" in overlapped.caption
    assert "(c-loader.csv; its command below)" in overlapped.caption
    two = report.loader_view(pd.concat([table, table]), files=["a-loader.csv", "b-loader.csv"])
    assert "(a-loader.csv, b-loader.csv; their commands below)" in two.caption
    assert "(overlapped)" not in two.caption


def test_parity_summary_in_percent_per_precision():
    parity = pd.DataFrame({"precision": ["fp32", "bf16", "fp32", "bf16"], "val_miou": [0.20, 0.21, 0.22, 0.25]})
    summary = report.parity_summary(parity)
    assert list(summary.index) == ["fp32", "bf16"] and list(summary.columns) == ["val mIoU %", "std", "n"]
    assert summary.loc["fp32", "val mIoU %"] == pytest.approx(21.0)
    assert summary.loc["bf16", "std"] == pytest.approx(100 * pd.Series([0.21, 0.25]).std())
    assert list(summary["n"]) == [2, 2]
    view = report.parity_view(summary)
    assert list(view.data.columns) == ["precision", "val mIoU %", "std", "n"]
    assert _cells(view)[0] == ["fp32", "21.00", "1.41", "2"]
    assert "refinenet bench --parity" in view.caption


def test_standard_train_step_picks_the_cpu_bf16_channels_last_training_row():
    bench = _bench(("cuda", "cpu"))
    step = report.standard_train_step(bench)
    assert (step["device"], step["mode"], step["path"], step["config"]) == (
        "cpu", "train", "bf16+channels_last", "m-standard")
    assert report.standard_train_step(bench[bench["device"] == "cuda"]) is None
    assert report.standard_train_step(pd.DataFrame()) is None


def test_runs_by_key_matches_the_run_paths_by_name():
    whole = pd.DataFrame({"path": [RUN_PATHS["jobs"].name, "something else", RUN_PATHS["before"].name],
                          "images_per_s": [30.0, 1.0, 20.0]})
    runs = report.runs_by_key(whole)
    assert set(runs) == {"jobs", "before"}
    assert runs["jobs"]["images_per_s"] == 30.0 and runs["before"]["images_per_s"] == 20.0
    assert report.runs_by_key(pd.DataFrame(columns=["path"])) == {}


@pytest.mark.parametrize("x, spec, unit, text", [
    (None, ".2f", "×", "not measured"), (1.2345, ".2f", "×", "1.23×"), (500, "d", "", "500"),
])
def test_told(x, spec, unit, text):
    assert report.told(x, spec, unit) == text


@pytest.mark.parametrize("ratio, text", [
    (None, "not measured"), (1.0002, "1.00× the speed (no change)"),
    (0.988, "0.99× the speed (1.2% slower)"), (1.25, "1.25× the speed (25.0% faster)"),
])
def test_pace(ratio, text):
    assert report.pace(ratio) == text


def test_time_split_and_runs_figure_of_the_whole_runs():
    each = pd.DataFrame({
        "path": ["a", "a", "b"], "run_wall_s": [100.0, 110.0, 60.0], "record_s": [90.0, 100.0, 55.0],
        "train_s": [50.0, 60.0, 30.0], "score_s": [20.0, 20.0, 5.0],
    })
    split = report.time_split(each)
    assert list(split.index) == ["a", "b"]
    assert split.loc["a"].tolist() == [10.0, 55.0, 20.0, 20.0] and split.loc["b"].tolist() == [5.0, 30.0, 20.0, 5.0]
    # Each run's parts add up to its wall time.
    assert split.sum(axis=1).tolist() == [105.0, 60.0]
    fig = report.runs_figure(split)
    try:
        (ax,) = fig.axes
        assert sorted(p.get_width() for p in ax.patches) == sorted(split.to_numpy().ravel())
        assert check_readable(fig) >= MIN_TEXT_PX
    finally:
        plt.close(fig)


def test_runs_figure_stays_readable_with_the_real_run_paths():
    """The benchmark's own run paths, the longest bar labels the page shows: wrapped, × for
    "x", every text at the floor or above, the legend's four parts."""
    names = [path.name for path in RUN_PATHS.values()]
    each = pd.DataFrame({"path": names, "run_wall_s": 200.0, "record_s": 195.0, "train_s": 120.0,
                         "score_s": 60.0})
    split = report.time_split(each)
    assert list(split.index) == [report.path_text(n) for n in names]
    assert all(" x " not in name for name in split.index)
    fig = report.runs_figure(split)
    try:
        labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
        assert all(len(line) <= 30 for label in labels for line in label.split("\n"))
        assert [t.get_text() for t in fig.legends[0].get_texts()] == list(split.columns)
        assert check_readable(fig) >= MIN_TEXT_PX
    finally:
        plt.close(fig)


def test_path_text_writes_times_as_a_sign():
    assert report.path_text("2 runs x 1 thread") == "2 runs × 1 thread"
    assert report.path_text("before: 1 run x 2 threads, boundary per class") == (
        "before: 1 run × 2 threads, boundary per class")


def test_runs_table_shows_sensible_digits():
    rows = pd.DataFrame({
        "path": ["before", "jobs"], "runs": [3, 4], "images_per_s": [19.85, 33.6], "speedup": [1.0, 1.693],
        "run_wall_s_mean": [201.52333, 237.1], "train_s_mean": [122.357, 194.0], "score_s_mean": [65.53333, 29.2],
        "val_miou_mean": [0.40379, 0.39712],
    })
    table = report.runs_table(rows.assign(path=["before", "2 runs x 1 thread"]))
    view = report.runs_view(table)
    assert _cells(view) == [
        ["before", "3", "19.9", "1.00×", "202", "122", "66", "40.4"],
        ["2 runs × 1 thread", "4", "33.6", "1.69×", "237", "194", "29", "39.7"],
    ]
    assert list(table.columns)[4:7] == ["run (s)", "training (s)", "scoring (s)"]
    assert "refinenet bench --runs" in view.caption
    for col in (3, 4, 5, 6):  # "speed-up" and the seconds' headers on one line
        assert re.search(rf"#T_\w+ th\.col{col} \{{\s*white-space: nowrap;", _html(view))


def test_peak_fractions_from_the_step_benchmark_and_the_whole_runs():
    step = report.standard_train_step(_bench())
    whole = pd.DataFrame({"path": ["1 run x 2 threads", "2 runs x 1 thread"], "jobs": [1, 2],
                          "images": [4000, 16000], "runs": [1, 4], "train_s_mean": [100.0, 200.0]})
    table = report.peak_fractions(whole, step)
    flop_per_image = step.achieved_tflops * 1e12 * step.median_s / step.batch
    # 40 images/s each: one job of 4000 images in 100 s; two jobs of 4000 images in 200 s.
    assert table["training images/s"].tolist() == [40.0, 40.0]
    assert table["fraction of the bf16 peak"].tolist() == pytest.approx(
        [40 * flop_per_image / (step.peak_tflops * 1e12)] * 2)
    assert table["run path"].tolist() == ["1 run × 2 threads", "2 runs × 1 thread"]
    view = report.peak_fractions_view(table, step)
    assert _cells(view)[0][1] == "40.0"
    assert "m-standard (bf16+channels_last" in view.caption and "0.600 TFLOP/s" in view.caption
