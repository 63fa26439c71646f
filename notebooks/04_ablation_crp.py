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
# # Ablation: chained residual pooling
#
# Chained residual pooling (CRP) sits in the middle of every RefineNet block:
# one ReLU, then a chain of pooling blocks (5 × 5 max-pooling with stride 1,
# then a 3 × 3 convolution), each taking the previous one's output, all
# summed with the input (notebook 1 shows how far its context reaches). The
# paper makes three claims about it:
#
# 1. chained pooling improves the results (its component ablations, with
#    pre-trained ResNets);
# 2. the single ReLU at its entrance "is important for the effectiveness of
#    subsequent pooling operations" (Sec. 3.3, an observation without
#    numbers);
# 3. the same ReLU makes the model "less sensitive to changes in the learning
#    rate" (Sec. 3.3, also without numbers).
#
# We test each against the standard model of notebook 3, everything else
# held fixed. The number of pooling blocks also varies between the paper's
# text (N = 2, our standard model) and the authors' released VOC model
# (N = 4); we train N = 0, 2 and 4. The ReLU is also switched off at N = 0:
# if it matters *for the pooling*, removing it should cost more with
# pooling than without, an interaction.
#
# ```{admonition} What this page can and cannot say
# :class: tip
# Its differences are the mean test mIoU of one model minus that of
# another, with a **95% interval** from this page's runs alone: a
# description, not a verdict. Chapter 7 gives the verdicts by the analysis
# fixed on the [study design](../design.md) page before the runs: on claims
# C1 and C2 from one linear model, arm + seed, fitted to the test mIoU of
# the runs of every arm that the claims compare, with Holm's correction
# over the paper's claims; on claim C7 from Fisher's exact test on the
# failure counts. The runs are small models trained from
# scratch at reduced resolution (chapter 3): what holds for them need not
# hold for the paper's pre-trained ResNets.
# ```

# %% tags=["parameters"]
# The study runner sets these from the profile (refinenet/study/profiles/).
profile = "cpu"  # whose runs and settings the page shows (name or .yaml)
device = "auto"  # "auto": CUDA when present, else CPU
dataset = "auto"  # "auto": CamVid when found, else the generator
output_dir = None  # tables and figures (None: results/interactive/...)
# The runs this page reads from the ledger: arm -> overrides of the profile's
# standard model, and the arms trained at every rate of the learning-rate
# grid.
arms = {
    "standard": {},  # N = 2, with the ReLU
    "ReLU off": {"model.crp_relu": False},
    "N = 0": {"model.crp_blocks": 0},
    "ReLU off, N = 0": {"model.crp_relu": False, "model.crp_blocks": 0},
    "N = 4": {"model.crp_blocks": 4},
}
# The arms also trained at every rate of the grid:
sweeps = ["standard", "ReLU off", "N = 0", "ReLU off, N = 0"]

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown

from refinenet.study import claims, report
from refinenet.study.experiments import Experiments
from refinenet.study.notebook import start

study = start(
    "04_ablation_crp",
    profile=profile,
    device=device,
    dataset=dataset,
    output_dir=output_dir,
)
exp = Experiments(study, arms, sweeps)
r = exp.design


# %% tags=["hide-input"]
study.glue("top_lr", f"{max(r.lrs):g}")  # the grid's largest rate
# "The grid has only three rates, ..., around the chosen one (0.001)."
study.glue("grid_note", report.grid_text(r.lrs, exp.chosen_lr()))
study.glue("other_profiles", study.other_profiles)  # exercise 1
report.setting_box(exp, exp.arm("standard"))

# %% [markdown]
# ## Five models, each at its learning rate
#
# The page compares the standard model (two pooling blocks, with the
# ReLU), the same without the ReLU, with no pooling block (N = 0: the
# ReLU alone, the block's input passes straight on), with neither, and with
# four pooling blocks. All use
# the learning rate chosen in notebook 3 (unless
# {ref}`the rate check <sec-04-rate-check>` below finds an arm's own rate
# better); their runs are read from the run ledger.
#
# First the comparison with the standard model. Every row is
# {glue:text}`n_seeds` seeds; "Δ" is the difference of the mean test mIoU
# (scored on {glue:text}`scored_on`) to the standard model with its 95%
# Welch interval. Parameters and multiply-accumulates (MACs) are for one
# image at the evaluation size; the time is training only, averaged over the
# seeds. A run whose loss diverged (became NaN) has no usable model: the
# scores are those of the runs that trained (the table gains a column for
# the diverged runs when any diverged, and the paragraph after the figure
# counts them per arm, with an exact 95% interval of the failure rate).
# Then the thin classes, one by one (in brackets: the difference to the
# standard model and its interval). Last, the figure: on the left every
# seed's score (grey dots) beside the mean ± std; on the right each
# variant's difference to the standard model with its 95% interval, red
# when the interval lies wholly below 0 (the variant is worse), green when
# wholly above, grey otherwise.

# %% tags=["full-width"]
runs = {name: exp.arm(name) for name in arms}
base = "standard"
study.glue("n_seeds", len(r.seeds))
# "360 × 480 labels (logits upsampled)" on CamVid, "H × W labels" else
study.glue("scored_on", report.scored_on(exp))
records = report.ablation_tables(
    study, exp, runs, baseline=base, title="Chained residual pooling"
)

# %% mystnb={"figure": {"caption": "The chained residual pooling variants against the standard model (two pooling blocks, with the ReLU), on the test split. Left: every seed's mIoU (grey dots) and the mean \u00b1 std (blue). Right: each variant's difference to the standard model with its 95% Welch interval; red when the interval lies below 0, green when above, grey otherwise.", "name": "fig-04-ablation"}, "image": {"alt": "Two panels with one row per variant. Left: grey dots for the seeds and a blue diamond with error bars for the mean test mIoU. Right: a dot with a horizontal interval for each variant's difference to the standard model, around a vertical line at zero."}}
report.show_ablation_figure(study, records, baseline=base)


# %% tags=["hide-input"]
# Mean of a minus mean of b, with its 95% Welch interval:
pairs = {"pooling": (base, "N = 0"), "relu": (base, "ReLU off")}
pairs["n4"] = ("N = 4", base)
for key, (a, b) in pairs.items():
    study.glue(f"{key}_diff", report.welch_text(records, a, b))
# C2 as an interaction, from a linear model of this page's five arms:
# (N=2 - ReLU off) - (N=0 - ReLU off, N=0)
inter = claims.contrast_text(
    records, {base: 1, "ReLU off, N = 0": 1}, {"ReLU off": 1, "N = 0": 1}
)
study.glue("interaction", inter)
# "`standard` 1 of 3 [1%, 91%]; ...": diverged runs per arm
failed = report.failure_counts_text(records, list(arms))
study.glue("relu_failures", Markdown(failed))

# %% [markdown]
# Chained pooling (N = 2 against N = 0): {glue:text}`pooling_diff` mIoU
# points. The ReLU at N = 2 (on against off): {glue:text}`relu_diff`
# points. The ReLU's gain with pooling beyond its gain without is claim
# C2's interaction, the difference of two differences: `standard` −
# `ReLU off` (the ReLU's gain at N = 2) minus `N = 0` − `ReLU off, N = 0`
# (its gain at N = 0); it is {glue:text}`interaction` points. Four pooling
# blocks instead of two:
# {glue:text}`n4_diff` points (not a claim of the paper: its text uses two,
# the released VOC model four). Runs whose loss diverged, which have no
# score: {glue:md}`relu_failures`. The intervals are Welch's, the
# interaction's from a linear model of this page's arms; chapter 7 gives
# the verdicts.
#
# ## Does the ReLU make training less sensitive to the learning rate?
#
# The paper's third claim about chained pooling (C7) is about training,
# not about the final score at one well-chosen rate. The standard model and
# the model without the ReLU are both trained at every rate of the grid
# with the same seeds ({glue:text}`n_grid_seeds` per rate). A run *fails*
# when its loss diverges (becomes NaN or infinite, or ends above ln C, the
# loss of a uniform guess over the C classes: training left the model worse
# than knowing nothing) or when it predicts one class for at least 95% of
# the validation pixels. The design page fixed the test before the runs: the
# ReLU makes training less sensitive if the model without it fails more
# often over the grid (one-sided Fisher exact test of the pooled counts).

# %%
# Every run of the grid, named for the ReLU: all rates, the grid's seeds
sweep = {"ReLU on": base, "ReLU off": "ReLU off"}
sweep_runs = report.sweep_records(exp, sweep)
study.save_table(sweep_runs, "lr_sweep_runs")
failures, p_more = claims.failure_table(
    sweep_runs, arm="ReLU off", reference="ReLU on"
)
study.save_table(failures, "lr_failures")
study.glue("n_grid_seeds", len(r.grid_seeds))
study.glue("p_more", report.p_text(p_more))
what = "Failed runs per rate, exact 95% intervals (val split)."
report.styled(
    claims.failure_view(failures), report.caption(study, what), wrap=False
)

# %% mystnb={"figure": {"caption": "Validation mIoU at every rate of the grid with the CRP ReLU on (blue) and off (orange): the mean \u00b1 std over the seeds, and every seed as a faint dot; the rate axis is logarithmic.", "name": "fig-04-lr-sensitivity"}, "image": {"alt": "A chart with a logarithmic learning-rate axis and two lines with error bars, blue for the ReLU on and orange for the ReLU off, each with faint dots for the single seeds around it."}}
ax = report.plot_rate_sweep(
    sweep_runs, r.lrs, hue={"ReLU on": "C0", "ReLU off": "C1"}
)
ax.set_title("val mIoU per rate: mean ± std over seeds; dots: seeds")
study.save_figure(ax.figure, "lr_sensitivity")
plt.show()

# %% [markdown]
# Over the grid, the one-sided p-value of Fisher's exact test that the
# model without the ReLU fails more often is {glue:text}`p_more`. The scores of the runs that trained are in
# the figure; chapter 7 states the verdict.
#
# ```{admonition} What this scale can and cannot say
# :class: note
# {glue:text}`grid_note` Each run is short: a sensitivity that shows up
# only late in long training, or only at rates outside the grid, is
# invisible here. Both sweeps use the same
# rates, seeds, data order and schedule, so beyond the seed-to-seed noise a
# difference can only come from the ReLU.
# ```
#
# (sec-04-rate-check)=
# ## Is the common rate each arm's own?
#
# Every arm is compared at the standard model's rate, which was chosen for
# the standard model. {glue:md}`swept_arms` For each arm trained at every
# rate, the table shows whether the common rate is within noise of the
# arm's best (within the larger of the two rates' seed spreads). Where it is
# not, the arm's comparisons use its own best rate, as the design page says.

# %% tags=["hide-input"]
swept = report.swept_text(
    list(arms), sweeps, lrs=r.lrs, common=exp.chosen_lr()
)
study.glue("swept_arms", Markdown(swept))
check = study.save_table(
    exp.rate_check([a for a in sweeps if a != base]), "rate_check"
)
what = "The common rate against each arm's best, val split."
report.styled(
    report.rate_check_view(check),
    report.caption(study, f"{what} {report.RATE_CHECK_KEY}"),
    wrap=False,
    precision=1,
)

# %% [markdown]
# ## Summary
#
# - Five models that differ only in chained residual pooling, each trained
#   with {glue:text}`n_seeds` seeds at the same learning rate, were compared
#   on the test split with the standard model.
# - Chained pooling (two blocks against none) changes the test mIoU by
#   {glue:text}`pooling_diff` points, the ReLU at its entrance by
#   {glue:text}`relu_diff`, four pooling blocks instead of two by
#   {glue:text}`n4_diff` (95% Welch intervals).
# - The ReLU's gain with pooling beyond its gain without (claim C2, an
#   interaction) is {glue:text}`interaction` points.
# - Over the learning-rate grid, the one-sided p-value of Fisher's exact
#   test that the model without the ReLU fails more often (claim C7) is
#   {glue:text}`p_more`.
# - These intervals describe this page's runs; chapter 7 gives the
#   verdicts, on C1 and C2 from one linear model (arm + seed) fitted to the
#   test mIoU of the runs of the claims' arms, with Holm's correction.
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
# **1. Another profile** (`profile`). The banner at the top of this page
# names its profile. Execute the page with another one,
# {glue:text}`other_profiles`, and open what it writes beside this page
# (the `smoke` runs take minutes, the `cpu` runs hours):
#
# ```bash
# PROFILE=...  # one of the other profiles named above
# refinenet study run --profile $PROFILE --only 04
# # the page: results/$PROFILE/04_ablation_crp.ipynb
# ```
#
# Expect the same tables and figures, with far wider intervals on `smoke`,
# whose tiny models train for a few steps: the number of seeds and the
# length of training, not the code, set how much a page can tell.
#
# **2. No pooling, by hand** (the `N = 0` arm of `arms` sets
# `model.crp_blocks`). Two seeds with and without pooling on the smoke
# config:
#
# ```bash
# for n in 0 2; do for seed in 0 1; do
#   refinenet train configs/smoke.yaml model.crp_blocks=$n seed=$seed \
#       out_dir=out/runs
# done; done
# ```
#
# Expect the two seeds of one setting to differ about as much as the two
# settings do: on a run this short the seed-to-seed spread hides the effect,
# which is why the study trains several seeds and reports intervals.
#
# **3. The ReLU at a high rate** (the `ReLU off` arm sets
# `model.crp_relu`): train with and without it at the largest rate of the
# profile's grid (`study.lrs`), on this page {glue:text}`top_lr`:
#
# ```bash
# LR=...  # the largest rate of the grid, named above
# for relu in true false; do
#   refinenet train configs/smoke.yaml model.crp_relu=$relu \
#       optim.lr=$LR out_dir=out/runs
# done
# ```
#
# Look at whether a run diverges or ends up predicting one class
# everywhere: that is what claim C7 counts over the grid of rates, not the
# score of a single run.
