# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Results: the paper's claims, measured
#
# Each claim of the paper that this study tests, the evidence the paper
# gives for it, what we measured, and the verdict. Nothing is trained here:
# the table is assembled from the tables that notebooks 3 to 6 wrote.

# %% tags=["parameters"]
# The study runner sets these from the profile (refinenet/study/profiles/).
profile = "cpu"  # the profile whose runs and settings this page shows (name or .yaml path)
device = "auto"  # "auto": CUDA when present, else CPU
dataset = "auto"  # "auto": CamVid when found, else the generator
output_dir = None  # tables and figures (None: results/interactive/...)
# The pages whose tables this one assembles (the runner waits for them).
gathers = ["03_training", "04_ablation_crp", "05_ablation_cascade", "06_ablation_scales"]

# %%
import textwrap

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown

from refinenet.study import stats
from refinenet.study.notebook import start
from refinenet.study.published import PUBLISHED_CAMVID
from refinenet.study.report import caption, colour_verdicts, styled

study = start(
    "07_results",
    profile=profile,
    device=device,
    dataset=dataset,
    output_dir=output_dir,
)
results = study.results_dir  # results/<profile>/: the pages this one gathers


# %% tags=["full-width", "hide-input"]
def read(notebook, table):
    """A table written by an earlier notebook of this profile."""
    path = results / notebook / "tables" / f"{table}.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: run that notebook first (refinenet study "
            f"run --profile {study.profile_name} --only {notebook})"
        )
    return pd.read_csv(path)


ABLATIONS = ("04_ablation_crp", "05_ablation_cascade", "06_ablation_scales")
claims = pd.concat([read(nb, "claims") for nb in ABLATIONS], ignore_index=True)
claims["difference [95% CI]"] = [
    stats.interval_text((row.difference, row.low, row.high)) + f" {row.units}"
    for row in claims.itertuples()
]
headline = claims[
    ["claim", "paper's evidence", "ours", "difference [95% CI]", "verdict"]
].rename(columns={"ours": "our measurement (mean ± std over seeds)"})
headline = study.save_table(headline, "claims")
colour_verdicts(
    styled(headline, caption(study, "The paper's claims at this scale."))
)

# %% [markdown]
# **How to read it.** For every claim, the difference is oriented so that a
# positive value means the paper is right, and comes with a 95% interval
# (Welch t on the per-seed test mIoU; for the learning-rate claim, a
# simulation from the per-rate means and their t-based uncertainty, on the
# validation mIoU: see notebook 4). A claim is *supported* when the whole
# interval lies above 0, *contradicted* when it lies below 0, and *not
# resolved at this scale* when the interval contains 0: the measurement
# then cannot tell the two models apart, which is not evidence that they
# are equal.

# %% tags=["hide-input"]
colours = {
    stats.SUPPORTED: "C2",
    stats.CONTRADICTED: "C3",
    stats.NOT_RESOLVED: "0.45",
}
fig, ax = plt.subplots(figsize=(8, 0.5 * len(claims) + 1.6))
for i, row in claims.iterrows():
    ax.errorbar(
        [row.difference], [i],
        xerr=[[row.difference - row.low], [row.high - row.difference]],
        fmt="o", color=colours[row.verdict], capsize=4,
    )
ax.axvline(0, color="0.6", lw=1)
labels = [textwrap.fill(c, 34) for c in claims["claim"]]
ax.set_yticks(range(len(claims)), labels, fontsize="small")
ax.set_ylim(len(claims) - 0.5, -0.5)
ax.set_xlabel("difference in the paper's favour (mIoU points), 95% interval")
handles = [
    plt.Line2D([], [], marker="o", ls="none", color=c, label=v)
    for v, c in colours.items()
]
fig.legend(handles=handles, frameon=False, fontsize="small",
           loc="lower center", ncol=3)
fig.tight_layout(rect=(0, 0.35 / fig.get_size_inches()[1], 1, 1))
study.save_figure(fig, "claims")
plt.show()

counts = claims["verdict"].value_counts()
study.glue("n_claims", len(claims))
for key, verdict in (("supported", stats.SUPPORTED),
                     ("contradicted", stats.CONTRADICTED),
                     ("unresolved", stats.NOT_RESOLVED)):
    study.glue(f"n_{key}", int(counts.get(verdict, 0)))
n_seeds = int(claims["n"].min())
study.glue("n_seeds", n_seeds)

# %% [markdown]
# The {glue:text}`n_claims` claims: supported {glue:text}`n_supported`,
# contradicted {glue:text}`n_contradicted`, not resolved at this scale
# {glue:text}`n_unresolved`; each from at least {glue:text}`n_seeds` seeds
# per model.
#
# ## What the measurements are worth
#
# The standard model these comparisons rest on, on the test split
# (notebook 3):

# %% tags=["hide-input"]
summary = read("03_training", "test_summary")
view = pd.DataFrame(
    {
        "metric": summary["metric"],
        "mean ± std %": [
            stats.pm(stats.Summary(row[1], row[2], row[3]))
            for row in summary[["mean %", "std %", "n"]].itertuples()
        ],
        "n": summary["n"],
    }
)
test = summary.set_index("key").loc["test mIoU"]
study.glue("std_miou", float(test["mean %"]))
study.glue("std_spread", float(test["std %"]))
if study.synthetic:
    where = (
        "was measured on the synthetic generator, so it cannot be set beside "
        "published CamVid results"
    )
else:
    best = max((r for r in PUBLISHED_CAMVID if r["from scratch"]), key=lambda r: r["test mIoU %"])
    gap = best["test mIoU %"] - float(test["mean %"])
    where = (
        f"is {gap:.1f} points below {best['method']} ({best['test mIoU %']}%), "
        "the best published CamVid model trained from scratch (notebook 3 "
        "lists the others)"
    )
study.glue("where", Markdown(where))  # a clause: pasted as text
styled(view, caption(study, "The standard model (notebook 3)."))

# %% [markdown]
# Its test mIoU of {glue:text}`std_miou:.1f`% {glue:md}`where`. The
# seed-to-seed standard deviation of {glue:text}`std_spread:.1f` points sets
# the scale of the differences that {glue:text}`n_seeds` seeds per model can
# resolve. Every verdict above holds for
# *this* recipe: a small backbone trained from scratch, narrow decoder
# paths, reduced images and a short schedule (notebook 3 lists each
# departure). The paper's claims are about large pre-trained networks
# trained to convergence; a claim that is not resolved here may well hold
# there, and one that is supported here is supported for small networks
# trained briefly, which is a different statement from the paper's.
#
# ```{admonition} Which profile is this?
# :class: warning
# The banner at the top of the page names the profile. The `smoke` profile
# trains for a handful of steps only to prove that every notebook runs: its
# verdicts mean nothing. Read the `cpu` or `gpu` pages for results.
# ```
#
# ## Every variant in one table
#
# Each ablation variant's difference to the standard model, with what it
# costs (parameters, multiply-accumulates per image, training time per run),
# from the ablation tables of notebooks 4 to 6.

# %% tags=["full-width"]
parts = []
for nb in ABLATIONS:
    t = read(nb, "ablation")
    delta = next(c for c in t.columns if c.startswith("Δ"))
    t = t.rename(columns={delta: "Δ test mIoU vs standard [95% CI]"})
    t.insert(0, "notebook", nb)
    parts.append(t)
everything = pd.concat(parts, ignore_index=True)
keep = [
    "notebook", "variant", "n", "test mIoU %",
    "Δ test mIoU vs standard [95% CI]", "boundary IoU %",
    "params (M)", "GMACs", "train s / run",
]
everything = everything[[c for c in keep if c in everything.columns]]
study.save_table(everything, "all_variants")
styled(everything, caption(study, "All variants."), wrap=False)
