"""Every figure a notebook saves reads at MIN_TEXT_PX or more in the book's 688 px column."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from refinenet.study import readable  # noqa: E402
from refinenet.study.notebook import Study  # noqa: E402


def _figure(width_in: float, fontsize: float):
    fig, ax = plt.subplots(figsize=(width_in, 3))
    ax.plot([0, 1], [0, 1], label="line")
    ax.tick_params(labelsize=fontsize)
    ax.set_title("title", fontsize=fontsize)
    ax.legend(fontsize=fontsize)
    return fig


def test_a_wide_figure_is_shrunk_to_the_column_and_a_narrow_one_is_not_enlarged():
    wide = _figure(10, 12)
    width = readable._saved_width_in(wide)
    assert 688 / 150 < width < 10  # the tight box, not the canvas: wider than the column
    assert readable.text_px(wide, wide.axes[0].title) == pytest.approx(12 / 72 * 688 / width)
    narrow = _figure(3, 12)
    # 3 in at 150 dpi is about 450 px: shown at its own size, 12 pt = 25 px
    assert readable.text_px(narrow, narrow.axes[0].title) == pytest.approx(12 / 72 * 150)
    plt.close("all")


def test_small_text_fails_with_the_figure_the_text_and_the_fix():
    fig = _figure(10, 14)
    fig.axes[0].legend(fontsize=7)
    with pytest.raises(readable.FigureTooSmallError, match=rf"'03_training/curves'.*'line' [0-9.]+ px.*floor is {readable.MIN_TEXT_PX:g} px"):
        readable.check_readable(fig, name="03_training/curves")
    fig.axes[0].legend(fontsize=14)
    assert readable.check_readable(fig, name="03_training/curves") >= readable.MIN_TEXT_PX
    plt.close(fig)


def test_hidden_texts_do_not_count_and_shown_ones_do():
    fig, (image, plot) = plt.subplots(1, 2, figsize=(8, 3))
    image.imshow([[0, 1], [1, 0]])
    image.axis("off")
    image.tick_params(labelsize=2)  # an image panel's ticks are not drawn
    image.set_title("a picture", fontsize=14)
    plot.tick_params(labelsize=14)
    plot.text(0.5, 0.5, "", fontsize=1)  # empty
    plot.xaxis.label.set_text("x")
    plot.xaxis.label.set_fontsize(14)
    shown = {t.get_text() for t in readable.shown_texts(fig)}
    assert "a picture" in shown and "x" in shown
    assert readable.check_readable(fig) >= readable.MIN_TEXT_PX
    plot.text(0.5, 0.5, "note", fontsize=4)
    fig.legend(handles=[Patch(label="entry")], fontsize=14)
    assert {"note", "entry"} <= {t.get_text() for t in readable.shown_texts(fig)}
    with pytest.raises(readable.FigureTooSmallError, match="'note'"):
        readable.check_readable(fig)
    plt.close(fig)


def test_save_figure_refuses_an_unreadable_figure_and_writes_nothing(tmp_path):
    study = Study(name="01_x", profile="smoke", device="cpu", dataset="synthetic", dataset_note="",
                  output_dir=tmp_path, hardware="cpu")
    fig = _figure(10, 5)
    with pytest.raises(readable.FigureTooSmallError, match="'01_x/small'"):
        study.save_figure(fig, "small")
    assert not (tmp_path / "figures" / "small.png").exists()
    study.save_figure(_figure(8, 12), "fine")
    assert (tmp_path / "figures" / "fine.png").stat().st_size > 1000
    plt.close("all")
