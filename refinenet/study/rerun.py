"""How to rerun each chapter of a profile, with times measured by its pages and its ledger.

.. code-block:: bash

    refinenet study rerun --profile smoke

prints, for each notebook of ``notebooks/``, the commands that re-execute its page by hand
(jupytext, then papermill with the page's own ``parameters.yaml``) into ``out/``, never into
``results/``; the page's wall time (its ``metadata.json``); the training time of the runs it
reads (their ledger entries); and how many of those runs the ledger holds. Papermill trains
nothing: a notebook whose runs are missing stops with
:class:`~refinenet.study.experiments.MissingRuns`, and ``refinenet study run --profile
<profile> --only NN`` trains them. :func:`chapter_table` builds the table, :func:`format_table` prints it.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Chapter", "RerunTable", "chapter_table", "format_table", "main", "planned_runs", "rerun_command",
           "run_minutes"]


@dataclass
class Chapter:
    """One notebook of the study, as it can be rerun from its profile's results folder."""

    notebook: str
    #: the shell lines that re-execute its page into ``out/`` (None: no finished page)
    command: list[str] | None
    #: what trains its missing runs and executes its page (the study runner)
    train_command: str
    #: the page's wall time in minutes (its ``metadata.json``); None without a finished page
    page_minutes: float | None
    #: the training time of its runs in the ledger, in minutes (:func:`run_minutes`, summed);
    #: None when the ledger holds none of them
    training_minutes: float | None
    #: the runs it reads (None: a run that waits for the sweep's rate or the pilot's recipe)
    run_ids: list[str | None]
    #: those of its runs the ledger holds
    in_ledger: list[str]
    #: runs in the ledger without a measured training time (diverged runs)
    untimed: int = 0
    #: the pages whose tables it reads from the results folder (its ``gathers`` parameter)
    gathers: tuple[str, ...] = ()

    @property
    def missing(self) -> int:
        return len(self.run_ids) - len(self.in_ledger)


@dataclass
class RerunTable:
    """:func:`chapter_table`'s answer: the chapters of one profile's results folder."""

    profile: str
    #: the results folder, relative to the repository root where it lies inside it
    results: str
    chapters: list[Chapter]
    #: training minutes of every distinct run of the chapters that the ledger holds (None: none)
    training_minutes: float | None = None
    #: the machines that measured these times (pages and entries), as "name (device)"
    machines: list[str] = field(default_factory=list)


def run_minutes(entry) -> float | None:
    """Minutes of the machine one ledger entry took, as measured (its training, validations and
    test scoring in the share of the machine it held: :func:`refinenet.study.pilot.measured_minutes`).
    None for a run without a measured training time (one that diverged)."""
    from .pilot import measured_minutes

    return measured_minutes(entry) if entry.summary.get("train_seconds") else None


def rerun_command(notebook: str, results: str, out: str = "out") -> list[str]:
    """The shell lines, run from the repository root, that re-execute ``notebook``'s page of
    ``results`` (``results/<name>``) with that page's parameters into ``out/<name>/``: the
    executed notebook ``<notebook>.ipynb`` and its tables and figures in ``<notebook>/``.
    ``out`` must be a relative folder outside ``results/`` (``ValueError`` otherwise)."""
    dest = f"{_check_out(out).as_posix()}/{Path(results).name}/{notebook}"
    return [
        f"jupytext --to ipynb notebooks/{notebook}.py \\",
        f"  -o {dest}.ipynb",
        f"papermill {dest}.ipynb \\",
        f"  {dest}.ipynb \\",
        f"  -f {Path(results).as_posix()}/{notebook}/parameters.yaml \\",
        f"  -p output_dir {dest}",
    ]


def _check_out(out: str) -> Path:
    path = Path(out)
    if not path.parts or path.is_absolute() or path.parts[0] == "results" or ".." in path.parts:
        raise ValueError(f"out must be a relative folder outside results/, got {out!r}")
    return path


def planned_runs(profile, root: Path, results: Path, dataset: str, device: str) -> dict[str, list[str | None]]:
    """``{notebook: its run ids}`` from the profile's plan over the ledger ``results/runs``,
    the runs each notebook reads (None: a run that waits for the sweep's rate or the pilot's
    recipe, so its id is not known yet)."""
    from .ledger import Ledger
    from .runner import notebook_wants
    from .training import StudyRuns

    wants = notebook_wants(profile, root)
    runs = StudyRuns(profile, dataset, device, Ledger(results / "runs"), wants, root=root,
                     checkpoints=root / "runs" / results.name)
    plan = runs.plan()
    return {n: [r.run_id if r.ready else None for r in plan.for_notebook(n)] for n in wants}


def _read(path: Path) -> dict:
    """A page's ``metadata.json`` or ``parameters.yaml`` ({} when missing or unreadable)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _machine(hardware: Mapping) -> str:
    name = hardware.get("gpu") if hardware.get("device") == "cuda" else hardware.get("cpu")
    cores = f", {hardware['cpu_count']} cores" if hardware.get("cpu_count") and hardware.get("device") != "cuda" else ""
    return f"{name or 'unknown'} ({hardware.get('device', '?')}{cores})"


def chapter_table(
    profile,
    root: str | Path | None = None,
    *,
    results: str | Path | None = None,
    planned: Mapping[str, Sequence[str | None]] | None = None,
    out: str = "out",
) -> RerunTable:
    """The rerun table of ``profile``: one :class:`Chapter` per notebook of ``root/notebooks``.

    ``results``: the profile's folder (default: ``results/<name>``, named as the runner names
    it); ``planned``: ``{notebook: run ids}`` (default: :func:`planned_runs` on the data set
    and device of the pages' ``parameters.yaml``, else on those the runner would choose here).
    Times come from the pages' ``metadata.json`` and the ledger's entries, never from a guess.
    """
    from .ledger import Ledger
    from .plan import declared_values
    from .profiles import results_name
    from .runner import find_notebooks, find_root, resolve_dataset, resolve_device

    _check_out(out)
    root = find_root() if root is None else Path(root).resolve()
    notebooks = find_notebooks(root / "notebooks")
    size = profile.study.base("camvid", "cpu").data.size
    asked = str(profile.common.get("dataset", "auto"))
    if results is None:
        results = root / "results" / results_name(profile, resolve_dataset(asked, size)[0])
    results = Path(results) if Path(results).is_absolute() else root / results
    shown = results.relative_to(root).as_posix() if results.is_relative_to(root) else str(results)
    if planned is None:
        given = next((p for n in notebooks if (p := _read(results / n.stem / "parameters.yaml"))), {})
        dataset = given.get("dataset") or resolve_dataset(asked, size)[0]
        device = given.get("device") or resolve_device("auto")
        planned = planned_runs(profile, root, results, dataset, device)
    ledger = Ledger(results / "runs")
    chapters, machines = [], {}
    for path in notebooks:
        name = path.stem
        meta = _read(results / name / "metadata.json")
        page = (meta.get("status") == "ok" and (results / f"{name}.ipynb").is_file()
                and (results / name / "parameters.yaml").is_file())
        if page and meta.get("hardware"):
            machines[_machine(meta["hardware"])] = None
        ids = list(planned.get(name, []))
        have = [i for i in ids if i is not None and i in ledger]
        minutes = [run_minutes(ledger.get(i)) for i in have]
        gathers = tuple(declared_values(path).get("gathers") or ())
        only = ",".join(sorted({g[:2] for g in gathers} | {name[:2]}))
        wall = meta.get("wall_time_s")
        chapters.append(Chapter(
            notebook=name,
            command=rerun_command(name, shown, out) if page else None,
            train_command=f"refinenet study run --profile {profile.ref} --only {only}",
            page_minutes=float(wall) / 60 if page and wall is not None else None,
            training_minutes=sum(m for m in minutes if m is not None) if have else None,
            run_ids=ids,
            in_ledger=have,
            untimed=sum(m is None for m in minutes),
            gathers=gathers,
        ))
    distinct = sorted({i for c in chapters for i in c.in_ledger})
    for run_id in distinct:
        machines[_machine(ledger.get(run_id).machine)] = None
    total = sum(m for m in (run_minutes(ledger.get(i)) for i in distinct) if m is not None) if distinct else None
    return RerunTable(profile.name, shown, chapters, total, list(machines))


def _duration(minutes: float | None) -> str:
    if minutes is None:
        return "-"
    if minutes < 1.5:
        return f"{minutes * 60:.0f} s"
    if minutes < 10:
        return f"{minutes:.1f} min"
    return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def format_table(table: RerunTable) -> str:
    """:func:`chapter_table`'s table and commands as text, every line at most 77 characters
    (the width of the book's code column) but for paths longer than the profile's own."""
    chapters = table.chapters
    total = "all (distinct runs)"
    width = max(len(total), *(len(c.notebook) for c in chapters))
    wrap = textwrap.TextWrapper(width=77, initial_indent="# ", subsequent_indent="# ", break_long_words=False,
                                break_on_hyphens=False)
    lines = wrap.wrap(f"profile {table.profile}: pages in {table.results}/, ledger in {table.results}/runs/; "
                      f"measured on {', '.join(table.machines) or 'nothing yet'}")
    lines += ["", f"{'chapter':<{width}}  {'page':>7}  {'training':>8}  runs in ledger"]
    for c in chapters:
        untimed = f" ({c.untimed} untimed)" if c.untimed else ""
        lines.append(f"{c.notebook:<{width}}  {_duration(c.page_minutes):>7}  {_duration(c.training_minutes):>8}  "
                     f"{len(c.in_ledger):>4} / {len(c.run_ids)}{untimed}")
    pages = [c.page_minutes for c in chapters if c.page_minutes is not None]
    known = {i for c in chapters for i in c.run_ids if i is not None}
    waiting = any(i is None for c in chapters for i in c.run_ids)
    lines.append(f"{total:<{width}}  {_duration(sum(pages) if pages else None):>7}  "
                 f"{_duration(table.training_minutes):>8}  "
                 f"{len({i for c in chapters for i in c.in_ledger}):>4} / {len(known)}{'+' if waiting else ''}")
    if waiting:
        lines += wrap.wrap("+: and runs that wait for a choice: the sweep's rate or the pilot's recipe (each chapter's "
                           "count includes its own)")
    lines += [""] + wrap.wrap(
        "page: the notebook's wall time (metadata.json); training: the machine time of the runs it reads "
        "that the ledger holds (training, validations and test scoring of each entry). From the repository "
        f"root, the commands below write into out/; they train nothing and write nothing into {table.results}/.")
    out = {c.command[1].split()[-1].rsplit("/", 1)[0] for c in chapters if c.command}
    lines += [f"mkdir -p {d}" for d in sorted(out)]
    for c in chapters:
        lines.append("")
        if c.command is None:
            runs = (f"{len(c.in_ledger)} of {len(c.run_ids)} runs in the ledger; this trains the missing "
                    "ones and executes it there" if c.run_ids else "it reads no runs; this executes it there")
            lines += wrap.wrap(f"{c.notebook}: no page in {table.results}/ yet ({runs}):")
            lines.append(c.train_command)
            continue
        note = c.notebook
        if c.missing:
            note += (f": {c.missing} of {len(c.run_ids)} runs are not in the ledger, so papermill stops at "
                     f"the first cell that reads them (MissingRuns); `{c.train_command}` trains them")
        if c.gathers:
            note += f"; reads the tables of {', '.join(g[:2] for g in c.gathers)} in {table.results}/"
        lines += wrap.wrap(note) + c.command
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the rerun table's command (``python -m refinenet.study.rerun``)."""
    parser.add_argument("--profile", default=None,
                        help="smoke, cpu, gpu or a .yaml file (default: gpu with CUDA, else cpu)")
    parser.add_argument("--results", default=None, help="the profile's results folder (default: results/<name>)")
    parser.add_argument("--out", default="out", help="where the commands write (a relative folder outside results/)")
    parser.add_argument("--root", default=None, help="repository root (default: found from the current folder)")


def run(args: argparse.Namespace) -> int:
    """Print the rerun table of ``args.profile`` (see :func:`add_arguments`); a repository or
    notebook that cannot be found is a :class:`~refinenet.errors.CommandError`."""
    from ..errors import CommandError
    from .profiles import default_profile, load_profile
    from .runner import StudyError, find_root

    profile = load_profile(args.profile or default_profile())
    try:
        table = chapter_table(profile, find_root(args.root), results=args.results, out=args.out)
    except StudyError as err:
        raise CommandError(str(err)) from None
    print(format_table(table))
    return 0


def main(argv: list[str] | None = None) -> int:
    from ..errors import CommandError

    parser = argparse.ArgumentParser(
        prog="python -m refinenet.study.rerun",
        description="Per chapter: the commands that re-execute its page into out/, its wall time, the "
        "training time of the runs it reads (their ledger entries) and how many the ledger holds.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (CommandError, ValueError, FileNotFoundError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
