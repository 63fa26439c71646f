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
# # Training the standard model
#
# This notebook trains the standard RefineNet, the 4-block cascade with two
# pooling blocks in each chained residual pooling, and looks at what it
# learned. It also fixes the **training recipe** that every later notebook
# uses, so the order matters:
#
# 1. a small learning-rate sweep, several seeds per rate, picks the rate on
#    the **validation** split;
# 2. the runs at that rate are the standard model: its training curves, its
#    scores on the **test** split (which played no part in any choice), per
#    class and at the boundaries;
# 3. its predictions beside the ground truth, and the images it gets most
#    wrong.
#
# The ablation notebooks (4 to 6) compare every variant with exactly these
# runs: they are built from the same configuration, so the training engine
# finds them on disk and does not train them again.

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
    "standard": {},
    # No weights, so no softening of them either (a power needs the weights).
    "plain cross-entropy": {"loss.class_weights": "none",
                            "loss.class_weight_power": 1.0},
}
sweeps = ["standard"]
# The recipe pilot: whole recipes, each with its own rate, trained before
# everything else and compared on val only. pilot_base names every setting
# the pilot varies.
pilot_base = {
    "optim.name": "sgd", "optim.weight_decay": 0.0005,
    "schedule.name": "poly", "schedule.steps": 3000,
    "schedule.warmup_steps": 200, "eval.every": 150,
    "checkpoint_every": 1000,
    "data.size": [180, 240], "data.crop_size": [128, 160],
    "loss.class_weights": "median_frequency", "loss.class_weight_power": 1.0,
    "data.scale_range": [0.7, 1.3], "data.color_jitter": 0.0,
    "data.train_split": "train", "data.val_split": "val",
}
pilot = {  # the longest first: it trains beside the others
    "SGD poly, lr 0.01, 8000 steps": {
        "optim.lr": 0.01, "schedule.steps": 8000, "eval.every": 400,
    },
    "SGD poly, lr 0.01": {"optim.lr": 0.01},
    "AdamW cosine, lr 0.001": {
        "optim.name": "adamw", "optim.lr": 0.001, "optim.weight_decay": 0.01,
        "schedule.name": "cosine",
    },
    "SGD poly, lr 0.02": {"optim.lr": 0.02},
    "AdamW cosine, lr 0.0003": {
        "optim.name": "adamw", "optim.lr": 0.0003,
        "optim.weight_decay": 0.01,
        "schedule.name": "cosine",
    },
    "SGD poly, lr 0.01, 2000 steps": {
        "optim.lr": 0.01, "schedule.steps": 2000, "eval.every": 100,
    },
    # Round 2: the best recipe of round 1 within the budget (AdamW cosine,
    # lr 0.001), shortened to 2800 steps so that it fits, then one setting
    # changed per recipe.
    "AdamW 2800": {
        "optim.name": "adamw", "optim.weight_decay": 0.01,
        "schedule.name": "cosine", "schedule.steps": 2800, "eval.every": 140,
        "optim.lr": 0.001, "seeds": [1],
    },
    "AdamW 2800, lr 0.002": {
        "optim.name": "adamw", "optim.weight_decay": 0.01,
        "schedule.name": "cosine", "schedule.steps": 2800, "eval.every": 140,
        "optim.lr": 0.002,
    },
    "AdamW 2800, class weights ^ 0.5": {
        "optim.name": "adamw", "optim.weight_decay": 0.01,
        "schedule.name": "cosine", "schedule.steps": 2800, "eval.every": 140,
        "optim.lr": 0.001, "loss.class_weight_power": 0.5,
        "seeds": [1],  # a second seed of the three best in the budget
    },
    "AdamW 2800, colour jitter 0.3": {
        "optim.name": "adamw", "optim.weight_decay": 0.01,
        "schedule.name": "cosine", "schedule.steps": 2800, "eval.every": 140,
        "optim.lr": 0.001, "data.color_jitter": 0.3,
    },
    "AdamW 2800, scales 0.5-2.0": {
        "optim.name": "adamw", "optim.weight_decay": 0.01,
        "schedule.name": "cosine", "schedule.steps": 2800, "eval.every": 140,
        "optim.lr": 0.001, "data.scale_range": [0.5, 2.0],
    },
    # Validated 4 times: each validation costs 4x at this size.
    "AdamW 2800, 360 x 480 images": {
        "optim.name": "adamw", "optim.weight_decay": 0.01,
        "schedule.name": "cosine", "schedule.steps": 2800, "eval.every": 700,
        "optim.lr": 0.001, "data.size": [360, 480],
    },
    "AdamW 2800, plain cross-entropy": {
        "optim.name": "adamw", "optim.weight_decay": 0.01,
        "schedule.name": "cosine", "schedule.steps": 2800, "eval.every": 140,
        "optim.lr": 0.001, "loss.class_weights": "none",
        "seeds": [1],
    },
    # A validation that shares no sequence with training: val is all 0016E5,
    # which training also shows; most test frames come from Seq05VD, which it
    # never shows. These train without train's 0001TP frames and validate on
    # them, for three recipes of rounds 1 and 2.
    "SGD poly, lr 0.01, held-out 0001TP": {
        "optim.lr": 0.01,
        "data.train_split": "train:-0001TP",
        "data.val_split": "train:0001TP",
    },
    "AdamW cosine, lr 0.0003, held-out 0001TP": {
        "optim.name": "adamw", "optim.lr": 0.0003,
        "optim.weight_decay": 0.01,
        "schedule.name": "cosine",
        "data.train_split": "train:-0001TP",
        "data.val_split": "train:0001TP",
    },
    "AdamW 2800, held-out 0001TP": {
        "optim.name": "adamw", "optim.weight_decay": 0.01,
        "schedule.name": "cosine", "schedule.steps": 2800, "eval.every": 140,
        "optim.lr": 0.001,
        "data.train_split": "train:-0001TP",
        "data.val_split": "train:0001TP",
    },
}
pilot_seeds = [0]
# The budget a recipe must fit: minutes of the whole machine per run.
pilot_budget_minutes = 12

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from refinenet.study import stats, training_views as views
from refinenet.study.experiments import Experiments
from refinenet.study.notebook import start
from refinenet.study.pilot import (
    IDLE_AGREEMENT, STEP_SKEW, TIE, choose_recipe, pilot_curves,
    pilot_families, pilot_records, pilot_table, plot_pilot_curves,
    sequence_check,
)
from refinenet.study.report import caption, setting_box, styled

study = start("03_training", profile=profile, device=device,
              dataset=dataset, output_dir=output_dir)
exp = Experiments(study, arms, sweeps, pilot=pilot,
                  pilot_base=pilot_base, pilot_seeds=pilot_seeds)


# %% tags=["hide-input"]
setting_box(exp, exp.arm("standard"))

# %% [markdown]
# ## A recipe that converges: the pilot
#
# A recipe that stops while the model is still improving compares unfinished
# models. Before any run of the study, the **pilot** trains whole recipes
# (optimiser, schedule, learning rate, length),
# {glue:text}`pilot_eval_share`, and looks at the **validation** split
# only. On this page's profile it trains {glue:text}`pilot_size`. The rule
# that picks the recipe was fixed before the runs: among the recipes none
# of whose runs diverged and whose runs cost at most
# {glue:text}`pilot_budget` minutes of the whole machine, the highest val
# mIoU at the end of the run (mean over the pilot's seeds); a recipe within
# {glue:text}`pilot_tie` point of it that costs less wins instead. The test split plays no part.
#
# The full pilot (the one the notebook's parameters declare, which the cpu
# profile trains on CamVid) ran in three rounds. The first compared
# optimisers, schedules, learning rates and lengths. The second started
# from the best recipe of the first within the budget and changed one
# setting at a time: the learning rate, the class weighting, colour jitter,
# the scale range, the image size (validated less often: at 360 × 480 a
# validation costs four times as much) and the plain loss. The third
# trained a second seed of the three best recipes within the budget, for
# the reason the next paragraph gives. The rule chose among the recipes of
# all three rounds; three of them were also trained without one sequence of
# the training split, to check how val ranks recipes (below).
#
# **The cost of a run** ("machine min") is its steps times the median
# time of one step times {glue:text}`step_skew` (the mean over the median of
# a step's time on an idle machine), plus its validations and its test
# scoring, times its share of the machine (a run of one thread of two holds
# half). The first measure was the run's own time ("measured min"); it
# was changed during the second round, whose runs shared the
# machine with other work that slowed some of their steps: that work should
# not count against a recipe. On the idle first round the two agree to
# within {glue:text}`idle_agreement` (a test checks it). Where other work slowed more than half of a
# run's steps, the median is slowed too: such a run's cost is measured again
# on an otherwise idle machine before the rule uses it. So the third round
# trained the second seeds of the three best recipes within the budget (by
# their first seed) alone on the machine, and a recipe's cost is the least
# over its runs: other work can only slow a run, never speed it up.

# %%
pilot_runs = {name: exp.pilot(name) for name in pilot}
pilot_rows = study.save_table(pilot_records(pilot_runs), "pilot_runs")
chosen_recipe, why = choose_recipe(pilot_rows,
                                   budget_minutes=pilot_budget_minutes)
study.glue("pilot_budget", pilot_budget_minutes)
study.glue("pilot_size", f"{views.plural(len(pilot), 'recipe')} in "
           f"{views.plural(len(pilot_rows), 'run')}")
study.glue("pilot_eval_share", views.eval_share_text(
    [runs[0].config for runs in pilot_runs.values()]))
study.glue("pilot_tie", f"{TIE:g}")
study.glue("step_skew", f"{STEP_SKEW:g}")
study.glue("idle_agreement", f"{IDLE_AGREEMENT:.0%}")
study.glue("pilot_choice", chosen_recipe or "none")
study.glue("pilot_why", why)
table = study.save_table(pilot_table(pilot_rows, chosen_recipe), "pilot")

# %% tags=["full-width"]
styled(table, caption(study, "The recipes of the pilot, on the validation "
                      "split: mIoU at the end and at its best step; minutes "
                      "of one run."))

# %% mystnb={"figure": {"caption": "The pilot's SGD recipes (those of this profile's pilot that train with SGD on the whole training split): the validation mIoU of each during its run, against the passes over the training images, one line per recipe and seed. The test split plays no part.", "name": "fig-03-pilot-curves"}, "image": {"alt": "A line chart of validation mIoU in percent against passes over the training images, one coloured line per SGD recipe and seed of the pilot."}}
# Images of the training split, to count passes over them:
train_images = len(study.data("train", exp.base.data.size,
                              n=exp.design.scenes or 256))
curves = pilot_curves(pilot_runs)
families = pilot_families(pilot_rows)
ax = plot_pilot_curves(curves[curves.recipe.isin(families["SGD"])],
                       train_images=train_images)
ax.set_title("validation mIoU during each SGD run of the pilot")
study.save_figure(ax.figure, "pilot_curves")
plt.show()

# %% mystnb={"figure": {"caption": "The pilot's AdamW recipes (those of this profile's pilot that train with AdamW on the whole training split), as in the figure before: one line per recipe and seed. The test split plays no part.", "name": "fig-03-pilot-curves-adamw"}, "image": {"alt": "A line chart of validation mIoU in percent against passes over the training images, one coloured line per AdamW recipe and seed of the pilot."}}
ax = plot_pilot_curves(curves[curves.recipe.isin(families["AdamW"])],
                       train_images=train_images)
ax.set_title("validation mIoU during each AdamW run of the pilot")
study.save_figure(ax.figure, "pilot_curves_adamw")
plt.show()

# %% [markdown]
# ### Does val rank recipes as an unseen sequence would?
#
# Every CamVid val frame comes from sequence 0016E5, which training also
# shows, while most test frames come from Seq05VD, which it never shows. A
# recipe can also be trained without train's 0001TP frames and validated on
# those frames, a sequence the run never saw
# ({glue:text}`held_out_count`). The rule for using them was fixed before
# they trained: if they rank their recipes as val does, val keeps deciding
# (it has more frames); if not, the choice is not made on val, and the
# recipes within 2 points of the best on val are trained held-out and the
# held-out score decides (a lone recipe within 2 points stands: no held-out
# score could change the choice).
#
# Sequence 0001TP is a drive at dusk, much darker than the other training
# sequences, so a run that never saw it is tested on a change of light as
# much as on new streets.

# %%
check, orders_agree = sequence_check(pilot_rows)
study.save_table(check, "pilot_sequence_check")
study.glue("held_out_count", views.held_out_count(check))
study.glue("pilot_orders_agree",
           views.held_out_verdict(check, orders_agree))
if not check.empty:  # a table only where the pilot trained held out
    what = (f"{views.plural(len(check), 'recipe').capitalize()} on val "
            "(sequence 0016E5, seen in training) and on a held-out "
            "sequence.")
    display(styled(check, caption(study, what), precision=1))

# %% [markdown]
# {glue:text}`pilot_orders_agree`
#
# By that rule the pilot chooses **{glue:text}`pilot_choice`**:
# {glue:text}`pilot_why`. The curves show where each recipe stops gaining:
# with a decaying learning rate most of the last gains come as the rate
# falls, so a longer run is a different recipe, not a later point of the
# same curve.

# %%
# The recipe the profile adopts (its study.adopted) beside the choice:
adopted = exp.design.adopted
runs_adopted = pilot_runs.get(adopted) or [None]
adopted_config = runs_adopted[0] and runs_adopted[0].config
study.glue("adoption", Markdown(views.adoption_text(
    adopted, chosen_recipe, base=exp.base, lrs=exp.design.lrs,
    pilot=adopted_config)))
pilot_lr = adopted_config and adopted_config.optim.lr
study.glue("adopted_clause", Markdown(views.adopted_clause(
    adopted, chosen_recipe, lr=exp.chosen_lr(), pilot_lr=pilot_lr)))

# %% [markdown]
# {glue:md}`adoption` The profile, not the pilot's table, fixes what the
# study trains ({ref}`exercise 1 <ex-03-budget>` shows it).
#
# ## The recipe, and how it departs from the paper
#
# The paper fine-tunes a ResNet-101 pre-trained on ImageNet, at full
# resolution, for a long time. None of that fits here: no pre-trained
# weights can be downloaded, and this profile has a fixed time budget for
# the whole study (about {glue:text}`run_count` training runs). The table
# lists every setting beside the paper's (or, where the paper is silent, the
# authors' released code).

# %% tags=["hide-input"]
base, r = exp.base, exp.design  # standard config; seeds, rate grid
weights = base.loss.class_weights
first_run = exp.sweep()[r.lrs[0]][0]  # the precision the runs trained in
amp = views.precision_of(first_run)
recipe_table = study.save_table(
    views.recipe_table(exp, train_images=train_images, amp=amp), "recipe"
)
# Distinct runs of the whole study: every notebook's arms and sweeps.
study.glue("run_count", len(exp.study_plan().runs))
departures = views.departures(exp, train_images=train_images, amp=amp)
study.glue("departures", Markdown(", ".join(departures)))
study.glue("n_seeds", len(r.seeds))
study.glue("schedule_name", base.schedule.name)
styled(recipe_table, caption(study, "The training recipe."))

# %% [markdown]
# ```{admonition} Departures from the paper: a much smaller, much shorter run
# :class: warning
# The right-hand column is scaled down to fit the profile's budget:
# {glue:md}`departures`. The batch holds several images because the
# backbone's batch normalisation needs more than one image to train from
# scratch, and the rate follows a {glue:text}`schedule_name` schedule
# instead of being lowered by hand. Expect absolute scores well below published CamVid results (the
# paper itself reports none on CamVid); what the study measures is how the
# *variants* compare when trained identically.
# ```
#
# ## Choosing the learning rate on the validation split
#
# Each rate of the grid is trained with {glue:text}`n_seeds` seeds (the seed
# sets the initial weights, the order of the images and their
# augmentation). The rate with the highest mean validation mIoU becomes the
# standard recipe. A run whose loss diverges (becomes NaN, which happens
# from scratch when the rate is too high) has no usable model and counts as
# 0. The table below has one row per rate (mean ± std over its seeds); the
# figure after it shows every seed's run as well.

# %%
sweep = exp.sweep()
lr = exp.chosen_lr()
sweep_runs = exp.records(
    {f"{x:g}": runs for x, runs in sweep.items()}, test=False
)
study.save_table(sweep_runs, "lr_sweep_runs")
sweep_table = study.save_table(
    views.sweep_table(sweep_runs, chosen=lr), "lr_sweep"
)
study.glue("chosen_lr", lr)
chosen = sweep_runs[sweep_runs.lr == lr]["val mIoU"]
study.glue("chosen_val", stats.pm(chosen))
edge = views.rate_edge(sweep_runs, chosen=lr, lrs=r.lrs)
study.glue("edge", Markdown(edge))  # a clause: pasted as text
styled(sweep_table, caption(study, "Val mIoU per rate."), wrap=False)

# %% mystnb={"figure": {"caption": "The learning-rate sweep on the validation split: every seed's mIoU (grey dots) and the mean \u00b1 std over the seeds (blue diamonds) at each rate of the grid.", "name": "fig-03-lr-sweep"}, "image": {"alt": "A dot plot with one column per learning rate: grey dots for the seeds and a blue diamond with error bars for their mean, the diamonds joined from rate to rate."}}
fig = views.sweep_figure(sweep_runs, lrs=r.lrs)
study.save_figure(fig, "lr_sweep")
plt.show()

# %% [markdown]
# The chosen learning rate is {glue:text}`chosen_lr:g`, with a validation
# mIoU of {glue:text}`chosen_val`% (mean ± std over seeds). Only the
# validation split was looked at to choose it. The chosen rate is
# {glue:md}`edge`.
#
# ## Why class weights
#
# The paper trains with a plain cross-entropy, starting from ImageNet
# weights. Trained from scratch for a few passes, a plain cross-entropy
# leaves the rare thin classes ({glue:text}`thin_shares`; chapter 2
# counts at its own size, and a thin structure loses pixels when shrunk)
# unpredicted: the model gains more by getting road and sky right. When the recipe weights the classes (median frequency
# balancing, as SegNet did on CamVid: class *c* weighs median(f) / f<sub>c</sub>,
# raised to a power below 1 where the recipe softens the weights),
# the same rate is also trained with the plain cross-entropy, and both are
# compared here, on the validation split only.

# %%
from refinenet.engine.class_weights import class_pixel_counts

train_set = study.data("train", base.data.size, n=r.scenes or 256)
pixels, _ = class_pixel_counts(train_set, train_set.num_classes,
                               train_set.ignore_index)
study.glue("thin_shares", views.thin_share_text(
    pixels, train_set.class_names, exp.thin_classes,
    size=base.data.size))

# %% tags=["full-width"]
plain = None  # trained only where the recipe weights the classes
weighted = exp.arm("standard")  # every seed at the chosen rate
if weights != "none":
    plain = exp.arm("plain cross-entropy")
    losses = {f"{views.weights_text(base.loss)} weights": weighted,
              "plain cross-entropy (the paper)": plain}
    loss_table = study.save_table(views.loss_table(
        losses, thin_classes=exp.thin_classes), "class_weights")
    what = f"Class weights at the chosen rate {lr:g}, validation split."
    display(styled(loss_table, caption(study, what), wrap=False))
else:
    print(views.PLAIN_LOSS_NOTE)
study.glue("plain_val", views.plain_val_text(plain))
study.glue("cw_val_effect", Markdown(views.loss_effect(
    weighted, plain, thin_classes=exp.thin_classes)))

# %% [markdown]
# With the plain cross-entropy the validation mIoU is
# {glue:text}`plain_val`%. {glue:md}`cw_val_effect`
#
# ## Training curves
#
# The runs at the chosen rate are the standard model. Below, per seed: the
# training loss (a running mean), the learning rate of the
# {glue:text}`schedule_name` schedule with its linear warm-up, and the validation mIoU measured during
# training.

# %% mystnb={"figure": {"caption": "Training of the standard model, one line per seed: the training loss (running mean), the learning rate (a warm-up, then the schedule's decay) and the validation mIoU measured during training.", "name": "fig-03-curves"}, "image": {"alt": "Three line charts side by side against the training step: the training loss of each seed, falling; the learning rate, rising through a short warm-up and then decaying; and the validation mIoU of each seed."}}
standard = exp.arm("standard")
window = max(1, base.schedule.steps // 20)  # steps of the running mean
steps, evals = views.training_history(standard, window=window)
fig = views.curves_figure(steps, evals)
study.save_figure(fig, "curves")
plt.show()
last = steps.groupby("seed").tail(window).groupby("seed")["loss"].mean()
study.glue("final_loss", stats.pm(last, digits=2))
study.glue("window", views.last_steps(window))

# %% [markdown]
# Over {glue:text}`window` of training the loss averages
# {glue:text}`final_loss` (mean ± std over seeds).
#
# ## Scores on the test split
#
# The test split was not used for anything so far. Each seed's final model is
# evaluated on it once, at a single scale and without flipping, and scored on
# the labels at the data set's native size (CamVid: 360 × 480, the logits
# upsampled to it), as published CamVid results are. The table's last row
# averages the predictions over the released code's input scales and their
# mirror images (multi-scale evaluation, paper Sec. 4), at no training cost.

# %%
results = exp.records({"standard": standard})
study.save_table(results, "standard_runs")
multiscale = views.multiscale_scores(standard)  # scales and flips, %
summary = study.save_table(views.standard_summary(
    results, multiscale, scales=r.test_scales), "test_summary")
study.glue("test_ms", stats.pm(multiscale))
gain = (stats.interval_text(stats.welch(multiscale, results["test mIoU"]))
        if len(multiscale) > 1 else "(not measured)")
study.glue("ms_gain", gain)
study.glue("test_miou", stats.pm(results["test mIoU"]))
study.glue("test_biou", stats.pm(results["test boundary IoU"]))
study.glue("thin_miou", stats.pm(results["thin-class mIoU"]))
study.glue("thin_names", ", ".join(exp.thin_classes))
styled(views.summary_view(summary),
       caption(study, "The standard model on the test split."))

# %% [markdown]
# On the test split the standard model reaches {glue:text}`test_miou`% mean
# IoU and {glue:text}`test_biou`% boundary IoU; the thin classes
# ({glue:text}`thin_names`) reach {glue:text}`thin_miou`% on average. Averaged
# over scales and flips the same models reach {glue:text}`test_ms`% (a
# difference of {glue:text}`ms_gain` points, 95% Welch interval; the same
# models on both sides, so the interval is conservative).
#
# For orientation, the table below lists the published CamVid results at
# full resolution on the same 233 test images, as the ENet and FC-DenseNet
# papers tabulate them. Two of them, like ours, were trained from scratch;
# the others start from ImageNet weights. {glue:md}`comparison_caveat`

# %%
h, w = exp.eval_size
ours = f"RefineNet, {base.model.backbone}, {h} × {w} (this page)"
score = stats.pm(results["test mIoU"])
if study.synthetic:
    score += " (generator, not CamVid)"
caveat = views.comparison_caveat(base.data.size, synthetic=study.synthetic)
study.glue("comparison_caveat", Markdown(caveat))  # a sentence
comparison = study.save_table(
    views.published_comparison(ours, score), "published_comparison"
)
test_miou = stats.summarize(results["test mIoU"])
gap = views.gap_sentence(test_miou.mean, synthetic=study.synthetic)
study.glue("gap_sentence", Markdown(gap))  # a sentence: pasted as text
styled(comparison, caption(study, "CamVid test mIoU, published and ours."))

# %% [markdown]
# {glue:md}`gap_sentence` (The RefineNet paper itself reports no CamVid
# result.)
#
# ### Per class
#
# Mean over seeds with the standard deviation as error bar; the thin classes
# are drawn in their own colour.

# %% mystnb={"figure": {"caption": "Test IoU of each class for the standard model: the mean over the seeds, with the standard deviation as error bar; the thin classes in red.", "name": "fig-03-per-class"}, "image": {"alt": "A bar chart with one bar per class on a scale of 0 to 100 percent, the thin classes in red and the others in blue, each bar with an error bar."}}
names = study.data("val", base.data.size, n=1).class_names
per_class = study.save_table(views.per_class_table(
    results, names, thin_classes=exp.thin_classes), "per_class")
fig = views.per_class_figure(results, names, thin_classes=exp.thin_classes)
study.save_figure(fig, "per_class")
plt.show()

# %%
styled(per_class, caption(study, "Test IoU per class, mean ± std."))

# %% [markdown]
# {glue:md}`per_class_published`

# %%
study.glue("per_class_published", Markdown(
    views.published_per_class_text(synthetic=study.synthetic)))
if not study.synthetic:  # on the generator the sentence above says why not
    side = study.save_table(views.published_per_class(
        per_class, ours_miou=stats.pm(results["test mIoU"])
    ), "published_per_class")
    what = "CamVid test IoU % per class, ours (mean ± std) and published."
    display(styled(side, caption(study, what), wrap=False))

# %% [markdown]
# Which classes does the model take for which? The figure below shows the
# confusion matrix of the test split, summed over the seeds: each row is a
# true class and shows where its pixels went, in percent of that row.

# %% mystnb={"figure": {"caption": "Confusion matrix of the test split, summed over the seeds: each row is a true class and shows where its pixels went, in % of the row; the diagonal is what the model gets right.", "name": "fig-03-confusion"}, "image": {"alt": "A square heat map in shades of blue, true classes down the left side and predicted classes along the bottom, every cell labelled with a percentage."}}
confusion = views.summed_confusion(standard)  # (true, predicted) pixels
rows_pct = 100 * confusion / confusion.sum(1, keepdims=True).clip(min=1)
fig = views.confusion_figure(rows_pct, names)
study.save_figure(fig, "confusion")
plt.show()
t, p, pct = views.largest_confusion(rows_pct)  # off the diagonal
study.glue("confused_true", names[t])
study.glue("confused_pred", names[p])
study.glue("confused_pct", pct)

# %% [markdown]
# The largest confusion: {glue:text}`confused_pct:.0f`% of the
# {glue:text}`confused_true` pixels are predicted as
# {glue:text}`confused_pred`.
#
# ## Validation and test scores
#
# The standard model scores {glue:text}`standard_val`% mIoU on the
# validation split and {glue:text}`test_miou`% on the test split (mean ±
# std over seeds). Where the images come from can matter. CamVid's frames
# are taken from a few drives, each a video sequence named by the file
# names' prefix, and the three splits share them unevenly (on CamVid the
# table below counts them).

# %%
seq = None  # the generator has no video sequences: the text below says so
if not study.synthetic:
    frames = {split: study.data(split, base.data.size).names
              for split in ("train", "val", "test")}
    seq = study.save_table(views.sequence_table(frames), "sequences")
    what = "Frames per video sequence and split."
    display(styled(seq, caption(study, what)))
study.glue("standard_val", stats.pm(results["val mIoU"]))
text = views.val_test_text(seq, val=results["val mIoU"].mean(),
                           test=results["test mIoU"].mean())
study.glue("sequence_sentence", Markdown(text["paragraph"]))
study.glue("val_test_summary", Markdown(text["summary"]))

# %% [markdown]
# {glue:md}`sequence_sentence`
#
# The recipe, class weights included, was fixed without the test split.
# The same two losses on the test split follow, reported only now that the
# recipe is fixed: the recipe does not change with what this table shows,
# or the test score would become a selection score.

# %% tags=["full-width"]
plain_records = None
if weights != "none":
    plain_records = exp.records({"plain cross-entropy": plain})
    recipe = f"{views.weights_text(base.loss)} weights (the recipe)"
    losses = {recipe: results,
              "plain cross-entropy (the paper)": plain_records}
    cw_table = study.save_table(views.loss_test_table(losses),
                                "class_weights_test")
    what = f"Class weights at the chosen rate {lr:g}, test split."
    display(styled(cw_table, caption(study, what), wrap=False))
else:
    print(views.PLAIN_LOSS_NOTE)

# %%
# Weighted minus plain: mIoU with its 95% Welch interval, and which way
# the thin classes and the pixel accuracy move on the test split.
cw = views.weights_difference(results, plain_records)
study.glue("cw_test_diff", cw["test"])
study.glue("cw_val_diff", cw["val"])
study.glue("cw_test_verdict", Markdown(cw["verdict"]))
study.glue("cw_test_effect", Markdown(cw["effect"]))
passes = views.passes(base, train_images)
study.glue("cw_passes", f"{passes:.0f}" if passes >= 10 else f"{passes:.1f}")

# %% [markdown]
# On the test split the weighted loss minus the plain one is
# {glue:text}`cw_test_diff` mIoU points (95% Welch interval):
# {glue:md}`cw_test_verdict`. On the validation split the same difference is
# {glue:text}`cw_val_diff` points. {glue:md}`cw_test_effect` Both losses
# are measured after this profile's schedule, about
# {glue:text}`cw_passes` passes over the training images from scratch: the
# comparison says what the weights do to this schedule, not to the paper's.
#
# ## Predictions beside the ground truth
#
# The model of the first seed (the first whose training did not diverge) on
# test images spread over the split: the image, the true labels, the
# prediction, and the wrong pixels in red.

# %% tags=["hide-input"]
usable = [run for run in standard if not run.diverged]
if not usable:
    raise RuntimeError(
        "every standard run diverged: lower the learning rates"
    )
shown_run = usable[0]
# The ledger keeps the run's predictions of these test images (indexed PNGs
# at the size of the labels it was scored on) and its per-image test scores.
label_size = tuple(shown_run.prediction(shown_run.examples[0]).shape)
test_raw = study.data("test", label_size, n=r.scenes or 64)

# %% mystnb={"figure": {"caption": "Test images spread over the split, as the standard model of the first seed that trained predicts them: the image, the true labels, the prediction, and the wrong pixels in red on the image in grey.", "name": "fig-03-predictions"}, "image": {"alt": "A grid with one row per test image and four columns: the picture, its colour-coded true labels, the model's colour-coded prediction, and a grey copy of the picture with the wrongly labelled pixels painted red; a legend of the class colours below."}}
fig = views.prediction_panel(test_raw, shown_run.prediction,
                             shown_run.examples,
                             title=lambda i: f"test image {i}")
study.save_figure(fig, "predictions")
plt.show()

# %% [markdown]
# ## Failure cases
#
# Where does the model fail worst? Every test image was scored on its own
# when the run was recorded (the mean IoU over the classes present in its
# truth or its prediction); the figures below show the lowest-scoring ones.

# %% mystnb={"figure": {"caption": "The per-image test mIoU of that model over the test split; the red lines mark the worst images, shown in the next figure.", "name": "fig-03-per-image"}, "image": {"alt": "A histogram of the per-image mIoU in percent, with a few red vertical lines at its low end."}}
per_image = shown_run.per_image()
per_image["mIoU %"] = 100 * per_image["miou"]
worst = per_image.set_index("image").loc[shown_run.failures].reset_index()
study.save_table(per_image, "per_image_scores")
fig = views.per_image_figure(per_image["mIoU %"], marked=worst["mIoU %"])
study.save_figure(fig, "per_image_scores")
plt.show()
study.glue("pool_size", len(per_image))
study.glue("median_image", float(per_image["mIoU %"].median()))
study.glue("worst_image", float(worst["mIoU %"].min()))

# %% mystnb={"figure": {"caption": "The test images that model gets most wrong, with the same four columns: image, true labels, prediction and the wrong pixels in red; each row names the image and its mIoU.", "name": "fig-03-failures"}, "image": {"alt": "A grid with one row per badly predicted test image and four columns: the picture, its true labels, the prediction and the red error map."}}
score_of = dict(zip(per_image["image"], per_image["mIoU %"]))
fig = views.prediction_panel(
    test_raw, shown_run.prediction, list(worst["image"]),
    title=lambda i: f"test image {i}\n{score_of[i]:.0f}% mIoU",
)
study.save_figure(fig, "failures")
plt.show()

# %% [markdown]
# Over {glue:text}`pool_size` test images the median per-image mIoU is
# {glue:text}`median_image:.1f`%; the worst image scores
# {glue:text}`worst_image:.1f`%. The error maps tell two kinds of failure
# apart: thin red seams along object outlines (the prediction is too coarse)
# and whole regions in red (the class is wrong, which is a matter of
# recognition, not of resolution). Notebooks 4 to 6 ask which parts of the
# architecture the scores depend on.
#
# ## What the trained blocks do
#
# Chapter 1 showed the blocks with random weights; here is the trained
# standard model. When a run was recorded, one forward pass with hooks over
# a few test images kept, per block, small maps of what the block computed
# (`refinenet.study.inside`; the checkpoint itself is not kept). The
# figures below show the first of those images, from the first seed at the
# chosen rate that kept them.
#
# **Coarse to fine.** The middle row shows each block's output features,
# projected on their first three principal components (colours are only
# comparable within one panel), at the block's own resolution. Only the
# last block has a classifier, so the bottom row asks a different question:
# what the whole trained model predicts when every backbone tap finer than
# a block's is replaced by its own mean over the image, so that the later
# blocks get no spatial detail from them. These predictions show how much
# the later blocks rely on the finer taps; they are not what the coarse
# features "know", and the model never saw such inputs while training.

# %% mystnb={"figure": {"caption": "The trained standard model on one test image, coarse to fine: the image, its labels and the prediction; each block's output features as principal-component colours at its own resolution; and the model's prediction when only the taps down to that block's stride keep their spatial detail.", "name": "fig-03-inside-cascade"}, "image": {"alt": "Three rows of panels: a street image, its label map and the predicted label map; four feature maps in false colours from a coarse 6 by 8 grid to a detailed 45 by 60 map; four label maps that grow from nearly one class to the full prediction."}}
from refinenet.study.inside import plot_cascade

inside_run = next(e for e in standard if e.inside() is not None)
inside = inside_run.inside()
first = inside["images"][0]["index"]
test_set = study.data("test", base.data.size, n=r.scenes or 64)
test_image, test_labels = test_set[first]
fig = plot_cascade(inside, image=test_image.permute(1, 2, 0).numpy(),
                   labels=test_labels.numpy())
study.save_figure(fig, "inside_cascade")
plt.show()

# %% [markdown]
# **Chained residual pooling, term by term.** The pooling's output is the
# sum of its terms: the ReLU'd input and each pooling stage. Each map shows
# one term's magnitude (its mean absolute value over the channels, at each
# pixel), stretched to the term's own maximum over the image; each title
# gives the term's share of the output's mean magnitude (terms can cancel,
# so the shares add up to 100% or more).

# %% mystnb={"figure": {"caption": "The trained standard model's chained residual pooling on the same test image: for each block (columns, coarse to fine), the magnitude of its ReLU'd input, of each pooling stage and of their sum, each stretched to its own maximum; titles give each term's share of the output.", "name": "fig-03-inside-crp"}, "image": {"alt": "A grid of heat maps, one column per RefineNet block and one row per pooling term, from the ReLU'd input through each pooling stage to the output; the stage maps are smoother than the input map."}}
from refinenet.study.inside import plot_crp_stages

fig = plot_crp_stages(inside)
study.save_figure(fig, "inside_crp")
plt.show()

# %% [markdown]
# **Where fusion takes the finer tap.** In every block that fuses two
# resolutions, the share of the coarser path in the fused sum, per pixel
# (a share of magnitude, not of importance); below it, the pixels whose
# predicted class changes when the block's finer tap gets its detail back:
# green where the change makes them right, red where it makes them wrong.

# %% mystnb={"figure": {"caption": "The trained standard model's fusion on the same test image: for each block that fuses, the share of the coarser path in the fused sum (blue: the finer tap dominates), and the pixels whose class changes when that block's tap keeps its detail (green: now right, red: now wrong).", "name": "fig-03-inside-fusion"}, "image": {"alt": "Rows of maps: the image, labels and prediction; blue-to-red maps of the coarse path's share for each fusing block, with label edges drawn over them; maps of changed pixels, mostly green along object outlines and thin objects."}}
from refinenet.study.inside import plot_fusion

fig = plot_fusion(inside, image=test_image.permute(1, 2, 0).numpy(),
                  labels=test_labels.numpy())
study.save_figure(fig, "inside_fusion")
plt.show()

# %% [markdown]
# The table below gives, per true class over the kept test images, the mean
# share of the coarser path in each fusing block. Where that share is low,
# the block builds the class mostly from the finer backbone tap
# {glue:text}`share_thin_note`.

# %%
from refinenet.study.inside import fusion_share_by_class

truth = [test_set[im["index"]][1].numpy() for im in inside["images"]]
shares = fusion_share_by_class(inside, truth)  # {block: {class: share}}
table = views.share_table(shares, thin_classes=exp.thin_classes)
study.glue("share_thin_note", views.share_thin_note(table, exp.thin_classes))
styled(study.save_table(table, "inside_fusion_by_class"),
       caption(study, "Coarser path's share of the fused sum, % per class."))

# %% [markdown]
# ## Summary
#
# - The pilot compared whole recipes on the validation split only and, by a
#   rule fixed before its runs, chose
#   **{glue:text}`pilot_choice`**{glue:md}`adopted_clause`.
# - The learning rate was chosen on the validation split as well:
#   {glue:text}`chosen_lr:g`, with a validation mIoU of
#   {glue:text}`chosen_val`%.
# - On the test split, untouched until then, the standard model reaches
#   {glue:text}`test_miou`% mean IoU and {glue:text}`test_biou`% boundary
#   IoU; the thin classes reach {glue:text}`thin_miou`%.
# - {glue:md}`val_test_summary`
# - The errors are of two kinds: seams along outlines (the prediction is too
#   coarse) and whole regions of the wrong class (recognition).
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
# (ex-03-budget)=
# **1. A tighter pilot budget** (`pilot_budget_minutes`). Run this page for
# the smoke profile with no time for any recipe:
#
# ```bash
# jupytext --to ipynb notebooks/03_training.py -o out/03_training.ipynb
# papermill out/03_training.ipynb out/03_budget.ipynb \
#     -f results/smoke/03_training/parameters.yaml \
#     -p pilot_budget_minutes 0 -p output_dir out/03_budget
# ```
#
# Expect the pilot to choose no recipe, and its reason to say that none
# fits the budget; the runs and scores of the rest of the page do not
# change (only the sentence on the adopted recipe says that the pilot chose
# none), because the profile, not the pilot's table, fixes the recipe the
# study trains (`study.adopted`).
#
# **2. Class weights on or off** (the `plain cross-entropy` arm of `arms`
# switches `loss.class_weights`). Train the smoke config both ways:
#
# ```bash
# for weights in none median_frequency; do
#   refinenet train configs/smoke.yaml loss.class_weights=$weights \
#       out_dir=out/runs
# done
# ```
#
# Each run prints its validation mIoU, pixel accuracy and mean class
# accuracy, and writes every class's IoU into `metrics.json` in its folder
# under `out/runs/`. The weights aim at the rare classes, so look first at
# the mean class accuracy, which counts every class alike; the pixel
# accuracy, which the frequent classes dominate, can move either way (the
# tables above show which way it moved for this page's runs). With one
# seed and a minute of training a small difference may be noise: train
# `seed=1` as well before reading anything into it.
