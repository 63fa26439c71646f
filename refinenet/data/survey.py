"""A first look at a data set (notebook 2): its splits at one size, evenly spread samples, the
table of data sets, and how the labelled pixels are shared among the classes.

.. code-block:: python

    from refinenet.data import survey

    splits = survey.load_splits("synthetic", ("train", "val"), size=(96, 128), scenes=16)
    pixels, seen = survey.class_counts(splits["val"], survey.spread_indices(16, 4))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from . import build_dataset
from .base import SegmentationDataset

__all__ = ["SIZE_COLUMN", "class_counts", "class_share_figure", "counted_sentence",
           "datasets_table", "full_size_sentence", "load_splits", "spread_indices"]

#: The size column of :func:`datasets_table`; non-breaking spaces keep "(H × W)" on one line.
SIZE_COLUMN = "loaded at (H\u00a0×\u00a0W)"


def load_splits(name: str, splits: Sequence[str], *, size: Sequence[int] | None = None,
                scenes: int | None = None) -> dict[str, SegmentationDataset]:
    """Splits ``splits`` of data set ``name``, each loaded at ``size`` (``(H, W)``; ``None``:
    the data set's own size). ``scenes`` is the generator's number of scenes per split (other
    data sets ignore it). Returns ``{split: dataset}`` in the order of ``splits``."""
    kwargs = {} if size is None else {"size": tuple(size)}
    if name == "synthetic" and scenes is not None:
        kwargs["n"] = scenes
    return {split: build_dataset(name, split, **kwargs) for split in splits}


def spread_indices(n_total: int, limit: int | None) -> list[int]:
    """``limit`` indices spread evenly over ``0 .. n_total - 1`` (both ends included), sorted;
    all ``n_total`` of them when ``limit`` is ``None`` or not smaller than ``n_total``."""
    if limit is None or limit >= n_total:
        return list(range(n_total))
    spread = np.linspace(0, n_total - 1, limit).round().astype(int)
    return sorted(set(spread.tolist()))


def datasets_table(sets: Mapping[str, Mapping[str, SegmentationDataset]]):
    """One row per data set of ``sets`` (``{name: {split: dataset}}``): ``data set``,
    ``classes``, ``ignore label``, ``<split> images`` for each split, and :data:`SIZE_COLUMN`
    (the size of the first training mask, ``"H × W"`` with non-breaking spaces). Returns a
    ``pandas.DataFrame``."""
    import pandas as pd

    rows = []
    for name, splits in sets.items():
        ds = splits["train"]
        h, w = ds[0][1].shape
        rows.append({
            "data set": name,
            "classes": ds.num_classes,
            "ignore label": ds.ignore_index,
            **{f"{s} images": len(split) for s, split in splits.items()},
            SIZE_COLUMN: f"{h}\u00a0×\u00a0{w}",
        })
    return pd.DataFrame(rows)


def full_size_sentence(loaded: Sequence[int], full: Sequence[int] = (360, 480)) -> str:
    """What loading CamVid at ``full`` (``(H, W)``, its native size) instead of ``loaded``
    changes for the oracle, as one sentence: a thin structure grows with the image, so the
    oracle loses less at every stride (or, already at that size, nothing changes)."""
    ratio = full[0] / loaded[0]
    size = f"{full[0]} × {full[1]}"
    if abs(ratio - 1) < 1e-9:
        return (f"This page already loads the images at {size}, so expect the same "
                "numbers.")
    here = f"{loaded[0]} × {loaded[1]}"
    if ratio > 1:
        side, lose = f"{ratio:.3g} times as long as", "less"
    else:
        side, lose = f"{1 / ratio:.3g} times shorter than", "more"
    return (f"At {size}, every side is {side} on this page ({here}). On CamVid a thin "
            f"structure grows and shrinks with the image, so the oracle loses {lose} at "
            "every stride than at the size of this page; the thin classes still fall first "
            "as the stride grows.")


def counted_sentence(counted: Mapping[str, int], totals: Mapping[str, int]) -> str:
    """Which images of each split a count covers, as one sentence: ``counted`` and ``totals``
    map each split to the number of images counted and to the split's size (the counted ones
    spread evenly over the split, as :func:`spread_indices` picks them)."""
    if all(counted[s] >= totals[s] for s in counted):
        return "They count every image of each split."
    if len(set(counted.values())) == 1 and len(set(totals.values())) == 1:
        n, total = next(iter(counted.values())), next(iter(totals.values()))
        return (f"They count {n} of the {total} images of each split, spread evenly over "
                f"it, so the images % go in steps of {100 / n:.3g}.")
    parts = [f"all {totals[s]} {s} images" if counted[s] >= totals[s]
             else f"{counted[s]} of the {totals[s]} {s} images" for s in counted]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"They count {listed}, spread evenly over each split."


def class_counts(dataset: SegmentationDataset, indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Count the labels of samples ``indices`` of ``dataset``.

    Returns ``(pixels, seen)``, both float64 ``(num_classes,)``: the number of pixels of each
    class, and the fraction of the samples in which the class appears at all. Ignored pixels
    count in neither.
    """
    if len(indices) == 0:
        raise ValueError("class_counts needs at least one sample index")
    # bins up to the ignore label, so that it is counted apart and then dropped
    n_bins = max(dataset.num_classes, dataset.ignore_index + 1)
    total = torch.zeros(n_bins, dtype=torch.float64)
    seen = torch.zeros(dataset.num_classes, dtype=torch.float64)
    for i in indices:
        c = torch.bincount(dataset[i][1].flatten(), minlength=n_bins).double()
        total += c
        seen += (c[: dataset.num_classes] > 0).double()
    return total[: dataset.num_classes].numpy(), (seen / len(indices)).numpy()


def class_share_figure(stats, splits: Sequence[str], *, fontsize: float = 11):
    """Bar chart of each class's share of the labelled pixels, one bar per split, log scale.

    ``stats`` is a ``pandas.DataFrame`` with a ``class`` column and a ``<split> pixels %``
    column for each of ``splits``. The log axis has a tick at every power of ten that the
    bars span, labelled as a plain number (``0.1``, ``1``, ``10``, ``100``). Every text is
    ``fontsize`` pt (12 px or more once the book shrinks the figure to its column). Returns
    the matplotlib figure (one axes; its legend, in one row above the bars, names the
    splits).
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, ax = plt.subplots(figsize=(8.0, 3.4))
    shares = stats.set_index("class")[[f"{s} pixels %" for s in splits]]
    shares.columns = list(splits)
    shares.plot.bar(ax=ax, logy=True, width=0.8, color=[f"C{k}" for k in range(len(splits))])
    shown = shares.to_numpy(dtype=float)
    shown = shown[shown > 0]  # a share of 0 draws no bar on a log axis
    # the lowest tick strictly below the smallest bar, so that every bar shows
    low = np.floor(np.log10(shown.min()) - 1e-9) if shown.size else -1.0
    high = max(np.ceil(np.log10(shown.max())), low + 1) if shown.size else 2.0
    ticks = 10.0 ** np.arange(low, high + 1)
    ax.set_ylim(ticks[0], ticks[-1])
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("% of labelled pixels (log)", fontsize=fontsize)
    ax.set_xlabel("")
    ax.tick_params(labelsize=fontsize)
    for label in ax.get_xticklabels():
        label.set(rotation=30, ha="right", rotation_mode="anchor")
    # the legend sits above the bars, in one row, clear of every bar
    ax.legend(frameon=False, fontsize=fontsize, ncol=len(splits), loc="lower center",
              bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout()
    return fig
