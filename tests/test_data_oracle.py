"""The oracle's scores by stride and their figure (refinenet.data.oracle)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import math  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from refinenet.data.base import SegmentationDataset, to_sample  # noqa: E402
from refinenet.data.oracle import (  # noqa: E402
    change_phrase,
    oracle_figure,
    oracle_scores,
    thin_summary,
)
from refinenet.engine.metrics import SegmentationMetrics  # noqa: E402
from refinenet.study.readable import MIN_TEXT_PX, check_readable  # noqa: E402

NAMES = ["road", "pole", "sky"]
PALETTE = [(200, 0, 0), (0, 200, 0), (0, 0, 200)]


class Scenes(SegmentationDataset):
    """32 x 32 masks: sky above a road, a pole three pixels wide at a column of its own, and
    some ignore."""

    num_classes = 3
    ignore_index = 255
    class_names = NAMES
    palette = PALETTE

    def __len__(self) -> int:
        return 4

    def load(self, index: int):
        mask = torch.zeros(32, 32, dtype=torch.long)
        mask[: 12 + index] = 2
        mask[:, 5 + 6 * index: 8 + 6 * index] = 1
        mask[-2:, :4] = 255
        return to_sample(torch.zeros(3, 32, 32, dtype=torch.uint8), mask)


def block_oracle(mask, stride, num_classes, ignore_index):
    """Class fractions per stride x stride cell, upsampled bilinearly, argmax."""
    valid = mask != ignore_index
    onehot = F.one_hot(torch.where(valid, mask, 0), num_classes)
    onehot = (onehot.permute(2, 0, 1).float() * valid)[None]
    cells = F.avg_pool2d(onehot, stride, ceil_mode=True)
    scores = F.interpolate(cells, size=mask.shape, mode="bilinear", align_corners=False)
    return scores[0].argmax(0)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_a_perfect_prediction_scores_100_at_every_stride():
    table = oracle_scores(lambda mask, *_: mask, Scenes(), [0, 1, 2, 3], strides=[2, 8])
    assert list(table.columns) == ["stride", "mIoU %", "boundary IoU %",
                                   "IoU road %", "IoU pole %", "IoU sky %"]
    assert table["stride"].tolist() == [2, 8]
    assert np.allclose(table.drop(columns="stride").to_numpy(), 100)


def test_each_stride_is_scored_like_the_metrics_over_the_chosen_samples():
    ds, indices, strides = Scenes(), [1, 3], (2, 4, 16)
    calls = []

    def predict(mask, stride, num_classes, ignore_index):
        calls.append((stride, num_classes, ignore_index))
        return block_oracle(mask, stride, num_classes, ignore_index)

    table = oracle_scores(predict, ds, indices, strides=strides).set_index("stride")
    assert calls == [(s, 3, 255) for _ in indices for s in strides]
    for s in strides:
        meter = SegmentationMetrics(3, 255, class_names=NAMES)
        for i in indices:
            mask = ds[i][1]
            meter.update(block_oracle(mask, s, 3, 255)[None], mask[None])
        want = meter.compute()
        assert table.loc[s, "mIoU %"] == pytest.approx(100 * want["miou"])
        assert table.loc[s, "boundary IoU %"] == pytest.approx(100 * want["boundary_iou"])
        got = [table.loc[s, f"IoU {c} %"] for c in NAMES]
        assert got == pytest.approx([100 * v for v in want["iou"]])
    # coarse cells lose the thin pole: the oracle's point
    assert table.loc[2, "IoU pole %"] > 50 > table.loc[16, "IoU pole %"]
    assert table.loc[16, "IoU sky %"] > 80


def test_oracle_figure_plots_the_table():
    strides = [2, 4, 8]
    table = oracle_scores(block_oracle, Scenes(), [0, 2], strides=strides).set_index("stride")
    fig = oracle_figure(table, NAMES, PALETTE, thin=["pole"])
    left, right = fig.axes
    assert len(left.lines) == 3 and len(right.lines) == 2
    for line, name, rgb in zip(left.lines, NAMES, PALETTE):
        assert line.get_label() == name
        assert list(line.get_xdata()) == strides
        assert np.allclose(line.get_ydata(), table[f"IoU {name} %"])
        assert np.allclose(matplotlib.colors.to_rgb(line.get_color()), np.array(rgb) / 255)
    widths = {line.get_label(): line.get_linewidth() for line in left.lines}
    assert widths["pole"] > widths["road"] == widths["sky"]
    assert [line.get_label() for line in right.lines] == ["mean IoU", "boundary IoU"]
    assert np.allclose(right.lines[0].get_ydata(), table["mIoU %"])
    assert np.allclose(right.lines[1].get_ydata(), table["boundary IoU %"])
    assert check_readable(fig) >= MIN_TEXT_PX  # legends and ticks, shown in the book's column
    for ax in (left, right):
        assert ax.get_xscale() == "log" and ax.get_ylim() == (0, 101)
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1/2", "1/4", "1/8"]
        assert math.isclose(ax.xaxis.get_transform().base, 2)
    # the class legend lies outside (below) the left axes, clear of its lines
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = left.get_legend().get_window_extent(renderer)
    assert legend.y1 <= left.get_window_extent(renderer).y0


def test_change_phrase_names_the_direction_or_stays():
    assert change_phrase(80.04, 20.0) == "falls from 80.0% to 20.0%"
    assert change_phrase(1.0, 2.5) == "rises from 1.0% to 2.5%"
    assert change_phrase(0.0, 0.0) == "stays at 0.0%"
    assert change_phrase(12.34, 12.31) == "stays at 12.3%"


def test_thin_summary_says_the_thin_classes_lose_most_only_when_they_do():
    def table(pole, road, sky):  # IoU % at strides 4 and 32
        return pd.DataFrame({"stride": [4, 32], "IoU pole %": pole, "IoU road %": road,
                             "IoU sky %": sky}).set_index("stride")

    lose = thin_summary(table([60.0, 5.0], [95.0, 80.0], [90.0, 85.0]), ["pole"], NAMES)
    assert lose == ("the thin classes lose the most: their mean IoU falls from 60.0% to 5.0%, "
                    "that of the other classes from 92.5% to 82.5%")
    # thin classes already lost at 1/4: no claim that they lose the most
    gone = thin_summary(table([0.0, 0.0], [95.0, 80.0], [90.0, 60.0]), ["pole"], NAMES)
    assert gone == ("the mean IoU of the thin classes stays at 0.0%, that of the other "
                    "classes falls from 92.5% to 70.0%")
    assert "lose the most" not in thin_summary(
        table([50.0, 45.0], [95.0, 40.0], [90.0, 40.0]), ["pole"], NAMES)
    with pytest.raises(ValueError, match="thin classes and other classes"):
        thin_summary(table([1.0, 1.0], [1.0, 1.0], [1.0, 1.0]), ["wire"], NAMES)
