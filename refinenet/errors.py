"""Exceptions shared across the package's areas, and the message for an unreadable torch file."""

from __future__ import annotations

import os

__all__ = ["CommandError", "torch_file_error"]

_ZIP = b"PK\x03\x04"  # torch.save's format since 1.6
_PICKLE = b"\x80"  # the legacy format: a pickle (protocol 2+)


class CommandError(Exception):
    """An error the command line reports as one line, without a traceback.

    Raised by the ``cli`` modules of each area; defined here rather than in
    :mod:`refinenet.cli`, which imports those modules.
    """


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def torch_file_error(what: str, path: str | os.PathLike, err: BaseException, expected: str) -> ValueError:
    """A one-line ``ValueError`` for a file ``torch.load`` failed on: names the file, says what
    it is not (judged from its first bytes: empty, not a torch file at all, or a damaged or
    refused one) and what was expected. ``what`` names the file's role (``"checkpoint"``)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError as read_err:
        return ValueError(f"{what} {path!r} cannot be read ({read_err.strerror}); expected {expected}")
    if not head:
        problem = "is empty, not a torch file"
    elif not head.startswith((_ZIP, _PICKLE)):
        problem = f"is not a torch file (it begins {head!r}: neither a zip archive nor a pickle)"
    elif "Weights only load failed" in str(err):
        problem = "is a torch file holding Python objects, not only tensors (a weights-only load refuses it)"
    else:
        problem = f"is a damaged or truncated torch file ({_first_line(err)})"
    return ValueError(f"{what} {path!r} {problem}; expected {expected}")
