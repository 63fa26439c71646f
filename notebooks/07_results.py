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
# Each claim of the paper that this study tests, what we measured, and the
# verdict of the analysis that the [study design](../design.md) page fixed
# before the first run: one linear model (arm + seed) of the test mIoU of
# the runs of the {glue:text}`n_family` arms that the claims compare, the
# residual variance pooled over those arms, Holm's correction over the six
# claims C1 to C6, and an equivalence test with a margin of ±1 mIoU point.
# Nothing is trained here: the runs are those of notebooks 3 to 6, read
# from the tables they wrote.

# %% tags=["parameters"]
# The study runner sets these from the profile (refinenet/study/profiles/).
profile = "cpu"  # whose runs and settings the page shows (name or .yaml)
device = "auto"  # "auto": CUDA when present, else CPU
dataset = "auto"  # "auto": CamVid when found, else the generator
output_dir = None  # tables and figures (None: results/interactive/...)
# The pages whose tables this one assembles (the runner waits for them).
gathers = [
    "03_training",
    "04_ablation_crp",
    "05_ablation_cascade",
    "06_ablation_scales",
]

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from refinenet.study import analysis, claims, report
from refinenet.study.experiments import Experiments
from refinenet.study.notebook import start

study = start(
    "07_results",
    profile=profile,
    device=device,
    dataset=dataset,
    output_dir=output_dir,
)
results = study.results_dir  # results/<profile>/: the pages this one gathers
exp = Experiments(study, {"standard": {}}, [])  # the standard model's runs

# %% tags=["hide-input"]
study.glue("other_profiles", study.other_profiles)  # exercise 1
# exercise 2: the cpu profile on the data set this page is not on
other = report.other_dataset_texts(study.synthetic)
study.glue("this_data", other["this"])
study.glue("other_dataset", other["other"])
study.glue("other_data", other["other_words"])
study.glue("dataset_expect", Markdown(other["expect"]))
report.setting_box(exp, exp.arm("standard"))


# %% tags=["hide-input"]
def read(notebook, table):
    """A table written by a page this one gathers."""
    path = results / notebook / "tables" / f"{table}.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: run that notebook first "
            "(refinenet study run "
            f"--profile {study.profile_name} --only {notebook})"
        )
    return pd.read_csv(path)


ABLATIONS = ("04_ablation_crp", "05_ablation_cascade", "06_ablation_scales")
runs = pd.concat(
    [read(nb, "runs") for nb in ABLATIONS], ignore_index=True
)
verdicts = study.save_table(claims.claim_table(runs), "verdicts")

# %% tags=["full-width"]
# the verdicts' model: the runs of the claims' arms only
family = claims.claim_fit(runs)
study.glue("n_family", len(family.arms))
study.glue("family_names", Markdown(report.names_md(family.arms)))
study.glue("family_fit", Markdown(claims.fit_text(family)))
study.glue("precision", Markdown(claims.precision_text(family)))
what = "The paper's claims C1 to C6: test mIoU points."
one_line = ["difference [Holm interval]", "90% interval", "verdict"]
report.colour_verdicts(
    report.styled(
        claims.verdict_view(verdicts),
        report.caption(study, what),
        nowrap=one_line,  # an interval or a verdict never breaks
    )
)

# %% [markdown]
# **How to read it.** Each difference is oriented so that a positive value
# is what the paper says. The *Holm interval* is its interval at the level
# Holm's step-down method gives that claim (so that the six intervals
# together keep the 5% error rate); a claim is **supported** when that
# interval lies above 0 and **contradicted** when it lies below 0. Otherwise
# the *90% interval* (TOST) decides: inside ±1 point, the effect is
# **equivalent** to none at this scale; else the measurement is **not
# resolved**: it cannot tell the two models apart, which is not evidence
# that they are equal.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "The paper's claims C1 to C6: each difference in the paper's favour (dot) with its Holm interval (thin bar) and its 90% interval (thick bar), against 0 and the equivalence margin of \u00b11 mIoU point (dashed); the colour gives the verdict.", "name": "fig-07-verdicts"}, "image": {"alt": "A forest plot with one row per claim: a dot on a thin and a thick horizontal bar, coloured by verdict, around a vertical line at zero and two dashed lines at minus and plus one."}}
ax = claims.plot_verdicts(
    verdicts, title="C1 to C6: Holm interval (thin), 90% interval (thick)"
)
study.save_figure(ax.figure, "verdicts")
plt.show()
counts = verdicts["verdict"].value_counts()
for verdict in ("supported", "contradicted", "equivalent", "not resolved"):
    study.glue(f"n_{verdict.replace(' ', '_')}", int(counts.get(verdict, 0)))
study.glue("n_claims", len(verdicts))
scored = runs[runs["test mIoU"].notna()]  # a diverged run has no score
study.glue("n_seeds", int(scored.groupby("variant")["seed"].nunique().min()))
study.glue("df", int(verdicts["df"].iloc[0]))

# %% [markdown]
# The verdicts on the {glue:text}`n_claims` claims, from at least
# {glue:text}`n_seeds` seeds per arm: {glue:text}`n_supported` supported,
# {glue:text}`n_contradicted` contradicted, {glue:text}`n_equivalent`
# equivalent to no effect, {glue:text}`n_not_resolved` not resolved. The
# model of the verdicts is fitted to the runs of the arms that the claims
# compare, {glue:md}`family_names`, and of no other arm:
# {glue:md}`family_fit`. The intervals' t quantiles use these
# {glue:text}`df` degrees of freedom, and {glue:md}`precision` (a plain
# interval; a Holm interval is wider).
#
# ## The ReLU and the learning rate (C7)
#
# Judged on failures, not scores: a run fails when its loss diverges
# (becomes NaN or infinite, or ends above the loss of a uniform guess) or
# it predicts one class for at least 95% of the validation pixels. The claim is
# supported when the model without the CRP ReLU fails more often over the
# learning-rate grid (one-sided Fisher exact test at 5%; notebook 4 shows
# the scores of the runs that trained).

# %% tags=["hide-input"]
sweep = read("04_ablation_crp", "lr_sweep_runs")
c7 = dict(arm="ReLU off", reference="ReLU on")
failures, p_more = claims.failure_table(sweep, **c7)
# the count before the design page's change of 2026-11-30
_, p_narrow = claims.failure_table(sweep, **c7, above_chance=False)
study.glue("c7_p", report.p_text(p_more))
study.glue("c7_p_narrow", report.p_text(p_narrow))
verdict = "supported" if p_more <= analysis.ALPHA else "not resolved"
study.glue("c7_verdict", verdict)
what = "Failed runs per rate and arm, exact 95% intervals."
report.styled(
    claims.failure_view(failures), report.caption(study, what), wrap=False
)

# %% [markdown]
# One-sided p = {glue:text}`c7_p`: C7 is **{glue:text}`c7_verdict`**.
# Until the design page's change of 2026-11-30, the code counted a loss as
# diverged only when it became NaN or infinite; a run of the grid whose
# loss blew up and stayed finite prompted the change. Counted that way,
# p = {glue:text}`c7_p_narrow`.
#
# ## Beside the claims
#
# The design page lists further contrasts outside the Holm family, each
# with a plain 95% interval: the scales against the second backbone's
# capacity, the released code's four pooling blocks, the CRP ReLU at
# N = 2, and
# the whole decoder against no refinement (FCN-32s). The table below gives
# them from a model of the same form (arm + seed) fitted to the runs of
# every arm of notebooks 4 to 6: {glue:md}`secondary_fit`.

# %% tags=["hide-input"]
secondary = study.save_table(claims.secondary_table(runs), "secondary")
fit = claims.fit_text(claims.secondary_fit(runs))
study.glue("secondary_fit", Markdown(fit))
what = "Secondary contrasts, test mIoU points, 95% intervals."
report.styled(
    claims.interval_view(secondary),
    report.caption(study, what),
    nowrap=["difference [95% interval]"],
)

# %% [markdown]
# ## What the measurements are worth
#
# The standard model these comparisons rest on, on the test split
# (notebook 3):

# %% tags=["hide-input"]
summary = read("03_training", "test_summary")
test = summary.set_index("key").loc["test mIoU"]
study.glue("std_miou", float(test["mean %"]))
study.glue("std_spread", float(test["std %"]))
# "is 5.2 points below ...": beside the best published CamVid model
# trained from scratch (none on the generator); a clause, pasted as text
where = report.standing_text(
    float(test["mean %"]), synthetic=study.synthetic
)
study.glue("where", Markdown(where))
report.styled(
    report.standard_view(summary),
    report.caption(study, "The standard model (notebook 3)."),
)

# %% [markdown]
# Its test mIoU of {glue:text}`std_miou:.1f`% {glue:md}`where`.
# {glue:md}`per_class`

# %% tags=["hide-input"]
per_class = "Nor does a per-class comparison with published models follow."
if not study.synthetic:
    per_class = (
        "The table below sets it, class by class, beside the published "
        "CamVid models that report classes, all scored on the same 233 test "
        "images at 360 × 480."
    )
    side = read("03_training", "published_per_class")
    what = "CamVid test IoU % per class, ours (mean ± std) and published."
    # display(): a value in an if-block is not the cell's result
    # the published rows come back from the CSV as floats: one decimal
    display(report.styled(side, report.caption(study, what), wrap=False,
                          precision=1))
study.glue("per_class", Markdown(per_class))

# %% [markdown]
# Every verdict above holds for *this* recipe: a small backbone trained
# from scratch, narrow decoder paths and reduced images (notebook 3 lists
# each departure). The paper's claims are about large pre-trained networks;
# a claim that is not resolved here may well hold there, and one that is
# supported here is supported for small networks trained from scratch,
# which is a different statement from the paper's.
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
# Each page's table against its own standard model, which all three
# share: one row per variant, the standard model once
tables = {nb: read(nb, "ablation") for nb in ABLATIONS}
# the costs written again from the runs, at one precision per column
places = report.cost_decimals(exp)  # as pages 4 to 6 write them
everything = report.all_variants(tables, runs, places=places)
study.save_table(everything, "all_variants")
# an arm's name, a score or an interval on one line
one_line = ["variant", "test mIoU %", report.ALL_VARIANTS_DELTA]
what = f"All variants; {report.COLUMNS_KEY}"
report.styled(everything, report.caption(study, what), nowrap=one_line)

# %% [markdown]
# ## Summary
#
# - The verdicts on the {glue:text}`n_claims` claims tested with one
#   linear model (arm + seed) fitted to the test mIoU of the runs of the
#   claims' arms and Holm's correction: {glue:text}`n_supported` supported,
#   {glue:text}`n_contradicted` contradicted, {glue:text}`n_equivalent`
#   equivalent to no effect, {glue:text}`n_not_resolved` not resolved.
# - Claim C7, judged on failures over the learning-rate grid, is
#   {glue:text}`c7_verdict` (one-sided p = {glue:text}`c7_p`).
# - The standard model these comparisons rest on reaches
#   {glue:text}`std_miou:.1f`% test mIoU, which {glue:md}`where`.
# - Every verdict holds for this recipe, small networks trained from
#   scratch; the paper's claims are about large pre-trained ones.
#
# ## Exercises
#
# The commands run from the repository root. The runs of the `smoke`
# profile train in minutes on two cores; train them and execute its pages
# first (`results/smoke/` is not committed):
#
# ```bash
# refinenet study run --profile smoke
# ```
#
# Convert the notebook once:
#
# ```bash
# jupytext --to ipynb notebooks/07_results.py -o out/07_results.ipynb
# ```
#
# **1. Another profile** (`profile`, with the runner's parameters). The
# banner at the top of this page names its profile; take another one,
# {glue:text}`other_profiles`, whose pages have been executed:
#
# ```bash
# PROFILE=...  # one of the other profiles named above
# papermill out/07_results.ipynb out/07_$PROFILE.ipynb \
#     -f results/$PROFILE/07_results/parameters.yaml \
#     -p output_dir out/07_$PROFILE
# ```
#
# Expect the same tables; on `smoke`, tiny models trained for a few steps,
# far wider intervals and verdicts that mean nothing (the warning above
# says why).
#
# **2. Another data set** (`dataset`). This page's runs are on
# {glue:text}`this_data`; execute it for the `cpu` profile on the other
# data set, {glue:text}`other_data` (the parameter `dataset` set to
# {glue:text}`other_dataset`):
#
# ```bash
# DATASET=...  # the data set named above: camvid or synthetic
# papermill out/07_results.ipynb out/07_$DATASET.ipynb \
#     -p dataset $DATASET -p output_dir out/07_$DATASET
# ```
#
# {glue:md}`dataset_expect`
