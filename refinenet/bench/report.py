"""Tables and figures of ``refinenet bench`` for the performance chapter (notebook 08).

The step benchmarks (one row per model configuration, mode and fast path; read with
:meth:`refinenet.bench.results.BenchResults.timings`) give the speed-up table and figure, the
detail tables and the peaks; ``--loader``, ``--parity`` and ``--runs`` give one table each, and
``--runs`` a figure of where a run's time goes. Each helper returns a DataFrame, a Styler or a
figure; the page saves and shows it. :func:`told` and :func:`pace` word numbers for the prose.
"""

from __future__ import annotations

import math

__all__ = [
    "styled", "machines_table", "speedup_table", "speedup_view", "speedups_figure", "detail_table",
    "detail_views", "peaks_table", "loader_table", "parity_summary", "standard_train_step",
    "runs_by_key", "told", "pace", "runs_table", "runs_parity", "runs_figure", "time_split",
]


def styled(table, formats: str | dict[str, str] | None = None, *, precision: int | None = None,
           caption: str | None = None, index: bool = False, na_rep: str | None = None):
    """``table`` (a DataFrame) as the page shows it: a Styler with ``formats`` (one format string
    for every cell, or column -> format), other floats at ``precision`` digits, missing values as
    ``na_rep``, a ``caption``, and the index hidden unless ``index``."""
    style = table.style
    if precision is not None:
        style = style.format(precision=precision)
    if formats is not None:
        style = style.format(formats, na_rep=na_rep)
    if caption is not None:
        style = style.set_caption(caption)
    return style if index else style.hide(axis="index")


def machines_table(bench):
    """One row per device of the step benchmarks: ``device``, ``device_name``, ``threads``,
    ``torch`` (of its first row)."""
    return bench.groupby("device", as_index=False).first()[["device", "device_name", "threads", "torch"]]


def speedup_table(bench):
    """Speed-ups over the baseline: index (``label``, ``mode``) in the benchmarks' order, one
    column per fast path (``baseline`` included, 1.0 by definition; NaN: not measured)."""
    return bench.pivot_table(index=["label", "mode"], columns="path", values="speedup", sort=False)


def speedup_view(speed):
    """:func:`speedup_table` as the page shows it: without the baseline column, path names that
    may wrap at their "+", ``1.23x``, and "—" for a path that run did not measure."""
    view = speed.drop(columns="baseline", errors="ignore").rename(columns=lambda path: path.replace("+", " + "))
    return styled(
        view, "{:.2f}x", index=True, na_rep="—",
        caption="Speed-up over fp32 NCHW eager, the baseline (median time ratio)",
    ).set_table_styles([{"selector": "td, th", "props": "padding: 0.1em 0.8em"}])


def speedups_figure(bench):
    """Horizontal bars of each fast path's speed-up per ``label``, one panel per mode (inference,
    training; a seaborn catplot), with a black line at 1. Returns the figure."""
    import seaborn as sns

    g = sns.catplot(data=bench, x="speedup", y="label", hue="path", col="mode", kind="bar", height=3.0,
                    aspect=1.6, orient="h", legend_out=True)
    for ax in g.axes.flat:
        ax.axvline(1.0, color="black", lw=0.8)
        ax.set_xlabel("speed-up over fp32 NCHW eager")
        ax.set_ylabel("")
    return g.figure


#: Step benchmark column -> the detail table's column.
DETAIL_COLUMNS = {
    "label": "config", "mode": "mode", "path": "path", "height": "H", "width": "W", "batch": "batch",
    "median_s": "median s", "q1_s": "q1 s", "q3_s": "q3 s", "images_per_s": "images/s",
    "achieved_tflops": "TFLOP/s", "peak_tflops": "peak TFLOP/s", "fraction_of_peak": "fraction",
    "peak_memory_mb": "memory MiB", "argmax_agreement": "argmax agreement",
}
#: The detail views' formats.
DETAIL_FORMATS = {
    "median s": "{:.3f}", "images/s": "{:.2f}", "TFLOP/s": "{:.3f}", "fraction": "{:.0%}",
    "memory MiB": "{:.0f}", "agreement": "{:.4f}",
}


def detail_table(bench):
    """Every step benchmark row with the columns of :data:`DETAIL_COLUMNS`, renamed (the table
    the page saves)."""
    return bench[list(DETAIL_COLUMNS)].rename(columns=DETAIL_COLUMNS)


def detail_views(detail, bench) -> list:
    """:func:`detail_table` as the page shows it, in two Stylers (one would be wider than the
    page): the time per call (input ``batch × H×W``, median, q1–q3, images/s), then FLOP/s,
    fraction of the peak, memory and argmax agreement; each keyed by config, mode and path (path
    names that may wrap at their "+"). ``detail`` holds the rows of ``bench`` (same index). With
    one device in ``bench`` the config column drops the device (the machines table names it)."""
    view = detail.assign(
        input=detail["batch"].astype(str) + " × " + detail["H"].astype(str) + "×" + detail["W"].astype(str),
        spread=detail["q1 s"].map("{:.3f}".format) + "–" + detail["q3 s"].map("{:.3f}".format),
        path=detail["path"].str.replace("+", " + ", regex=False),
    )
    if bench["device"].nunique() == 1:
        view["config"] = bench["config"]
    view = view.rename(columns={"spread": "q1–q3 s", "argmax agreement": "agreement"})
    key = ["config", "mode", "path"]
    parts = (
        (["input", "median s", "q1–q3 s", "images/s"], "Time per call"),
        (["TFLOP/s", "fraction", "memory MiB", "agreement"],
         "Achieved FLOP/s, fraction of the peak, memory, agreement"),
    )
    return [
        styled(view[key + columns], {c: f for c, f in DETAIL_FORMATS.items() if c in columns}, na_rep="",
               caption=caption)
        for columns, caption in parts
    ]


def peaks_table(bench):
    """The measured ceilings: TFLOP/s of the large GEMM, index ``label``, one column per
    precision (``fp32`` for paths without autocast, else the autocast dtype)."""
    precision = bench["amp"].fillna("none").replace({"none": "fp32"})
    peaks = bench.assign(precision=precision).groupby(["label", "precision"], sort=False)["peak_tflops"]
    return peaks.first().unstack()


#: Loader benchmark column -> the loader table's column (``crop``: ``H × W``).
LOADER_COLUMNS = {
    "config": "config", "pipeline": "pipeline", "crop": "crop", "batch": "batch", "amp": "amp",
    "loader_images_per_s": "loader images/s", "step_images_per_s": "step images/s",
    "loader_over_step": "loader / step", "loader_share": "loader share",
}


def loader_table(feed):
    """The ``--loader`` benchmarks with the columns of :data:`LOADER_COLUMNS`, renamed; the crop
    as one column ``"H × W"``."""
    feed = feed.assign(crop=feed["height"].astype(str) + " × " + feed["width"].astype(str))
    return feed[list(LOADER_COLUMNS)].rename(columns=LOADER_COLUMNS)


def parity_summary(parity):
    """Val mIoU per precision of the ``--parity`` runs: index ``precision`` (in the file's
    order), columns ``val mIoU %`` (mean), ``std`` (percentage points) and ``n`` (seeds).

    No speeds: those runs trained one after the other under whatever load the machine had; the
    step and whole-run benchmarks time the paths side by side."""
    return (
        parity.groupby("precision", sort=False)["val_miou"].agg(["mean", "std", "count"])
        .mul({"mean": 100, "std": 100, "count": 1})
        .rename(columns={"mean": "val mIoU %", "std": "std", "count": "n"})
    )


def standard_train_step(bench):
    """The step benchmark row of the study's standard model training on the CPU in
    bf16+channels_last (config ``*-standard``; the first such row), or None when none was
    measured. Its FLOPs per image and its bf16 peak are those of the study's training."""
    if bench.empty:
        return None
    rows = bench[
        (bench["device"] == "cpu") & (bench["mode"] == "train") & (bench["path"] == "bf16+channels_last")
        & bench["config"].str.endswith("-standard")
    ]
    return rows.iloc[0] if len(rows) else None


def runs_by_key(whole) -> dict:
    """The ``--runs`` table's row (a Series) of each run path of
    :data:`refinenet.bench.runs.RUN_PATHS` that it holds, by the path's key (``"before"``,
    ``"jobs"``, ...), matched by name: a path that ``--paths`` left out has no key."""
    from .runs import RUN_PATHS

    rows = {key: whole[whole["path"] == path.name] for key, path in RUN_PATHS.items()}
    return {key: found.iloc[0] for key, found in rows.items() if len(found)}


def told(x, spec: str, unit: str = "") -> str:
    """``x`` formatted with ``spec`` and ``unit`` for the prose, or "not measured" (None)."""
    return "not measured" if x is None else format(x, spec) + unit


def pace(r: float | None) -> str:
    """A speed ratio in words: ``"0.99x the speed (1.2% slower)"``, ``"1.00x the speed (no
    change)"`` within 0.05%, or "not measured" (None)."""
    if r is None:
        return "not measured"
    change = "no change" if abs(r - 1) < 0.0005 else f"{abs(r - 1):.1%} {'faster' if r > 1 else 'slower'}"
    return f"{r:.2f}x the speed ({change})"


def runs_table(rows):
    """One row per run path: how runs were trained, whole-run images/s, the ratio to the first
    path, and where a run's wall time went (seconds, means over the path's runs)."""
    import pandas as pd

    out = pd.DataFrame({
        "run path": rows["path"],
        "runs": rows["runs"],
        "images/s (whole runs)": rows["images_per_s"],
        "speed-up": rows["speedup"],
        "s / run": rows["run_wall_s_mean"],
        "training s": rows["train_s_mean"],
        "test scoring s": rows["score_s_mean"],
        "val mIoU %": 100 * rows["val_miou_mean"],
    })
    return out


def time_split(each):
    """Per run path, the mean seconds of one run spent in: start-up (Python, torch, data
    fingerprints), training steps, validations and set-up, and test scoring."""
    import pandas as pd

    parts = pd.DataFrame({
        "run path": each["path"],
        "start-up": each["run_wall_s"] - each["record_s"],
        "training steps": each["train_s"],
        "validation, set-up": each["record_s"] - each["train_s"] - each["score_s"],
        "test scoring": each["score_s"],
    })
    return parts.groupby("run path", sort=False).mean()


def runs_parity(each, reference: str, candidate: str) -> dict:
    """Val mIoU of ``candidate``'s runs against ``reference``'s: means, standard deviations,
    difference, and whether it is within the seed spread (|difference| <= the larger std)."""
    def stats(path):
        v = 100 * each.loc[each["path"] == path, "val_miou"].astype(float)
        return len(v), float(v.mean()), float(v.std()) if len(v) > 1 else math.nan

    (n_ref, m_ref, s_ref), (n_new, m_new, s_new) = stats(reference), stats(candidate)
    spread = max(s for s in (s_ref, s_new) if not math.isnan(s)) if not (math.isnan(s_ref) and math.isnan(s_new)) else math.nan
    diff = m_new - m_ref
    return {"reference": (n_ref, m_ref, s_ref), "candidate": (n_new, m_new, s_new), "difference": diff,
            "within": bool(abs(diff) <= spread) if not math.isnan(spread) else False}


def runs_figure(split):
    """Stacked bars: where one run's seconds go, per run path."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.6 * len(split) + 1.4))
    split.plot.barh(stacked=True, ax=ax, width=0.7, color=["0.7", "C0", "C1", "C2"])
    ax.invert_yaxis()
    ax.set_xlabel("seconds of one run (wall clock; runs of a 2-job path train two at a time)")
    ax.set_ylabel("")
    ax.legend(ncol=4, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    return fig
