"""The training augmentation in words and in a figure (refinenet.data.augmentation)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from refinenet.data.augmentation import augmentation_figure, describe_augmentation  # noqa: E402
from refinenet.data.synthetic import SyntheticScenes  # noqa: E402
from refinenet.data.visual import colorize  # noqa: E402
from refinenet.engine.config import DataSection  # noqa: E402
from refinenet.study.readable import MIN_TEXT_PX, check_readable  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_the_released_recipe_in_words():
    words = describe_augmentation(DataSection(size=(180, 240)))
    assert words == {
        "crop": "180 × 240",  # no crop size: the loaded size
        "scale": "0.7 and 1.3",
        "scale_released": "as in the released code",
        "flip": "a left-right flip with probability one half",
        "jitter": "There is no colour jitter, as in the released code.",
    }


def test_a_changed_recipe_in_words():
    data = DataSection(size=(180, 240), crop_size=(96, 128), scale_range=(0.5, 2.0), hflip=False,
                       color_jitter=0.25)
    words = describe_augmentation(data)
    assert words["crop"] == "96 × 128" and words["scale"] == "0.5 and 2"
    assert words["scale_released"] == "the released code: 0.7 and 1.3"  # only where it differs
    assert words["flip"] == "no flip"
    assert words["jitter"].startswith("The recipe adds a colour jitter of strength 0.25:")
    assert words["jitter"].endswith("drawn from [0.75, 1.25] per image.")
    assert describe_augmentation(DataSection())["crop"] == "the image's own size"


def test_augmentation_figure_wraps_after_per_row_panels():
    """Six panels, three a row: two rows of images each above its row of labels, every title
    in place; the figure is 3 panels wide, so its titles keep their size on the page."""
    ds = SyntheticScenes(n=1, size=(16, 20))
    image, mask = ds.load(0)
    panels = [(image, mask, f"epoch {i}") for i in range(5)]
    fig = augmentation_figure(panels, ds, per_row=3)
    assert fig.get_size_inches()[0] == pytest.approx(3 * 2.6)
    assert len(fig.axes) == 10  # 5 images + 5 masks; the short row's sixth place removed
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == [f"epoch {i}" for i in range(5)]
    rows = sorted({round(ax.get_position().y0, 3) for ax in fig.axes}, reverse=True)
    assert len(rows) == 4  # images, labels, images, labels
    # a labels row sits closer to its images than to the next row of images
    tops = sorted({round(ax.get_position().y1, 3) for ax in fig.axes}, reverse=True)
    within, between = rows[0] - tops[1], rows[1] - tops[2]
    assert between > 2 * within
    assert check_readable(fig) >= MIN_TEXT_PX  # titles and row names
    # each row is named at the left of its first panel: images, then their labels
    named = [(ax.texts[0].get_text(), round(ax.get_position().y0, 3))
             for ax in fig.axes if ax.texts]
    assert named == [("image", rows[0]), ("labels", rows[1]), ("image", rows[2]),
                     ("labels", rows[3])]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        for text in ax.texts:  # left of the images, inside the figure
            box = text.get_window_extent(renderer)
            assert 0 <= box.x0 and box.x1 <= ax.get_window_extent(renderer).x0


def test_augmentation_figure_shows_each_panel_and_its_labels():
    ds = SyntheticScenes(n=2, size=(32, 40))
    image, mask = ds.load(1)
    small = (image[:, :16, :20].as_subclass(torch.Tensor), mask[:16, :20].clone())
    small[1][0, 0] = ds.ignore_index
    panels = [(image, mask, "as loaded"), (*small, "epoch 0")]
    fig = augmentation_figure(panels, ds)
    assert len(fig.axes) == 4 and all(not ax.axison for ax in fig.axes)
    top, bottom = fig.axes[:2], fig.axes[2:]
    assert [ax.get_title() for ax in top] == ["as loaded", "epoch 0"]
    for (img, labels, _), up, down in zip(panels, top, bottom):
        (shown,) = up.get_images()
        assert np.array_equal(shown.get_array(), img.permute(1, 2, 0).numpy())
        (coloured,) = down.get_images()
        want = colorize(labels, ds.palette, ignore_index=ds.ignore_index)
        assert np.array_equal(coloured.get_array(), want.permute(1, 2, 0).numpy())
    assert (bottom[1].get_images()[0].get_array()[0, 0] == 0).all()  # ignore: black
