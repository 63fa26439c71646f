"""The tables and figures of notebook 03 (training the standard model), built from its runs.

The page computes what its prose talks about (the chosen rate, the Welch differences, the
confusion in % of each true class); these helpers hold the table and plotting plumbing around
it. They take the notebook's objects as they are:

- ``runs``: ledger entries (:class:`refinenet.study.ledger.Entry`), one per seed;
- ``records`` / ``results``: the per-run frame of
  :meth:`refinenet.study.experiments.Experiments.records` (scores in %, a diverged run's
  scores missing, never 0);
- ``exp``: the page's :class:`~refinenet.study.experiments.Experiments` (its ``base`` config,
  ``design``, ``eval_size`` and ``study``).

Tables are returned as DataFrames and figures as matplotlib figures: the page saves and shows
them (``study.save_table`` / ``study.save_figure``), so that a figure cell shows one figure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ..data.camvid import NATIVE_SIZE
from . import stats
from .report import scored_on
from .published import PUBLISHED_CAMVID, PUBLISHED_CAMVID_PER_CLASS

__all__ = [
    "PLAIN_LOSS_NOTE",
    "precision_of",
    "recipe_table",
    "departures",
    "sweep_table",
    "rate_edge",
    "sweep_figure",
    "loss_table",
    "loss_effect",
    "plain_val_text",
    "training_history",
    "curves_figure",
    "multiscale_scores",
    "standard_summary",
    "summary_view",
    "published_comparison",
    "gap_sentence",
    "per_class_table",
    "per_class_figure",
    "published_per_class",
    "published_per_class_text",
    "comparison_caveat",
    "passes",
    "weights_text",
    "summed_confusion",
    "confusion_figure",
    "largest_confusion",
    "sequence_table",
    "sequence_sentence",
    "val_test_text",
    "plural",
    "adoption_text",
    "adopted_clause",
    "eval_share_text",
    "held_out_count",
    "held_out_verdict",
    "last_steps",
    "loss_test_table",
    "weights_difference",
    "error_map",
    "prediction_panel",
    "per_image_figure",
    "share_table",
    "share_thin_note",
    "thin_share_text",
]

#: What the class-weight cells print for a profile that trains with the plain loss.
PLAIN_LOSS_NOTE = "This profile trains with the plain cross-entropy (loss.class_weights: none)."

#: The paper's decoder widths, deepest block first.
PAPER_WIDTHS = (512, 256, 256, 256)

#: The point size of ticks, in-cell numbers, legends and titles of the page's figures: about
#: 12.9 px on the page for a figure 9 inches wide, 14.3 px at 8 inches, above the floor of
#: :mod:`refinenet.study.readable` (12 px).
FIGURE_PT = 12


def plural(n: int, word: str, words: str | None = None) -> str:
    """``"1 recipe"``, ``"3 recipes"``, ``"no recipes"``."""
    many = words or f"{word}s"
    return f"no {many}" if n == 0 else f"{n} {word if n == 1 else many}"


def last_steps(window: int) -> str:
    """``"the last step"`` or ``"the last 140 steps"``: the running mean's window, in words."""
    return "the last step" if window == 1 else f"the last {window} steps"


def _loss_name(weights: str) -> str:
    return weights.replace("_", " ")


def weights_text(loss) -> str:
    """``"median frequency"``, or ``"median frequency ^ 0.5"`` where the weights are softened."""
    power = getattr(loss, "class_weight_power", 1.0)
    return _loss_name(loss.class_weights) + ("" if power == 1.0 else f" ^ {power:g}")


def _optimiser_text(oc) -> str:
    """The optimiser with the settings that apply to it (SGD's momentum, Adam's betas)."""
    if oc.name == "sgd":
        return f"SGD, momentum {oc.momentum:g}, wd {oc.weight_decay:g}"
    name = {"adamw": "AdamW", "adam": "Adam"}.get(oc.name, oc.name)
    return f"{name}, betas {', '.join(f'{b:g}' for b in oc.betas)}, wd {oc.weight_decay:g}"


def _schedule_text(sch) -> str:
    shape = f"{sch.name} (power {sch.power:g})" if sch.name == "poly" else sch.name
    return f"{shape}, {plural(sch.warmup_steps, 'warm-up step')}"


# -- the recipe ------------------------------------------------------------------------------


def precision_of(run) -> str:
    """The autocast dtype a run trained in (``"bf16"``, ...), or ``"none"`` (fp32); a diverged
    run's record is not trusted and reads ``"none"``."""
    if run.diverged:
        return "none"
    return run.summary.get("precision", {}).get("amp", "none")


def passes(base, train_images: int) -> float:
    """Passes over the ``train_images`` training images that one run of config ``base`` makes."""
    return base.schedule.steps * base.data.batch_size / train_images


def recipe_table(exp, *, train_images: int, amp: str | None):
    """The training recipe beside the paper's (or, where it is silent, the released code's):
    columns ``setting``, ``paper / released code``, ``this page``, one row per setting.

    ``train_images``: images of the training split (for the epochs); ``amp``: the autocast
    dtype the runs trained in (:func:`precision_of`; ``None`` or ``"none"``: fp32)."""
    import pandas as pd

    base, r = exp.base, exp.design
    h, w = exp.eval_size
    dc, mc, oc, sch = base.data, base.model, base.optim, base.schedule
    weights = base.loss.class_weights
    crop = f"{dc.crop_size[0]} × {dc.crop_size[1]}" if dc.crop_size else "none"
    images_per_run = sch.steps * dc.batch_size
    epochs = passes(base, train_images)
    arithmetic = "fp32" if amp in (None, "none") else f"{amp} autocast, channels_last"
    settings = [
        ("backbone", "ResNet-101 (also 50, 152)", mc.backbone),
        ("initialisation", "ImageNet pre-trained", "random (from scratch)"),
        ("decoder widths, deepest first", "512, 256, 256, 256", ", ".join(map(str, mc.widths))),
        ("image size", "CamVid 360 × 480", f"{h} × {w}"),
        ("scored on", "360 × 480 labels", scored_on(exp)),  # the setting box's words
        ("training crops", "400 × 400 (VOC)", crop),
        ("images per batch", "1", str(dc.batch_size)),
        # the paper's numbers written as this page's are (f"{x:g}"): one notation per row
        ("optimiser", f"SGD, momentum 0.9, wd {5e-4:g}", _optimiser_text(oc)),
        ("learning rate", f"{5e-4:g} (backbone 0.1×)",
         f"{', '.join(f'{x:g}' for x in r.lrs)}, chosen on val (backbone 1×)"),
        ("schedule", "constant, lowered by hand", _schedule_text(sch)),
        ("training length", "until it plateaus",
         f"{sch.steps} steps = {images_per_run} images ≈ {epochs:.1f} epochs"),
        ("loss", "cross-entropy",
         "cross-entropy" if weights == "none" else f"cross-entropy, {weights_text(base.loss)} class weights"),
        ("arithmetic", "fp32", arithmetic),
        ("seeds per setting", "1", str(len(r.seeds))),
    ]
    return pd.DataFrame(settings, columns=["setting", "paper / released code", "this page"])


def departures(exp, *, train_images: int, amp: str | None) -> list[str]:
    """How the recipe departs from the paper, as clauses for one sentence (the first: the
    backbone trained from scratch; the length in passes always)."""
    base = exp.base
    h, w = exp.eval_size
    dc, mc = base.data, base.model
    weights = base.loss.class_weights
    epochs = passes(base, train_images)
    out = [f"a {mc.backbone} trained from random weights instead of a pre-trained ResNet-101"]
    if tuple(mc.widths) != PAPER_WIDTHS:
        out.append("narrower decoder paths")
    if (h, w) != NATIVE_SIZE:
        out.append(f"images of {h} × {w} instead of 360 × 480")
    if dc.crop_size:
        out.append(f"training on random {dc.crop_size[0]} × {dc.crop_size[1]} crops")
    out.append(f"only about {epochs:.1f} passes over the training images")
    if base.optim.name != "sgd":
        out.append(f"{_optimiser_text(base.optim).split(',')[0]} with a {base.schedule.name} schedule instead of SGD")
    if weights != "none":
        out.append(f"a cross-entropy with {weights_text(base.loss)} class weights (see below)")
    if amp not in (None, "none"):
        out.append(f"{amp} arithmetic (autocast) where the paper used fp32")
    return out


# -- the learning-rate sweep -----------------------------------------------------------------


def sweep_table(sweep_runs, *, chosen: float):
    """One row per rate of the sweep (ascending): ``learning rate``, ``n``, val mIoU and val
    boundary IoU as mean ± std over the seeds, the diverged runs with their exact 95% interval,
    and a ✔ at the ``chosen`` rate. ``sweep_runs``: per-run records with an ``lr`` column."""
    import pandas as pd

    from .report import failure_text

    rows = []
    for x, group in sweep_runs.groupby("lr", sort=True):
        rows.append({
            "learning rate": f"{x:g}",
            "n": len(group),
            "val mIoU %": stats.pm(group["val mIoU"]),
            "val boundary IoU %": stats.pm(group["val boundary IoU"]),
            "diverged runs [95% CI]": failure_text(int(group["diverged"].sum()), len(group)),
            "chosen": "✔" if x == chosen else "",
        })
    return pd.DataFrame(rows)


def rate_edge(sweep_runs, *, chosen: float, lrs: Sequence[float]) -> str:
    """Where the ``chosen`` rate lies in the grid ``lrs``, as a clause: the only rate, the
    largest (so the grid should grow), or inside it, with the val mIoU of the next rate up."""
    if len(lrs) < 2:
        return "the only rate of the grid"
    if chosen == max(lrs):
        return ("the largest rate of the grid, so a larger one might do better: "
                "extend the grid (the profile's `study.lrs`) before trusting it")
    above = min(x for x in lrs if x > chosen)
    scores = sweep_runs.loc[sweep_runs.lr == above, "val mIoU"]
    return (f"inside the grid: the next rate up, {above:g}, scores {stats.pm(scores)}% "
            "(runs that collapse, predicting one class everywhere, score a few percent)")


def sweep_figure(sweep_runs, *, lrs: Sequence[float]):
    """Val mIoU per rate of the grid: every seed as a grey dot, the mean ± std over the seeds
    as a blue diamond, the diamonds joined from rate to rate. ``sweep_runs``: per-run records
    whose ``variant`` is the rate as text (``f"{lr:g}"``)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(6, 3.4))
    order = [f"{x:g}" for x in sorted(lrs)]
    sns.stripplot(data=sweep_runs, x="variant", y="val mIoU", order=order, ax=ax, color="0.55", size=6,
                  jitter=0.08)
    sns.pointplot(data=sweep_runs, x="variant", y="val mIoU", order=order, ax=ax, errorbar="sd", color="C0",
                  markers="D", capsize=0.15)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("val mIoU % (dots: seeds)")
    ax.set_title("the learning-rate sweep (mean ± std over seeds)")
    fig.tight_layout()
    return fig


# -- class weights ---------------------------------------------------------------------------


def _thin_iou(run, thin_classes: Sequence[str], split: str = "val") -> float:
    import numpy as np

    scores = run.metrics if split == "val" else run.test
    names = scores["class_names"]
    present = [c for c in thin_classes if c in names]
    if not present:
        return float("nan")
    return float(np.mean([scores["iou"][names.index(c)] for c in present]))


def loss_table(runs_by_loss: Mapping[str, Sequence], *, thin_classes: Sequence[str]):
    """Validation scores per loss, mean ± std over the runs that did not diverge: columns
    ``loss``, ``n``, val mIoU, val thin-class mIoU, val mean class accuracy, val pixel
    accuracy (%). ``runs_by_loss``: ``{label: ledger entries}``."""
    import pandas as pd

    rows = []
    for label, runs in runs_by_loss.items():
        runs = [run for run in runs if not run.diverged]
        rows.append({
            "loss": label,
            "n": len(runs),
            "val mIoU %": stats.pm([100 * run.miou for run in runs]),
            "val thin-class mIoU %": stats.pm([100 * _thin_iou(run, thin_classes) for run in runs]),
            "val mean class accuracy %": stats.pm([100 * run.metrics["mean_class_accuracy"] for run in runs]),
            "val pixel accuracy %": stats.pm([100 * run.metrics["pixel_accuracy"] for run in runs]),
        })
    return pd.DataFrame(rows)


def _move(points: float) -> str:
    """``"rises by 4.1 points"``, ``"falls by 0.3 points"``, ``"does not change"``."""
    if abs(points) < 0.05:
        return "does not change"
    return f"{'rises' if points > 0 else 'falls'} by {abs(points):.1f} points"


#: What the sentences on the class weights say where the profile trains the plain loss alone.
NOTHING_TO_COMPARE = "There is no weighted loss to compare."


def plain_val_text(plain: Sequence | None) -> str:
    """The plain cross-entropy's val mIoU (%, mean ± std over its runs), or why there is none
    (``plain=None``: the profile's own loss is the plain cross-entropy)."""
    if plain is None:
        return "(not trained: the profile's loss is the plain cross-entropy)"
    return stats.pm([100 * run.miou for run in plain if not run.diverged])


def loss_effect(weighted: Sequence, plain: Sequence | None, *, thin_classes: Sequence[str],
                split: str = "val") -> str:
    """What the class weights do on ``split`` (``"val"`` or ``"test"``), as a sentence read from
    the runs (ledger entries of each loss; the diverged ones left out): which way the thin
    classes' mean IoU and the pixel accuracy (which the frequent classes dominate) move from
    the plain loss to the weighted one, means over the runs, and what that says.
    ``plain=None`` (the profile trains the plain loss alone): :data:`NOTHING_TO_COMPARE`."""
    import numpy as np

    if plain is None:
        return NOTHING_TO_COMPARE

    def means(runs):
        runs = [run for run in runs if not run.diverged]
        thin = [100 * _thin_iou(run, thin_classes, split) for run in runs]
        pixel = [100 * (run.metrics if split == "val" else run.test)["pixel_accuracy"] for run in runs]
        return (float(np.mean(thin)) if thin else np.nan), (float(np.mean(pixel)) if pixel else np.nan)

    return _effect_text("validation" if split == "val" else "test", means(weighted), means(plain))


def _effect_text(where: str, weighted: tuple[float, float], plain: tuple[float, float]) -> str:
    """The sentence of :func:`loss_effect` from ``(thin-class mIoU, pixel accuracy)`` means (%)
    of each loss (NaN: not measured)."""
    import math

    (w_thin, w_pixel), (p_thin, p_pixel) = weighted, plain
    if not (math.isfinite(w_pixel) and math.isfinite(p_pixel)):
        return f"One of the two losses has no run that trained, so their {where} scores cannot be compared."
    d_thin, d_pixel = w_thin - p_thin, w_pixel - p_pixel
    lead = f"On the {where} split, from the plain loss to the weighted one"
    if not math.isfinite(d_thin):  # no thin class in this data set's labels
        return f"{lead}, the pixel accuracy {_move(d_pixel)} (means over the runs of each loss)."
    text = (f"{lead}, the thin classes' mean IoU {_move(d_thin)} and the pixel accuracy "
            f"{_move(d_pixel)} (means over the runs of each loss): ")
    if d_thin > 0 and d_pixel < 0:
        return text + ("the weights trade some pixel accuracy, which the frequent classes dominate, "
                       "for the rare classes.")
    if d_thin > 0:
        return text + ("the rare classes gain without a loss of pixel accuracy, so here the weights "
                       "cost the frequent classes nothing that pixel accuracy shows.")
    if d_pixel < 0:
        return text + "here the weights help neither the thin classes nor the pixel accuracy."
    return text + "here the weights do not help the thin classes, and the pixel accuracy does not fall."


def loss_test_table(records_by_loss: Mapping):
    """Validation and test scores per loss, mean ± std over seeds: columns ``loss``, ``n``,
    val mIoU, test mIoU, test thin-class mIoU, test pixel accuracy (%).
    ``records_by_loss``: ``{label: per-run records}``."""
    import pandas as pd

    return pd.DataFrame([
        {
            "loss": label,
            "n": len(rec),
            "val mIoU %": stats.pm(rec["val mIoU"]),
            "test mIoU %": stats.pm(rec["test mIoU"]),
            "test thin-class mIoU %": stats.pm(rec["thin-class mIoU"]),
            "test pixel accuracy %": stats.pm(rec["test pixel accuracy"]),
        }
        for label, rec in records_by_loss.items()
    ])


def weights_difference(weighted, plain) -> dict[str, str]:
    """The weighted loss's mIoU minus the plain loss's, with its 95% Welch interval:
    ``{"test": ..., "val": ..., "verdict": ..., "effect": ...}``, the verdict read from the test
    interval (below 0: the weights cost; above: they help; else not told apart), the effect
    :func:`loss_effect`'s sentence on the test split (thin-class mIoU and pixel accuracy).
    ``weighted`` and ``plain``: per-run records; ``plain=None`` (a profile that trains the plain
    loss): texts that say nothing was measured."""
    if plain is None:
        return {"test": "(not measured: the profile's loss is the plain cross-entropy)",
                "val": "(not measured)", "verdict": "there is nothing to compare",
                "effect": NOTHING_TO_COMPARE}
    d = stats.welch(weighted["test mIoU"], plain["test mIoU"])
    if d.high < 0:
        verdict = "on the test split the weights cost more than they gain"
    elif d.low > 0:
        verdict = "the weights help on the test split too"
    else:
        verdict = "on the test split the two losses are not told apart"
    means = [(float(r["thin-class mIoU"].mean()), float(r["test pixel accuracy"].mean()))
             for r in (weighted, plain)]  # pandas leaves a diverged run's NaN out
    return {"test": stats.interval_text(d),
            "val": stats.interval_text(stats.welch(weighted["val mIoU"], plain["val mIoU"])),
            "verdict": verdict, "effect": _effect_text("test", *means)}


# -- training curves -------------------------------------------------------------------------


def training_history(runs: Sequence, *, window: int):
    """``(steps, evals)``: the runs' step and validation histories, one frame each, with a
    ``seed`` column; ``steps`` gains ``loss (running mean)`` (over ``window`` steps, per seed)
    and ``evals`` gains ``val mIoU %``."""
    import pandas as pd

    steps = pd.concat([run.frame("steps").assign(seed=run.config.seed) for run in runs])
    evals = pd.concat([run.frame("evals").assign(seed=run.config.seed) for run in runs])
    steps["loss (running mean)"] = steps.groupby("seed")["loss"].transform(
        lambda s: s.rolling(window, min_periods=1).mean())
    evals["val mIoU %"] = 100 * evals["miou"]
    return steps, evals


def curves_figure(steps, evals):
    """Three panels against the step (frames of :func:`training_history`): the training loss
    (running mean) per seed, the learning rate (of the first seed: every seed has the same
    schedule) and the validation mIoU per seed."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, 3, figsize=(8.5, 3.2))
    sns.lineplot(data=steps, x="step", y="loss (running mean)", hue="seed", ax=axes[0], palette="deep",
                 legend=False)
    axes[0].set_title("training loss")
    first = steps[steps.seed == steps.seed.iloc[0]]
    axes[1].plot(first["step"], first["lr"], color="C4")
    axes[1].set_title("learning rate")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("learning rate")
    sns.lineplot(data=evals, x="step", y="val mIoU %", hue="seed", ax=axes[2], palette="deep", marker="o")
    axes[2].set_title("validation mIoU")
    # beside the panel, not over it: the curves of a converged run end in its upper right
    axes[2].legend(title="seed", frameon=False, fontsize=FIGURE_PT, title_fontsize=FIGURE_PT,
                   loc="upper left", bbox_to_anchor=(1.0, 1.0))
    for ax in axes:  # ~13 px on the page at 8.5 inches
        ax.tick_params(labelsize=FIGURE_PT)
        ax.xaxis.label.set_size(FIGURE_PT)
        ax.yaxis.label.set_size(FIGURE_PT)
        ax.title.set_size(FIGURE_PT + 1)
    fig.tight_layout()
    return fig


# -- the test split --------------------------------------------------------------------------

#: The rows of the test summary: records column -> what the table calls it.
SUMMARY_METRICS = {
    "test mIoU": "mean IoU over classes",
    "test boundary IoU": "boundary IoU (Cheng et al. 2021)",
    "test pixel accuracy": "pixel accuracy",
    "thin-class mIoU": "mean IoU of the thin classes",
    "val mIoU": "validation mIoU (for comparison)",
}


def multiscale_scores(runs: Sequence):
    """The multi-scale + flip test mIoU (%) of the runs that were scored so, as a Series."""
    import pandas as pd

    return pd.Series([100 * run.test_multiscale["miou"] for run in runs if run.test_multiscale], dtype=float)


def standard_summary(results, multiscale, *, scales: Sequence[float]):
    """The standard model on the test split: one row per metric of :data:`SUMMARY_METRICS`
    and a last one for the multi-scale mIoU, columns ``metric``, ``mean %``, ``std %``, ``n``
    and ``key`` (the records column, or ``"multi-scale test mIoU"``)."""
    import pandas as pd

    rows = []
    for column, what in SUMMARY_METRICS.items():
        s = stats.summarize(results[column])
        rows.append({"metric": what, "mean %": s.mean, "std %": s.std, "n": s.n, "key": column})
    scales_text = ", ".join(f"{x:g}" for x in scales)
    rows.append({"metric": f"mean IoU, scales {scales_text} + flips", "mean %": multiscale.mean(),
                 "std %": multiscale.std(), "n": len(multiscale), "key": "multi-scale test mIoU"})
    return pd.DataFrame(rows)


def summary_view(summary):
    """:func:`standard_summary` for the page: ``metric``, ``mean ± std %`` and ``n``."""
    text = [stats.pm(stats.Summary(m, s, n)) for m, s, n in zip(summary["mean %"], summary["std %"], summary["n"])]
    return summary.assign(**{"mean ± std %": text})[["metric", "mean ± std %", "n"]]


def published_comparison(name: str, score: str):
    """The published CamVid test mIoU (:data:`PUBLISHED_CAMVID`) and a last row of ours:
    columns ``method``, ``test mIoU %`` (text), ``from scratch``."""
    import pandas as pd

    published = pd.DataFrame(PUBLISHED_CAMVID)
    published["from scratch"] = published["from scratch"].map({True: "yes", False: "no (ImageNet)"})
    published["test mIoU %"] = published["test mIoU %"].map("{:.1f}".format)
    ours = pd.DataFrame([{"method": name, "test mIoU %": score, "from scratch": "yes"}])
    return pd.concat([published, ours], ignore_index=True)


def gap_sentence(test_miou: float, *, synthetic: bool) -> str:
    """A sentence on the distance from ``test_miou`` (our mean, %) to the best published model
    trained from scratch; on the generator, why there is none to measure."""
    if synthetic:
        return ("Our row was measured on the synthetic generator, so the numbers cannot be compared "
                "at all; the table only shows where CamVid results lie.")
    best = max((m for m in PUBLISHED_CAMVID if m["from scratch"]), key=lambda m: m["test mIoU %"])
    score = best["test mIoU %"]
    return (f"The best published model trained from scratch ({best['method']}, {score:.1f}%) is "
            f"{score - test_miou:.1f} points above our standard model at this profile's scale. A gap to "
            "published numbers measures mostly the budget, not the architecture: the published models "
            "are much larger, trained at full resolution for far longer, and most start from ImageNet "
            "weights.")


def per_class_table(results, names: Sequence[str], *, thin_classes: Sequence[str]):
    """Test IoU per class, mean ± std over seeds: columns ``class``, ``thin`` ("yes" or
    empty), ``IoU %`` and ``boundary IoU %``, in the order of ``names``."""
    import pandas as pd

    return pd.DataFrame([
        {
            "class": c,
            "thin": "yes" if c in thin_classes else "",
            "IoU %": stats.pm(results[f"IoU {c}"]),
            "boundary IoU %": stats.pm(results[f"boundary IoU {c}"]),
        }
        for c in names
    ])


def per_class_figure(results, names: Sequence[str], *, thin_classes: Sequence[str]):
    """One bar per class (in the order of ``names``) on 0 to 100%: the mean test IoU over
    seeds with the standard deviation as error bar, thin classes in red (C3), others in blue."""
    import matplotlib.pyplot as plt
    import numpy as np
    import seaborn as sns

    long = results.melt(id_vars="seed", value_vars=[f"IoU {c}" for c in names], var_name="class",
                        value_name="IoU %")
    long["class"] = long["class"].str.removeprefix("IoU ")
    long["kind"] = np.where(long["class"].isin(thin_classes), "thin", "other")
    fig, ax = plt.subplots(figsize=(8, 3.4))
    sns.barplot(data=long, x="class", y="IoU %", hue="kind", order=list(names), ax=ax, errorbar="sd", dodge=False,
                palette={"thin": "C3", "other": "C0"}, capsize=0.2)
    ax.set_xlabel("")
    ax.set_ylim(0, 100)
    ax.tick_params(axis="x", rotation=30, labelsize=FIGURE_PT)
    ax.tick_params(axis="y", labelsize=FIGURE_PT)
    ax.yaxis.label.set_size(FIGURE_PT)
    ax.legend(frameon=False, title="", fontsize=FIGURE_PT)
    ax.set_title("test IoU per class (mean ± std over seeds)", fontsize=FIGURE_PT + 1)
    fig.tight_layout()
    return fig


def published_per_class(per_class, *, ours_miou: str):
    """Our per-class test IoU (:func:`per_class_table`) beside the published rows of
    :data:`PUBLISHED_CAMVID_PER_CLASS`: one row per class and a last ``mean (mIoU)`` row (ours:
    ``ours_miou``; the others: their published mIoU), columns ``class``, ``ours`` and one per
    published method, all as text."""
    import pandas as pd

    overall = {m["method"]: m["test mIoU %"] for m in PUBLISHED_CAMVID}
    side = pd.DataFrame(PUBLISHED_CAMVID_PER_CLASS).loc[list(per_class["class"])]
    side.loc["mean (mIoU)"] = [overall[method] for method in side.columns]
    side = side.map("{:.1f}".format)
    side.insert(0, "ours", per_class.set_index("class")["IoU %"])
    side.loc["mean (mIoU)", "ours"] = ours_miou
    return side.rename_axis("class").reset_index()


def published_per_class_text(*, synthetic: bool) -> str:
    """The sentence before :func:`published_per_class`'s table: what the table sets side by
    side; on the generator (``synthetic``), that there is no table and why."""
    if synthetic:
        return ("The FC-DenseNet paper also tabulates the per-class CamVid test IoU of the "
                "published models (its Table 2), but this page measured its model on the "
                "synthetic generator, whose classes are not CamVid's, so there is no per-class "
                "row of ours to set beside them.")
    return ("The table below sets our per-class test IoU beside that of the published models "
            "whose per-class CamVid test IoU the FC-DenseNet paper tabulates (its Table 2; "
            "FC-DenseNet103 is trained from scratch, the others start from ImageNet weights).")


def comparison_caveat(size, *, synthetic: bool) -> str:
    """Why our row of the published comparison is not like for like, for a profile that
    trains on images of ``size`` (``(H, W)``; None: CamVid's native 360 × 480) on CamVid or
    on the generator (``synthetic``)."""
    smaller = size is not None and tuple(size) != NATIVE_SIZE
    text = ("Our row is not a like-for-like comparison: its model is far smaller and was trained "
            "far more briefly" + (", on smaller images" if smaller else ""))
    if synthetic:
        return text + ", and on the generator it is not even the same data."
    return text + (", though scored, like theirs, on the 360 × 480 labels." if smaller else ".")


def summed_confusion(runs: Sequence):
    """The test confusion matrices of the runs that did not diverge, summed: float
    ``(C, C)``, rows the true classes, columns the predicted ones."""
    import numpy as np

    return sum(np.asarray(run.test["confusion"], dtype=float) for run in runs if not run.diverged)


def confusion_figure(rows_pct, names: Sequence[str]):
    """A heat map of a ``(C, C)`` confusion in % of each true class (rows: true, columns:
    predicted), every cell labelled, on 0 to 100%."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(7.0, 6.2))
    sns.heatmap(rows_pct, annot=True, fmt=".0f", cmap="Blues", vmin=0, vmax=100, xticklabels=names,
                yticklabels=names, cbar=False, ax=ax, annot_kws={"size": FIGURE_PT})
    ax.tick_params(labelsize=FIGURE_PT)
    # seaborn turns the class names to fit them at its own font size; at FIGURE_PT the y names
    # read across (a row is taller than a line of text even with 11 classes) and the x names
    # stand upright where they would run together level.
    plt.setp(ax.get_yticklabels(), rotation=0, va="center")
    plt.setp(ax.get_xticklabels(), rotation=0, ha="center")
    ax.set_xlabel("predicted", fontsize=FIGURE_PT)
    ax.set_ylabel("true", fontsize=FIGURE_PT)
    ax.set_title("test confusion, % of each true class", fontsize=FIGURE_PT)
    fig.tight_layout()
    if _labels_touch(fig, ax.get_xticklabels()):  # at the columns' width as laid out
        plt.setp(ax.get_xticklabels(), rotation=90, ha="center")
        fig.tight_layout()
    return fig


def _labels_touch(fig, labels) -> bool:
    """Whether any two of ``labels`` (matplotlib texts) overlap, or come within 2 px, as drawn."""
    fig.canvas.draw()  # the labels' places and sizes as drawn
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer).padded(1) for t in labels if t.get_text()]
    return any(a.overlaps(b) for k, a in enumerate(boxes) for b in boxes[k + 1:])


def largest_confusion(rows_pct) -> tuple[int, int, float]:
    """``(true, predicted, %)``: the largest cell off the diagonal of a confusion in % of
    each true class."""
    import numpy as np

    off = np.array(rows_pct, dtype=float)
    np.fill_diagonal(off, 0)
    t, p = np.unravel_index(off.argmax(), off.shape)
    return int(t), int(p), float(off[t, p])


# -- sequences -------------------------------------------------------------------------------


def sequence_table(names_by_split: Mapping[str, Sequence[str]]):
    """Frames per video sequence (the file-name prefix before ``_``, e.g. 0016E5) and split:
    columns ``sequence`` and one count per split (0 where a split has none of it)."""
    import pandas as pd

    counts = {split: pd.Series(names).str.split("_").str[0].value_counts()
              for split, names in names_by_split.items()}
    seq = pd.DataFrame(counts).fillna(0).astype(int)
    return seq.rename_axis("sequence").reset_index()


def sequence_sentence(seq) -> str:
    """How many val frames come from sequences training shows, and how many test frames from
    sequences it does not (``seq``: :func:`sequence_table` with train, val and test)."""
    seen = seq.sequence.isin(set(seq.sequence[seq.train > 0]))
    val_seen, test_unseen = int(seq.val[seen].sum()), int(seq.test[~seen].sum())
    return (f"{val_seen} of the {int(seq.val.sum())} validation frames come from sequences that "
            f"training frames also show, while {test_unseen} of the {int(seq.test.sum())} test frames "
            "come from a sequence that no training frame shows")


def val_test_text(seq, *, val: float, test: float) -> dict[str, str]:
    """The validation score beside the test score, in words: ``{"paragraph": ..., "summary":
    ...}``. ``seq``: :func:`sequence_table` of CamVid's splits, or ``None`` on the generator
    (whose splits are independent draws of one distribution); ``val`` and ``test``: the
    standard model's mean mIoU (%) on each split. The gap is read from the numbers: the
    paragraph says the validation score flatters the model only where it is the higher."""
    gap = val - test
    if seq is None:
        paragraph = ("The generator draws the scenes of its three splits independently from one "
                     "distribution, with no drives to share: a difference between the validation "
                     f"and the test score ({gap:+.1f} points here) can only come from the few "
                     "scenes and seeds, not from the splits.")
        summary = (f"On the generator, whose splits share one distribution, the validation and "
                   f"test mIoU are {val:.1f}% and {test:.1f}% ({gap:+.1f} points).")
        return {"paragraph": paragraph, "summary": summary}
    paragraph = (f"So {sequence_sentence(seq)}. The validation score measures a model on drives it "
                 "has seen; the test score, mostly on a new one. ")
    if gap > 0:
        paragraph += (f"Here the validation score is {gap:.1f} points the higher: a small model "
                      "trained briefly from scratch generalises poorly to a new drive, so the "
                      "validation score flatters it.")
        summary = (f"On CamVid the validation score flatters the model by {gap:.1f} points: the "
                   "validation frames come from drives that training shows, most test frames "
                   "from one it never shows.")
    else:
        paragraph += (f"Here the test score is not below the validation score ({-gap:+.1f} points): "
                      "the shared drives do not flatter the model at this scale.")
        summary = (f"On CamVid the test score is not below the validation score ({-gap:+.1f} "
                    "points), although most test frames come from a drive training never shows.")
    return {"paragraph": paragraph, "summary": summary}


# -- the pilot's outcome ---------------------------------------------------------------------


def _validations(config) -> int:
    return config.schedule.steps // config.eval.every


def adoption_text(adopted: str | None, chosen: str | None, *, base, lrs: Sequence[float], pilot=None) -> str:
    """Which recipe the study trains, as a paragraph: the pilot's choice (``chosen``, None
    where no recipe qualified) when the profile adopts it (``adopted``, its
    ``study.adopted``), else the profile's own recipe and that the choice is not what trains
    here. ``base``: the standard training config; ``lrs``: the study's learning-rate grid;
    ``pilot``: the config of a pilot run of the adopted recipe (None: not on this page), whose
    rate and validations the study's are set beside."""
    if adopted is None:
        return ("This profile adopts no pilot recipe yet (its `study.adopted` is unset), so the "
                "pilot's choice is not what trains: until the profile names a recipe, only the "
                "pilot's runs train.")
    settings = "the profile's training config holds that recipe's settings (the runner checks that they agree)."
    if adopted == chosen:
        text = f"The study adopts the chosen recipe, **{adopted}** (`study.adopted` names it): {settings}"
    elif chosen is None:
        text = (f"The pilot chose no recipe, so what trains is not its choice: the profile adopts "
                f"**{adopted}** (its `study.adopted`), and {settings}")
    else:
        text = (f"On this profile the pilot's choice is not what trains: the profile adopts "
                f"**{adopted}** (its `study.adopted`) instead of **{chosen}**, and {settings}")
    # A recipe's name may carry the pilot's rate; the study sweeps its own and keeps the best
    # on val, so say which rates train here.
    rates = f"lr {', '.join(f'{lr:g}' for lr in lrs)} (the sweep below) and keeps the rate that scores best on val."
    if pilot is None:
        text += f" The study trains it at {rates}"
    else:
        text += f" The pilot trained it at lr {pilot.optim.lr:g}; the study trains it at {rates}"
        ours, theirs = _validations(base), _validations(pilot)
        if ours == theirs:
            text += f" The study's runs validate {plural(ours, 'time')}, as the pilot's runs of that recipe did."
        else:
            text += (f" The study's runs validate {plural(ours, 'time')} rather than the "
                     f"{theirs} of the pilot's runs of that recipe, which makes them new runs: a "
                     "run's validation schedule is part of its identity.")
    return text


def adopted_clause(adopted: str | None, chosen: str | None, *, lr: float | None = None,
                   pilot_lr: float | None = None) -> str:
    """What follows "the pilot chose <chosen>" in a summary: whether the study trains it and,
    given ``lr`` (the rate the study's sweep chose), at which rate: a recipe's name may carry
    the pilot's rate (``pilot_lr``: the rate the pilot trained the adopted recipe at)."""
    if adopted is None:
        return "; this profile adopts no recipe yet (`study.adopted` is unset)"
    rate = ""
    if lr is not None:
        rate = f"the learning rate its own sweep chooses, {lr:g}"
        if pilot_lr is not None and float(pilot_lr) != float(lr):
            rate += f" (the pilot trained it at {pilot_lr:g})"
    if adopted == chosen:
        return ", which the study adopts" + (f" and trains at {rate}" if rate else "")
    return (f"; this profile trains **{adopted}** instead (its `study.adopted`)"
            + (f", at {rate}" if rate else ""))


def eval_share_text(configs: Sequence) -> str:
    """How often the pilot's recipes validate, as a clause: ``configs`` holds one training
    config per recipe (a run's), whose ``eval.every / schedule.steps`` is the share of its run
    between two validations. ``"each validated every 50% of its run"``, ``"all but one
    validated every 5% of their run"``, ``"3 of 5 validated every 5% of their run"``."""
    from collections import Counter

    if not configs:
        return "none validated (no recipe)"
    shares = [c.eval.every / c.schedule.steps for c in configs]
    counts = Counter(round(float(x), 6) for x in shares)
    share, k = max(counts.items(), key=lambda item: (item[1], -item[0]))
    n = len(shares)
    every = "only at the end" if share >= 1 else f"every {100 * share:.3g}%"
    if k == n:
        return f"each validated {every} of its run"
    who = "all but one" if k == n - 1 and n > 2 else f"{k} of {n}"
    return f"{who} validated {every} of their run"


def held_out_count(check) -> str:
    """How many recipes the pilot also trained held out (``check``: the frame of
    :func:`refinenet.study.pilot.sequence_check`), as a clause."""
    if check.empty:
        return "this profile's pilot trains none held out"
    return f"this profile's pilot trains {plural(len(check), 'recipe')} held out"


def held_out_verdict(check, agree: bool) -> str:
    """The sequence check's outcome as a sentence: no held-out runs (val decides), or whether
    the held-out runs rank the recipes as val does, with the held-out score's mean distance
    from val's."""
    if check.empty:
        return "This profile trains no held-out runs, so val decides."
    them = "it" if len(check) == 1 else "them"
    rank = f"rank {them} as val does" if agree else f"rank {them} otherwise than val"
    gap = float((check["held-out val mIoU %"] - check["val mIoU %"]).mean())
    where = "below" if gap < 0 else "above"
    return (f"The held-out runs {rank}; their held-out scores lie {abs(gap):.1f} points {where} "
            "val's on average.")


# -- predictions and failures ----------------------------------------------------------------


def error_map(image, truth, pred, *, ignore_index: int | None):
    """uint8 image ``(3, H, W)`` in grey with the wrong pixels in red (void pixels of the
    truth stay grey): float ``(H, W, 3)`` in [0, 1]."""
    import torch

    grey = image.float().mean(0, keepdim=True).repeat(3, 1, 1) / 255
    wrong = (pred != truth) & (truth != ignore_index)
    grey[:, wrong] = torch.tensor([0.85, 0.1, 0.1])[:, None]
    return grey.permute(1, 2, 0).numpy()


PANEL_COLUMNS = ("image", "truth", "prediction", "errors (red)")
#: The legend's entry for the pixels the truth leaves unlabelled (the ignore index), drawn black.
NO_LABEL = "no label"


def prediction_panel(dataset, predict: Callable, indices: Sequence[int], *, title: Callable[[int], str]):
    """One row per image of ``indices``: the image, its true labels, the prediction and the
    error map (:func:`error_map`), the class legend below (with a black :data:`NO_LABEL` entry
    where a shown truth has unlabelled pixels); ``title(i)`` labels row ``i``.

    ``dataset[i]``: ``(uint8 image (3, H, W), labels (H, W))``, with ``palette``,
    ``ignore_index`` and ``class_names``; ``predict(i)``: the labels predicted for image ``i``,
    ``(H, W)``."""
    import matplotlib.pyplot as plt

    from ..data.visual import colorize, legend_handles

    palette, ignore = dataset.palette, dataset.ignore_index
    side = 9.0 / len(PANEL_COLUMNS)
    h, w = dataset[indices[0]][1].shape[-2:]
    fig, axes = plt.subplots(len(indices), len(PANEL_COLUMNS), squeeze=False,
                             figsize=(9.0, side * h / w * len(indices) + 1.0))
    unlabelled = False
    for row, i in enumerate(indices):
        image, truth = dataset[i]
        unlabelled |= ignore is not None and bool((truth == ignore).any())
        pred = predict(i)
        pictures = (image, colorize(truth, palette, ignore_index=ignore), colorize(pred, palette, ignore_index=ignore))
        pictures = [p.permute(1, 2, 0).numpy() for p in pictures] + [error_map(image, truth, pred, ignore_index=ignore)]
        for col, picture in enumerate(pictures):
            ax = axes[row, col]
            ax.imshow(picture)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(PANEL_COLUMNS[col], fontsize=FIGURE_PT)
        axes[row, 0].set_ylabel(title(i), fontsize=FIGURE_PT)
    handles = legend_handles(dataset.class_names, palette)
    if unlabelled:  # colorize draws the ignore index black
        handles += legend_handles([NO_LABEL], [(0, 0, 0)])
    fig.legend(handles=handles, loc="lower center", frameon=False, fontsize=FIGURE_PT,
               ncol=min(6, len(handles)))
    # room for the legend: 0.8 inch at the bottom
    fig.tight_layout(rect=(0, 0.8 / fig.get_size_inches()[1], 1, 1))
    return fig


#: The width (points) of the red lines that mark the shown images on the per-image histogram.
MARK_LW = 2.0


def per_image_figure(scores, *, marked: Sequence[float]):
    """A histogram of per-image test mIoU (%, 20 bins) with a red line at each ``marked``
    score (the images a later figure shows)."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 2.8))
    sns.histplot(scores, bins=20, ax=ax, color="C0")
    for v in marked:  # over the bars, so that a line on a bar's edge still shows
        ax.axvline(v, color="C3", lw=MARK_LW, zorder=3)
    ax.set_xlabel("per-image mIoU % (red: the images shown below)")
    ax.set_ylabel("test images")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # a count: no half images
    fig.tight_layout()
    return fig


def share_table(shares: Mapping[str, Mapping[str, float]], *, thin_classes: Sequence[str]):
    """``{block: {class: share}}`` (:func:`refinenet.study.inside.fusion_share_by_class`) as a
    table in whole %: a ``class`` column ("(thin)" after a thin class) and one column per
    block."""
    import pandas as pd

    table = pd.DataFrame(shares).mul(100).round(0).astype("Int64")  # shown as 42, not 42.00
    table.index = [f"{c} (thin)" if c in thin_classes else c for c in table.index]
    return table.rename_axis("class").reset_index()


def _and(words: Sequence[str]) -> str:
    """``"pole"``, ``"pole and wire"``, ``"pole, sign and fence"``."""
    words = list(words)
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def share_thin_note(table, thin_classes: Sequence[str]) -> str:
    """The parenthesis after the share table's lead-in: which thin classes its rows mark
    (a :func:`share_table`), or that none of them is among its rows."""
    marked = [c.removesuffix(" (thin)") for c in table["class"] if str(c).endswith(" (thin)")]
    if marked:
        return f"(the thin classes are marked: {_and(marked)})"
    if not thin_classes:
        return "(this data set names no thin classes)"
    return f"(none of the thin classes, {_and(thin_classes)}, is in these images' labels)"


def thin_share_text(pixels, names: Sequence[str], thin_classes: Sequence[str], *,
                    size: Sequence[int] | None = None) -> str:
    """``"pole 1.2% and wire 0.43% of the training pixels"``: each thin class's share of the
    labelled pixels (``pixels``: per class, e.g. from
    :func:`refinenet.engine.class_weights.class_pixel_counts` on the training split).
    ``size``: the (H, W) the pixels were counted at, named because shares counted at another
    size (the data chapter's) differ a little: thin structures lose pixels when shrunk."""
    import numpy as np

    pixels = np.asarray(pixels, dtype=float)
    total = pixels.sum()
    pct = [(c, 100 * pixels[list(names).index(c)] / total) for c in thin_classes
           if c in names and total > 0]
    shares = [f"{c} {p:.1f}%" if p >= 1 else f"{c} {p:.2g}%" for c, p in pct]
    if not shares:
        return "none named for this data set"
    at = f" as the runs load them, at {size[0]} × {size[1]}" if size is not None else ""
    return f"{_and(shares)} of the training pixels{at}"
