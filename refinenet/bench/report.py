"""Tables and figures of ``refinenet bench --runs`` for the performance chapter (notebook 08)."""

from __future__ import annotations

import math

__all__ = ["runs_table", "runs_parity", "runs_figure", "time_split"]


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
