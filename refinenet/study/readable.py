"""How large a figure's text reads on the book's page, and the floor every saved figure meets.

The book shows a figure in a content column 688 px wide (at a 1280 px window). A PNG saved at
``dpi`` with a tight bounding box ``W`` inches wide is ``W * dpi`` px wide, shown at that width
or shrunk to the column, whichever is smaller, so a font of ``F`` pt reads at

    F / 72 * min(dpi, 688 / W)  px

on the page. :func:`check_readable` runs on every figure a notebook saves
(:meth:`refinenet.study.notebook.Study.save_figure`), so a figure whose smallest text would be
unreadable fails the notebook's execution, in CI too, instead of reaching the book.
"""

from __future__ import annotations

__all__ = ["COLUMN_PX", "MIN_TEXT_PX", "FigureTooSmallError", "check_readable", "shown_texts", "text_px"]

#: Width of the book's content column, in CSS pixels, at a 1280 px window.
COLUMN_PX = 688
#: The smallest text size (px on the page) a saved figure may show: tick labels, legends,
#: titles, annotations, labels in boxes.
MIN_TEXT_PX = 12.0  # the body text is 16 px


class FigureTooSmallError(ValueError):
    """A figure's text would read under :data:`MIN_TEXT_PX` pixels in the book."""


def shown_texts(fig) -> list:
    """Every non-empty text of ``fig`` that is drawn: titles, axis labels, the tick labels of
    axes that are on, texts and annotations placed on axes or on the figure, legend entries
    and titles, table cells."""
    texts = list(fig.texts)
    for legend in fig.legends:
        texts += [*legend.get_texts(), legend.get_title()]
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts += [ax.title, ax._left_title, ax._right_title, *ax.texts]
        if ax.axison:
            for axis in (ax.xaxis, ax.yaxis):
                if not axis.get_visible():
                    continue
                texts.append(axis.label)
                texts += [*axis.get_ticklabels(which="both")]
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            texts += [*legend.get_texts(), legend.get_title()]
        for table in ax.tables:
            texts += [cell.get_text() for cell in table.get_celld().values()]
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def text_px(fig, text, *, dpi: float = 150, width_in: float | None = None) -> float:
    """The size, in px on the page, of ``text`` in ``fig`` saved at ``dpi`` with a tight
    bounding box (``width_in``: the saved width in inches; measured when None)."""
    if width_in is None:
        width_in = _saved_width_in(fig)
    return text.get_fontsize() / 72 * min(dpi, COLUMN_PX / width_in)


def _saved_width_in(fig) -> float:
    fig.canvas.draw()
    # bbox_inches="tight" adds pad_inches (0.1 by default) on each side.
    return fig.get_tightbbox(fig.canvas.get_renderer()).width + 0.2


def check_readable(fig, *, name: str = "figure", dpi: float = 150, min_px: float = MIN_TEXT_PX) -> float:
    """Return the smallest text size (px on the page) of ``fig``; raise
    :class:`FigureTooSmallError` naming the smallest texts when it is under ``min_px``."""
    texts = shown_texts(fig)
    if not texts:
        return float("inf")
    width_in = _saved_width_in(fig)
    sizes = sorted(((text_px(fig, t, dpi=dpi, width_in=width_in), t.get_text()) for t in texts))
    smallest = sizes[0][0]
    if smallest < min_px:
        worst = ", ".join(f"{label.strip()[:30]!r} {px:.1f} px" for px, label in sizes[:3])
        raise FigureTooSmallError(
            f"figure {name!r} is {width_in:.1f} in wide and would show text at {smallest:.1f} px in the "
            f"book's {COLUMN_PX} px column (smallest: {worst}); the floor is {min_px:g} px. Raise those "
            f"font sizes to at least {min_px * 72 / min(dpi, COLUMN_PX / width_in):.1f} pt, or make the "
            "figure narrower (fewer panels a row)."
        )
    return smallest
