"""The paper's claims as the study design page fixed them, and their verdicts from the runs.

Each claim is a contrast between the study's arms (the arm names of notebooks 04 to 06),
oriented so that a positive difference is what the paper says. C1 to C6 form the family
that Holm's correction covers; the secondary contrasts get plain 95% intervals; C7 (the
ReLU and the learning rate) is judged on failure rates. ``book/design.md`` is the page these
definitions implement; :mod:`refinenet.study.analysis` holds the statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Union

from . import analysis
from .report import arm_text, p_text
from .stats import interval_text

__all__ = ["Claim", "CLAIMS", "SECONDARY", "study_scores", "claim_table", "secondary_table", "failure_table",
           "family_arms", "claim_fit", "secondary_fit", "fit_text", "precision_text", "failure_view", "plot_verdicts",
           "verdict_view", "interval_view", "contrast_text", "side_label", "contrast_label"]

Side = Union[str, Mapping[str, float]]


@dataclass(frozen=True)
class Claim:
    """One contrast: ``better - worse`` (arms or ``{arm: weight}`` mixtures)."""

    text: str
    source: str
    better: Side
    worse: Side


#: C1 to C6, the Holm family (book/design.md, "Claims and contrasts").
CLAIMS = {
    "C1": Claim("chained residual pooling improves the results", "Sec. 3.3, Table 5",
                "standard", "N = 0"),
    "C2": Claim("its ReLU is important for the pooling", "Sec. 3.3",
                {"standard": 1, "ReLU off, N = 0": 1}, {"ReLU off": 1, "N = 0": 1}),
    "C3": Claim("the 4-cascade beats the 2-cascade", "Sec. 4.3, Fig. 7", "standard", "cascade 2"),
    "C4": Claim("the 4-cascade beats a single block", "Sec. 4.3, Fig. 7", "standard", "cascade 1"),
    "C5": Claim("the 2-cascade beats a single block", "Sec. 4.3, Fig. 7", "cascade 2", "cascade 1"),
    "C6": Claim("two input scales beat one", "Sec. 4.3, Fig. 7", "2 scales", "standard"),
}

#: Outside the family, with plain 95% intervals.
SECONDARY = {
    "2 scales − capacity control": Claim("the scales, not the second backbone", "design page",
                                         "2 scales", "capacity control"),
    "N = 4 − standard": Claim("four pooling blocks (the released code) against two", "released code",
                              "N = 4", "standard"),
    "standard − ReLU off": Claim("the CRP ReLU at N = 2", "Sec. 3.3", "standard", "ReLU off"),
    "standard − no refinement": Claim("what the whole decoder buys over FCN-32s", "design page",
                                      "standard", "no refinement"),
}


def study_scores(records, column: str = "test mIoU") -> list[tuple[str, int, float]]:
    """``(arm, seed, score)`` per run from the pages' per-run tables (``variant``, ``seed``,
    ``column``; a run shared by pages counted once). A run that diverged scores NaN."""
    rows = records.drop_duplicates(["variant", "seed"])
    return [(str(a), int(s), float(y)) for a, s, y in zip(rows["variant"], rows["seed"], rows[column])]


def _fit(records, column: str):
    return analysis.fit(study_scores(records, column))


def _arms(side: Side) -> list[str]:
    return [side] if isinstance(side, str) else list(side)


def contrast_text(records, better: Side, worse: Side, *, column: str = "test mIoU", level: float = 0.95) -> str:
    """``"+1.2 [-0.3, +2.7]"``: the contrast ``better - worse`` (arms or ``{arm: weight}``
    mixtures, e.g. an interaction) with its interval at ``level``, from one linear model
    (:func:`refinenet.study.analysis.fit`) of the runs of ``records`` (a page's per-run frame:
    only its arms, no Holm correction; chapter 7's verdicts fit the runs of the claims' arms,
    :func:`claim_fit`)."""
    d = analysis.contrast(_fit(records, column), better, worse)
    return interval_text((d.estimate, *d.interval(level)))


def family_arms(claims: Mapping[str, Claim] = CLAIMS) -> list[str]:
    """The arms that the claims compare (the Holm family's), in the order they are named."""
    return list(dict.fromkeys(a for c in claims.values() for a in _arms(c.better) + _arms(c.worse)))


def claim_fit(records, claims: Mapping[str, Claim] = CLAIMS, *, column: str = "test mIoU"):
    """The model of the verdicts (:func:`claim_table`): ``arm + seed`` fitted to the scored runs
    of the claims' arms only (:func:`family_arms`, as the design page says), each run once.
    Raises naming the claims' arms that have no scored run."""
    family = family_arms(claims)
    model = _fit(records[records["variant"].isin(family)], column)
    missing = sorted(set(family) - set(model.arms))
    if missing:
        raise KeyError(f"no scored run of {', '.join(missing)}: every arm of the claims must be trained "
                       f"(arms with scores: {', '.join(model.arms)})")
    return model


def secondary_fit(records, *, column: str = "test mIoU"):
    """The model of the secondary contrasts (:func:`secondary_table`): the same ``arm + seed``
    form, fitted to the scored runs of every arm of ``records``."""
    return _fit(records, column)


def fit_text(model) -> str:
    """How a model's residual degrees of freedom come about, as Markdown: ``"21 scored runs of
    7 arms with 3 seeds: 7 + 3 − 1 = 9 parameters, 21 − 9 = 12 residual degrees of freedom"``
    (the parameters are the design's rank: one per arm and per seed, less one)."""
    arms, seeds = len(model.arms), len(model.seeds)
    params = model.n_runs - model.df  # the rank of the design
    count = f"{arms} + {seeds} − 1 = {params}" if params == arms + seeds - 1 else f"{params} independent"
    return (f"{model.n_runs} scored runs of {arms} arms with {seeds} seeds: {count} parameters, "
            f"{model.n_runs} − {params} = {model.df} residual degrees of freedom")


def precision_text(model, target: float = analysis.MARGIN) -> str:
    """The precision the fit reached against the one the design sized ``n`` for, as Markdown:
    ``"its residual standard deviation is 0.91 points, so a difference of two arms with all 6
    seeds has a 95% half-width of 1.06 points, which misses the design's aim of at most 1.0"``
    (:func:`refinenet.study.analysis.half_width`)."""
    width = analysis.half_width(model)
    verb = "reaches" if width <= target else "misses"
    return (f"its residual standard deviation is {model.sigma:.2f} points, so a difference of two "
            f"arms with all {len(model.seeds)} seeds has a 95% half-width of {width:.2f} points, "
            f"which {verb} the design's aim of at most {target:.1f}")


def claim_table(records, claims: Mapping[str, Claim] = CLAIMS, *, column: str = "test mIoU"):
    """The verdict table of the pre-registered analysis: one model fitted to the runs of the
    claims' arms (:func:`claim_fit`: the family's arms, as the design page says; other arms of
    ``records`` are left out), then per claim the difference, its Holm-adjusted interval and p,
    the 90% TOST interval and the verdict (:func:`refinenet.study.analysis.verdicts`), with its
    words."""
    model = claim_fit(records, claims, column=column)
    table = analysis.verdicts(model, {k: (c.better, c.worse) for k, c in claims.items()})
    table.insert(1, "the paper", [c.text for c in claims.values()])
    table.insert(2, "source", [c.source for c in claims.values()])
    return table


def secondary_table(records, contrasts: Mapping[str, Claim] = SECONDARY, *, column: str = "test mIoU"):
    """Plain 95% intervals of the secondary contrasts, from one model fitted to the runs of
    every arm of ``records`` (:func:`secondary_fit`; the design page names no model for them;
    contrasts whose arms have no scored run are left out)."""
    import pandas as pd

    model = secondary_fit(records, column=column)
    rows = []
    for name, c in contrasts.items():
        if not set(_arms(c.better) + _arms(c.worse)) <= set(model.arms):
            continue
        d = analysis.contrast(model, c.better, c.worse)
        low, high = d.interval(1 - analysis.ALPHA)
        rows.append({"contrast": name, "what it asks": c.text, "difference": d.estimate, "low": low, "high": high,
                     "p": d.p})
    return pd.DataFrame(rows, columns=["contrast", "what it asks", "difference", "low", "high", "p"])


def failure_table(sweep, *, arm: str = "ReLU off", reference: str = "standard", above_chance: bool = True):
    """C7: per arm and rate, the runs that failed with exact 95% intervals; and over the grid,
    the one-sided Fisher p that ``arm`` fails more often than ``reference``. A run fails when
    its loss diverged (became NaN or infinite), when it collapsed to one class on val, or
    (``above_chance``, the design page's reading since 2026-11-30) when its training loss
    ended above a uniform guess's. ``sweep``: per-run rows with ``variant``, ``lr``,
    ``diverged``, ``val collapsed`` and, where judged, ``loss above chance``. Returns
    ``(table, p)``."""
    import pandas as pd
    from scipy import stats

    failed = sweep["diverged"].astype(bool) | sweep["val collapsed"].fillna(False).astype(bool)
    if above_chance and "loss above chance" in sweep:
        failed |= sweep["loss above chance"].fillna(False).astype(bool)
    rows = []
    for (variant, lr), g in sweep.assign(failed=failed).groupby(["variant", "lr"], sort=True):
        k, n = int(g["failed"].sum()), len(g)
        ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
        rows.append({"variant": variant, "lr": lr, "failed": k, "runs": n, "share %": 100 * k / n,
                     "low %": 100 * ci.low, "high %": 100 * ci.high,
                     "val mIoU % of the runs that trained": g.loc[~g["failed"], "val mIoU"].mean()})
    table = pd.DataFrame(rows)
    a, b = sweep[sweep["variant"] == arm], sweep[sweep["variant"] == reference]
    if a.empty or b.empty:
        raise KeyError(f"the sweep needs runs of {arm!r} and {reference!r}; it has {sorted(set(sweep['variant']))}")
    fa, fb = int(failed[a.index].sum()), int(failed[b.index].sum())
    return table, analysis.more_failures(fa, len(a), fb, len(b))


def failure_view(table):
    """A failure table (:func:`failure_table`) for the page, as text: the rate as the grid
    writes it (``"0.0005"``, not ``"0.00"``), the counts, the share and its exact 95% interval
    in whole percent, and the mean val mIoU of the runs that trained (``"–"`` if none did)."""
    import math

    import pandas as pd

    def pct(x) -> str:
        return f"{x:.0f}"

    miou = "val mIoU % of the runs that trained"
    return pd.DataFrame({
        "variant": table["variant"],
        "lr": [f"{lr:g}" for lr in table["lr"]],
        "failed": table["failed"].astype(int),
        "runs": table["runs"].astype(int),
        "share %": [pct(x) for x in table["share %"]],
        "95% interval %": [f"[{pct(lo)}, {pct(hi)}]" for lo, hi in zip(table["low %"], table["high %"])],
        miou: ["–" if math.isnan(x) else f"{x:.1f}" for x in table[miou]],
    })


def side_label(side: Side) -> str:
    """One side of a contrast as the pages display it: an arm's name on one line
    (:func:`refinenet.study.report.arm_text`), in parentheses where it holds ``=`` or a
    comma, so that ``N = 4`` reads as one arm (``"(N = 4)"``); a mixture as its weighted
    sum (``"standard + (ReLU off, N = 0)"``)."""
    if isinstance(side, str):
        name = arm_text(side)
        return f"({name})" if "=" in side or "," in side else name
    terms = []
    for arm, weight in side.items():
        term = side_label(arm) if abs(weight) == 1 else f"{abs(weight):g}·{side_label(arm)}"
        sign = "−" if weight < 0 else "+"
        terms.append(f"{sign} {term}" if terms else term if weight >= 0 else f"−{term}")
    return " ".join(terms)


def contrast_label(better: Side, worse: Side) -> str:
    """A contrast as the pages display it, unambiguous where arm names hold ``=`` or spaces:
    ``"(N = 4) − standard"``, ``"standard − ReLU off"`` (each name on one line,
    :func:`side_label`; a mixture in brackets). Display only: the keys of :data:`SECONDARY`
    and the analysis keep the arms' plain names."""
    def part(side: Side) -> str:
        text = side_label(side)
        return text if isinstance(side, str) or len(side) == 1 else f"[{text}]"

    return f"{part(better)} − {part(worse)}"


def _interval(estimate: float, low: float, high: float) -> str:
    return f"{estimate:+.1f} [{low:+.1f}, {high:+.1f}]"


def verdict_view(table):
    """A verdict table (:func:`claim_table`) for the page: claim, the paper's words, the
    difference with its Holm interval, the Holm p, the 90% interval of the equivalence test
    and the verdict, as text columns narrow enough for the book."""
    import pandas as pd

    return pd.DataFrame({
        "claim": table["claim"], "the paper": table["the paper"],
        "difference [Holm interval]": [_interval(*r) for r in zip(table["difference"], table["Holm low"], table["Holm high"])],
        "Holm p": [p_text(p) for p in table["Holm p"]],
        "90% interval": [f"[{lo:+.1f}, {hi:+.1f}]" for lo, hi in zip(table["TOST low"], table["TOST high"])],
        "verdict": table["verdict"],
    })


def interval_view(table, contrasts: Mapping[str, Claim] = SECONDARY):
    """A secondary table (:func:`secondary_table`) with each difference and its 95% interval
    in one text column, and each contrast of ``contrasts`` displayed by
    :func:`contrast_label` (``"(N = 4) − standard"``; another keeps its name)."""
    import pandas as pd

    labels = [contrast_label(contrasts[k].better, contrasts[k].worse) if k in contrasts else k
              for k in table["contrast"]]
    return pd.DataFrame({
        "contrast": labels, "what it asks": table["what it asks"],
        "difference [95% interval]": [_interval(*r) for r in zip(table["difference"], table["low"], table["high"])],
        "p": [p_text(p) for p in table["p"]],
    })


#: Font size (pt) of :func:`plot_verdicts`'s labels, legend and ticks: the figure is at most
#: ``VERDICT_WIDTH`` inches wide, shown 688 px wide in the book, so 11 pt reads at about 13 px;
#: its title is a point larger.
VERDICT_PT = 11
VERDICT_WIDTH = 8.0


def plot_verdicts(table, *, margin: float = analysis.MARGIN, ax=None, title: str = ""):
    """Forest plot of a verdict table: each claim's difference with its Holm interval, the
    90% TOST interval as a thicker bar, 0 and the equivalence margin drawn. The claims'
    words wrap onto two lines and the legend sits below the axes, so that the figure keeps
    to ``VERDICT_WIDTH`` inches and its text to ``VERDICT_PT`` points (``title``, above the
    axes, at one point more)."""
    import textwrap

    import matplotlib.pyplot as plt

    colours = {"supported": "C2", "contradicted": "C3", "equivalent": "C0", "not resolved": "0.45"}
    if ax is None:
        _, ax = plt.subplots(figsize=(VERDICT_WIDTH, 0.65 * len(table) + 1.9))
    for i, (_, row) in enumerate(table.iterrows()):
        colour = colours[row["verdict"]]
        ax.plot([row["Holm low"], row["Holm high"]], [i, i], color=colour, lw=1.5)
        ax.plot([row["TOST low"], row["TOST high"]], [i, i], color=colour, lw=4, alpha=0.5)
        ax.plot([row["difference"]], [i], "o", color=colour)
    ax.axvline(0, color="0.4", lw=1)
    for x in (-margin, margin):
        ax.axvline(x, color="0.6", lw=1, ls="--")
    labels = [textwrap.fill(f"{c}: {t}", 28) for c, t in zip(table["claim"], table["the paper"])]
    ax.set_yticks(range(len(table)), labels, fontsize=VERDICT_PT)
    ax.tick_params(axis="x", labelsize=VERDICT_PT)
    ax.set_ylim(len(table) - 0.5, -0.5)
    ax.set_xlabel("difference in the paper's favour (mIoU points)", fontsize=VERDICT_PT)
    if title:
        ax.set_title(title, fontsize=VERDICT_PT + 1)
    handles = [plt.Line2D([], [], marker="o", color=c, label=v) for v, c in colours.items()]
    handles += [plt.Line2D([], [], color="0.6", ls="--", label=f"margin ±{margin:g}")]
    ax.grid(axis="x", alpha=0.3)
    fig = ax.figure
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=VERDICT_PT, frameon=False)
    # room below the axes for the legend's two rows
    fig.tight_layout(rect=(0, 2.6 * VERDICT_PT / 72 / fig.get_figheight(), 1, 1))
    return ax
