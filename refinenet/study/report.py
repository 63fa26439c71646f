"""Tables, figures and claim rows shared by the ablation notebooks (4 to 6) and the results (7).

The input is always the per-run frame of :meth:`refinenet.study.experiments.Experiments.records`
(one row per run: ``variant``, ``seed``, ``diverged``, ``test mIoU``, ...; scores in %; a
diverged run's scores are missing, never 0). Statistics come from :mod:`refinenet.study.stats`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from . import stats

__all__ = [
    "variant_costs",
    "pm_with_delta",
    "ablation_table",
    "ablation_tables",
    "show_ablation_figure",
    "failure_text",
    "thin_table",
    "ablation_figure",
    "plot_rate_sweep",
    "setting_rows",
    "setting_box",
    "scored_on",
    "decimals",
    "cost_texts",
    "styled",
    "caption",
    "colour_verdicts",
    "welch_text",
    "failure_counts_text",
    "sweep_records",
    "cascade_layout",
    "standard_view",
    "standing_text",
    "all_variants",
    "p_text",
    "study_arms",
    "cost_decimals",
    "rate_check_view",
    "names_md",
    "swept_text",
    "arm_text",
    "grid_text",
    "other_dataset_texts",
]



#: The cost columns of :func:`ablation_table`: ``{per-run column: table column}``.
COST_COLUMNS = {"parameters (M)": "params (M)", "GMACs": "GMACs", "training s": "train s / run"}
#: The fewest decimals each model-size column is written with on every page (4 to 7), in the
#: tables and in the prose: parameters in millions to 2 decimals, GMACs to 3
#: (:func:`cost_decimals` adds more only where the study's arms would otherwise read alike).
COST_DECIMALS = {"parameters (M)": 2, "GMACs": 3}
#: What two columns of the ablation tables (:func:`ablation_table`) hold, for their captions.
COLUMNS_KEY = "boundary IoU %: mean ± std (Δ [95% CI]); train s / run: the median of the arm's runs."
#: Decimals of every p-value the pages show.
P_DECIMALS = 3


def p_text(p: float) -> str:
    """A p-value as every page writes it: ``"0.042"``, ``"1.000"``."""
    return f"{float(p):.{P_DECIMALS}f}"


def decimals(values, *, sig: int = 3, apart: bool = False, most: int = 6) -> int:
    """The decimals that write every finite value of ``values`` with at least ``sig``
    significant digits (no more than ``most``); with ``apart``, also as many more as keep
    values that differ from each other different in writing (``0.1638`` and ``0.1621``, not
    ``0.164`` and ``0.162`` twice)."""
    xs = [float(v) for v in values if finite(v)]
    nonzero = [abs(x) for x in xs if x != 0]
    if not nonzero:
        return 0
    d = min(most, max(0, sig - 1 - math.floor(math.log10(min(nonzero)))))
    distinct = len({f"{x:.{most}f}" for x in xs})
    while apart and d < most and len({f"{x:.{d}f}" for x in xs}) < distinct:
        d += 1
    return d


def cost_texts(values, *, sig: int = 3, apart: bool = True, places: int | None = None) -> list[str]:
    """``values`` (parameters, MACs, seconds) as text at one precision (:func:`decimals`:
    ``sig`` significant digits at least; with ``apart``, distinct values stay distinct), or at
    ``places`` decimals when given; a missing value is ``"–"``."""
    values = list(values)
    d = decimals(values, sig=sig, apart=apart) if places is None else places
    return [f"{float(v):.{d}f}" if finite(v) else "–" for v in values]


def study_arms(exp) -> dict[str, dict]:
    """``{arm: overrides}`` of every arm that the profile's notebooks declare (their ``arms``
    parameter, as the runner gives it), the standard model first."""
    from .runner import notebook_wants

    arms: dict[str, dict] = {"standard": {}}
    for wants in notebook_wants(exp.profile, exp.runs.root).values():
        for name, overrides in (wants.get("arms") or {}).items():
            arms.setdefault(name, dict(overrides or {}))
    return arms


def cost_decimals(exp, arms: Mapping[str, Mapping] | None = None) -> dict[str, int]:
    """``{per-run cost column: decimals}`` for the model-size columns, the same on every page
    of a profile: :data:`COST_DECIMALS`, or more where two arms of the whole study
    (:func:`study_arms`, or ``arms``) that differ in size would otherwise be written alike."""
    arms = study_arms(exp) if arms is None else arms
    costs = [exp.cost(overrides) for overrides in arms.values()]
    values = {"parameters (M)": [p / 1e6 for p, _ in costs], "GMACs": [m / 1e9 for _, m in costs]}
    places = {}
    for column, least in COST_DECIMALS.items():
        xs = values[column]
        distinct = len({f"{x:.6f}" for x in xs})
        d = least
        while d < 6 and len({f"{x:.{d}f}" for x in xs}) < distinct:
            d += 1
        places[column] = d
    return places


def variant_costs(records):
    """Per variant (rows), the :data:`COST_COLUMNS` of ``records`` (one row per run): the
    model size, the same for every run of an arm, and the *median* training time of its runs.
    Why the median: a run's wall time also measures what else shared the machine while it
    trained, and one disturbed run should not set its arm's time."""
    by_variant = records.groupby("variant")
    costs = by_variant[list(COST_COLUMNS)].mean()
    costs["training s"] = by_variant["training s"].median()
    return costs


def _cost_columns(table, records, places: Mapping[str, int] | None) -> None:
    """Write the cost columns of ``table`` (one row per variant) from the runs' ``records``
    (:func:`variant_costs`): the model-size columns at ``places`` decimals
    (:func:`cost_decimals`), else at one precision per column (:func:`cost_texts`); the
    training time at 3 significant digits."""
    places = places or {}
    costs = variant_costs(records)
    for column, name in COST_COLUMNS.items():
        table[name] = cost_texts(costs.loc[table["variant"], column], apart=name != "train s / run",
                                 places=places.get(column))


def _order(records, order: Sequence[str] | None) -> list[str]:
    return list(order) if order else list(dict.fromkeys(records["variant"]))


def ablation_table(records, *, baseline: str = "standard", order: Sequence[str] | None = None,
                   metric: str = "test mIoU", places: Mapping[str, int] | None = None):
    """One row per variant: mean ± std over seeds, n, the Welch 95% interval of the difference
    to ``baseline``, boundary IoU (with its difference to ``baseline``, :func:`pm_with_delta`),
    thin-class mIoU, parameters, GMACs, median training time
    (``places``: decimals of the model-size columns, :func:`cost_decimals`)."""
    import pandas as pd

    base = records.loc[records.variant == baseline, metric]
    rows = []
    for variant in _order(records, order):
        r = records[records.variant == variant]
        s = stats.summarize(r[metric])
        if variant == baseline:
            delta = "(reference)"
        else:
            delta = stats.interval_text(stats.welch(r[metric], base))
        row = {
            "variant": variant,
            "n": s.n,
            f"{metric} %": stats.pm(s),
            f"Δ vs {baseline} [95% CI]": delta,
        }
        if "test boundary IoU" in r:
            biou = "test boundary IoU"
            row["boundary IoU %"] = (stats.pm(r[biou]) if variant == baseline
                                     else pm_with_delta(r[biou], records.loc[records.variant == baseline, biou]))
        if "thin-class mIoU" in r and r["thin-class mIoU"].notna().any():
            row["thin classes IoU %"] = stats.pm(r["thin-class mIoU"])
        if "diverged" in records and records["diverged"].any():
            row["diverged runs [95% CI]"] = failure_text(int(r["diverged"].sum()), len(r))
        rows.append(row)
    table = pd.DataFrame(rows)
    _cost_columns(table, records, places)
    return table


def pm_with_delta(values, base) -> str:
    """``"30.4 ± 0.5 (+1.0 [+0.1, +1.9])"``: mean ± std of ``values`` and, in brackets, their
    difference to ``base`` with its Welch 95% interval; the interval only where both sides
    have two scored runs or more (NaN: not scored)."""
    text = stats.pm(values)
    if values.notna().sum() > 1 and base.notna().sum() > 1:
        text += f" ({stats.interval_text(stats.welch(values, base))})"  # "-0.04", not "+0.0"
    return text


def thin_table(records, thin: Sequence[str], *, baseline: str = "standard",
               order: Sequence[str] | None = None):
    """Per-class test IoU (mean ± std) of the thin classes, and in brackets the difference to
    ``baseline`` with its Welch 95% interval, one row per variant."""
    import pandas as pd

    rows = []
    for variant in _order(records, order):
        r = records[records.variant == variant]
        b = records[records.variant == baseline]
        row = {"variant": variant, "n": len(r)}
        for c in thin:
            col = f"IoU {c}"
            if col not in r:
                continue
            row[f"{c} %"] = stats.pm(r[col]) if variant == baseline else pm_with_delta(r[col], b[col])
        rows.append(row)
    return pd.DataFrame(rows)


#: Font size (pt) of every text of :func:`ablation_figure` (ticks, axis labels, panel
#: titles): the figure is ``ABLATION_WIDTH`` inches wide, shown about 688 px wide in the book,
#: so 11 pt reads at about 13 px.
ABLATION_PT = 11
ABLATION_WIDTH = 8.0


def ablation_figure(records, *, baseline: str = "standard", order: Sequence[str] | None = None,
                    metric: str = "test mIoU", title: str = ""):
    """Left: every seed's score per variant, with the mean ± std. Right: the difference to
    ``baseline`` with its Welch 95% interval (0 marked). Every text at :data:`ABLATION_PT`."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    names = _order(records, order)
    height = 1.3 + 0.5 * len(names)
    fig, axes = plt.subplots(1, 2, figsize=(ABLATION_WIDTH, max(2.6, height)), sharey=True)
    data = records[records.variant.isin(names)]
    sns.stripplot(data=data, y="variant", x=metric, order=names, ax=axes[0], color="0.55",
                  size=5, jitter=0.12, alpha=0.8)
    sns.pointplot(data=data, y="variant", x=metric, order=names, ax=axes[0], errorbar="sd",
                  color="C0", linestyle="none", markers="D", capsize=0.25)
    axes[0].set_xlabel(f"{metric} %", fontsize=ABLATION_PT)
    axes[0].set_title("seeds (dots), mean ± std", fontsize=ABLATION_PT)
    axes[0].set_ylabel("")
    base = data.loc[data.variant == baseline, metric]
    for i, variant in enumerate(names):
        if variant == baseline:
            axes[1].plot([0], [i], "D", color="0.4")
            continue
        d = stats.welch(data.loc[data.variant == variant, metric], base)
        colour = "C3" if d.high < 0 else "C2" if d.low > 0 else "0.3"  # worse / better / unclear
        axes[1].errorbar([d.diff], [i], xerr=[[d.diff - d.low], [d.high - d.diff]], fmt="o",
                         color=colour, capsize=4)
    axes[1].axvline(0, color="0.6", lw=1)
    axes[1].set_xlabel("points", fontsize=ABLATION_PT)
    axes[1].set_title(f"difference to {baseline}, 95% interval", fontsize=ABLATION_PT)
    for ax in axes:
        ax.tick_params(labelsize=ABLATION_PT)
    if title:
        fig.suptitle(title, fontsize=ABLATION_PT + 1)
    fig.tight_layout()
    return fig


def styled(df, caption: str = "", *, index: bool = False, wrap: bool = True, precision: int = 2,
           nowrap: Sequence[str] = (), nowrap_headers: bool = False):
    """A DataFrame for display: the notebook's usual table look, at most as wide as the page,
    an optional caption (e.g. profile and hardware), no index column. ``wrap=False`` keeps
    every cell on one line (for tables of numbers such as "+1.2 [-0.3, +2.7]"): the headers
    wrap first, and a table still too wide scrolls. ``nowrap``: columns whose data cells
    alone stay on one line (arm names such as "ReLU off, N = 0", intervals), while the
    other cells and, unless ``nowrap_headers``, their headers may wrap. Floats show
    ``precision`` decimals."""
    view = df.style.set_table_attributes('class="dataframe"')
    space = "normal" if wrap else "nowrap"
    view = view.set_table_styles(
        [
            # As wide as the page at most: the headers wrap before the cells do.
            {"selector": "", "props": "width: 100%;"},
            {"selector": "td", "props": f"white-space: {space}; padding: 0.25em 0.5em;"},
            {"selector": "th", "props": "padding: 0.25em 0.5em; vertical-align: bottom;"},
            {"selector": "caption", "props": "caption-side: bottom; text-align: left; "
             "font-size: 0.85em; white-space: normal;"},
        ]
    )
    nowrap = [c for c in nowrap if c in df.columns]
    if nowrap:  # the column's cells (td.colN, th.colN): more specific than the rules above
        cells = ("td", "th") if nowrap_headers else ("td",)
        one_line = [{"selector": cell, "props": "white-space: nowrap;"} for cell in cells]
        view = view.set_table_styles(dict.fromkeys(nowrap, one_line), overwrite=False)
    if not index:
        view = view.hide(axis="index")
    if caption:
        view = view.set_caption(caption)
    return view.format(precision=precision, na_rep="–")


VERDICT_COLOURS = {
    "supported": "background-color: #d8f0d8",
    "contradicted": "background-color: #f6d6d6",
    "equivalent": "background-color: #d8e6f6",
    "not resolved": "background-color: #ececec",
}


def colour_verdicts(view, column: str = "verdict"):
    """Tint the verdict cells of a styled table (the verdicts of
    :func:`refinenet.study.analysis.verdicts`): green supported, red contradicted, blue
    equivalent, grey not resolved."""
    return view.map(lambda v: VERDICT_COLOURS.get(v, ""), subset=[column])


def caption(study, what: str = "") -> str:
    """``"<what> Profile cpu, cpu (2 cores, ...), CamVid."``: who produced a table."""
    data = "the synthetic generator" if study.synthetic else "CamVid"
    prefix = f"{what} " if what else ""
    return f"{prefix}Profile {study.profile_name} on {study.hardware}; data: {data}."


def finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def failure_text(failed: int, total: int) -> str:
    """``"1 of 3 [1%, 91%]"``: a failure count with its exact (Clopper-Pearson) 95% interval."""
    low, high = stats.failure_interval(failed, total)
    return f"{failed} of {total} [{100 * low:.0f}%, {100 * high:.0f}%]"


def ablation_tables(study, exp, runs, *, baseline: str = "standard", title: str = ""):
    """The tables every ablation page shares: one row per run (``tables/runs.csv``), the
    comparison with ``baseline`` (``ablation.csv``) and the thin classes (``thin_classes.csv``),
    the last two displayed. ``runs``: ``{arm: ledger entries}`` (:meth:`Experiments.arm`).
    Returns the per-run frame; :func:`show_ablation_figure` shows the figure in a cell of its own, so that the
    cell's figure caption (MyST-NB's ``mystnb.figure`` metadata) applies to it alone."""
    from IPython.display import display

    records = exp.records(runs)
    study.save_table(records, "runs")
    places = cost_decimals(exp)  # the same on every page of the profile
    table = study.save_table(ablation_table(records, baseline=baseline, places=places), "ablation")
    what = f"{title}, test split; {COLUMNS_KEY}".lstrip(", ")
    # every cell on one line but the widest, the boundary IoU with its interval, which may
    # wrap before its bracket (no-break spaces elsewhere) so that the table fits the page
    one_line = [c for c in table.columns if c != "boundary IoU %"]
    shown = table.copy()
    if "boundary IoU %" in shown:
        shown["boundary IoU %"] = shown["boundary IoU %"].str.replace(" ", "\u00a0").str.replace("\u00a0(", " (")
    display(styled(shown, caption(study, what[0].upper() + what[1:]), nowrap=one_line))
    thin = study.save_table(thin_table(records, exp.thin_classes, baseline=baseline), "thin_classes")
    display(styled(thin, caption(study, "Thin classes, test IoU % (Δ [95% CI])."), nowrap=["variant"]))
    return records


def show_ablation_figure(study, records, *, baseline: str = "standard") -> None:
    """The ablation figure of a page (``figures/ablation.png``), shown."""
    import matplotlib.pyplot as plt

    study.save_figure(ablation_figure(records, baseline=baseline), "ablation")
    plt.show()


def plot_rate_sweep(runs, lrs: Sequence[float], *, hue: Mapping[str, str], ax=None):
    """Val mIoU against the learning rate (log axis), one series per ``hue`` variant (its
    colour): mean ± std over seeds, and every seed as a dot, side by side at each rate.
    ``runs``: per-run rows with ``variant``, ``lr`` and ``val mIoU`` (a diverged run: NaN)."""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.8))
    rng = np.random.default_rng(0)
    offsets = np.exp(np.linspace(-0.06, 0.06, len(hue))) if len(hue) > 1 else [1.0]
    for (name, colour), shift in zip(hue.items(), offsets):
        part = runs[runs["variant"] == name]
        means = part.groupby("lr")["val mIoU"].agg(["mean", "std"])
        ax.errorbar(means.index * shift, means["mean"], yerr=means["std"], fmt="o-", color=colour, capsize=4,
                    label=name)
        jitter = shift * np.exp(rng.uniform(-0.02, 0.02, len(part)))
        ax.scatter(part["lr"] * jitter, part["val mIoU"], s=14, color=colour, alpha=0.4)
    ax.set_xscale("log")
    ax.set_xticks(list(lrs), [f"{x:g}" for x in lrs])
    ax.minorticks_off()
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("val mIoU %")
    ax.legend(frameon=False)
    ax.figure.tight_layout()
    return ax


def setting_rows(exp, standard=None) -> list[tuple[str, str]]:
    """``(what, value)`` rows of the setting a page's trained results come from, read from
    its profile (``exp``: the page's :class:`~refinenet.study.experiments.Experiments`) and,
    given ``standard`` (the standard model's ledger entries), its measured scores."""
    base, design = exp.base, exp.design
    d, m, o, sch = base.data, base.model, base.optim, base.schedule
    size = " × ".join(map(str, d.size)) if d.size else "native"
    crop = f"random crops {' × '.join(map(str, d.crop_size))}" if d.crop_size else "no crops"
    train_images = len(exp.study.data("train", d.size, n=design.scenes or 256))
    rows = [
        ("backbone", f"{m.backbone}, random initialisation (from scratch)"),
        ("decoder widths", ", ".join(map(str, m.widths))),
        ("images", f"{size}, {crop}; scored on {scored_on(exp)}"),
        ("training", f"{o.name}, {sch.name} schedule, {sch.steps} steps of {d.batch_size} images "
                     f"({sch.steps * d.batch_size / train_images:.0f} passes over "
                     f"{train_images} images)"),
        ("seeds", f"{len(design.seeds)} per arm"),
    ]
    if standard:
        amp = next((e.summary.get("precision", {}).get("amp") for e in standard if not e.diverged), None)
        rows.append(("precision", "fp32" if amp in (None, "none") else f"{amp} autocast"))
        rows.append(("learning rate", f"{standard[0].config.optim.lr:g}"))
        for split in ("val", "test"):
            scores = [100 * (e.metrics if split == "val" else e.test).get("miou", math.nan)
                      for e in standard if not e.diverged]
            rows.append((f"standard model, {split} mIoU %", stats.pm(scores)))
    return rows


def scored_on(exp) -> str:
    """The labels a page's scores are measured on: CamVid's own 360 × 480 labels (the logits
    upsampled to them), else the labels at the evaluation size, ``"H × W labels"``. Notebook
    3's recipe table and every page's setting box say it in these words."""
    if exp.study.dataset == "camvid":
        return "360 × 480 labels (logits upsampled)"
    return "{} × {} labels".format(*exp.eval_size)


def setting_box(exp, standard=None):
    """The setting of a page's trained results as a note box (HTML, the theme's
    admonition), from :func:`setting_rows`, so that every page says what it shows."""
    from html import escape

    from IPython.display import HTML

    items = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in setting_rows(exp, standard))
    return HTML(
        '<div class="admonition note"><p class="admonition-title">The setting of these results '
        f"(profile {escape(exp.profile.name)})</p><table class=\"setting\">{items}</table></div>"
    )


# -- the numbers the pages paste into their prose ------------------------------------------


def welch_text(records, better: str, worse: str, *, column: str = "test mIoU",
               missing: str | None = None) -> str:
    """``"+1.2 [-0.3, +2.7]"``: the mean ``column`` of variant ``better`` minus that of ``worse``
    with its Welch 95% interval (:func:`refinenet.study.stats.welch`), from the per-run frame
    ``records`` (diverged runs, NaN, left out). Given ``missing``, a side with fewer than two
    scored runs (a column the profile does not measure, e.g. boundary IoU with
    ``eval.boundary=false``) returns ``missing`` instead of raising."""
    a = records.loc[records["variant"] == better, column]
    b = records.loc[records["variant"] == worse, column]
    if missing is not None and min(a.notna().sum(), b.notna().sum()) < 2:
        return missing
    return stats.interval_text(stats.welch(a, b))


def failure_counts_text(records, variants: Sequence[str]) -> str:
    """``"`standard` 0 of 3 [0%, 71%]; `ReLU off` 1 of 3 [1%, 91%]"`` (Markdown): per variant,
    in the order of ``variants``, its name in code font on one line (:func:`arm_text`), then
    its diverged runs out of its runs with the exact 95% interval (:func:`failure_text`);
    variants apart by semicolons (names may hold commas)."""
    parts = []
    for variant in variants:
        runs = records[records["variant"] == variant]
        parts.append(f"`{arm_text(variant)}` {failure_text(int(runs['diverged'].sum()), len(runs))}")
    return "; ".join(parts)


def sweep_records(exp, arms: Mapping[str, str]):
    """Every run of the learning-rate grid (:meth:`Experiments.sweep`, all rates and the grid's
    seeds) of each arm, as one per-run frame without test scores (:meth:`Experiments.records`,
    ``test=False``), plus ``loss above chance`` (:meth:`Experiments.loss_above_chance`, one of
    the ways a grid run fails). ``arms``: ``{name in the frame: arm}``, so that the table says
    what differs (e.g. ``{"ReLU on": "standard"}``). Returns the frame, arms in the given order."""
    import pandas as pd

    frames = []
    for name, arm in arms.items():
        runs = [entry for at_rate in exp.sweep(arm).values() for entry in at_rate]
        frame = exp.records({name: runs}, test=False)
        frame["loss above chance"] = [exp.loss_above_chance(run) for run in runs]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def cascade_layout(groups: Mapping[str, Sequence[Sequence[int]]], *,
                   described: Mapping[str, str] | None = None):
    """One row per cascade: its arm name, its number of blocks and the backbone taps each block
    fuses, first to last (``"[layer4 + layer3] → [layer2 + layer1]"``). ``groups``:
    ``{arm: refinenet.models.cascade_groups(c)}``, tap indices with 0 the deepest of four.
    ``described``: ``{arm: the paper's name}`` (``"2-cascade"``), a column after the arm's."""
    import pandas as pd

    def taps(group: Sequence[int]) -> str:
        return " + ".join(f"layer{4 - t}" for t in group)

    rows = []
    for name, blocks in groups.items():
        row = {"arm": name}
        if described is not None:
            row["in the paper"] = described[name]
        row["blocks"] = len(blocks)
        row["taps fused by each block, first to last"] = " → ".join(f"[{taps(g)}]" for g in blocks)
        rows.append(row)
    return pd.DataFrame(rows)


#: The columns of :meth:`refinenet.study.experiments.Experiments.rate_check` as the pages
#: show them: short headers that fit the column (:func:`rate_check_view`).
RATE_CHECK_HEADERS = {
    "arm": "arm",
    "common rate": "common rate",
    "val mIoU % at it": "val % at common",
    "its best rate": "best rate",
    "val mIoU % at that": "val % at best",
    "gain": "gain",
    "noise (larger spread)": "noise",
    "trains at": "trains at",
}
#: What the short headers of :func:`rate_check_view` mean, for a table's caption.
RATE_CHECK_KEY = ("Columns: val %, the mean val mIoU over the grid's seeds at that rate; gain, "
                  "best minus common (points); noise, the larger of the two rates' seed "
                  "spreads (std, points).")


def rate_check_view(check):
    """A rate check (:meth:`~refinenet.study.experiments.Experiments.rate_check`) for the
    page: the same rows under the short headers of :data:`RATE_CHECK_HEADERS` (what they
    mean: :data:`RATE_CHECK_KEY`)."""
    return check.rename(columns=RATE_CHECK_HEADERS)


#: A non-breaking space: the spaces inside an arm's name as the pages write it.
NBSP = "\u00a0"


def arm_text(name: str) -> str:
    """An arm's name as the pages write it in prose and table cells: its spaces
    non-breaking, so that ``"ReLU off, N = 0"`` never breaks across lines."""
    return str(name).replace(" ", NBSP)


def names_md(names: Sequence[str]) -> str:
    """Arm names as Markdown prose, each in code font and on one line (:func:`arm_text`) so
    that a name holding a comma reads as one: ``"`ReLU off`, `N = 0` and `ReLU off, N = 0`"``
    (the spaces inside each name non-breaking)."""
    quoted = [f"`{arm_text(n)}`" for n in names]
    if len(quoted) < 2:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _and(words: Sequence[str]) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _rates(lrs: Sequence[float]) -> str:
    return _and([f"{float(x):g}" for x in lrs])


def swept_text(arms: Sequence[str], sweeps: Sequence[str], *, baseline: str = "standard",
               lrs: Sequence[float] | None = None, common: float | None = None) -> str:
    """Which arms of a page besides ``baseline`` were trained at every rate of the grid, and
    which were not, as a Markdown sentence: ``"Of the other arms, `ReLU off` and `N = 0` were
    also trained at the grid's other rates; `N = 4` was not and trains at the common rate."``
    Given the grid ``lrs`` and the ``common`` rate, the other rates are named, in the
    singular where there is one: ``"the grid's other rate, 0.01"``."""
    def verb(names: Sequence[str]) -> str:
        return "was" if len(names) == 1 else "were"

    others = "the grid's other rates"
    if lrs is not None and common is not None:
        rest_lrs = [x for x in lrs if not math.isclose(float(x), float(common))]
        if rest_lrs:
            others = f"the grid's other rate{'s' if len(rest_lrs) > 1 else ''}, {_rates(rest_lrs)}"
    swept = [a for a in arms if a in sweeps and a != baseline]
    rest = [a for a in arms if a not in sweeps and a != baseline]
    if not swept:
        return f"No arm but the standard model was trained at {others}."
    text = f"Of the other arms, {names_md(swept)} {verb(swept)} also trained at {others}"
    if rest:
        train = "trains" if len(rest) == 1 else "train"
        text += f"; {names_md(rest)} {verb(rest)} not and {train} at the common rate"
    return text + "."


_COUNTS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}


def grid_text(lrs: Sequence[float], chosen: float) -> str:
    """Where the chosen rate lies in the learning-rate grid, as a sentence:
    ``"The grid has only three rates, 0.0005, 0.001 and 0.002, around the chosen one
    (0.001)."``, or, the chosen rate at an edge, ``"... and the chosen one (0.05) is its
    highest: no rate above it is tried."``"""
    xs = sorted(float(x) for x in lrs)
    c = float(chosen)
    if len(xs) == 1:
        if math.isclose(xs[0], c):
            return f"The grid has a single rate, the chosen one ({c:g})."
        return f"The grid has a single rate, {xs[0]:g}, not the chosen one ({c:g})."
    head = f"The grid has only {_COUNTS.get(len(xs), len(xs))} rates, {_rates(xs)},"
    inside = any(math.isclose(x, c) for x in xs)
    if inside and math.isclose(c, xs[-1]):
        return f"{head} and the chosen one ({c:g}) is its highest: no rate above it is tried."
    if inside and math.isclose(c, xs[0]):
        return f"{head} and the chosen one ({c:g}) is its lowest: no rate below it is tried."
    if c > xs[-1]:
        return f"{head} all below the chosen one ({c:g})."
    if c < xs[0]:
        return f"{head} all above the chosen one ({c:g})."
    return f"{head} around the chosen one ({c:g})."


#: The data sets a page may run on: ``{dataset parameter: its name in prose}``.
DATA_NAMES = {"camvid": "CamVid", "synthetic": "the synthetic generator"}


def other_dataset_texts(synthetic: bool) -> dict[str, str]:
    """For an exercise that executes a page for the ``cpu`` profile on the data set that
    this page is not on: ``this`` (this page's data, in words), ``other`` (the other's
    ``dataset`` parameter), ``other_words`` and ``expect`` (what the run does, Markdown)."""
    this = "synthetic" if synthetic else "camvid"
    other = "camvid" if synthetic else "synthetic"
    if other == "camvid":
        expect = (
            "Expect the page of the `cpu` study on CamVid, assembled from its runs and from the "
            "tables that its pages wrote under `results/cpu/` (`refinenet study run --profile "
            "cpu` trains and writes them on a machine with CamVid). Without CamVid on this "
            "machine it stops at once, since its `dataset` asks for CamVid; where runs or a "
            "page's tables are missing, it stops at an error that names them and the command "
            "that writes them."
        )
    else:
        expect = (
            "Expect the page to stop at its first cell that reads runs, with an error that they "
            "are not in the ledger `results/cpu-synthetic/runs` (unless this machine has run the "
            "`cpu` profile without CamVid): a study on the generator is kept apart from the "
            "CamVid one and never mixes with it."
        )
    return {"this": DATA_NAMES[this], "other": other, "other_words": DATA_NAMES[other], "expect": expect}


# -- the results page (7): tables gathered from the other pages ---------------------------


def standard_view(summary):
    """The standard model's test summary (notebook 3's ``test_summary`` table: ``metric``,
    ``mean %``, ``std %``, ``n``) for the page: metric, ``"mean ± std %"`` as text, n."""
    import pandas as pd

    return pd.DataFrame({
        "metric": summary["metric"],
        "mean ± std %": [stats.pm(stats.Summary(mean, std, n))
                         for mean, std, n in zip(summary["mean %"], summary["std %"], summary["n"])],
        "n": summary["n"],
    })


def standing_text(test_miou: float, *, synthetic: bool, published: Sequence[Mapping] | None = None) -> str:
    """A clause that sets a test mIoU (%) beside the best published CamVid model trained from
    scratch (``published``: rows of :data:`refinenet.study.published.PUBLISHED_CAMVID`, the
    default): ``"is 36.7 points below FC-DenseNet103 (66.9%), ..."``; on the synthetic
    generator, why no such comparison is made."""
    if synthetic:
        return "was measured on the synthetic generator, so it cannot be set beside published CamVid results"
    from .published import PUBLISHED_CAMVID

    rows = PUBLISHED_CAMVID if published is None else published
    best = max((r for r in rows if r["from scratch"]), key=lambda r: r["test mIoU %"])
    gap = best["test mIoU %"] - test_miou
    return (f"is {gap:.1f} points below {best['method']} ({best['test mIoU %']}%), the best published "
            "CamVid model trained from scratch")


#: The difference column of :func:`all_variants`, whatever each page's baseline is called.
ALL_VARIANTS_DELTA = "Δ test mIoU vs standard [95% CI]"
#: The columns of :func:`all_variants`, where the ablation tables have them.
ALL_VARIANTS_COLUMNS = ["variant", "n", "test mIoU %", ALL_VARIANTS_DELTA, "boundary IoU %", "params (M)",
                        "GMACs", "train s / run"]


def all_variants(tables: Mapping[str, object], records=None, *, places: Mapping[str, int] | None = None):
    """The ablation tables of notebooks 4 to 6 (:func:`ablation_table`, ``{notebook: table}``)
    as one: each table's difference column renamed :data:`ALL_VARIANTS_DELTA`, a
    variant that several pages share (the standard model) kept once, first seen first, and the
    columns of :data:`ALL_VARIANTS_COLUMNS` that the tables have. Given ``records`` (the
    pages' per-run frames), the cost columns are written again from the runs as
    :func:`ablation_table` writes them (``places``: the model-size columns' decimals,
    :func:`cost_decimals`; else one precision for the whole table, :func:`cost_texts`), not
    read back from each page's rounded text."""
    import pandas as pd

    parts = []
    for table in tables.values():
        delta = next(c for c in table.columns if c.startswith("Δ"))
        parts.append(table.rename(columns={delta: ALL_VARIANTS_DELTA}))
    everything = pd.concat(parts, ignore_index=True).drop_duplicates("variant")
    everything = everything[[c for c in ALL_VARIANTS_COLUMNS if c in everything.columns]].copy()
    if records is not None:
        _cost_columns(everything, records, places)
    return everything
