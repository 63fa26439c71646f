"""tqdm progress bars that stay quiet where nobody watches them live.

In a terminal the bar refreshes twice a second. Where stderr is not a terminal (papermill,
CI logs, ``nohup``) every refresh would become a line of output, so the bar refreshes at most
once a minute there (plus its final line). Plain ``tqdm`` rather than ``tqdm.auto``: notebook
widgets would be stored in executed notebooks.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

__all__ = ["progress_bar", "interactive"]


def interactive() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress_bar(
    iterable=None, *, total: int | None = None, initial: int = 0, desc: str = "", disable: bool = False, live: bool | None = None
) -> tqdm:
    """A tqdm bar on stderr; ``live=None`` refreshes often only in a terminal."""
    live = interactive() if live is None else live
    interval = 0.5 if live else 60.0
    return tqdm(
        iterable,
        total=total,
        initial=initial,
        desc=desc,
        disable=disable,
        file=sys.stderr,
        mininterval=interval,
        # tqdm's monitor thread refreshes a bar silent for maxinterval (10 s by default).
        maxinterval=max(10.0, interval),
        dynamic_ncols=live,
        ascii=not live,
        leave=True,
    )
