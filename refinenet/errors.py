"""Exceptions shared across the package's areas."""

from __future__ import annotations

__all__ = ["CommandError"]


class CommandError(Exception):
    """An error the command line reports as one line, without a traceback.

    Raised by the ``cli`` modules of each area; defined here rather than in
    :mod:`refinenet.cli`, which imports those modules.
    """
