"""Where datasets and packed caches are looked for.

Data roots, in order (the first that holds the dataset wins):

1. the ``root`` argument (then nothing else is tried);
2. ``$REFINENET_DATA/<name>``;
3. ``data/<name>`` in the working directory;
4. ``../shared/data/<name>`` from the working directory;
5. the same two relative to the repository, when the package runs from a source checkout
   (so a notebook started in ``notebooks/`` finds the same data as ``make`` in the root).

Packed caches (``refinenet data pack``) are written to ``$REFINENET_CACHE`` if set, else
``data/cache`` in the working directory, and looked for there, in the repository's
``data/cache``, and in ``<root>/packed``. Read-only data (``../shared``) is never written to.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dirs", "data_roots", "default_cache_dir", "project_root"]


def project_root() -> Path | None:
    """The source checkout holding this package, or None for an installed package."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def _dedup(paths: list[Path]) -> list[Path]:
    seen, out = set(), []
    for p in paths:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def data_roots(name: str) -> list[Path]:
    """Candidate roots for dataset ``name`` (without an explicit root), in search order."""
    out = []
    if os.environ.get("REFINENET_DATA"):
        out.append(Path(os.environ["REFINENET_DATA"]) / name)
    out += [Path("data") / name, Path("..") / "shared" / "data" / name]
    proj = project_root()
    if proj is not None:
        out += [proj / "data" / name, proj.parent / "shared" / "data" / name]
    return _dedup(out)


def default_cache_dir() -> Path:
    """Where packs are written: ``$REFINENET_CACHE`` or ``data/cache``."""
    env = os.environ.get("REFINENET_CACHE")
    return Path(env) if env else Path("data") / "cache"


def cache_dirs(root: Path | None = None) -> list[Path]:
    """Where packs are looked for, in order."""
    out = [default_cache_dir()]
    proj = project_root()
    if proj is not None:
        out.append(proj / "data" / "cache")
    if root is not None:
        out.append(Path(root) / "packed")
    return _dedup(out)
