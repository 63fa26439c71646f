"""A first look at a data set: splits, spread indices, the data-set table, class counts and the
class-share figure (refinenet.data.survey), and the example figure (refinenet.data.visual)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from refinenet.data.base import SegmentationDataset, to_sample  # noqa: E402
from refinenet.data.survey import (  # noqa: E402
    SIZE_COLUMN,
    full_size_sentence,
    class_counts,
    class_share_figure,
    counted_sentence,
    datasets_table,
    load_splits,
    spread_indices,
)
from refinenet.data.visual import example_figure, overlay  # noqa: E402
from refinenet.study.readable import MIN_TEXT_PX, check_readable  # noqa: E402

PALETTE = [(200, 0, 0), (0, 200, 0), (0, 0, 200)]


class Masks(SegmentationDataset):
    """Three classes, ignore 255; each image a fixed grey ramp, the masks as given."""

    num_classes = 3
    ignore_index = 255
    class_names = ["road", "pole", "sky"]
    palette = PALETTE

    def __init__(self, masks) -> None:
        super().__init__()
        self.masks = [torch.as_tensor(m, dtype=torch.long) for m in masks]

    def __len__(self) -> int:
        return len(self.masks)

    def load(self, index: int):
        h, w = self.masks[index].shape
        ramp = torch.arange(3 * h * w, dtype=torch.int64).reshape(3, h, w) * 7 % 256
        return to_sample(ramp.to(torch.uint8), self.masks[index])


MASKS = [
    [[0, 0, 1], [0, 255, 1]],  # road 3, pole 2, ignore 1
    [[0, 0, 0], [0, 0, 0]],  # road 6
    [[2, 2, 0], [255, 255, 1]],  # sky 2, road 1, pole 1, ignore 2
]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_spread_indices_keeps_both_ends_and_the_count():
    assert spread_indices(5, None) == [0, 1, 2, 3, 4]
    assert spread_indices(5, 5) == spread_indices(5, 9) == [0, 1, 2, 3, 4]
    assert spread_indices(10, 3) == [0, 4, 9]
    for n in range(2, 40):
        for limit in range(2, n):
            idx = spread_indices(n, limit)
            assert len(idx) == limit and idx[0] == 0 and idx[-1] == n - 1
            assert idx == sorted(set(idx))
            assert max(np.diff(idx)) - min(np.diff(idx)) <= 1  # evenly spread


def test_load_splits_sizes_the_generator():
    splits = load_splits("synthetic", ("train", "val"), size=(40, 48), scenes=3)
    assert list(splits) == ["train", "val"]
    assert [len(ds) for ds in splits.values()] == [3, 3]
    assert splits["val"].split == "val" and tuple(splits["val"][0][1].shape) == (40, 48)
    default = load_splits("synthetic", ("val",))  # no scenes: the generator's own count
    assert len(default["val"]) == 64 and default["val"].size == (128, 160)


def test_datasets_table_has_one_row_per_data_set():
    sets = {
        "masks": {"train": Masks(MASKS), "val": Masks(MASKS[:2]), "test": Masks(MASKS[:1])},
        "small": {"train": Masks([[[0]] * 4]), "val": Masks([]), "test": Masks([])},
    }
    table = datasets_table(sets)
    # non-breaking spaces: neither the header nor a size breaks inside "H × W"
    assert SIZE_COLUMN == "loaded at (H\u00a0×\u00a0W)"
    assert list(table.columns) == ["data set", "classes", "ignore label", "train images",
                                   "val images", "test images", SIZE_COLUMN]
    assert table.to_dict("records")[0] == {
        "data set": "masks", "classes": 3, "ignore label": 255, "train images": 3,
        "val images": 2, "test images": 1, SIZE_COLUMN: "2\u00a0×\u00a03",
    }
    assert table[SIZE_COLUMN].str.replace("\u00a0", " ").tolist() == ["2 × 3", "4 × 1"]


def test_class_counts_counts_pixels_and_presence_without_ignore():
    ds = Masks(MASKS)
    pixels, seen = class_counts(ds, [0, 1, 2])
    assert pixels.dtype == seen.dtype == np.float64
    assert pixels.tolist() == [10, 3, 2]  # the 3 ignore pixels count nowhere
    assert seen.tolist() == pytest.approx([1, 2 / 3, 1 / 3])
    pixels, seen = class_counts(ds, [1])
    assert pixels.tolist() == [6, 0, 0] and seen.tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match="at least one"):
        class_counts(ds, [])


def test_class_share_figure_draws_each_split_on_a_log_axis():
    stats = pd.DataFrame({
        "class": ["road", "pole", "sky"],
        "train pixels %": [80.0, 0.5, 19.5], "val pixels %": [70.0, 1.0, 29.0],
        "val images %": [100.0, 50.0, 100.0],
    })
    fig = class_share_figure(stats, ["train", "val"])
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["road", "pole", "sky"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "val"]
    heights = [[bar.get_height() for bar in bars] for bars in ax.containers]
    assert heights == [[80.0, 0.5, 19.5], [70.0, 1.0, 29.0]]
    # a labelled tick at each power of ten the bars span, written as a plain number
    assert list(ax.get_yticks()) == pytest.approx([0.1, 1, 10, 100])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.1", "1", "10", "100"]
    assert ax.get_ylim() == pytest.approx((0.1, 100))
    assert check_readable(fig) >= MIN_TEXT_PX  # ticks, label and legend in the book's column
    # the legend sits above the bars
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert ax.get_legend().get_window_extent(renderer).y0 >= ax.get_window_extent(renderer).y1


def test_class_share_figure_shows_a_bar_on_a_power_of_ten():
    stats = pd.DataFrame({"class": ["road", "pole"], "train pixels %": [99.9, 0.1]})
    fig = class_share_figure(stats, ["train"])
    (ax,) = fig.axes
    assert ax.get_ylim()[0] < 0.1  # the 0.1 bar still shows
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.01", "0.1", "1", "10", "100"]


def test_counted_sentence_names_the_images_counted():
    splits = {"train": 16, "val": 16, "test": 16}
    assert counted_sentence(splits, splits) == "They count every image of each split."
    some = counted_sentence({"train": 12, "val": 12, "test": 12}, splits)
    assert some == ("They count 12 of the 16 images of each split, spread evenly over it, so "
                    "the images % go in steps of 8.33.")
    mixed = counted_sentence({"train": 50, "val": 30, "test": 50},
                             {"train": 367, "val": 30, "test": 233})
    assert mixed == ("They count 50 of the 367 train images, all 30 val images and 50 of the "
                     "233 test images, spread evenly over each split.")


def test_example_figure_shows_images_and_their_overlaid_labels():
    ds = Masks(MASKS)
    fig = example_figure(ds, [0, 2], title="three classes", alpha=0.6)
    assert len(fig.axes) == 4 and fig.get_suptitle() == "three classes"
    top = [im for ax in fig.axes[:2] for im in ax.get_images()]
    bottom = [im for ax in fig.axes[2:] for im in ax.get_images()]
    for col, i in enumerate([0, 2]):
        image, mask = ds[i]
        blend = overlay(image, mask, PALETTE, alpha=0.6, ignore_index=255)
        assert np.array_equal(top[col].get_array(), image.permute(1, 2, 0).numpy())
        assert np.array_equal(bottom[col].get_array(), blend.permute(1, 2, 0).numpy())
    assert all(not ax.axison for ax in fig.axes)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["road", "pole", "sky"]
    for columns in ([0, 2], [0, 1, 2], [0, 1, 2, 0]):  # the legend grows with the width
        fig = example_figure(ds, columns, title="t")
        assert check_readable(fig) >= MIN_TEXT_PX
        fig.canvas.draw()  # and no image runs under the legend
        renderer = fig.canvas.get_renderer()
        right = max(ax.get_window_extent(renderer).x1 for ax in fig.axes)
        assert right <= fig.legends[0].get_window_extent(renderer).x0


def test_full_size_sentence_follows_the_loaded_size():
    cpu = full_size_sentence((180, 240))
    assert "2 times as long as on this page (180 × 240)" in cpu
    assert "loses less at every stride" in cpu
    smoke = full_size_sentence((96, 128))
    assert "3.75 times as long as on this page (96 × 128)" in smoke
    assert full_size_sentence((360, 480)).startswith("This page already loads")
    assert "loses more" in full_size_sentence((720, 960))
