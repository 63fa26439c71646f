"""Tables and figures of ``refinenet bench`` for the performance chapter (notebook 08).

The step benchmarks (one row per model configuration, mode and fast path; read with
:meth:`refinenet.bench.results.BenchResults.timings`) give the speed-up table and figure, the
detail tables and the peaks; ``--loader``, ``--parity`` and ``--runs`` give one table each, and
``--runs`` a figure of where a run's time goes. Each helper returns a DataFrame, a Styler or a
figure; the page saves and shows it. :func:`told` and :func:`pace` word numbers for the prose.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "styled", "significant", "whole_words", "machines_table", "commands_view", "speedup_table",
    "speedup_view", "speedups_figure", "detail_table", "detail_views", "peaks_table", "peaks_view",
    "loader_table", "loader_view", "parity_summary", "standard_train_step", "runs_by_key", "told",
    "pace", "runs_table", "runs_view", "RUNS_FORMATS", "runs_parity", "runs_figure", "time_split",
]


def styled(table, formats: str | dict | None = None, *, precision: int = 2,
           caption: str | None = None, index: bool = False, na_rep: str = "–", wrap: bool = True,
           nowrap: Sequence[str] = ()):
    """``table`` (a DataFrame) as the page shows it: the book's table look
    (:func:`refinenet.study.report.styled`: cell padding, at most as wide as the page, the
    caption below; ``wrap=False`` keeps each data cell on one line), the index hidden unless
    ``index``, floats at ``precision`` digits, missing values as ``na_rep``, and ``formats``:
    one format (a string or a function) for every numeric column, or column -> format
    (columns that ``table`` lacks are ignored; the other columns keep ``precision``). The
    columns ``nowrap`` keep each cell, header included, on one line (names and dates that
    would break at a hyphen)."""
    from ..study.report import styled as look

    view = look(table, caption or "", index=index, wrap=wrap).format(precision=precision, na_rep=na_rep)
    if formats is not None and not isinstance(formats, dict):
        formats = dict.fromkeys(table.select_dtypes("number").columns, formats)
    formats = {c: f for c, f in (formats or {}).items() if c in table.columns}
    if formats:
        # The subset keeps the other columns' formats (without it they fall back to 6 digits).
        view = view.format(formats, subset=list(formats), na_rep=na_rep)
    if nowrap:  # a column's cells (td.colN, th.colN): more specific than the look's rules
        one_line = [{"selector": cell, "props": "white-space: nowrap;"} for cell in ("td", "th")]
        view = view.set_table_styles(dict.fromkeys(nowrap, one_line), overwrite=False)
    return view


def _grouped(view):
    """Row headings in plain text at the top left of their cells (the group spanning its rows,
    one line per line of its text); the number columns as narrow as their cells allow, so
    that the headings keep the room."""
    return view.set_table_styles([
        {"selector": "th.col_heading", "props": "width: 1%;"},
        {"selector": "th.row_heading", "props": "vertical-align: top; text-align: left; font-weight: normal;"},
        {"selector": "th.row_heading.level0", "props": "white-space: pre;"},
    ], overwrite=False)


def machines_table(bench):
    """One row per device of the step benchmarks: ``device``, ``device_name``, ``threads``,
    ``torch`` (of its first row)."""
    return bench.groupby("device", as_index=False).first()[["device", "device_name", "threads", "torch"]]


def whole_words(text) -> str:
    """``text`` as HTML that breaks lines between its words only, never inside one (a browser
    would break ``--out`` after its first hyphen)."""
    from html import escape

    return " ".join(f'<span style="white-space: nowrap">{escape(word)}</span>' for word in str(text).split())


def commands_view(commands):
    """:meth:`refinenet.bench.results.BenchResults.commands` as the page shows it: commands
    broken between words only, the wall time in whole seconds, the date to the minute
    (``2026-11-22 01:00``)."""
    formats = {"command": whole_words, "wall s": "{:.0f}", "date": lambda date: str(date)[:16].replace("T", " ")}
    return styled(commands, formats, nowrap=["file", "date"])


def speedup_table(bench):
    """Speed-ups over the baseline: index (``label``, ``mode``) in the benchmarks' order, one
    column per fast path (``baseline`` included, 1.0 by definition; NaN: not measured)."""
    return bench.pivot_table(index=["label", "mode"], columns="path", values="speedup", sort=False)


def speedup_view(speed):
    """:func:`speedup_table` as the page shows it: ``config`` and ``mode`` columns, no baseline
    column, path names that may wrap at their "+", ``1.23x``, and "—" for a path that run did
    not measure."""
    view = (
        speed.drop(columns="baseline", errors="ignore")
        .rename(columns=lambda path: path.replace("+", " + ")).rename_axis(columns=None)
        .reset_index().rename(columns={"label": "config"})
    )
    return styled(
        view, "{:.2f}x", na_rep="—", wrap=False,
        caption="Speed-up over fp32 NCHW eager, the baseline (median time ratio).",
    )


#: Font sizes (points) of the page's figures, about 8 to 9 inches wide with their labels:
#: shown 688 pixels wide, a point is about 1.1 pixels, so the smallest text (ticks, legends)
#: is 12 pixels or more (:mod:`refinenet.study.readable` checks it when a page saves them).
FONT = {"ticks": 11, "legend": 11, "label": 11.5, "title": 12}


def speedups_figure(bench):
    """Horizontal bars of each fast path's speed-up per ``label``, one panel per mode (in the
    benchmarks' order, one above the other, each as tall as its bars), a colour per path shared
    by the panels and one legend above them, and a black line at 1. Returns the figure."""
    import matplotlib.pyplot as plt

    modes = list(dict.fromkeys(bench["mode"]))
    colours = {path: f"C{i}" for i, path in enumerate(dict.fromkeys(bench["path"]))}
    parts = [bench[bench["mode"] == mode] for mode in modes]
    # Each panel as tall as its bars (0.13 in each) and their gaps.
    heights = [0.6 + 0.13 * part["label"].nunique() * (part["path"].nunique() + 1) for part in parts]
    fig, axes = plt.subplots(len(modes), 1, sharex=True, squeeze=False, figsize=(8, 1.0 + sum(heights)),
                             gridspec_kw={"height_ratios": heights})
    for ax, mode, part in zip(axes[:, 0], modes, parts):
        labels, paths = list(dict.fromkeys(part["label"])), list(dict.fromkeys(part["path"]))
        height = 0.8 / len(paths)
        for j, path in enumerate(paths):
            rows = part[part["path"] == path]
            y = [labels.index(label) + (j - (len(paths) - 1) / 2) * height for label in rows["label"]]
            ax.barh(y, rows["speedup"], height=height, color=colours[path], label=path)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_ylim(len(labels) - 0.5, -0.5)  # the first configuration on top
        ax.axvline(1.0, color="black", lw=0.8)
        ax.set_title("training" if mode == "train" else mode, loc="left", fontsize=FONT["title"])
        ax.tick_params(labelsize=FONT["ticks"])
    axes[-1, 0].set_xlabel("speed-up over fp32 NCHW eager", fontsize=FONT["label"])
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    fig.legend(handles, list(colours), loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3,
               fontsize=FONT["legend"], frameon=False)
    fig.tight_layout()
    return fig


#: Step benchmark column -> the detail table's column.
DETAIL_COLUMNS = {
    "label": "config", "mode": "mode", "path": "path", "height": "H", "width": "W", "batch": "batch",
    "median_s": "median s", "q1_s": "q1 s", "q3_s": "q3 s", "images_per_s": "images/s",
    "achieved_tflops": "TFLOP/s", "peak_tflops": "peak TFLOP/s", "fraction_of_peak": "fraction",
    "peak_memory_mb": "memory MiB", "argmax_agreement": "argmax agreement",
}


def significant(x, digits: int = 3) -> str:
    """``x`` with ``digits`` significant digits, trailing zeros kept, never in exponent form
    (``0.386``, ``3.70``, ``25.9``, ``1234``); "" for a missing value."""
    if x is None or x != x:
        return ""
    places = max(digits - 1 - math.floor(math.log10(abs(x))), 0) if x else digits - 1
    return f"{x:.{places}f}"


#: The detail views' formats (callables: times and rates to three significant digits).
DETAIL_FORMATS = {
    "median s": significant, "images/s": significant, "TFLOP/s": "{:.3f}", "of peak": "{:.0%}",
    "memory MiB": "{:.0f}", "same argmax": "{:.4f}",
}


def detail_table(bench):
    """Every step benchmark row with the columns of :data:`DETAIL_COLUMNS`, renamed (the table
    the page saves)."""
    return bench[list(DETAIL_COLUMNS)].rename(columns=DETAIL_COLUMNS)


def detail_views(detail, bench) -> list:
    """:func:`detail_table` as the page shows it, in two Stylers that fit the text column: the
    time per call (median, q1–q3, images/s), then FLOP/s, fraction of the peak, memory and
    argmax agreement (short headers: ``of peak``, ``same argmax``). Each row is headed by its
    group, config, mode and input (``batch × H×W``) on three lines, spanning the group's rows,
    and its path (names that may wrap at their "+"). ``detail`` holds the rows of ``bench``
    (same index). With one device in ``bench`` the config drops the device (the machines
    table names it)."""
    config = bench["config"] if bench["device"].nunique() == 1 else detail["config"]
    size = detail["batch"].astype(str) + " × " + detail["H"].astype(str) + "×" + detail["W"].astype(str)
    group = config + "\n" + detail["mode"] + "\n" + size
    view = detail.assign(
        spread=detail["q1 s"].map(significant) + "–" + detail["q3 s"].map(significant),
        path=detail["path"].str.replace("+", " + ", regex=False),
    ).rename(columns={"spread": "q1–q3 s", "fraction": "of peak", "argmax agreement": "same argmax"})
    view.index = _row_index(group, view["path"])
    parts = (
        (["median s", "q1–q3 s", "images/s"],
         "Time per call: median and quartiles over the rounds, images per second."),
        (["TFLOP/s", "of peak", "memory MiB", "same argmax"],
         "Achieved TFLOP/s, fraction of the peak, memory added by one call, and the share of "
         "pixels whose predicted class is the baseline's (same argmax; inference only)."),
    )
    return [
        _grouped(styled(view[columns].rename_axis(columns="path"),
                        {c: f for c, f in DETAIL_FORMATS.items() if c in columns},
                        index=True, wrap=False, caption=caption))
        for columns, caption in parts
    ]


def _row_index(group, path):
    """The detail views' row index: (group, path), unnamed (a named index would add a header
    row; the columns' name, "path", heads the path instead)."""
    import pandas as pd

    return pd.MultiIndex.from_arrays([list(group), list(path)])


def peaks_table(bench):
    """The measured ceilings: TFLOP/s of the large GEMM, index ``label``, one column per
    precision (``fp32`` for paths without autocast, else the autocast dtype)."""
    precision = bench["amp"].fillna("none").replace({"none": "fp32"})
    peaks = bench.assign(precision=precision).groupby(["label", "precision"], sort=False)["peak_tflops"]
    return peaks.first().unstack()


def peaks_view(peaks):
    """:func:`peaks_table` as the page shows it: a ``config`` column and one ``<precision>
    TFLOP/s`` column per precision, three decimals."""
    view = peaks.rename(columns=lambda precision: f"{precision} TFLOP/s").rename_axis(columns=None)
    return styled(view.rename_axis("config").reset_index(), "{:.3f}", wrap=False,
                  caption="The peaks: TFLOP/s of a large GEMM, measured in the same run.")


#: Loader benchmark column -> the loader table's column (``crop``: ``H×W``).
LOADER_COLUMNS = {
    "config": "config", "pipeline": "pipeline", "crop": "crop", "batch": "batch", "amp": "amp",
    "loader_images_per_s": "loader images/s", "step_images_per_s": "step images/s",
    "loader_over_step": "loader / step", "loader_share": "loader share",
}


def loader_table(feed):
    """The ``--loader`` benchmarks with the columns of :data:`LOADER_COLUMNS`, renamed; the crop
    as one column ``"H×W"``."""
    feed = feed.assign(crop=feed["height"].astype(str) + "×" + feed["width"].astype(str))
    return feed[list(LOADER_COLUMNS)].rename(columns=LOADER_COLUMNS)


def loader_view(table):
    """:func:`loader_table` as the page shows it: rates to a tenth, the ratio as ``11.5x``, the
    share in percent, "(overlapped)" where the loader's time hides behind the step."""
    formats = {"loader images/s": "{:.1f}", "step images/s": "{:.1f}", "loader / step": "{:.1f}x"}
    view = styled(table, formats, nowrap=["config"])
    return view.format({"loader share": "{:.1%}"}, subset=["loader share"], na_rep="(overlapped)")


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


#: The whole-runs view's formats: seconds to the second, rates and scores to a tenth.
RUNS_FORMATS = {
    "images/s (whole runs)": "{:.1f}", "speed-up": "{:.2f}x", "s / run": "{:.0f}", "training s": "{:.0f}",
    "test scoring s": "{:.0f}", "val mIoU %": "{:.1f}",
}


def runs_table(rows):
    """One row per run path: how runs were trained, whole-run images/s, the ratio to the first
    path, and where a run's wall time went (seconds, means over the path's runs); shown by
    :func:`runs_view`."""
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


def runs_view(table):
    """:func:`runs_table` as the page shows it, with :data:`RUNS_FORMATS` ("speed-up" on one
    line)."""
    return styled(table, RUNS_FORMATS, nowrap=["speed-up"])


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
    ax.set_xlabel("seconds of one run (wall clock; runs of a 2-job path train two at a time)",
                  fontsize=FONT["label"])
    ax.set_ylabel("")
    ax.tick_params(labelsize=FONT["ticks"])
    ax.legend(ncol=4, fontsize=FONT["legend"], loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    return fig
