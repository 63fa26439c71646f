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
# # Ablation: one input scale or two
#
# The last variant of the paper's Fig. 7 feeds the image at two scales,
# 1.2 and 0.6 times its size, to two independent ResNets (no shared
# weights). Each RefineNet block then fuses the matching taps of both
# backbones, so the first block fuses two inputs instead of one and every
# later block three. Sec. 4.3 reports that this beats the single-scale
# model, and attributes it to the larger capacity, at the price of longer
# training; the paper therefore keeps the single scale as its standard
# model.
#
# The two backbones see the image at different resolutions: the one at 1.2
# gets finer detail, the one at 0.6 a wider context for the same kernel
# size. Both are trained from scratch here, like every model of the study.
#
# ```{admonition} What this page can and cannot say
# :class: tip
# Its differences are the mean test mIoU of one model minus that of
# another, with a **95% Welch interval** from this page's runs alone: a
# description, not a verdict. The verdict on claim C6 comes from the
# analysis fixed on the [study design](../design.md) page, one linear model
# (arm + seed) fitted to the test mIoU of the runs of every arm that the
# claims compare, with Holm's correction, in chapter 7. The runs are small
# models trained from scratch at reduced resolution (chapter 3).
# ```

# %% tags=["parameters"]
# The study runner sets these from the profile (refinenet/study/profiles/).
profile = "cpu"  # whose runs and settings the page shows (name or .yaml)
device = "auto"  # "auto": CUDA when present, else CPU
dataset = "auto"  # "auto": CamVid when found, else the generator
output_dir = None  # tables and figures (None: results/interactive/...)
# The runs this page reads from the ledger: arm -> overrides of the profile's
# standard model.
arms = {
    "standard": {},
    "2 scales": {"model.scales": [1.2, 0.6]},
    # two backbones at one scale: the 2-scale model's capacity without its
    # scales
    "capacity control": {"model.scales": [1.0, 1.0]},
}
# also at the grid's rates: is the common rate its own?
sweeps = ["2 scales"]

# %%
from IPython.display import Markdown

from refinenet.study import report
from refinenet.study.experiments import Experiments
from refinenet.study.notebook import start

study = start(
    "06_ablation_scales",
    profile=profile,
    device=device,
    dataset=dataset,
    output_dir=output_dir,
)
exp = Experiments(study, arms, sweeps)
r = exp.design
scales = tuple(arms["2 scales"]["model.scales"])


# %% tags=["hide-input"]
study.glue("other_profiles", study.other_profiles)  # exercise 3
report.setting_box(exp, exp.arm("standard"))

# %% [markdown]
# ## Three models
#
# The page compares the standard single-scale model of notebook 3 (the
# same ledger entries), the 2-scale model, and the capacity control (two
# backbones, both at scale 1.0), trained with the same recipe and seeds, at
# the chosen learning rate (the 2-scale model at its own if
# {ref}`the rate check <sec-06-rate-check>` below finds it better).
#
# First the comparison with the standard model, which has one input scale;
# "2 scales" feeds the image at 1.2 and 0.6, "capacity control" twice at
# 1.0. Every row is {glue:text}`n_seeds` seeds; "Δ" is the difference of
# the mean test mIoU (scored on {glue:text}`scored_on`) to the standard
# model with its 95% Welch interval. Then the thin classes, one by one (in
# brackets: the difference to the standard model and its interval). Last,
# the figure: on the left every seed's score (grey dots) beside the mean ±
# std, on the right each difference with its interval.

# %% tags=["full-width"]
h, w = exp.eval_size
one, two = "standard", "2 scales"
runs = {name: exp.arm(name) for name in arms}
study.glue("n_seeds", len(r.seeds))
# "360 × 480 labels (logits upsampled)" on CamVid, "H × W labels" else
study.glue("scored_on", report.scored_on(exp))
records = report.ablation_tables(
    study, exp, runs, baseline=one, title="Input scales"
)

# %% mystnb={"figure": {"caption": "Two input scales and the capacity control against the standard single-scale model, on the test split. Left: every seed's mIoU (grey dots) and the mean \u00b1 std (blue). Right: each model's difference to the standard model with its 95% Welch interval; red when the interval lies below 0, green when above, grey otherwise.", "name": "fig-06-ablation"}, "image": {"alt": "Two panels with one row per model. Left: grey dots for the seeds and a blue diamond with error bars for the mean test mIoU. Right: a dot with a horizontal interval for each model's difference to the standard model, around a vertical line at zero."}}
report.show_ablation_figure(study, records, baseline=one)


# %% tags=["hide-input"]
# Mean of a minus mean of b, with its 95% Welch interval:
study.glue("claim_diff", report.welch_text(records, two, one))
study.glue(
    "scales_vs_capacity",
    report.welch_text(records, two, "capacity control"),
)
cost = report.variant_costs(records)
ratio = cost.loc[two] / cost.loc[one]
study.glue("macs_ratio", float(ratio["GMACs"]))
study.glue("params_ratio", float(ratio["parameters (M)"]))
# no time ratio: wall times also count what else shared the machine
times = records.loc[records.variant == one, "training s"]
study.glue("time_range", f"{times.min():.0f} to {times.max():.0f}")
study.glue("size_big", f"{round(h * scales[0])} × {round(w * scales[0])}")
study.glue("size_small", f"{round(h * scales[1])} × {round(w * scales[1])}")

# %% [markdown]
# Two scales against one: {glue:text}`claim_diff` mIoU points; two scales
# against the capacity control, which has the same two backbones but one
# scale: {glue:text}`scales_vs_capacity` points (95% Welch intervals of this
# page's runs; the verdict on C6 is in chapter 7).
#
# The price is the one the paper names. The 2-scale model has
# {glue:text}`params_ratio:.1f` times the parameters (two backbones, and
# fusion convolutions for the extra inputs), costs
# {glue:text}`macs_ratio:.1f` times the multiply-accumulates per image (its
# backbones see {glue:text}`size_big` and {glue:text}`size_small` pixels).
# Its training time cannot be read off this page: a run's wall time also
# counts whatever else shared the machine, and the standard model's own runs
# took from {glue:text}`time_range` s (the table gives each arm's median
# run). {doc}`Chapter 8 <08_performance>` times a training step of both
# models side by side on one machine.
#
# ```{admonition} Capacity, not only scales
# :class: note
# Like the paper's, the comparison with one scale changes two things at
# once: the input scales and the capacity (a second backbone). The capacity
# control separates them: against it, only the scales differ.
# ```
#
# (sec-06-rate-check)=
# ## Is the common rate the 2-scale model's own?
#
# Every arm is compared at the standard model's rate. {glue:md}`swept_arms`
# For each arm trained at every rate: is the standard model's rate within
# noise of its best (within the larger of the two rates' seed spreads)? If
# not, its comparisons use its own best rate, as the
# [study design](../design.md) page says.

# %% tags=["hide-input"]
swept = report.swept_text(
    list(arms), sweeps, lrs=r.lrs, common=exp.chosen_lr()
)
study.glue("swept_arms", Markdown(swept))
check = study.save_table(exp.rate_check(sweeps), "rate_check")
what = "The common rate against the 2-scale model's best, val split."
report.styled(
    report.rate_check_view(check),
    report.caption(study, f"{what} {report.RATE_CHECK_KEY}"),
    wrap=False,
    precision=1,
)

# %% [markdown]
# ## Summary
#
# - Two input scales against one change the test mIoU by
#   {glue:text}`claim_diff` points; against the capacity control, which has
#   the same two backbones at one scale, by {glue:text}`scales_vs_capacity`
#   (95% Welch intervals of this page's runs; chapter 7 gives the verdict).
# - The price: {glue:text}`params_ratio:.1f` times the parameters and
#   {glue:text}`macs_ratio:.1f` times the multiply-accumulates of one scale;
#   the runs' wall times vary too much with the machine's load to compare.
# - The capacity control separates the two things that a second scale
#   changes at once: the input scales and the size of the model.
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
# **1. What a second scale costs** (the `2 scales` arm sets
# `model.scales`). Parameters and multiply-accumulates, without training:
#
# ```bash
# refinenet model --backbone resnet18 --scales 1.0 --depth 0
# refinenet model --backbone resnet18 --scales 1.2,0.6 --depth 0
# refinenet model --backbone resnet18 --scales 1.0,1.0 --depth 0
# ```
#
# Expect the backbone's parameters to double in both two-scale models (a
# backbone per scale) and the decoder's to grow by less (adaptations and
# fusion inputs for the second scale). Expect the 1.2 and 0.6 pair to cost
# more multiply-accumulates than the capacity control, although its
# backbones see fewer pixels (1.2² + 0.6² = 1.8 images' worth against 2):
# each block fuses at the resolution of its finest input, the 1.2 scale's,
# so its whole decoder works on 1.44 times the pixels.
#
# **2. Two scales, by hand**:
#
# ```bash
# for scales in "[1.0]" "[1.2,0.6]" "[1.0,1.0]"; do
#   refinenet train configs/smoke.yaml "model.scales=$scales" \
#       out_dir=out/runs
# done
# ```
#
# Expect the two-scale runs to take longer per step; whether they score
# higher is not something one seed and a minute of training can say.
#
# **3. Another profile** (`profile`). The banner at the top of this page
# names its profile. Execute the page with another one,
# {glue:text}`other_profiles`, and open what it writes beside this page
# (the `smoke` runs take minutes, the `cpu` runs hours):
#
# ```bash
# PROFILE=...  # one of the other profiles named above
# refinenet study run --profile $PROFILE --only 06
# # the page: results/$PROFILE/06_ablation_scales.ipynb
# ```
#
# Expect the same tables and figures, with far wider intervals on `smoke`.
