"""What ``refinenet bench`` wrote into ``results/bench/``, as the performance chapter (notebook 08) reads it.

Every command writes a CSV and, next to it, a JSON file of the same stem holding the command line,
the wall time and the date. The step benchmarks (``cpu-study.csv``, ``cpu-paper.csv``, ...) share
one table layout; the others have their own: ``*-loader.csv`` (``--loader``), ``*-runs.csv`` and
``*-runs-each.csv`` (``--runs``), ``precision_parity.csv`` (``--parity``).

The page shows paths and commands without the machine's own folders: the repository root is cut
off, the home folder becomes ``~/`` and the system's scratch folder ``$TMPDIR/``
(:func:`shown`, :func:`command_text`).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BenchResults", "machine_paths", "shown", "command_text", "NOT_STEP_TIMINGS"]

#: Stems and stem endings of the CSVs that are not step timings.
NOT_STEP_TIMINGS = ("precision_parity", "-loader", "-runs", "-runs-each")


def machine_paths(root: str | os.PathLike | None = None) -> dict[str, str]:
    """This machine's folders (each ending in ``/``) -> how the page writes them: the repository
    root (``root``; None: the checkout this runs in) as nothing, the home folder as ``~/``, the
    scratch folder as ``$TMPDIR/``. The root comes first: it may lie inside the home folder."""
    if root is None:
        from ..study.runner import find_root

        root = find_root()
    return {f"{root}/": "", f"{Path.home()}/": "~/", f"{tempfile.gettempdir()}/": "$TMPDIR/"}


def shown(text, *, paths: dict[str, str] | None = None) -> str:
    """``text`` (a path or a command) with every folder of ``paths`` (default:
    :func:`machine_paths`) that starts a word replaced by its short form."""
    text = str(text)
    for path, short in (machine_paths() if paths is None else paths).items():
        # Only where a path starts: "/a/b/" does not hold the folder "/b/".
        text = re.sub(r"(?<![\w.~/-])" + re.escape(path), short, text)
    return text


def command_text(command: str | None, *, width: int = 79, paths: dict[str, str] | None = None) -> str:
    """``"command: ..."``: the shell command as the page shows it (:func:`shown`), its words
    quoted for the shell, continued with `` \\`` onto lines of at most ``width`` characters
    (indented by four). A missing command (the benchmark did not run from the command line)
    gives ``"command: None"`` (or the empty string after it)."""
    if not command:
        return f"command: {command}"
    lines = ["command:"]
    for word in map(shlex.quote, shlex.split(shown(command, paths=paths))):
        if len(lines[-1]) + 1 + len(word) > width - 3:  # room for " \"
            lines[-1] += " \\"
            lines.append("   ")
        lines[-1] += " " + word
    return "\n".join(lines)


@dataclass(frozen=True)
class BenchResults:
    """The folder of ``refinenet bench``'s CSVs (and their JSON files)."""

    folder: Path

    @classmethod
    def find(cls, folder: str | os.PathLike | None = None, *, start: str | os.PathLike | None = None):
        """``folder`` when given; else the nearest ``results/bench`` at or above ``start``
        (default: the working folder; a notebook runs in ``notebooks/``), else
        ``results/bench`` relative to ``start`` (a folder that may not exist: nothing measured)."""
        if folder is not None:
            return cls(Path(folder))
        here = Path(start) if start is not None else Path.cwd()
        for base in (here, *here.parents):
            if (base / "results" / "bench").is_dir():
                return cls(base / "results" / "bench")
        return cls(Path("results") / "bench" if start is None else here / "results" / "bench")

    @property
    def timing_files(self) -> list[Path]:
        """The step benchmarks' CSVs, sorted by name."""
        return sorted(
            p for p in self.folder.glob("*.csv")
            if p.stem != NOT_STEP_TIMINGS[0] and not p.stem.endswith(NOT_STEP_TIMINGS[1:])
        )

    @property
    def loader_files(self) -> list[Path]:
        """The ``--loader`` benchmarks' CSVs, sorted by name."""
        return sorted(self.folder.glob("*-loader.csv"))

    def timings(self):
        """All step benchmarks in one DataFrame, one row per (config, mode, path), in file order,
        plus a column ``label``: ``"<config> (<device>)"``, the row name of the page's tables.
        No files: an empty DataFrame."""
        import pandas as pd

        frames = [pd.read_csv(p) for p in self.timing_files]
        if not frames:
            return pd.DataFrame()
        bench = pd.concat(frames, ignore_index=True)
        bench["label"] = bench["config"] + " (" + bench["device"] + ")"
        return bench

    def loaders(self):
        """All ``--loader`` benchmarks in one DataFrame (no files: an empty one)."""
        import pandas as pd

        frames = [pd.read_csv(p) for p in self.loader_files]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def table(self, stem: str):
        """``<stem>.csv`` as a DataFrame."""
        import pandas as pd

        return pd.read_csv(self.folder / f"{stem}.csv")

    def meta(self, stem: str) -> dict | None:
        """The JSON file next to ``<stem>.csv`` (command, wall time, date, ...); None when the
        CSV is not there (that benchmark has not run)."""
        if not (self.folder / f"{stem}.csv").is_file():
            return None
        return json.loads((self.folder / f"{stem}.json").read_text())

    def commands(self, *, paths: dict[str, str] | None = None):
        """One row per step benchmark file: ``file``, its ``command`` (:func:`shown`; empty when
        it did not run from the command line), ``wall s`` and ``date``."""
        import pandas as pd

        rows = []
        for p in self.timing_files:
            meta = self.meta(p.stem)
            rows.append({
                "file": p.name,
                "command": shown(meta.get("command") or "", paths=paths),
                "wall s": meta.get("wall_s"),
                "date": meta.get("date"),
            })
        return pd.DataFrame(rows, columns=["file", "command", "wall s", "date"])

    def describe(self, *, width: int = 79, paths: dict[str, str] | None = None) -> str:
        """``"benchmark files in <folder>: a.csv, b.csv"`` (or ``none``), wrapped at ``width``."""
        files = ", ".join(p.name for p in self.timing_files) or "none"
        return textwrap.fill(f"benchmark files in {shown(self.folder, paths=paths)}: {files}", width)
