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
# # Ablation: cascade depth
#
# The standard RefineNet climbs back from the coarsest backbone map in four
# steps, one RefineNet block per backbone stage. The paper's Fig. 7 also
# draws shorter cascades, a single block and a 2-cascade, and Sec. 4.3
# reports that the 4-cascade beats the 2-cascade, which beats the single
# block. This notebook trains all three with everything else fixed, and a
# fourth model with no refinement at all: the backbone's last stage, a
# 1 × 1 classifier and bilinear upsampling (as FCN-32s), so that the whole
# decoder's worth stands beside its parts.
#
# ```{admonition} Our reading of Fig. 7
# :class: note
# The paper does not spell out which backbone taps each block of a shorter
# cascade takes. We split the four taps, deepest first, into *c*
# consecutive groups, one per block; each block fuses its group plus the
# previous block's output (`refinenet.models.cascade_groups`). The table
# below lists the groups. A single block thus fuses all four taps at once,
# at the finest resolution among them.
# ```
#
# ```{admonition} What this page can and cannot say
# :class: tip
# Its differences are the mean test mIoU of one model minus that of
# another, with a **95% Welch interval** from this page's runs alone: a
# description, not a verdict. The verdicts on claims C3 to C5 come from
# the analysis fixed on the [study design](../design.md) page, one linear
# model (arm + seed) fitted to the test mIoU of the runs of every arm that
# the claims compare, with Holm's correction, in chapter 7. The runs are
# small models trained from scratch at reduced resolution (chapter 3): what
# holds for them need not hold for the paper's.
# ```

# %% tags=["parameters"]
# The study runner sets these from the profile (refinenet/study/profiles/).
profile = "cpu"  # whose runs and settings the page shows (name or .yaml)
device = "auto"  # "auto": CUDA when present, else CPU
dataset = "auto"  # "auto": CamVid when found, else the generator
output_dir = None  # tables and figures (None: results/interactive/...)
# The runs this page reads from the ledger: arm -> overrides of the profile's
# standard model (the 4-cascade).
arms = {
    "standard": {},
    "cascade 2": {"model.cascade": 2},
    "cascade 1": {"model.cascade": 1},
    # FCN-32s: a reference, no claim
    "no refinement": {"model.refinement": False},
}
# Each also at the grid's rates: is the common rate theirs?
sweeps = ["cascade 2", "cascade 1"]

# %%
from IPython.display import Markdown

from refinenet.models import cascade_groups
from refinenet.study import report
from refinenet.study.experiments import Experiments
from refinenet.study.notebook import start

study = start(
    "05_ablation_cascade",
    profile=profile,
    device=device,
    dataset=dataset,
    output_dir=output_dir,
)
exp = Experiments(study, arms, sweeps)
r = exp.design


# %% tags=["hide-input"]
study.glue("other_profiles", study.other_profiles)  # exercise 3
report.setting_box(exp, exp.arm("standard"))

# %%
labels = {4: "standard", 2: "cascade 2", 1: "cascade 1"}  # the arms
names = {4: "4-cascade", 2: "2-cascade", 1: "single block"}  # the paper's
# The backbone taps (0 = deepest) of each of the c blocks, first to last:
# cascade_groups(2) == [[0, 1], [2, 3]]
groups = {labels[c]: cascade_groups(c) for c in labels}
paper = {labels[c]: name for c, name in names.items()}
layout = report.cascade_layout(groups, described=paper)
study.save_table(layout, "cascade_layout")
report.styled(layout, report.caption(study, "The three cascades."))

# %% [markdown]
# The rest of the page names each cascade by its arm: `standard` (the
# paper's 4-cascade), `cascade 2` (its 2-cascade) and `cascade 1` (its
# single block). Every cascade ends at 1/4 of the input resolution, where
# `layer1` joins:
# the difference is how many refinement steps lead there, and how much
# computation each step gets. The single block, for instance, applies its
# chained pooling and output units only once, at 1/4, to the sum of all four
# adapted taps.
#
# ## Three cascades, and no refinement
#
# First the comparison with the standard model, the 4-cascade; "no
# refinement" is the FCN-32s reference. Every row is {glue:text}`n_seeds`
# seeds; "Δ" is the difference of the mean test mIoU (scored on
# {glue:text}`scored_on`) to the standard model with its 95% Welch
# interval. Then the thin classes, one by one (in brackets: the difference
# to the standard model and its interval). Last, the figure: on the left
# every seed's score (grey dots) beside the mean ± std, on the right each
# difference with its interval.

# %% tags=["full-width"]
runs = {name: exp.arm(name) for name in arms}
base = labels[4]
study.glue("n_seeds", len(r.seeds))
# "360 × 480 labels (logits upsampled)" on CamVid, "H × W labels" else
study.glue("scored_on", report.scored_on(exp))
records = report.ablation_tables(
    study, exp, runs, baseline=base, title="Cascade depth and no refinement"
)

# %% mystnb={"figure": {"caption": "The shorter cascades and no refinement against the standard 4-cascade, on the test split. Left: every seed's mIoU (grey dots) and the mean \u00b1 std (blue). Right: each variant's difference to the 4-cascade with its 95% Welch interval; red when the interval lies below 0, green when above, grey otherwise.", "name": "fig-05-ablation"}, "image": {"alt": "Two panels with one row per variant. Left: grey dots for the seeds and a blue diamond with error bars for the mean test mIoU. Right: a dot with a horizontal interval for each variant's difference to the 4-cascade, around a vertical line at zero."}}
report.show_ablation_figure(study, records, baseline=base)


# %% tags=["hide-input"]
# Mean of a minus mean of b, with its 95% Welch interval:
pairs = [(labels[4], labels[2]), (labels[2], labels[1])]  # C3, C5
for i, (a, b) in enumerate(pairs):
    study.glue(f"claim{i}_diff", report.welch_text(records, a, b))
gain = report.welch_text(records, labels[4], "no refinement")
study.glue("decoder_gain", gain)
biou = report.welch_text(
    records, labels[4], labels[1], column="test boundary IoU",
    missing="(not measured)",  # eval.boundary=false in this profile
)
study.glue("biou_4_vs_1", biou)

# %% tags=["hide-input"]
# The costs as every page writes them: 2 decimals of M parameters, 3 of
# GMACs, more where two arms of the study would read alike
places = report.cost_decimals(exp)
cost = records.groupby("variant")[["GMACs", "parameters (M)"]].mean()
for column, key in (("GMACs", "gmacs"), ("parameters (M)", "params")):
    texts = report.cost_texts(cost[column], places=places[column])
    text = dict(zip(cost.index, texts))
    for c in (4, 2, 1):
        study.glue(f"{key}_{c}", text[labels[c]])
# What every cascade keeps: the model without refinement, in %
share = 100 * cost.loc["no refinement"] / cost.loc[labels[4]]
study.glue("backbone_macs", f"{share['GMACs']:.0f}")
study.glue("backbone_params", f"{share['parameters (M)']:.0f}")

# %% [markdown]
# `standard` (four blocks) against `cascade 2`: {glue:text}`claim0_diff`
# mIoU points; `cascade 2` against `cascade 1` (one block):
# {glue:text}`claim1_diff` points (95% Welch intervals of this page's runs;
# the verdicts on C3 to C5 are in chapter 7). The whole decoder, `standard`
# against `no refinement`, is worth {glue:text}`decoder_gain` points. At the
# boundaries, the boundary IoU of `standard` differs from that of
# `cascade 1` by {glue:text}`biou_4_vs_1` points (95% interval).
#
# What the shorter cascades save: one forward pass costs
# {glue:text}`gmacs_4` GMACs with four blocks (`standard`),
# {glue:text}`gmacs_2` with two (`cascade 2`) and {glue:text}`gmacs_1` with
# one (`cascade 1`), for {glue:text}`params_4` M, {glue:text}`params_2` M
# and {glue:text}`params_1` M parameters. Every
# cascade keeps the backbone: the model without refinement (the backbone
# and a 1 × 1 classifier) already costs {glue:text}`backbone_macs`% of the
# 4-cascade's multiply-accumulates and has {glue:text}`backbone_params`% of
# its parameters.
#
# ## Is the common rate each cascade's own?
#
# Every arm is compared at the standard model's rate. {glue:md}`swept_arms`
# For each arm trained at every rate: is the standard model's rate within
# noise of its best (within the larger of the two rates' seed spreads)?
# Where it is not, the arm's comparisons use its own best rate, as the
# [study design](../design.md) page says.

# %% tags=["hide-input"]
swept = report.swept_text(
    list(arms), sweeps, lrs=r.lrs, common=exp.chosen_lr()
)
study.glue("swept_arms", Markdown(swept))
check = study.save_table(exp.rate_check(sweeps), "rate_check")
what = "The common rate against each cascade's best, val split."
report.styled(
    report.rate_check_view(check),
    report.caption(study, f"{what} {report.RATE_CHECK_KEY}"),
    wrap=False,
    precision=1,
)

# %% [markdown]
# ## Summary
#
# - `standard` (the 4-cascade) against `cascade 2` differs by
#   {glue:text}`claim0_diff` mIoU points, `cascade 2` against `cascade 1`
#   (the single block) by {glue:text}`claim1_diff` (95% Welch intervals of
#   this page's runs; chapter 7 gives the verdicts on C3 to C5).
# - The whole decoder, `standard` against `no refinement` (FCN-32s), is
#   worth {glue:text}`decoder_gain` points.
# - At the boundaries, `standard` and `cascade 1` differ by
#   {glue:text}`biou_4_vs_1` points of boundary IoU.
# - What one block instead of four saves: {glue:text}`gmacs_4` against
#   {glue:text}`gmacs_1` GMACs per image; the backbone and a 1 × 1
#   classifier (`no refinement`) cost {glue:text}`backbone_macs`% of the
#   4-cascade's multiply-accumulates.
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
# **1. What a cascade costs** (the arms' `model.cascade`). The parameters
# and multiply-accumulates of each cascade, without training:
#
# ```bash
# for c in 4 2 1; do
#   refinenet model --backbone resnet18 --cascade $c --depth 0
# done
# ```
#
# Expect both counts to fall with fewer blocks, by less than a proportional
# share: every cascade keeps the backbone and ends at a quarter of the
# input size, where most of the decoder's work is.
#
# **2. No refinement, by hand** (the `no refinement` arm sets
# `model.refinement`):
#
# ```bash
# for refine in true false; do
#   refinenet train configs/smoke.yaml model.refinement=$refine \
#       out_dir=out/runs
# done
# ```
#
# Expect the run without a decoder, which predicts at 1/32 of the input, to
# fall behind, most of all on the thin classes (every class's IoU is in the
# run's `metrics.json`; notebook 2's oracle shows the ceiling). With one
# seed and a minute of training, train `seed=1` as well before trusting a
# small gap.
#
# **3. Another profile** (`profile`). The banner at the top of this page
# names its profile. Execute the page with another one,
# {glue:text}`other_profiles`, and open what it writes beside this page
# (the `smoke` runs take minutes, the `cpu` runs hours):
#
# ```bash
# PROFILE=...  # one of the other profiles named above
# refinenet study run --profile $PROFILE --only 05
# # the page: results/$PROFILE/05_ablation_cascade.ipynb
# ```
#
# Expect the same tables and figures, with far wider intervals on `smoke`:
# tiny models, a few steps each.
