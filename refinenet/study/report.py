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
    "ablation_table",
    "ablation_tables",
    "show_ablation_figure",
    "failure_text",
    "thin_table",
    "ablation_figure",
    "claim",
    "CLAIM_COLUMNS",
    "styled",
    "caption",
    "colour_verdicts",
]

CLAIM_COLUMNS = [
    "claim",
    "paper's evidence",
    "measure",
    "ours",
    "difference",
    "low",
    "high",
    "n",
    "verdict",
    "notebook",
]


def _order(records, order: Sequence[str] | None) -> list[str]:
    return list(order) if order else list(dict.fromkeys(records["variant"]))


def ablation_table(records, *, baseline: str = "standard", order: Sequence[str] | None = None,
                   metric: str = "test mIoU"):
    """One row per variant: mean ± std over seeds, n, the Welch 95% interval of the difference
    to ``baseline``, boundary IoU, thin-class mIoU, parameters, GMACs, training time."""
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
            row["boundary IoU %"] = stats.pm(r["test boundary IoU"])
        if "thin-class mIoU" in r and r["thin-class mIoU"].notna().any():
            row["thin classes IoU %"] = stats.pm(r["thin-class mIoU"])
        if "diverged" in records and records["diverged"].any():
            row["diverged runs [95% CI]"] = failure_text(int(r["diverged"].sum()), len(r))
        row["params (M)"] = f"{r['parameters (M)'].mean():.2f}"
        row["GMACs"] = f"{r['GMACs'].mean():.2f}"
        row["train s / run"] = f"{r['training s'].mean():.0f}" if r["training s"].notna().any() else "–"
        rows.append(row)
    return pd.DataFrame(rows)


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
            text = stats.pm(r[col])
            if variant != baseline and r[col].notna().sum() > 1 and b[col].notna().sum() > 1:
                d = stats.welch(r[col], b[col])
                text += f" ({d.diff:+.1f} [{d.low:+.1f}, {d.high:+.1f}])"
            row[f"{c} %"] = text
        rows.append(row)
    return pd.DataFrame(rows)


def ablation_figure(records, *, baseline: str = "standard", order: Sequence[str] | None = None,
                    metric: str = "test mIoU", title: str = ""):
    """Left: every seed's score per variant, with the mean ± std. Right: the difference to
    ``baseline`` with its Welch 95% interval (0 marked)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    names = _order(records, order)
    height = 1.2 + 0.5 * len(names)
    fig, axes = plt.subplots(1, 2, figsize=(8, max(2.4, height)), sharey=True)
    data = records[records.variant.isin(names)]
    sns.stripplot(data=data, y="variant", x=metric, order=names, ax=axes[0], color="0.55",
                  size=5, jitter=0.12, alpha=0.8)
    sns.pointplot(data=data, y="variant", x=metric, order=names, ax=axes[0], errorbar="sd",
                  color="C0", linestyle="none", markers="D", capsize=0.25)
    axes[0].set_xlabel(f"{metric} %")
    axes[0].set_title("seeds (dots), mean ± std")
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
    axes[1].set_xlabel("points")
    axes[1].set_title(f"difference to {baseline}, 95% interval")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def claim(text: str, evidence: str, measure: str, better: Sequence[float], worse: Sequence[float],
          *, better_label: str, worse_label: str, notebook: str, units: str = "mIoU points",
          diverged: tuple[int, int] = (0, 0)) -> dict:
    """A claim row: ``better`` are the per-seed scores of what the paper says is better.

    The difference ``mean(better) - mean(worse)`` is positive when the paper is right; its
    Welch 95% interval gives the verdict (:func:`refinenet.study.stats.verdict`).
    ``diverged``: how many of the ``better`` and ``worse`` runs diverged; they have no score
    (the scores of the runs that trained are compared), and the row says how many failed."""
    d = stats.welch(better, worse)
    a, b = stats.summarize(better), stats.summarize(worse)
    ours = f"{better_label}: {stats.pm(a)} vs {worse_label}: {stats.pm(b)} (n = {a.n} and {b.n})"
    if any(diverged):
        ours += (f"; diverged (no score): {failure_text(diverged[0], a.n + diverged[0])} "
                 f"{better_label}, {failure_text(diverged[1], b.n + diverged[1])} {worse_label}")
    return {
        "claim": text,
        "paper's evidence": evidence,
        "measure": measure,
        "ours": ours,
        "difference": d.diff,
        "low": d.low,
        "high": d.high,
        "n": min(a.n, b.n),
        "verdict": stats.verdict(d.low, d.high),
        "notebook": notebook,
        "units": units,
    }


def styled(df, caption: str = "", *, index: bool = False, wrap: bool = True):
    """A DataFrame for display: the notebook's usual table look, at most as wide as the page,
    an optional caption (e.g. profile and hardware), no index column. ``wrap=False`` keeps
    every cell on one line (for tables of numbers such as "+1.2 [-0.3, +2.7]"): the headers
    wrap first, and a table still too wide scrolls."""
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
    if not index:
        view = view.hide(axis="index")
    if caption:
        view = view.set_caption(caption)
    return view.format(precision=2, na_rep="–")


VERDICT_COLOURS = {
    stats.SUPPORTED: "background-color: #d8f0d8",
    stats.CONTRADICTED: "background-color: #f6d6d6",
    stats.NOT_RESOLVED: "background-color: #ececec",
}


def colour_verdicts(view, column: str = "verdict"):
    """Tint the verdict cells of a styled table: green supported, red contradicted, grey
    not resolved."""
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
    table = study.save_table(ablation_table(records, baseline=baseline), "ablation")
    display(styled(table, caption(study, f"{title}, test split.".lstrip(", ")), wrap=False))
    thin = study.save_table(thin_table(records, exp.thin_classes, baseline=baseline), "thin_classes")
    display(styled(thin, caption(study, "Thin classes, test IoU % (Δ [95% CI]).")))
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
