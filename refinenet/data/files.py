"""Files the data area writes: permissions from the umask, and atomic replacement.

``tempfile.mkstemp`` creates files 0600 and ``tempfile.mkdtemp`` directories 0700, whatever
the umask, so a pack, a hash cache or a downloaded dataset written through them would be
private to its writer. Files written here get the mode an ordinary ``open``/``mkdir`` would
give: 0666 (files) or 0777 (directories) less the process's umask.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "current_umask", "umask_mode"]


def current_umask() -> int:
    """The process's umask, read without changing it where Linux allows (``/proc``), else
    set and restored at once."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def umask_mode(directory: bool = False) -> int:
    """0666 (0777 for a directory) less the umask: what ``open`` and ``mkdir`` would give."""
    return (0o777 if directory else 0o666) & ~current_umask()


def atomic_write(path: str | os.PathLike, write: Callable[[IO], object], *, text: bool = False) -> Path:
    """Write ``path`` through ``write(file)`` into a temporary file beside it, give it the
    umask's mode, then rename it over ``path``: readers see the old file or the new one, never
    a torn one, and a failure leaves no temporary file. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w" if text else "wb") as f:
            write(f)
        os.chmod(tmp, umask_mode())  # mkstemp makes it owner-only
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
