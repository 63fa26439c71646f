"""What resolution alone costs (notebook 2): an oracle's scores at several output strides.

The oracle itself (a function ``predict(mask, stride, num_classes, ignore_index) -> labels``)
is written out in the notebook; this module scores it with the study's metrics and draws the
result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from ..engine.metrics import SegmentationMetrics
from .base import SegmentationDataset

__all__ = ["change_phrase", "oracle_figure", "oracle_scores", "thin_summary"]

#: ``predict(mask (H, W) int64, stride, num_classes, ignore_index) -> labels (H, W)``
Predict = Callable[[Tensor, int, int, int], Tensor]


def oracle_scores(predict: Predict, dataset: SegmentationDataset, indices: Sequence[int], *,
                  strides: Sequence[int], device: str | torch.device = "cpu"):
    """Score ``predict`` at each of ``strides`` against the labels of samples ``indices``.

    Each sample's mask (int64 ``(H, W)``) goes to ``predict`` on ``device``; its ``(H, W)``
    labels are scored with :class:`~refinenet.engine.metrics.SegmentationMetrics` (ignore
    pixels left out), accumulated over the samples. Returns a ``pandas.DataFrame`` with one
    row per stride: ``stride``, ``mIoU %``, ``boundary IoU %``, and ``IoU <class> %`` for each
    class, in percent.
    """
    import pandas as pd

    dev = torch.device(device)  # boundary IoU is much faster on a GPU
    meters = {
        s: SegmentationMetrics(dataset.num_classes, dataset.ignore_index,
                               class_names=dataset.class_names, device=dev)
        for s in strides
    }
    for i in indices:
        mask = dataset[i][1].to(dev)
        for s in strides:
            guess = predict(mask, s, dataset.num_classes, dataset.ignore_index)
            meters[s].update(guess[None], mask[None])
    rows = []
    for s in strides:
        r = meters[s].compute()
        rows.append({
            "stride": s,
            "mIoU %": 100 * r["miou"],
            "boundary IoU %": 100 * r["boundary_iou"],
            **{f"IoU {c} %": 100 * v for c, v in zip(dataset.class_names, r["iou"])},
        })
    return pd.DataFrame(rows)


def oracle_figure(table, class_names: Sequence[str], palette: Sequence[Sequence[int]], *,
                  thin: Sequence[str] = (), fontsize: float = 13):
    """Two line charts of the oracle's scores against the stride (log 2 axis, ticks ``1/s``).

    ``table`` is :func:`oracle_scores`'s frame indexed by ``stride``. Left: ``IoU <class> %``
    of each class in its palette colour (thick lines for the classes in ``thin``); right: the
    ``mIoU %`` and ``boundary IoU %``. The class legend sits below the left axes, off the
    lines. Every text is ``fontsize`` pt: 12 px or more once the book shrinks the 9-inch
    figure to its 688 px column. Returns the matplotlib figure (two axes).
    """
    import matplotlib.pyplot as plt

    strides = list(table.index)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.8), layout="constrained")
    for c, rgb in zip(class_names, palette):
        style = dict(lw=2.2) if c in thin else dict(lw=1, alpha=0.6)
        axes[0].plot(strides, table[f"IoU {c} %"], ".-", color=np.array(rgb) / 255, label=c,
                     **style)
    axes[0].set_title("oracle IoU per class (thick: thin classes)", fontsize=fontsize)
    axes[1].plot(strides, table["mIoU %"], "o-", label="mean IoU")
    axes[1].plot(strides, table["boundary IoU %"], "o-", label="boundary IoU")
    axes[1].set_title("oracle, averaged over classes", fontsize=fontsize)
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(strides, [f"1/{s}" for s in strides])
        ax.set_xlabel("resolution of the prediction", fontsize=fontsize)
        ax.set_ylabel("%", fontsize=fontsize)
        ax.set_ylim(0, 101)
        ax.tick_params(labelsize=fontsize)
    # The class legend goes below the axes, clear of the lines it names.
    axes[0].legend(ncol=3, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.21),
                   fontsize=fontsize)
    axes[1].legend(frameon=False, fontsize=fontsize)
    return fig


def change_phrase(before: float, after: float, *, digits: int = 1) -> str:
    """How a percentage moves, as a clause: ``"falls from 80.0% to 20.0%"``, ``"rises from
    ..."``, or ``"stays at 0.0%"`` when both values print the same at ``digits`` decimals."""
    a, b = f"{before:.{digits}f}", f"{after:.{digits}f}"
    if a == b:
        return f"stays at {a}%"
    return f"{'falls' if after < before else 'rises'} from {a}% to {b}%"



def thin_summary(table, thin: Sequence[str], class_names: Sequence[str], *, fine: int = 4,
                 coarse: int = 32, digits: int = 1) -> str:
    """What going from stride ``fine`` to ``coarse`` costs the classes in ``thin`` beside the
    other classes of ``class_names``, as a clause computed from :func:`oracle_scores`'s frame
    (indexed by ``stride``): the mean over each group of the ``IoU <class> %`` columns.

    ``"the thin classes lose the most: their mean IoU falls from a% to b%, that of the other
    classes from c% to d%"`` when the thin classes' mean drops by more points than the
    others'; otherwise ``"the mean IoU of the thin classes <change>, that of the other
    classes <change>"`` (:func:`change_phrase`), which holds whatever the numbers."""
    thin = [c for c in class_names if c in thin]
    rest = [c for c in class_names if c not in thin]
    if not thin or not rest:
        raise ValueError("thin_summary needs thin classes and other classes")

    def mean(names, stride):
        return float(table.loc[stride, [f"IoU {c} %" for c in names]].mean())

    a, b = mean(thin, fine), mean(thin, coarse)
    c, d = mean(rest, fine), mean(rest, coarse)
    lost_thin = round(a, digits) - round(b, digits)
    lost_rest = round(c, digits) - round(d, digits)
    if lost_thin > lost_rest and lost_thin > 0:
        return (f"the thin classes lose the most: their mean IoU falls from {a:.{digits}f}% "
                f"to {b:.{digits}f}%, that of the other classes "
                f"{change_phrase(c, d, digits=digits).removeprefix('falls ')}")
    return (f"the mean IoU of the thin classes {change_phrase(a, b, digits=digits)}, that of "
            f"the other classes {change_phrase(c, d, digits=digits)}")
