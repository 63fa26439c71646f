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
# text (N = 2, our standard model) and the authors' released VOC model
# (N = 4); we train N = 0, 2 and 4.
#
# ```{admonition} How the verdicts are decided
# :class: tip
# A difference is the mean test mIoU of one model minus that of another,
# with a **95% Welch t interval** from the per-seed test scores (unequal
# variances; with a few seeds a side the interval is wide, which is the
# honest price of few seeds). Each claim is oriented so that a positive
# difference means the paper is right. The claim is **supported** when the
# whole interval lies above 0, **contradicted** when it lies below 0, and
# **not resolved at this scale** when it contains 0. We decide on the test
# split: the learning rate was chosen on the validation split, for the
# standard model, so its validation scores are slightly optimistic, while
# the test split was used for nothing.
# ```

# %% tags=["parameters"]
# The study runner sets these from the profile (refinenet/study/profiles/).
profile = "cpu"  # the profile whose runs and settings this page shows (name or .yaml path)
device = "auto"  # "auto": CUDA when present, else CPU
dataset = "auto"  # "auto": CamVid when found, else the generator
output_dir = None  # tables and figures (None: results/interactive/...)
# The runs this page reads from the ledger: arm -> overrides of the profile's
# standard model, and the arms trained at every rate of the learning-rate grid.
arms = {
    "standard": {},  # N = 2, with the ReLU
    "ReLU off": {"model.crp_relu": False},
    "N = 0": {"model.crp_blocks": 0},
    "N = 4": {"model.crp_blocks": 4},
}
sweeps = ["standard", "ReLU off"]

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.stats
import seaborn as sns
from IPython.display import Markdown

from refinenet.study import stats
from refinenet.study.notebook import start
from refinenet.study.experiments import Experiments
from refinenet.study.report import ablation_section, caption, claim, failure_text, styled

study = start(
    "04_ablation_crp",
    profile=profile,
    device=device,
    dataset=dataset,
    output_dir=output_dir,
)
exp = Experiments(study, arms, sweeps)
r = exp.design

# %% [markdown]
# ## Four models at the chosen learning rate
#
# The standard model (two pooling blocks, with the ReLU), the same without
# the ReLU, and with no pooling block (N = 0: the ReLU alone, the block's
# input passes straight on) or four. All use the learning rate chosen in
# notebook 3; its runs, and those of the sweep, are read from the run ledger.

# %% tags=["full-width"]
runs = {name: exp.arm(name) for name in arms}
base = "standard"
study.glue("n_seeds", len(r.seeds))
records = ablation_section(study, exp, runs, baseline=base, title="Chained residual pooling")

# %% [markdown]
# The standard model has two pooling blocks and the ReLU. Every row is
# {glue:text}`n_seeds` seeds; "Δ" is the difference of the mean test mIoU
# (scored on the native 360 × 480 labels) to the standard model with its 95%
# Welch interval. Parameters and multiply-accumulates (MACs) are for one
# image at the evaluation size; the time is training only, averaged over the
# seeds. A run whose loss diverged (became NaN) has no usable model: it is
# counted in a "diverged runs" column, with an exact 95% interval of the
# failure rate, and the scores are those of the runs that trained. The thin
# classes follow, one by one (in brackets: the difference to the standard
# model and its interval), then every seed's score beside the mean. On the
# right of the figure, each variant's difference to the standard model with
# its 95% interval: red when the interval lies wholly below 0 (the variant is
# worse), green when wholly above, grey otherwise.


# %% tags=["hide-input"]
def scores(name, column="test mIoU"):
    return records.loc[records.variant == name, column]


def n_diverged(name):
    return int(records.loc[records.variant == name, "diverged"].sum())


claims = [
    claim(
        "Chained residual pooling improves the results",
        "component ablation with pre-trained ResNets (Sec. 4)",
        "test mIoU, N = 2 minus N = 0",
        scores(base),
        scores("N = 0"),
        better_label="N = 2",
        worse_label="N = 0",
        notebook="04_ablation_crp",
        diverged=(n_diverged(base), n_diverged("N = 0")),
    ),
    claim(
        "The CRP ReLU is important for the pooling's effectiveness",
        "an observation in Sec. 3.3, no numbers",
        "test mIoU, ReLU on minus off",
        scores(base),
        scores("ReLU off"),
        better_label="ReLU on",
        worse_label="ReLU off",
        notebook="04_ablation_crp",
        diverged=(n_diverged(base), n_diverged("ReLU off")),
    ),
]
for i, c in enumerate(claims):
    d = (c["difference"], c["low"], c["high"])
    study.glue(f"claim{i}_diff", stats.interval_text(d))
    study.glue(f"claim{i}_verdict", c["verdict"])
d4 = stats.welch(scores("N = 4"), scores(base))
study.glue("n4_diff", stats.interval_text(d4))
off = records[records.variant == "ReLU off"]
trained = off.loc[~off["diverged"], "test mIoU"]
if off["diverged"].any() and len(trained):
    relu_note = (
        f"{int(off['diverged'].sum())} of the {len(off)} runs without the ReLU "
        f"diverged; the {len(trained)} that trained score "
        f"{stats.pm(trained)}% test mIoU, against {stats.pm(scores(base))}% for "
        "the standard model"
    )
    if trained.mean() >= scores(base).mean():
        relu_note += (
            ", so here the ReLU matters for stability, not for the score of a "
            "run that trains (section 4.2 counts the failures over the sweep)"
        )
else:
    relu_note = "no run without the ReLU diverged"
study.glue("relu_note", Markdown(relu_note))  # a clause: pasted as text

# %% [markdown]
# Chained pooling (N = 2 against N = 0): a difference of
# {glue:text}`claim0_diff` mIoU points, so the claim is
# **{glue:text}`claim0_verdict`**. The ReLU (on against off):
# {glue:text}`claim1_diff` points, **{glue:text}`claim1_verdict`**:
# {glue:md}`relu_note`. Four
# pooling blocks instead of two change the test mIoU by
# {glue:text}`n4_diff` points (not a claim of the paper: its text uses two,
# the released VOC model four).
#
# ## Does the ReLU make training less sensitive to the learning rate?
#
# The paper's third claim is about training, not about the final score at
# one well-chosen rate. We measure it directly: the whole learning-rate
# sweep of notebook 3 (with the ReLU; the same ledger entries) and the same sweep
# without it, {glue:text}`n_seeds` seeds per rate. The measure is the
# **spread** of the validation mIoU across the rates: the best rate's mean
# minus the worst rate's mean. Less sensitive means a smaller spread. (The
# validation split is the right one here: this is about how training reacts
# to the rate, and it is the split any user would tune the rate on.)

# %%
with_relu = exp.sweep()
without = exp.sweep("ReLU off")
sweep_runs = pd.concat(
    [
        exp.records({name: [x for v in sweep.values() for x in v]}, test=False)
        for name, sweep in (("ReLU on", with_relu), ("ReLU off", without))
    ],
    ignore_index=True,
)
study.save_table(sweep_runs, "lr_sweep_runs")

fig, ax = plt.subplots(figsize=(6.5, 3.6))
rng = np.random.default_rng(0)
for k, (name, colour) in enumerate((("ReLU on", "C0"), ("ReLU off", "C1"))):
    part = sweep_runs[sweep_runs.variant == name]
    shift = 1.06 if k else 1 / 1.06  # side by side on the log axis
    means = part.groupby("lr")["val mIoU"].agg(["mean", "std"])
    ax.errorbar(
        means.index * shift, means["mean"], yerr=means["std"], fmt="o-",
        color=colour, capsize=4, label=name,
    )
    jitter = shift * np.exp(rng.uniform(-0.03, 0.03, len(part)))
    ax.scatter(part["lr"] * jitter, part["val mIoU"], s=14, color=colour,
               alpha=0.4)
ax.set_xscale("log")
ax.set_xticks(list(r.lrs), [f"{x:g}" for x in r.lrs])
ax.minorticks_off()
ax.set_xlabel("learning rate (log scale)")
ax.set_ylabel("val mIoU %")
ax.set_title("mean ± std over seeds; dots: seeds")
ax.legend(title="CRP ReLU", frameon=False)
fig.tight_layout()
study.save_figure(fig, "lr_sensitivity")
plt.show()

# %%
rows, cells, diverged = [], {}, {}
for name in ("ReLU on", "ReLU off"):
    part = sweep_runs[sweep_runs.variant == name]
    cells[name] = {lr: g["val mIoU"] for lr, g in part.groupby("lr")}
    row = {"CRP ReLU": name}
    row.update({f"lr {x:g}": stats.pm(v) for x, v in cells[name].items()})
    diverged[name] = int(part["diverged"].sum())
    row["diverged runs [95% CI]"] = failure_text(diverged[name], len(part))
    row["spread (best − worst)"] = f"{stats.spread(cells[name])[0]:.1f}"
    rows.append(row)
sensitivity = pd.DataFrame(rows)
study.save_table(sensitivity, "lr_sensitivity")
on_value = stats.spread(cells["ReLU on"])[0]
off_value = stats.spread(cells["ReLU off"])[0]
d = stats.spread_difference(cells["ReLU off"], cells["ReLU on"])
low, high = d.low, d.high
grid = ", ".join(f"{x:g}" for x in r.lrs)
spread_claim = {
    "claim": "The CRP ReLU makes training less sensitive to the learning rate",
    "paper's evidence": "an observation in Sec. 3.3, no numbers",
    "measure": "spread of val mIoU over the lr grid, ReLU off minus on",
    "ours": f"spread with the ReLU: {on_value:.1f} vs without: "
    f"{off_value:.1f} (lr {grid}; n = {len(r.grid_seeds)} per rate; diverged, "
    f"not scored: {failure_text(diverged['ReLU on'], len(sweep_runs) // 2)} "
    f"with, {failure_text(diverged['ReLU off'], len(sweep_runs) // 2)} without)",
    "difference": off_value - on_value,
    "low": low,
    "high": high,
    "n": len(r.grid_seeds),
    "verdict": stats.verdict(low, high),
    "notebook": "04_ablation_crp",
    "units": "mIoU points",
}
claims.append(spread_claim)
study.save_table(pd.DataFrame(claims), "claims")
study.glue("spread_on", on_value)
study.glue("spread_off", off_value)
study.glue("spread_diff", stats.interval_text(d))
study.glue("spread_verdict", spread_claim["verdict"])
study.glue("n_lrs", len(r.lrs))
# A second, cruder reading of the same sweeps: how many runs failed outright.
failed = {}
for name in ("ReLU on", "ReLU off"):
    part = sweep_runs[sweep_runs.variant == name]
    collapsed = (~part["diverged"]) & (part["val mIoU"] < 5)  # one class everywhere
    failed[name] = (int(part["diverged"].sum()), int(collapsed.sum()), len(part))
table2x2 = [[f[0], f[2] - f[0]] for f in failed.values()]
p_nan = scipy.stats.fisher_exact(table2x2).pvalue
(on_nan, on_col, on_n), (off_nan, off_col, off_n) = failed.values()
study.glue(
    "failures",
    Markdown(
        f"the loss became NaN in {on_nan} of {on_n} runs with the ReLU and in "
        f"{off_nan} of {off_n} without it (Fisher's exact test, two-sided "
        f"p = {p_nan:.2f}); a further {on_col} runs with the ReLU and {off_col} "
        "without it trained to a model that predicts one class everywhere (val "
        "mIoU below 5%)"
    ),
)
styled(sensitivity, caption(study, "Val mIoU % per rate."), wrap=False)


# %% [markdown]
# Across the rates the validation mIoU spreads over
# {glue:text}`spread_on:.1f` points with the ReLU and
# {glue:text}`spread_off:.1f` without it: a difference of
# {glue:text}`spread_diff` points (without minus with), so the claim is
# **{glue:text}`spread_verdict`**. The interval comes from a simulation:
# each rate's mean is redrawn within its own t-based uncertainty (from its
# seeds' spread), the spreads are recomputed, and the central 95% of the
# simulated differences is reported, shifted by the simulation's average
# bias (noise can only widen a best-minus-worst spread on average, so
# uncorrected the interval would sit off-centre). Runs whose loss diverged
# produced no model: the spreads use the runs that trained, and the failures
# are counted below.
#
# Counting failures instead of measuring a spread: {glue:md}`failures`.
#
# ```{admonition} What this scale can and cannot say
# :class: note
# The grid has only {glue:text}`n_lrs` rates and each run is short; a
# sensitivity that shows up only late in long training, or only at rates
# outside the grid, is invisible here. The comparison is fair in one
# respect that matters: both sweeps use the same rates, seeds, data order
# and schedule, so beyond the seed-to-seed noise (which the interval
# accounts for) a difference can only come from the ReLU.
# ```
