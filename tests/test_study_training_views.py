"""refinenet.study.training_views: the tables and figures of the training page (notebook 03).

Hand-made runs (objects with the ledger entry's fields) and per-run records; every check
recomputes what the table or figure should hold from those inputs, so a helper that reads the
wrong column, seed or class fails here.
"""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from refinenet.data.camvid import CAMVID_CLASSES  # noqa: E402
from refinenet.data.synthetic import SYNTHETIC_CLASSES  # noqa: E402
from refinenet.data.visual import colorize  # noqa: E402
from refinenet.engine import TrainConfig  # noqa: E402
from refinenet.study import stats  # noqa: E402
from refinenet.study import training_views as views  # noqa: E402
from refinenet.study.report import failure_text, styled  # noqa: E402
from refinenet.study.readable import MIN_TEXT_PX, check_readable, text_px  # noqa: E402

CLASSES = ["road", "pole", "sky", "wire"]
THIN = ["pole", "wire"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


class Run:
    """What the helpers read of a ledger entry."""

    def __init__(self, seed=0, *, diverged=False, val=None, test=None, multiscale=None, amp=None,
                 steps=None, evals=None):
        self.config = SimpleNamespace(seed=seed)
        self.diverged = diverged
        self.metrics = {} if diverged else (val or {})
        self.test = {} if diverged else (test or {})
        self.test_multiscale = multiscale or {}
        self.summary = {"precision": {"amp": amp}} if amp else {}
        self._frames = {"steps": steps, "evals": evals}

    @property
    def miou(self) -> float:
        return float(self.metrics.get("miou", math.nan))

    def frame(self, kind):
        return self._frames[kind]


def val_run(seed, miou, ious, mca, pa, **kw):
    return Run(seed, val={"miou": miou, "class_names": CLASSES, "iou": ious, "mean_class_accuracy": mca,
                          "pixel_accuracy": pa}, **kw)


# -- the recipe ------------------------------------------------------------------------------


def experiment(dataset="camvid", eval_size=(180, 240), **sections):
    base = TrainConfig.from_dict({
        "model": {"backbone": "resnet50", "widths": [128, 64, 64, 64]},
        "data": {"dataset": dataset, "size": list(eval_size), "crop_size": [128, 160], "batch_size": 4},
        "optim": {"name": "adamw", "momentum": 0.9, "weight_decay": 0.01},
        "schedule": {"name": "cosine", "steps": 300, "warmup_steps": 20},
        "loss": {"class_weights": "median_frequency", "class_weight_power": 0.5},
        **sections,
    })
    return SimpleNamespace(base=base, design=SimpleNamespace(lrs=(0.001, 0.002), seeds=(0, 1, 2)),
                           eval_size=eval_size, study=SimpleNamespace(dataset=dataset))


def test_the_recipe_table_reads_every_setting_from_the_config():
    table = views.recipe_table(experiment(), train_images=600, amp="bf16")
    assert list(table.columns) == ["setting", "paper / released code", "this page"]
    ours = dict(zip(table["setting"], table["this page"]))
    assert ours["backbone"] == "resnet50"
    assert ours["decoder widths, deepest first"] == "128, 64, 64, 64"
    assert ours["image size"] == "180 × 240"
    assert ours["scored on"] == "360 × 480 labels (logits upsampled)"
    assert ours["training crops"] == "128 × 160"
    assert ours["images per batch"] == "4"
    assert ours["optimiser"] == "AdamW, betas 0.9, 0.999, wd 0.01"  # no momentum: AdamW has none
    assert ours["learning rate"] == "0.001, 0.002, chosen on val (backbone 1×)"
    paper = dict(zip(table["setting"], table["paper / released code"]))
    # one notation for the same kind of number in both columns (0.0005, never 5e-4 beside 0.01)
    assert paper["optimiser"] == "SGD, momentum 0.9, wd 0.0005"
    assert paper["learning rate"] == "0.0005 (backbone 0.1×)"
    cells = " ".join(table["paper / released code"]) + " ".join(table["this page"])
    assert not re.search(r"\de-\d", cells)
    assert ours["schedule"] == "cosine, 20 warm-up steps"  # a power only for poly
    one = views.recipe_table(experiment(schedule={"name": "cosine", "steps": 4, "warmup_steps": 1}),
                             train_images=600, amp="bf16")
    assert dict(zip(one["setting"], one["this page"]))["schedule"] == "cosine, 1 warm-up step"
    assert ours["training length"] == "300 steps = 1200 images ≈ 2.0 epochs"  # 300 x 4 / 600
    assert ours["loss"] == "cross-entropy, median frequency ^ 0.5 class weights"
    assert ours["arithmetic"] == "bf16 autocast, channels_last"
    assert ours["seeds per setting"] == "3"
    fp32 = views.recipe_table(experiment("synthetic", loss={"class_weights": "none"}), train_images=600, amp="none")
    ours = dict(zip(fp32["setting"], fp32["this page"]))
    assert (ours["scored on"], ours["loss"], ours["arithmetic"]) == ("180 × 240 labels", "cross-entropy", "fp32")


def test_departures_name_only_what_differs_from_the_paper():
    clauses = views.departures(experiment(), train_images=600, amp="bf16")
    assert clauses == [
        "a resnet50 trained from random weights instead of a pre-trained ResNet-101",
        "narrower decoder paths",
        "images of 180 × 240 instead of 360 × 480",
        "training on random 128 × 160 crops",
        "only about 2.0 passes over the training images",
        "AdamW with a cosine schedule instead of SGD",
        "a cross-entropy with median frequency ^ 0.5 class weights (see below)",
        "bf16 arithmetic (autocast) where the paper used fp32",
    ]
    paper_like = experiment(eval_size=(360, 480), model={"backbone": "resnet101"}, loss={"class_weights": "none"},
                            optim={"name": "sgd", "momentum": 0.9, "weight_decay": 0.0005},
                            schedule={"name": "poly", "steps": 150, "warmup_steps": 20})
    paper_like.base = paper_like.base.replace(["data.crop_size=null"])
    assert views.departures(paper_like, train_images=300, amp=None) == [
        "a resnet101 trained from random weights instead of a pre-trained ResNet-101",
        "only about 2.0 passes over the training images",
    ]
    sgd = dict(zip(*views.recipe_table(paper_like, train_images=300, amp=None)[["setting", "this page"]].T.values))
    assert (sgd["optimiser"], sgd["schedule"]) == ("SGD, momentum 0.9, wd 0.0005", "poly (power 0.9), 20 warm-up steps")


def test_the_precision_of_a_run_is_fp32_unless_it_trained_in_autocast():
    assert views.precision_of(Run(amp="bf16")) == "bf16"
    assert views.precision_of(Run()) == "none"
    assert views.precision_of(Run(amp="bf16", diverged=True)) == "none"


# -- the learning-rate sweep -----------------------------------------------------------------


SWEEP = pd.DataFrame({
    "variant": ["0.02", "0.02", "0.005", "0.005", "0.01", "0.01"],
    "lr": [0.02, 0.02, 0.005, 0.005, 0.01, 0.01],
    "val mIoU": [math.nan, 30.0, 40.0, 44.0, 50.0, 54.0],
    "val boundary IoU": [math.nan, 10.0, 20.0, 22.0, 25.0, 27.0],
    "diverged": [True, False, False, False, False, False],
})


def test_the_sweep_table_has_one_row_per_rate_in_order():
    table = views.sweep_table(SWEEP, chosen=0.01)
    assert table["learning rate"].tolist() == ["0.005", "0.01", "0.02"]
    assert table["n"].tolist() == [2, 2, 2]
    assert table["val mIoU %"].tolist() == [stats.pm([40, 44]), stats.pm([50, 54]), stats.pm([30.0])]
    assert table["val boundary IoU %"].tolist()[1] == stats.pm([25, 27])
    assert table["diverged runs [95% CI]"].tolist() == [failure_text(0, 2)] * 2 + [failure_text(1, 2)]
    assert table["chosen"].tolist() == ["", "✔", ""]


def test_the_rate_edge_says_where_the_chosen_rate_lies_in_the_grid():
    assert views.rate_edge(SWEEP, chosen=0.01, lrs=[0.01]) == "the only rate of the grid"
    largest = views.rate_edge(SWEEP, chosen=0.02, lrs=[0.005, 0.01, 0.02])
    assert largest.startswith("the largest rate of the grid")
    assert "`study.lrs`" in largest  # a profile key, written as code (the glue is Markdown)
    inside = views.rate_edge(SWEEP, chosen=0.005, lrs=[0.02, 0.005, 0.01])
    assert inside.startswith(f"inside the grid: the next rate up, 0.01, scores {stats.pm([50, 54])}%")


def test_the_sweep_figure_shows_each_seed_and_the_mean_per_rate():
    fig = views.sweep_figure(SWEEP, lrs=[0.02, 0.005, 0.01])
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.005", "0.01", "0.02"]
    dots = np.concatenate([c.get_offsets()[:, 1] for c in ax.collections if len(c.get_offsets())])
    assert sorted(dots[np.isfinite(dots)]) == sorted(SWEEP["val mIoU"].dropna())
    means = [line for line in ax.lines if line.get_marker() == "D"]
    assert len(means) == 1 and np.allclose(means[0].get_ydata(), [42.0, 52.0, 30.0])
    assert ax.get_title() == "the learning-rate sweep (mean ± std over seeds)"


# -- class weights ---------------------------------------------------------------------------


def test_the_loss_table_scores_the_runs_that_did_not_diverge():
    weighted = [val_run(0, 0.50, [0.9, 0.2, 0.8, 0.4], 0.6, 0.8), val_run(1, 0.54, [0.9, 0.3, 0.8, 0.2], 0.7, 0.7)]
    plain = [val_run(0, 0.40, [0.95, 0.0, 0.9, 0.1], 0.5, 0.9), Run(1, diverged=True)]
    table = views.loss_table({"weighted": weighted, "plain": plain}, thin_classes=THIN)
    assert table["loss"].tolist() == ["weighted", "plain"]
    assert table["n"].tolist() == [2, 1]
    assert table["val mIoU %"].tolist() == [stats.pm([50.0, 54.0]), stats.pm([40.0])]
    assert table["val thin-class mIoU %"].tolist() == [stats.pm([30.0, 25.0]), stats.pm([5.0])]  # pole, wire
    assert table["val mean class accuracy %"].tolist() == [stats.pm([60.0, 70.0]), stats.pm([50.0])]
    assert table["val pixel accuracy %"].tolist() == [stats.pm([80.0, 70.0]), stats.pm([90.0])]


def test_the_loss_effect_says_which_way_thin_classes_and_pixel_accuracy_move():
    # thin (pole, wire) 30.0 and 25.0 -> 27.5 weighted, 5.0 plain; pixel accuracy 75.0 and 90.0
    weighted = [val_run(0, 0.50, [0.9, 0.2, 0.8, 0.4], 0.6, 0.8), val_run(1, 0.54, [0.9, 0.3, 0.8, 0.2], 0.7, 0.7)]
    plain = [val_run(0, 0.40, [0.95, 0.0, 0.9, 0.1], 0.5, 0.9), Run(1, diverged=True)]
    text = views.loss_effect(weighted, plain, thin_classes=THIN)
    assert text.startswith("On the validation split, from the plain loss to the weighted one, the thin "
                           "classes' mean IoU rises by 22.5 points and the pixel accuracy falls by 15.0 points")
    assert text.endswith("trade some pixel accuracy, which the frequent classes dominate, for the rare classes.")
    # the other way round: the thin classes lose, the pixel accuracy rises
    back = views.loss_effect(plain, weighted, thin_classes=THIN)
    assert "mean IoU falls by 22.5 points and the pixel accuracy rises by 15.0 points" in back
    assert back.endswith("do not help the thin classes, and the pixel accuracy does not fall.")
    worse = [val_run(0, 0.40, [0.95, 0.0, 0.9, 0.0], 0.5, 0.6)]  # thin 0.0, pixel accuracy 60.0
    assert views.loss_effect(worse, plain, thin_classes=THIN).endswith(
        "here the weights help neither the thin classes nor the pixel accuracy.")
    # both rise (what the CamVid runs show): no trade is claimed
    both = views.loss_effect(weighted, [val_run(0, 0.4, [0.95, 0.0, 0.9, 0.1], 0.5, 0.7)], thin_classes=THIN)
    assert "mean IoU rises by 22.5 points and the pixel accuracy rises by 5.0 points" in both
    assert "without a loss of pixel accuracy" in both and "trade" not in both
    # on the test split, from the runs' test scores
    on_test = [Run(0, test={"class_names": CLASSES, "iou": [0.9, 0.5, 0.8, 0.5], "pixel_accuracy": 0.6})]
    plain_test = [Run(0, test={"class_names": CLASSES, "iou": [0.9, 0.1, 0.8, 0.1], "pixel_accuracy": 0.7})]
    assert views.loss_effect(on_test, plain_test, thin_classes=THIN, split="test").startswith(
        "On the test split, from the plain loss to the weighted one, the thin classes' mean IoU rises by "
        "40.0 points and the pixel accuracy falls by 10.0 points")
    assert "thin" not in views.loss_effect(weighted, plain, thin_classes=[])  # none named
    assert views.loss_effect(weighted, None, thin_classes=THIN) == views.NOTHING_TO_COMPARE
    assert views.plain_val_text(plain) == stats.pm([40.0])  # the diverged run left out
    assert views.plain_val_text(None).startswith("(not trained")


def records(val, test, thin, pa):
    return pd.DataFrame({"val mIoU": val, "test mIoU": test, "thin-class mIoU": thin, "test pixel accuracy": pa})


WEIGHTED = records([50, 52, 51], [40, 42, 41], [20, 22, 21], [80, 81, 82])
PLAIN = records([45, 46, 44], [36, 37, 35], [5, 6, 7], [85, 86, 84])


def test_the_loss_test_table_sets_val_and_test_side_by_side():
    table = views.loss_test_table({"weighted": WEIGHTED, "plain": PLAIN})
    assert list(table.columns) == ["loss", "n", "val mIoU %", "test mIoU %", "test thin-class mIoU %",
                                   "test pixel accuracy %"]
    assert table.iloc[1].tolist() == ["plain", 3, stats.pm(PLAIN["val mIoU"]), stats.pm(PLAIN["test mIoU"]),
                                      stats.pm(PLAIN["thin-class mIoU"]), stats.pm(PLAIN["test pixel accuracy"])]


def test_the_weights_difference_is_weighted_minus_plain_with_its_verdict():
    cw = views.weights_difference(WEIGHTED, PLAIN)
    assert cw["test"] == stats.interval_text(stats.welch(WEIGHTED["test mIoU"], PLAIN["test mIoU"]))
    assert cw["val"] == stats.interval_text(stats.welch(WEIGHTED["val mIoU"], PLAIN["val mIoU"]))
    assert cw["test"].startswith("+5.0") and cw["verdict"] == "the weights help on the test split too"
    # thin-class mIoU 21.0 against 6.0, test pixel accuracy 81.0 against 85.0
    assert cw["effect"].startswith("On the test split, from the plain loss to the weighted one, the thin "
                                   "classes' mean IoU rises by 15.0 points and the pixel accuracy falls by "
                                   "4.0 points")
    assert "trade some pixel accuracy" in cw["effect"]
    assert views.weights_difference(PLAIN, WEIGHTED)["verdict"] == (
        "on the test split the weights cost more than they gain")
    noisy = WEIGHTED.assign(**{"test mIoU": [30, 50, 38]})
    assert views.weights_difference(noisy, PLAIN)["verdict"] == "on the test split the two losses are not told apart"
    none = views.weights_difference(WEIGHTED, None)
    assert none["verdict"] == "there is nothing to compare" and none["test"].startswith("(not measured")
    assert none["effect"] == "There is no weighted loss to compare."


# -- training curves -------------------------------------------------------------------------


def curve_runs():
    runs = []
    for seed in (3, 5):
        steps = pd.DataFrame({"step": range(1, 11), "loss": np.arange(10.0) * (seed + 1),
                              "lr": np.linspace(0.01, 0.001, 10) * (seed - 2)})
        evals = pd.DataFrame({"step": [5, 10], "miou": [0.2 + seed / 100, 0.3]})
        runs.append(Run(seed, steps=steps, evals=evals))
    return runs


def test_the_training_history_keeps_a_running_mean_per_seed():
    steps, evals = views.training_history(curve_runs(), window=3)
    seed5 = steps[steps.seed == 5]
    expected = pd.Series(np.arange(10.0) * 6).rolling(3, min_periods=1).mean()
    assert np.allclose(seed5["loss (running mean)"], expected)
    assert np.allclose(steps[steps.seed == 3]["loss (running mean)"].iloc[:2], [0.0, 2.0])  # not seed 5's
    assert evals["val mIoU %"].tolist() == pytest.approx([23.0, 30.0, 25.0, 30.0])


def test_the_curves_figure_shows_loss_rate_and_validation_per_seed():
    steps, evals = views.training_history(curve_runs(), window=2)
    fig = views.curves_figure(steps, evals)
    assert [ax.get_title() for ax in fig.axes] == ["training loss", "learning rate", "validation mIoU"]
    loss_lines = [line for line in fig.axes[0].lines if len(line.get_xdata())]
    assert len(loss_lines) == 2
    (lr,) = fig.axes[1].lines  # of the first seed, 3
    assert np.allclose(lr.get_ydata(), np.linspace(0.01, 0.001, 10))
    assert [t.get_text() for t in fig.axes[2].get_legend().get_texts()] == ["3", "5"]
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss (running mean)", "learning rate", "val mIoU %"]
    assert check_readable(fig) >= MIN_TEXT_PX  # ticks and legends, shown in the book's column


# -- the test split --------------------------------------------------------------------------


def test_multiscale_scores_come_from_the_runs_scored_so():
    runs = [Run(0, multiscale={"miou": 0.5}), Run(1), Run(2, multiscale={"miou": 0.25})]
    assert views.multiscale_scores(runs).tolist() == [50.0, 25.0]
    assert views.multiscale_scores([Run(0)]).dtype == float


def test_the_summary_has_a_row_per_metric_and_the_multiscale_row():
    results = pd.DataFrame({"test mIoU": [40.0, 44.0], "test boundary IoU": [20.0, 22.0],
                            "test pixel accuracy": [80.0, math.nan], "thin-class mIoU": [10.0, 12.0],
                            "val mIoU": [50.0, 52.0]})
    multiscale = pd.Series([45.0, 47.0, 49.0])
    summary = views.standard_summary(results, multiscale, scales=[0.5, 1.0, 1.5])
    assert summary["key"].tolist() == [*views.SUMMARY_METRICS, "multi-scale test mIoU"]
    assert summary["n"].tolist() == [2, 2, 1, 2, 2, 3]
    assert summary["mean %"].tolist()[:2] == [42.0, 21.0] and summary["mean %"].iloc[-1] == 47.0
    assert summary["metric"].iloc[-1] == "mean IoU, scales 0.5, 1, 1.5 + flips"
    view = views.summary_view(summary)
    assert list(view.columns) == ["metric", "mean ± std %", "n"]
    assert view["mean ± std %"].tolist() == [stats.pm(results[k]) for k in views.SUMMARY_METRICS] + [
        stats.pm(multiscale)]


def test_the_published_comparison_ends_with_our_row():
    table = views.published_comparison("ours", "40.0 ± 1.0")
    assert table.iloc[-1].tolist() == ["ours", "40.0 ± 1.0", "yes"]
    enet = table.set_index("method").loc["ENet"]
    assert (enet["test mIoU %"], enet["from scratch"]) == ("51.3", "yes")
    assert table.set_index("method").loc["SegNet", "from scratch"] == "no (ImageNet)"


def test_the_gap_is_measured_to_the_best_published_model_from_scratch():
    assert views.gap_sentence(40.0, synthetic=False).startswith(
        "The best published model trained from scratch (FC-DenseNet103, 66.9%) is 26.9 points above our "
        "standard model at this profile's scale. A gap to published numbers measures mostly the budget")
    generator = views.gap_sentence(40.0, synthetic=True)
    assert "cannot be compared" in generator and "budget" not in generator  # no gap to explain


def per_class_results():
    rows = {"seed": [0, 1]}
    for i, c in enumerate(CLASSES):
        rows[f"IoU {c}"] = [10.0 * (i + 1), 10.0 * (i + 1) + 4]
        rows[f"boundary IoU {c}"] = [5.0 * i, 5.0 * i]
    return pd.DataFrame(rows)


def test_the_per_class_table_marks_the_thin_classes():
    table = views.per_class_table(per_class_results(), CLASSES, thin_classes=THIN)
    assert table["class"].tolist() == CLASSES
    assert table["thin"].tolist() == ["", "yes", "", "yes"]
    assert table["IoU %"].tolist() == [stats.pm([10, 14]), stats.pm([20, 24]), stats.pm([30, 34]), stats.pm([40, 44])]
    assert table["boundary IoU %"].iloc[2] == stats.pm([10.0, 10.0])


def test_the_per_class_figure_draws_the_mean_of_each_class_thin_ones_in_red():
    fig = views.per_class_figure(per_class_results(), CLASSES, thin_classes=THIN)
    (ax,) = fig.axes
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == CLASSES
    bars = {ticks[round(p.get_x() + p.get_width() / 2)]: p for p in ax.patches if p.get_height() > 0}
    assert {c: bars[c].get_height() for c in CLASSES} == {"road": 12.0, "pole": 22.0, "sky": 32.0, "wire": 42.0}
    # seaborn desaturates the palette a little: thin bars are C3's red, the others C0's blue
    red, blue = {bars[c].get_facecolor() for c in THIN}, {bars[c].get_facecolor() for c in ("road", "sky")}
    assert len(red) == 1 and len(blue) == 1
    (red,), (blue,) = red, blue
    assert red[0] > red[2] and blue[2] > blue[0]
    assert ax.get_ylim() == (0, 100)
    assert check_readable(fig) >= MIN_TEXT_PX  # class names, ticks and legend in the book's column


def test_the_per_class_lead_in_is_a_sentence_on_camvid_and_on_the_generator():
    camvid = views.published_per_class_text(synthetic=False)
    assert camvid.startswith("The table below sets our per-class test IoU beside") and camvid.endswith(").")
    generator = views.published_per_class_text(synthetic=True)
    assert "there is no per-class row of ours" in generator and generator.endswith(".")
    assert not camvid.endswith(":") and not generator.endswith(":")


def test_passes_counts_the_training_images_one_run_sees():
    from types import SimpleNamespace

    base = SimpleNamespace(schedule=SimpleNamespace(steps=2800), data=SimpleNamespace(batch_size=8))
    assert views.passes(base, 367) == pytest.approx(2800 * 8 / 367)  # the cpu recipe: about 61


def test_the_comparison_caveat_says_only_what_differs_from_the_published_protocol():
    half = views.comparison_caveat((180, 240), synthetic=False)
    assert "on smaller images" in half and "scored, like theirs, on the 360 × 480 labels" in half
    native = views.comparison_caveat(None, synthetic=False)  # the gpu profile: native images
    assert "smaller images" not in native and native.endswith("far more briefly.")
    assert views.comparison_caveat((360, 480), synthetic=False) == native
    generator = views.comparison_caveat((64, 64), synthetic=True)
    assert "not even the same data" in generator and "scored, like theirs" not in generator


def test_published_per_class_sets_ours_beside_the_published_rows():
    names = ["Sky", "Pole", "Road"]
    per_class = pd.DataFrame({"class": names, "IoU %": ["90.0 ± 1.0", "5.0 ± 1.0", "88.0 ± 2.0"]})
    side = views.published_per_class(per_class, ours_miou="41.0 ± 1.0")
    assert side["class"].tolist() == [*names, "mean (mIoU)"]
    assert list(side.columns) == ["class", "ours", "SegNet", "FCN-8", "DeepLab-LargeFOV", "FC-DenseNet103"]
    assert side["ours"].tolist() == ["90.0 ± 1.0", "5.0 ± 1.0", "88.0 ± 2.0", "41.0 ± 1.0"]
    assert side["FC-DenseNet103"].tolist() == ["93.0", "37.8", "94.5", "66.9"]


def test_the_confusion_is_summed_over_the_runs_that_trained():
    runs = [Run(0, test={"confusion": [[3, 1], [0, 2]]}), Run(1, diverged=True),
            Run(2, test={"confusion": [[1, 1], [2, 2]]})]
    assert views.summed_confusion(runs).tolist() == [[4.0, 2.0], [2.0, 4.0]]


def test_the_confusion_figure_and_its_largest_cell_off_the_diagonal():
    pct = np.array([[80.0, 15.0, 5.0], [30.0, 70.0, 0.0], [10.0, 20.0, 70.0]])
    fig = views.confusion_figure(pct, ["a", "b", "c"])
    (ax,) = fig.axes
    assert np.allclose(np.asarray(ax.collections[0].get_array()).reshape(3, 3), pct)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    assert views.largest_confusion(pct) == (1, 0, 30.0)
    assert pct[1, 1] == 70.0  # the helper works on a copy


def test_the_confusion_figure_reads_at_the_page_width():
    names = [f"class {k}" for k in range(11)]
    fig = views.confusion_figure(np.full((11, 11), 100 / 11), names)
    (ax,) = fig.axes
    cells = [t for t in ax.texts if t.get_text()]
    assert len(cells) == 121
    texts = cells + ax.get_xticklabels() + ax.get_yticklabels() + [ax.xaxis.label, ax.title]
    assert min(text_px(fig, t) for t in texts) >= 12


def _touching(fig, labels):
    """Pairs of tick labels whose drawn boxes overlap."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
    return [(a, b) for k, (a, box) in enumerate(boxes) for b, other in boxes[k + 1:]
            if box.overlaps(other)]


@pytest.mark.parametrize("names", [SYNTHETIC_CLASSES, CAMVID_CLASSES], ids=["generator", "camvid"])
def test_the_confusion_figure_s_class_names_do_not_run_together(names):
    k = len(names)
    fig = views.confusion_figure(np.full((k, k), 100 / k), names)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == list(names)
    assert all(t.get_rotation() == 0 for t in ax.get_yticklabels())  # read across
    assert _touching(fig, ax.get_yticklabels()) == []
    assert _touching(fig, ax.get_xticklabels()) == []
    assert check_readable(fig) >= MIN_TEXT_PX
    # every name inside the figure
    fig_box = fig.bbox
    for t in ax.get_xticklabels() + ax.get_yticklabels():
        box = t.get_window_extent(fig.canvas.get_renderer())
        assert fig_box.x0 <= box.x0 and box.x1 <= fig_box.x1 and fig_box.y0 <= box.y0, t.get_text()


def test_short_class_names_stay_level_under_the_confusion():
    fig = views.confusion_figure(np.eye(3) * 100, ["a", "b", "c"])
    assert all(t.get_rotation() == 0 for t in fig.axes[0].get_xticklabels())


# -- sequences -------------------------------------------------------------------------------


def test_the_sequence_table_counts_frames_per_prefix_and_split():
    frames = {"train": ["0016E5_1", "0016E5_2", "0001TP_1"], "val": ["0016E5_9", "0016E5_8"],
              "test": ["Seq05VD_1", "Seq05VD_2", "0016E5_7"]}
    seq = views.sequence_table(frames)
    counts = seq.set_index("sequence")
    assert counts.loc["0016E5"].tolist() == [2, 2, 1]
    assert counts.loc["Seq05VD"].tolist() == [0, 0, 2]
    assert counts.loc["0001TP"].tolist() == [1, 0, 0]
    assert views.sequence_sentence(seq) == (
        "2 of the 2 validation frames come from sequences that training frames also show, while 2 of the "
        "3 test frames come from a sequence that no training frame shows")


def test_val_and_test_are_read_from_the_numbers_on_camvid_and_on_the_generator():
    seq = views.sequence_table({"train": ["0016E5_1", "0001TP_1"], "val": ["0016E5_9"],
                                "test": ["Seq05VD_1", "0016E5_7"]})
    flattered = views.val_test_text(seq, val=40.4, test=28.1)
    assert flattered["paragraph"].startswith("So 1 of the 1 validation frames come from")
    assert "12.3 points the higher" in flattered["paragraph"] and "flatters" in flattered["paragraph"]
    assert "flatters the model by 12.3 points" in flattered["summary"]
    level = views.val_test_text(seq, val=20.0, test=22.5)
    assert "flatter" not in level["paragraph"].replace("do not flatter", "")
    assert "(+2.5 points)" in level["paragraph"] and "not below" in level["summary"]
    generator = views.val_test_text(None, val=15.0, test=17.0)
    assert "(-2.0 points here)" in generator["paragraph"] and "one distribution" in generator["paragraph"]
    assert "15.0% and 17.0%" in generator["summary"]
    for text in (*flattered.values(), *level.values(), *generator.values()):
        assert "(" not in text[:1] and "applicable" not in text and text.endswith(".")


# -- the pilot's outcome ---------------------------------------------------------------------


def _config(steps, every, lr=0.001):
    return SimpleNamespace(schedule=SimpleNamespace(steps=steps), eval=SimpleNamespace(every=every),
                           optim=SimpleNamespace(lr=lr))


def test_words_count_and_the_running_mean_window_reads_right_for_one():
    assert views.plural(0, "recipe") == "no recipes"
    assert views.plural(1, "recipe") == "1 recipe"
    assert views.plural(3, "run") == "3 runs"
    assert views.last_steps(1) == "the last step"
    assert views.last_steps(140) == "the last 140 steps"


def test_the_adoption_says_whether_the_pilot_choice_is_what_trains():
    base = _config(2800, 700)
    same = views.adoption_text("AdamW 2800", "AdamW 2800", base=base, lrs=(0.0005, 0.001, 0.002),
                               pilot=_config(2800, 140))
    assert same.startswith("The study adopts the chosen recipe, **AdamW 2800**")
    assert ("The pilot trained it at lr 0.001; the study trains it at lr 0.0005, 0.001, 0.002 "
            "(the sweep below) and keeps the rate that scores best on val.") in same
    assert "validate 4 times rather than the 20 of the pilot's runs" in same
    other = views.adoption_text("SGD poly, lr 0.01", "AdamW cosine", base=_config(4, 2),
                                lrs=(0.01, 0.05), pilot=_config(4, 2))
    assert other.startswith("On this profile the pilot's choice is not what trains")
    assert "adopts **SGD poly, lr 0.01** (its `study.adopted`) instead of **AdamW cosine**" in other
    assert other.endswith("validate 2 times, as the pilot's runs of that recipe did.")
    assert "adopts the chosen" not in other
    none_chosen = views.adoption_text("SGD poly, lr 0.01", None, base=base, lrs=(0.01,))
    assert none_chosen.startswith("The pilot chose no recipe") and "validate" not in none_chosen
    assert none_chosen.endswith("The study trains it at lr 0.01 (the sweep below) and keeps the rate that "
                                "scores best on val.")
    unset = views.adoption_text(None, "AdamW 2800", base=base, lrs=(0.01,))
    assert "unset" in unset and "not what trains" in unset
    assert views.adopted_clause("AdamW 2800", "AdamW 2800") == ", which the study adopts"
    # given the sweep's rate, the clause says the study trains at it, not at the name's rate
    assert views.adopted_clause("SGD poly, lr 0.01", "AdamW", lr=0.05, pilot_lr=0.01) == (
        "; this profile trains **SGD poly, lr 0.01** instead (its `study.adopted`), at the "
        "learning rate its own sweep chooses, 0.05 (the pilot trained it at 0.01)")
    assert views.adopted_clause("AdamW 2800", "AdamW 2800", lr=0.001, pilot_lr=0.001) == (
        ", which the study adopts and trains at the learning rate its own sweep chooses, 0.001")
    assert views.adopted_clause("SGD", None, lr=0.05).endswith("its own sweep chooses, 0.05")
    assert "trains **SGD** instead" in views.adopted_clause("SGD", "AdamW 2800")
    assert "trains **SGD** instead" in views.adopted_clause("SGD", None)
    assert "unset" in views.adopted_clause(None, "AdamW 2800")


def test_how_often_the_pilot_validates_is_counted_from_its_recipes():
    smoke = [_config(4, 2), _config(4, 2)]
    assert views.eval_share_text(smoke) == "each validated every 50% of its run"
    cpu = [_config(3000, 150)] * 5 + [_config(8000, 400), _config(2800, 140), _config(2800, 700)]
    assert views.eval_share_text(cpu) == "all but one validated every 5% of their run"
    mixed = [_config(100, 10), _config(100, 10), _config(100, 25), _config(100, 50)]
    assert views.eval_share_text(mixed) == "2 of 4 validated every 10% of their run"
    assert views.eval_share_text([_config(2800, 70)]) == "each validated every 2.5% of its run"
    assert views.eval_share_text([_config(4, 4)]) == "each validated only at the end of its run"


def test_the_held_out_check_speaks_of_no_runs_when_there_are_none():
    empty = pd.DataFrame(columns=["recipe", "val mIoU %", "held-out split", "held-out val mIoU %"])
    assert views.held_out_verdict(empty, True) == "This profile trains no held-out runs, so val decides."
    assert views.held_out_count(empty) == "this profile's pilot trains none held out"
    check = pd.DataFrame({"recipe": ["a", "b"], "val mIoU %": [50.0, 45.0],
                          "held-out val mIoU %": [30.0, 27.0]})
    assert views.held_out_count(check) == "this profile's pilot trains 2 recipes held out"
    agree = views.held_out_verdict(check, True)
    assert agree.startswith("The held-out runs rank them as val does;")
    assert "19.0 points below val's" in agree
    assert "otherwise than val" in views.held_out_verdict(check, False)


# -- predictions and failures ----------------------------------------------------------------


class Images:
    """Three 6 x 8 test images with labels 0..2 and a void pixel (3)."""

    palette = [(200, 0, 0), (0, 200, 0), (0, 0, 200)]
    ignore_index = 3
    class_names = ["a", "b", "c"]

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        image = torch.randint(0, 256, (3, 6, 8), dtype=torch.uint8, generator=g)
        labels = torch.randint(0, 3, (6, 8), generator=g)
        labels[0, 0] = 3
        return image, labels


def predict(i):
    labels = Images()[i][1].clone()
    labels[labels == 3] = 0
    labels[1, :] = (labels[1, :] + 1) % 3  # one wrong row
    return labels


def test_the_error_map_paints_wrong_labelled_pixels_red_on_grey():
    image, truth = Images()[0]
    pred = predict(0)
    pred[0, 0] = 2  # a void pixel predicted: not an error
    out = views.error_map(image, truth, pred, ignore_index=3)
    assert out.shape == (6, 8, 3)
    grey = image.float().mean(0).numpy() / 255
    assert np.allclose(out[1], [0.85, 0.1, 0.1])
    assert np.allclose(out[2:, :, 0], grey[2:]) and np.allclose(out[2:, :, 2], grey[2:])
    assert np.allclose(out[0, 0], grey[0, 0])


def test_the_prediction_panel_has_a_row_per_image_and_four_columns():
    data = Images()
    fig = views.prediction_panel(data, predict, [2, 0], title=lambda i: f"image {i}")
    axes = np.array(fig.axes).reshape(2, 4)
    assert [ax.get_title() for ax in axes[0]] == list(views.PANEL_COLUMNS)
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["image 2", "image 0"]
    image, truth = data[2]
    assert np.array_equal(axes[0, 0].images[0].get_array(), image.permute(1, 2, 0).numpy())
    shown_truth = colorize(truth, data.palette, ignore_index=3).permute(1, 2, 0).numpy()
    assert np.array_equal(axes[0, 1].images[0].get_array(), shown_truth)
    shown_pred = colorize(predict(0), data.palette, ignore_index=3).permute(1, 2, 0).numpy()
    assert np.array_equal(axes[1, 2].images[0].get_array(), shown_pred)
    assert np.allclose(axes[1, 3].images[0].get_array(), views.error_map(*data[0], predict(0), ignore_index=3))
    # the void pixel of the truth is drawn black: the legend names it
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [*data.class_names, views.NO_LABEL]
    black = fig.legends[0].legend_handles[-1].get_facecolor()
    assert tuple(black[:3]) == (0.0, 0.0, 0.0)
    texts = [*fig.legends[0].get_texts(), *(ax.title for ax in axes[0]),
             *(ax.yaxis.label for ax in axes[:, 0])]
    assert min(text_px(fig, t) for t in texts) >= MIN_TEXT_PX  # legend, column and row titles
    assert check_readable(fig) >= MIN_TEXT_PX


def test_the_prediction_panel_names_no_void_where_the_truth_has_none():
    class Labelled(Images):
        def __getitem__(self, i):
            image, labels = super().__getitem__(i)
            labels[labels == 3] = 0
            return image, labels

    fig = views.prediction_panel(Labelled(), predict, [1], title=lambda i: f"test image {i}")
    assert [t.get_text() for t in fig.legends[0].get_texts()] == Labelled.class_names


def test_the_prediction_panel_reads_at_the_page_width_with_camvid_s_classes():
    names = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
             "Pedestrian", "Bicyclist"]

    class CamVidLike(Images):
        class_names = names
        palette = [(20 * k, 10 * k, 200 - 15 * k) for k in range(len(names))]
        ignore_index = 11

        def __getitem__(self, i):
            image, labels = super().__getitem__(i)
            return image, torch.where(labels == 3, torch.tensor(11), labels)

    fig = views.prediction_panel(CamVidLike(), predict, [0, 1, 2],
                                 title=lambda i: f"test image {i}\n40% mIoU")
    assert len(fig.legends[0].get_texts()) == len(names) + 1
    assert check_readable(fig) >= MIN_TEXT_PX  # 12 legend entries fit the figure's width


def test_the_per_image_figure_marks_the_shown_images():
    scores = pd.Series(np.linspace(5, 95, 40))
    fig = views.per_image_figure(scores, marked=[5.0, 7.5])
    (ax,) = fig.axes
    assert sum(p.get_height() for p in ax.patches) == 40 and len(ax.patches) == 20
    lines = [line.get_xdata()[0] for line in ax.lines]
    assert lines == [5.0, 7.5]
    bars = max(p.get_zorder() for p in ax.patches)
    for line in ax.lines:  # drawn over the bars and thick enough to see on a bar's edge
        assert line.get_zorder() > bars and line.get_linewidth() >= 2
    assert check_readable(fig) >= MIN_TEXT_PX
    few = views.per_image_figure(pd.Series([10.0, 20.0, 30.0]), marked=[])  # counts of 0 and 1
    few.canvas.draw()
    ticks = few.axes[0].get_yticks()
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)


def test_the_share_table_is_in_whole_percent_with_the_thin_classes_marked():
    shares = {"block 2": {"road": 0.812, "pole": 0.304}, "block 3": {"road": 0.5, "pole": 0.126}}
    table = views.share_table(shares, thin_classes=THIN)
    assert table.columns.tolist() == ["class", "block 2", "block 3"]
    assert table["class"].tolist() == ["road", "pole (thin)"]
    assert table["block 2"].tolist() == [81, 30] and table["block 3"].tolist() == [50, 13]
    html = styled(table).to_html()
    assert ">81<" in html and "81.00" not in html  # whole percents, shown as such
    assert views.share_thin_note(table, THIN) == "(the thin classes are marked: pole)"


def test_the_share_note_says_when_no_thin_class_is_in_the_table():
    table = views.share_table({"block 2": {"road": 0.8, "sky": 0.4}}, thin_classes=THIN)
    assert views.share_thin_note(table, THIN) == "(none of the thin classes, pole and wire, is in these images' labels)"
    assert views.share_thin_note(table, []) == "(this data set names no thin classes)"


def test_the_thin_shares_are_read_from_the_pixel_counts():
    pixels = np.array([900.0, 10.0, 0.43, 89.57])
    text = views.thin_share_text(pixels, ["road", "pole", "wire", "sky"], THIN)
    assert text == "pole 1.0% and wire 0.043% of the training pixels"
    sized = views.thin_share_text(pixels, ["road", "pole", "wire", "sky"], THIN, size=(180, 240))
    assert sized == "pole 1.0% and wire 0.043% of the training pixels as the runs load them, at 180 × 240"
    assert views.thin_share_text(pixels, ["road", "pole", "wire", "sky"], []) == "none named for this data set"
