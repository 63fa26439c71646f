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

__all__ = ["SIZE_COLUMN", "class_counts", "class_share_figure", "datasets_table",
           "full_size_sentence", "load_splits", "spread_indices"]

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


def class_share_figure(stats, splits: Sequence[str]):
    """Bar chart of each class's share of the labelled pixels, one bar per split, log scale.

    ``stats`` is a ``pandas.DataFrame`` with a ``class`` column and a ``<split> pixels %``
    column for each of ``splits``. Returns the matplotlib figure (one axes; its legend names
    the splits).
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 3.4))
    shares = stats.set_index("class")[[f"{s} pixels %" for s in splits]]
    shares.columns = list(splits)
    shares.plot.bar(ax=ax, logy=True, width=0.8, color=[f"C{k}" for k in range(len(splits))])
    ax.set_ylabel("% of labelled pixels (log)")
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=30)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig
