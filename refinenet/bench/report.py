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
    "when", "times", "machines_view", "parity_view", "peak_fractions", "peak_fractions_view",
    "memory_note", "NOT_MEASURED", "path_text", "RUNS_FONT", "OVERLAPPED",
]

#: What a table shows for a value that was not measured (the book's other tables use it too).
NOT_MEASURED = "–"


def styled(table, formats: str | dict | None = None, *, precision: int = 2,
           caption: str | None = None, index: bool = False, na_rep: str = NOT_MEASURED, wrap: bool = True,
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

    view = look(table, caption or "", index=index, wrap=wrap, nowrap=nowrap,
                nowrap_headers=True).format(precision=precision, na_rep=na_rep)
    if formats is not None and not isinstance(formats, dict):
        formats = dict.fromkeys(table.select_dtypes("number").columns, formats)
    formats = {c: f for c, f in (formats or {}).items() if c in table.columns}
    if formats:
        # The subset keeps the other columns' formats (without it they fall back to 6 digits).
        view = view.format(formats, subset=list(formats), na_rep=na_rep)
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


def machines_view(machines):
    """:func:`machines_table` as the page shows it: headers in words, and a caption."""
    view = machines.rename(columns={"device_name": "name", "threads": "torch threads", "torch": "torch version"})
    return styled(view, nowrap=["torch version"], caption=(
        "The machines of the step benchmarks, as their CSV files record them: the device, its "
        "name, the threads torch used and torch's version."))


def when(date) -> str | None:
    """A date of the benchmarks' JSON files (``2026-11-29T19:25:40+0000``) as the page writes
    dates: to the minute, in UTC (``2026-11-29 19:25 UTC``). A date without a time zone keeps
    its clock time, without "UTC"; a date without a time stays as it is; None (or NaN) stays
    None."""
    from datetime import datetime, timezone

    if date is None or date != date:
        return None
    text = str(date)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if len(text) <= 10:  # a day only
        return text
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def whole_words(text) -> str:
    """``text`` as HTML that breaks lines between its words only, never inside one (a browser
    would break ``--out`` after its first hyphen)."""
    from html import escape

    return " ".join(f'<span style="white-space: nowrap">{escape(word)}</span>' for word in str(text).split())


def commands_view(commands):
    """:meth:`refinenet.bench.results.BenchResults.commands` as the page shows it: commands
    broken between words only, the wall time in whole seconds under ``wall (s)``, the date to
    the minute in UTC (:func:`when`), :data:`NOT_MEASURED` for what the JSON file did not
    record (an empty command included), and a caption that explains that mark only when a
    cell shows it."""
    view = commands.rename(columns={"wall s": "wall (s)"}).assign(
        date=commands["date"].map(when),
        command=commands["command"].map(lambda c: None if c is None or c != c or not str(c).strip() else c),
    )
    formats = {"command": whole_words, "wall (s)": "{:.0f}"}
    missing = f" {NOT_MEASURED}: not recorded." if view.isna().any().any() else ""
    return styled(view, formats, nowrap=["file", "wall (s)", "date"], caption=(
        "The step benchmarks' files and the commands that wrote them, from the JSON file next "
        f"to each: the command's wall time and the date it finished.{missing}"))


def speedup_table(bench):
    """Speed-ups over the baseline: index (``label``, ``mode``) in the benchmarks' order, one
    column per fast path (``baseline`` included, 1.0 by definition; NaN: not measured)."""
    return bench.pivot_table(index=["label", "mode"], columns="path", values="speedup", sort=False)


def speedup_view(speed):
    """:func:`speedup_table` as the page shows it: ``config`` and ``mode`` columns, no baseline
    column, path names that may wrap at their "+", ``1.23×``, and :data:`NOT_MEASURED` for a
    path that run did not measure (the caption says so)."""
    view = (
        speed.drop(columns="baseline", errors="ignore")
        .rename(columns=lambda path: path.replace("+", " + ")).rename_axis(columns=None)
        .reset_index().rename(columns={"label": "config"})
    )
    return styled(
        view, "{:.2f}×", wrap=False,
        caption="Speed-up over fp32 NCHW eager, the baseline (median time ratio), from the "
        f"step benchmarks' CSV files. {NOT_MEASURED}: that path was not measured for that "
        "configuration and mode (the fused optimiser step belongs to training only).",
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
    "median (s)": significant, "images/s": significant, "TFLOP/s": "{:.3f}", "of peak": "{:.0%}",
    "memory (MiB)": "{:.0f}", "same argmax": "{:.4f}",
}

#: What the memory column measures on each kind of device (:class:`refinenet.bench.timing.PeakMemory`).
MEMORY_NOTES = {
    "cuda": "on CUDA, the allocator's peak of allocated tensors during one call, above what was "
            "allocated before it (the weights)",
    "cpu": "on the CPU, the growth of the process's resident memory during one call, measured "
           "after a warm-up call of the same path and after the calls measured before it in the "
           "same process; memory that the allocator kept from those calls is reused unseen, so "
           "the value is a lower bound that depends on the allocator and on the measuring "
           "order, and it does not rank the paths",
}


def memory_note(devices) -> str:
    """What the detail table's ``memory (MiB)`` column means for ``devices`` (``"cpu"``,
    ``"cuda"``, ``"cuda:0"``, ...), as a sentence for its caption."""
    kinds = dict.fromkeys(str(d).split(":")[0] for d in devices)
    notes = [MEMORY_NOTES[k] for k in kinds if k in MEMORY_NOTES]
    return f"Memory (MiB): {'; '.join(notes)}." if notes else ""


def detail_table(bench):
    """Every step benchmark row with the columns of :data:`DETAIL_COLUMNS`, renamed (the table
    the page saves)."""
    return bench[list(DETAIL_COLUMNS)].rename(columns=DETAIL_COLUMNS)


def detail_views(detail, bench) -> list:
    """:func:`detail_table` as the page shows it, in two Stylers that fit the text column: the
    time per call (median, q1–q3, images/s), then FLOP/s, fraction of the peak, memory and
    argmax agreement (short headers, units in brackets, on one line: ``median (s)``, ``of
    peak``, ``memory (MiB)``, ``same argmax``). Each row is headed by its group, config, mode
    and input (``batch × H×W``) on three lines, spanning the group's rows, and its path (names
    that may wrap at their "+"). ``detail`` holds the rows of ``bench`` (same index). With one
    device in ``bench`` the config drops the device (the machines table names it). The
    captions say where the numbers come from, what the memory column measures on the devices
    of ``bench`` (:func:`memory_note`) and what :data:`NOT_MEASURED` means."""
    config = bench["config"] if bench["device"].nunique() == 1 else detail["config"]
    size = detail["batch"].astype(str) + " × " + detail["H"].astype(str) + "×" + detail["W"].astype(str)
    group = config + "\n" + detail["mode"] + "\n" + size
    view = detail.assign(
        spread=detail["q1 s"].map(significant) + "–" + detail["q3 s"].map(significant),
        path=detail["path"].str.replace("+", " + ", regex=False),
    ).rename(columns={"median s": "median (s)", "spread": "q1–q3 (s)", "fraction": "of peak",
                      "memory MiB": "memory (MiB)", "argmax agreement": "same argmax"})
    view.index = _row_index(group, view["path"])
    parts = (
        (["median (s)", "q1–q3 (s)", "images/s"],
         "Time per call, from the step benchmarks' CSV files: median and quartiles over the "
         "rounds, images per second."),
        (["TFLOP/s", "of peak", "memory (MiB)", "same argmax"],
         "Achieved TFLOP/s and fraction of the peak, memory added by one call, and the share of "
         "pixels whose predicted class is the baseline's (same argmax), from the step "
         f"benchmarks' CSV files. {memory_note(bench['device'])} {NOT_MEASURED}: not measured "
         "(memory: no growth seen; same argmax: the baseline itself, and training steps)."),
    )
    return [
        _grouped(styled(view[columns].rename_axis(columns="path"),
                        {c: f for c, f in DETAIL_FORMATS.items() if c in columns},
                        index=True, wrap=False, caption=caption.replace("  ", " "),
                        nowrap=[c for c in columns if c.endswith("(s)") or c == "of peak"]))
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


#: What the loader table shows for a loader whose time hides behind the step.
OVERLAPPED = "(overlapped)"


def loader_view(table, *, files: Sequence[str] | None = None):
    """:func:`loader_table` as the page shows it: rates to a tenth, the ratio as ``11.5×``, the
    share in percent, :data:`OVERLAPPED` where the loader's time hides behind the step, and a
    caption. The caption names ``files`` (the ``--loader`` CSV files the rows come from; None:
    one file per row, unnamed) with "its command" or "their commands" by their number, and
    explains :data:`OVERLAPPED` only when a row shows it."""
    formats = {"loader images/s": "{:.1f}", "step images/s": "{:.1f}", "loader / step": "{:.1f}×"}
    n = len(table) if files is None else len(files)
    if files:
        source = ", ".join(files)
    else:
        source = "the *-loader.csv file" if n == 1 else "the *-loader.csv files"
    commands = "its command below" if n == 1 else "their commands below"
    overlapped = (f"; {OVERLAPPED}: it runs beside the step"
                  if table["loader share"].isna().any() else "")
    view = styled(table, formats, nowrap=["config"], caption=(
        "The trainer's batch source and the training step it feeds, timed apart by "
        f"refinenet bench --loader ({source}; {commands}): images per second of each, how many "
        "times faster the loader is, and the loader's share of a step when it runs in the "
        f"training process{overlapped}."))
    return view.format({"loader share": "{:.1%}"}, subset=["loader share"], na_rep=OVERLAPPED)


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


def parity_view(summary):
    """:func:`parity_summary` as the page shows it: the precision as a column, the mean and
    the standard deviation to two decimals, and a caption."""
    formats = {"val mIoU %": "{:.2f}", "std": "{:.2f}"}
    return styled(summary.reset_index(), formats, caption=(
        "Val mIoU of the same configuration trained with each precision by refinenet bench "
        "--parity (precision_parity.csv; its command below): mean over the seeds, standard "
        "deviation over the seeds (points) and the number of seeds n."))


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
    """A speed ratio in words: ``"0.99× the speed (1.2% slower)"``, ``"1.00× the speed (no
    change)"`` within 0.05%, or "not measured" (None)."""
    if r is None:
        return "not measured"
    change = "no change" if abs(r - 1) < 0.0005 else f"{abs(r - 1):.1%} {'faster' if r > 1 else 'slower'}"
    return f"{r:.2f}× the speed ({change})"


def path_text(name) -> str:
    """A run path's name (:data:`refinenet.bench.runs.RUN_PATHS`, as the CSV files hold it) as
    the page writes it: ``"1 run x 2 threads"`` becomes ``"1 run × 2 threads"``."""
    return str(name).replace(" x ", " × ")


#: The whole-runs view's formats: seconds to the second, rates and scores to a tenth.
RUNS_FORMATS = {
    "images/s (whole runs)": "{:.1f}", "speed-up": "{:.2f}×", "run (s)": "{:.0f}", "training (s)": "{:.0f}",
    "scoring (s)": "{:.0f}", "val mIoU %": "{:.1f}",
}


def runs_table(rows):
    """One row per run path (:func:`path_text`): how runs were trained, whole-run images/s, the
    ratio to the first path, and where a run's wall time went (seconds, means over the path's
    runs); shown by :func:`runs_view`."""
    import pandas as pd

    out = pd.DataFrame({
        "run path": rows["path"].map(path_text),
        "runs": rows["runs"],
        "images/s (whole runs)": rows["images_per_s"],
        "speed-up": rows["speedup"],
        "run (s)": rows["run_wall_s_mean"],
        "training (s)": rows["train_s_mean"],
        "scoring (s)": rows["score_s_mean"],
        "val mIoU %": 100 * rows["val_miou_mean"],
    })
    return out


def runs_view(table):
    """:func:`runs_table` as the page shows it, with :data:`RUNS_FORMATS` ("speed-up" and the
    seconds' headers on one line), and a caption."""
    nowrap = ["speed-up", "run (s)", "training (s)", "scoring (s)"]
    return styled(table, RUNS_FORMATS, nowrap=nowrap, caption=(
        "Whole training runs per run path, timed by refinenet bench --runs (its command "
        "below): the runs timed, images per second over whole runs, the speed-up over "
        "the first path, the seconds of one run (wall clock), of its training steps and of its "
        "test scoring (means over the path's runs), and the mean val mIoU of its runs."))


def time_split(each):
    """Per run path (:func:`path_text`), the mean seconds of one run spent in: start-up
    (Python, torch, data fingerprints), training steps, validations and set-up, and test
    scoring."""
    import pandas as pd

    parts = pd.DataFrame({
        "run path": each["path"].map(path_text),
        "start-up": each["run_wall_s"] - each["record_s"],
        "training steps": each["train_s"],
        "validation, set-up": each["record_s"] - each["train_s"] - each["score_s"],
        "test scoring": each["score_s"],
    })
    return parts.groupby("run path", sort=False).mean()


def peak_fractions(whole, step):
    """Per run path of the ``--runs`` table ``whole`` (:func:`path_text`): its training images
    per second (the steps alone, all its jobs together) and the fraction of the bf16 peak they
    reach, at the FLOPs per training image of ``step`` (:func:`standard_train_step`: the
    study's standard model, the same crop) over that benchmark's bf16 peak."""
    import pandas as pd

    flop_per_image = step.achieved_tflops * 1e12 * step.median_s / step.batch
    train_ips = whole["jobs"] * whole["images"] / whole["runs"] / whole["train_s_mean"]
    return pd.DataFrame({
        "run path": whole["path"].map(path_text), "training images/s": train_ips,
        "fraction of the bf16 peak": train_ips * flop_per_image / (step.peak_tflops * 1e12),
    })


def peak_fractions_view(table, step):
    """:func:`peak_fractions` as the page shows it, with a caption naming the step benchmark
    it reads and its bf16 peak."""
    formats = {"training images/s": "{:.1f}", "fraction of the bf16 peak": "{:.0%}"}
    return styled(table, formats, caption=(
        "The fraction of the machine's bf16 peak that each run path's training reaches: its "
        "training images per second (the whole-run benchmark) times the floating-point "
        f"operations of one training image of {step.config} ({step.path}, from the step "
        f"benchmark), over that benchmark's bf16 peak of {step.peak_tflops:.3f} TFLOP/s."))


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


#: Font sizes (points) of :func:`runs_figure`: its long bar labels make it wider than the
#: other figures, so a point shows smaller on the page.
RUNS_FONT = 12.5


def runs_figure(split, *, label_width: int = 30):
    """Stacked bars: where one run's seconds go, per run path (its name wrapped onto lines of
    at most ``label_width`` characters), the legend above them."""
    import textwrap

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.7 * len(split) + 1.6))
    split.plot.barh(stacked=True, ax=ax, width=0.7, color=["0.7", "C0", "C1", "C2"], legend=False)
    ax.invert_yaxis()
    ax.set_yticks(range(len(split)), [textwrap.fill(str(name), label_width) for name in split.index])
    ax.set_xlabel("seconds of one run (wall clock; the runs of a 2-job path train two at a time)",
                  fontsize=RUNS_FONT)
    ax.set_ylabel("")
    ax.tick_params(labelsize=RUNS_FONT)
    fig.tight_layout()
    # Above the whole figure, labels included: it is wider than the axes.
    fig.legend(*ax.get_legend_handles_labels(), ncol=4, fontsize=RUNS_FONT, handlelength=1.5,
               columnspacing=1.2, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return fig
