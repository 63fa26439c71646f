"""The performance chapter's tables and figures (refinenet.bench.report), on small hand-made
benchmark tables: every value checked against the rows it comes from."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from refinenet.bench import report  # noqa: E402
from refinenet.bench.runs import RUN_PATHS  # noqa: E402


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


def test_styled_formats_captions_and_hides_the_index():
    table = pd.DataFrame({"a": [1.234, math.nan], "b": [0.5, 0.25]}, index=["x", "y"])
    html = _html(report.styled(table, {"a": "{:.1f}x"}, precision=3, caption="Cap", na_rep="—"))
    assert "1.2x" in html and "—" in html and "0.250" in html and "<caption>Cap</caption>" in html
    assert ">x<" not in html  # index hidden
    assert ">x<" in _html(report.styled(table, "{:.2f}", index=True))


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
    assert "bf16 + channels_last" in view.data.columns
    html = _html(view)
    assert "—" in html and "1.50x" in html and "Speed-up over fp32 NCHW eager" in html


def test_speedups_figure_draws_each_speedup_in_its_mode_panel():
    bench = _bench()
    fig = report.speedups_figure(bench)
    try:
        axes = fig.axes
        titles = [ax.get_title() for ax in axes]
        assert titles == ["mode = train", "mode = inference"]
        for ax, mode in zip(axes, ["train", "inference"]):
            widths = sorted(round(p.get_width(), 6) for p in ax.patches if p.get_width() > 0)
            expected = sorted(round(v, 6) for v in bench.loc[bench["mode"] == mode, "speedup"])
            assert widths == expected
            assert any(list(line.get_xdata()) == [1.0, 1.0] for line in ax.get_lines())
            assert ax.get_xlabel() == "speed-up over fp32 NCHW eager"
    finally:
        plt.close(fig)


def test_detail_table_and_its_two_views():
    bench = _bench()
    detail = report.detail_table(bench)
    assert list(detail.columns) == list(report.DETAIL_COLUMNS.values())
    assert list(detail["median s"]) == list(bench["median_s"])
    times, rest = report.detail_views(detail, bench)
    assert list(times.data.columns) == ["config", "mode", "path", "input", "median s", "q1–q3 s", "images/s"]
    assert list(rest.data.columns) == ["config", "mode", "path", "TFLOP/s", "fraction", "memory MiB", "agreement"]
    first = times.data.iloc[0]
    assert first["input"] == "8 × 128×160"
    assert first["q1–q3 s"] == f"{bench['q1_s'][0]:.3f}–{bench['q3_s'][0]:.3f}"
    assert first["config"] == "m-standard"  # one device: named in the machines table
    assert "bf16 + channels_last" in set(times.data["path"])
    assert "50%" in _html(rest)
    both = _bench(("cpu", "cuda"))
    assert report.detail_views(report.detail_table(both), both)[0].data["config"].iloc[-1] == "m-standard (cuda)"


def test_peaks_table_has_one_column_per_precision():
    peaks = report.peaks_table(_bench())
    assert list(peaks.columns) == ["fp32", "bf16"]
    assert list(peaks.index) == ["m-standard (cpu)", "big (cpu)"]
    assert (peaks["fp32"] == 0.15).all() and (peaks["bf16"] == 0.6).all()


def test_loader_table():
    feed = pd.DataFrame({
        "config": ["c.yaml"], "dataset": ["camvid"], "height": [128], "width": [160], "batch": [8],
        "pipeline": ["DataLoader"], "amp": ["bf16"], "loader_images_per_s": [388.5], "step_images_per_s": [33.8],
        "loader_over_step": [11.5], "loader_share": [0.08],
    })
    table = report.loader_table(feed)
    assert list(table.columns) == list(report.LOADER_COLUMNS.values())
    assert table.iloc[0].to_dict() == {
        "config": "c.yaml", "pipeline": "DataLoader", "crop": "128 × 160", "batch": 8, "amp": "bf16",
        "loader images/s": 388.5, "step images/s": 33.8, "loader / step": 11.5, "loader share": 0.08,
    }


def test_parity_summary_in_percent_per_precision():
    parity = pd.DataFrame({"precision": ["fp32", "bf16", "fp32", "bf16"], "val_miou": [0.20, 0.21, 0.22, 0.25]})
    summary = report.parity_summary(parity)
    assert list(summary.index) == ["fp32", "bf16"] and list(summary.columns) == ["val mIoU %", "std", "n"]
    assert summary.loc["fp32", "val mIoU %"] == pytest.approx(21.0)
    assert summary.loc["bf16", "std"] == pytest.approx(100 * pd.Series([0.21, 0.25]).std())
    assert list(summary["n"]) == [2, 2]


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
    (None, ".2f", "x", "not measured"), (1.2345, ".2f", "x", "1.23x"), (500, "d", "", "500"),
])
def test_told(x, spec, unit, text):
    assert report.told(x, spec, unit) == text


@pytest.mark.parametrize("ratio, text", [
    (None, "not measured"), (1.0002, "1.00x the speed (no change)"),
    (0.988, "0.99x the speed (1.2% slower)"), (1.25, "1.25x the speed (25.0% faster)"),
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
    finally:
        plt.close(fig)
