"""Build the Jupyter Book from the executed notebooks of one profile.

The book's sources are ``book/`` (``_toc.yml`` and the prose chapters) plus the executed
notebooks. ``build_book`` picks a profile (the one asked for, else the most complete one that
``results/`` holds: ``gpu``, then ``cpu``, then ``smoke``), copies its notebooks into
``book/notebooks/`` (git-ignored), writes ``book/notebooks/provenance.md`` from their
``metadata.json`` files, and runs ``jupyter-book build`` with the top-level ``_config.yml``
plus one generated setting: the announcement at the top of every page saying which profile,
hardware and data the pages show. The table of contents never changes with the profile.
No notebook is executed by the build.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from .profiles import PROFILE_NAMES
from .runner import METADATA, StudyError, _require, describe_hardware, find_notebooks, find_root

__all__ = ["BookError", "build_book", "choose_profile", "profile_status", "stage"]

STAGE = Path("book") / "notebooks"
PREFERENCE = tuple(reversed(PROFILE_NAMES))  # gpu, cpu, smoke


class BookError(Exception):
    """The book cannot be built; the message says what to run first."""


def _metadata(results: Path, name: str) -> dict | None:
    try:
        return json.loads((results / name / METADATA).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def profile_status(results: Path, names: list[str], notebooks_dir: Path | None = None) -> dict[str, str]:
    """``{notebook: state}`` for one ``results/<profile>/`` folder.

    States: ``ok``, ``stale`` (finished, but the notebook's source changed since; needs
    ``notebooks_dir``), ``failed``, ``running`` (or interrupted) and ``missing``.
    """
    out = {}
    for name in names:
        meta = _metadata(results, name)
        if meta is None or not (results / f"{name}.ipynb").is_file():
            out[name] = "missing"
        elif meta.get("status") != "ok":
            out[name] = str(meta.get("status", "missing"))
        elif notebooks_dir is not None and (notebooks_dir / f"{name}.py").is_file() and (
            hashlib.sha256((notebooks_dir / f"{name}.py").read_bytes()).hexdigest() != meta.get("source_sha256")
        ):
            out[name] = "stale"
        else:
            out[name] = "ok"
    return out


def frozen_records(root: Path) -> list[str]:
    """The dated records under ``results/`` (folders holding ``FROZEN.md``), newest first."""
    from .runner import FROZEN

    folder = root / "results"
    found = [p.name for p in folder.iterdir() if (p / FROZEN).is_file()] if folder.is_dir() else []
    return sorted(found, reverse=True)


def choose_profile(root: Path, names: list[str]) -> str:
    """The most complete profile present: every notebook finished, preferring gpu > cpu > the
    dated records (newest first) > smoke; failing that, the one with the most finished
    notebooks."""
    done = {}
    preference = [p for p in PREFERENCE if p != "smoke"] + frozen_records(root) + ["smoke"]
    for profile in preference:
        states = profile_status(root / "results" / profile, names)
        done[profile] = sum(s == "ok" for s in states.values())
        if names and done[profile] == len(names):
            return profile
    best = max(preference, key=lambda p: done[p])  # max keeps the first of equals: gpu first
    if done[best] == 0:
        raise BookError(
            "results/ holds no executed notebook for any profile: run "
            "`refinenet study run --profile smoke` (minutes) or another profile first"
        )
    return best


def _announcement(profile: str, metas: list[dict]) -> str:
    meta = metas[0]
    hardware = describe_hardware(meta.get("hardware", {}))
    datasets = {m.get("dataset") for m in metas}
    if datasets == {"camvid"}:
        data = "data: CamVid"
    elif "camvid" in datasets:
        data = "data: CamVid for some pages, the synthetic generator for others (each page says which)"
    else:
        data = f"data: the <b>synthetic scene generator</b> ({meta.get('dataset_note', 'not CamVid')})"
    # Notebooks rerun only when their source or parameters change, so pages may come from
    # several commits: name them all, in the order of the pages.
    commits = list(dict.fromkeys(((m.get("git") or {}).get("commit") or "unknown")[:10] for m in metas))
    if len(commits) == 1:
        made = f"commit {commits[0]}"
    else:
        made = f"commits {', '.join(commits)} (each page's: About these results)"
    text = f"Results of profile <b>{profile}</b> on {hardware}; {data}; {made}."
    if any(m.get("frozen") for m in metas):
        text += " A dated record, kept as it was made (About these results)."
    return text


def _provenance(profile: str, names: list[str], metas: dict[str, dict | None]) -> str:
    machines: dict[str, list[str]] = {}  # hardware -> the notebooks that ran on it
    for name in names:
        if metas.get(name):
            machines.setdefault(describe_hardware(metas[name].get("hardware", {})), []).append(name)
    first = next((m for m in metas.values() if m), {})
    frozen = bool(first.get("frozen"))
    made_by = first.get("profile", profile) if frozen else profile  # a record keeps its profile's name
    how = (
        "Notebooks of that time trained their runs themselves, or found them finished on disk"
        if frozen
        else "Notebooks read their trained runs from the run ledger (`results/<profile>/runs/`) "
        "and train nothing"
    )
    lines = [
        "# About these results",
        "",
        f"Every notebook page of this book was executed by `refinenet study run --profile {made_by}`; "
        "this page lists, for each, what produced it (read from `results/"
        f"{profile}/<notebook>/metadata.json`). The book build itself executes nothing.",
        "",
        f"The wall time is that of the notebook's last execution. {how}, so a short wall time "
        "does not mean a cheap notebook: each page's tables give the training time per run.",
        "",
    ]
    if len(machines) == 1:
        lines += [f"All of them ran on {next(iter(machines))}.", ""]
    elif machines:
        # A table of its own rather than a column of the one below: a hardware column makes
        # that table wider than the page.
        lines += ["They ran on several machines:", "", "| hardware | notebooks |", "|---|---|"]
        lines += [f"| {machine} | {', '.join(ran)} |" for machine, ran in machines.items()]
        lines.append("")
    lines += [
        "| notebook | status | data | wall time | finished | commit |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        meta = metas.get(name)
        if not meta:
            lines.append(f"| {name} | not run | | | | |")
            continue
        git = meta.get("git") or {}
        # "(modified)" outside the code span: it may wrap below the hash.
        commit = f"`{(git.get('commit') or '?')[:10]}`" + (" (modified)" if git.get("dirty") else "")
        finished = str(meta.get("finished", "?")).replace("T", " ").replace("+00:00", " UTC")
        lines.append(
            f"| {name} | {meta.get('status')} | {meta.get('dataset', '?')} | "
            f"{meta.get('wall_time_s', 0):.0f} s | {finished} | {commit} |"
        )
    versions = first.get("versions", {})
    if versions:
        lines += ["", "Software:", ""]
        lines += [", ".join(f"{k} {v}" for k, v in versions.items()) + "."]
    if first.get("profile_description"):
        # A profile's description is a noun phrase ("the whole study on CamVid ..."), written
        # to follow this verb.
        lines += ["", f"The profile runs {first['profile_description']}."]
    lines += [
        "",
        "Parameters of each notebook (the profile's values; the notebook's own defaults are in its "
        "`parameters` cell):",
        "",
    ]
    for name in names:
        meta = metas.get(name)
        if meta:
            params = ", ".join(f"`{k}={v!r}`" for k, v in meta.get("parameters", {}).items())
            lines.append(f"- **{name}**: {params}")
    return "\n".join(lines) + "\n"


def _title(source: Path) -> str | None:
    """The first heading of a jupytext notebook (``# # Title``), or None."""
    if source.is_file():
        for line in source.read_text(encoding="utf-8").splitlines():
            if line.startswith("# # "):
                return line[4:].strip()
    return None


def waiting_notes(root: Path, profile: str, names: list[str]) -> dict[str, str]:
    """``{notebook: what it waits for}`` for the notebooks of a shipped ``profile`` that have
    runs (or gather the tables of pages that do) missing from its ledger: the book says how
    far the study is instead of only that a page is missing. Empty for another folder (a
    dated record, or a profile whose ledger this machine's data would put elsewhere)."""
    from .profiles import load_profile
    from .runner import gathered_pages, ledger_status, notebook_wants

    if profile not in PROFILE_NAMES:
        return {}
    spec = load_profile(profile)
    try:
        rows, where = ledger_status(spec, root)
    except StudyError:
        return {}
    if where != f"results/{profile}/runs":
        return {}
    counts = {r["notebook"]: r for r in rows}
    wants = notebook_wants(spec, root)
    command = f"`refinenet study run --profile {profile}`"
    notes = {}
    for name in names:
        row = counts.get(name)
        if row and row["done"] < row["total"]:
            text = (f"This page waits for its runs: {row['done']} of {row['total']} are in the ledger "
                    f"of profile `{profile}` (`{where}/`).")
            if row["waiting"]:
                text += (f" {row['waiting']} of the {row['total'] - row['done']} missing wait for the "
                         "learning-rate sweep to choose their rate.")
            notes[name] = text + f" {command} trains the rest, then executes this page."
            continue
        behind = [g for g in gathered_pages(wants.get(name, {}), name, names)
                  if g in counts and counts[g]["done"] < counts[g]["total"]]
        if behind:
            parts = ", ".join(f"{g} ({counts[g]['done']} of {counts[g]['total']} runs)" for g in behind)
            notes[name] = (f"This page gathers the tables of pages whose runs are not all in the ledger "
                           f"of profile `{profile}` yet: {parts}. {command} trains them, then executes "
                           "this page.")
    return notes


def _placeholder(name: str, profile: str, title: str | None = None, waiting: str | None = None) -> str:
    """The page of a notebook that has not run: its own title, and what it waits for."""
    body = waiting or (
        f"This notebook has not been run for profile `{profile}` yet. Run "
        f"`refinenet study run --profile {profile} --only {name}` and build the book again."
    )
    heading = "Waiting for its runs" if waiting else "Not run yet"
    return f"# {title or name}\n\n```{{admonition}} {heading}\n:class: warning\n{body}\n```\n"


def stage(root: Path, profile: str, names: list[str], *, allow_missing: bool) -> list[dict]:
    """Copy ``results/<profile>/*.ipynb`` into ``book/notebooks/`` and write the provenance page.

    Returns the metadata of the staged notebooks. Missing notebooks get a placeholder page
    that says what they wait for, or raise :class:`BookError` unless ``allow_missing``.
    """
    results = root / "results" / profile
    states = profile_status(results, names, root / "notebooks")
    missing = [n for n, s in states.items() if s not in ("ok", "stale")]
    if missing and not allow_missing:
        raise BookError(
            f"results/{profile}/ has no finished run of {', '.join(missing)}: run "
            f"`refinenet study run --profile {profile}` first"
        )
    target = root / STAGE
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    metas: dict[str, dict | None] = {}
    from .runner import FROZEN

    frozen = (results / FROZEN).read_text(encoding="utf-8") if (results / FROZEN).is_file() else None
    waiting = waiting_notes(root, profile, names) if missing else {}
    for name in names:
        if name in missing:
            page = _placeholder(name, profile, _title(root / "notebooks" / f"{name}.py"), waiting.get(name))
            (target / f"{name}.md").write_text(page, encoding="utf-8")
            metas[name] = None
            continue
        # A fresh modification time (not copy2's): Sphinx rebuilds a page only when its source
        # is newer than the last build, and another profile's notebook may be older.
        shutil.copyfile(results / f"{name}.ipynb", target / f"{name}.ipynb")
        metas[name] = _metadata(results, name)
        if frozen and metas[name] is not None:
            metas[name]["frozen"] = True
    page = _provenance(profile, names, metas)
    if frozen:
        # The record says what it is, above the table of what made each page.
        title, _, rest = page.partition("\n")
        body = frozen.split("\n", 1)[1] if frozen.startswith("# ") else frozen
        page = f"{title}\n\n```{{admonition}} {frozen.splitlines()[0].lstrip('# ').strip()}\n:class: warning\n{body.strip()}\n```\n{rest}"
    (target / "provenance.md").write_text(page, encoding="utf-8")
    return [m for m in metas.values() if m]


def _jupyter_book() -> list[str]:
    # The console script may not be on PATH (venv not activated): call its entry point.
    return [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.argv[0] = 'jupyter-book'; main()"]


def build_book(
    root: str | os.PathLike | None = None,
    profile: str | None = None,
    *,
    strict: bool = False,
    echo=print,
) -> int:
    """Stage a profile's notebooks and build the book into ``_build/html``; returns the exit code.

    ``strict`` (CI): every notebook must be there, warnings are errors and every page is
    rebuilt (``-W -n --keep-going --all``) into an emptied ``_build/html``.
    """
    try:
        _require("jupyter_book")
        root = find_root(root)
        names = [p.stem for p in find_notebooks(root / "notebooks")]
    except StudyError as err:
        raise BookError(str(err)) from None
    if profile is None:
        profile = choose_profile(root, names)
    elif not (root / "results" / profile).is_dir():
        raise BookError(f"no results/{profile}/: run `refinenet study run --profile {profile}` first")
    metas = stage(root, profile, names, allow_missing=not strict)
    if not metas:
        raise BookError(f"results/{profile}/ has no finished notebook: run `refinenet study run --profile {profile}` first")
    states = profile_status(root / "results" / profile, names, root / "notebooks")
    stale = [n for n, s in states.items() if s == "stale"]
    if stale and profile in frozen_records(root):
        echo(f"book: results/{profile}/ is a dated record, shown as it was made (the notebooks "
             "have changed since; its FROZEN.md says what it is)")
    elif stale:
        echo(f"book: note: {', '.join(stale)} changed since results/{profile}/ was made; "
             f"`refinenet study run --profile {profile}` brings them up to date")

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}
    config.setdefault("html", {})["announcement"] = _announcement(profile, metas)
    # The generated file lives in _build/: keep the extension paths pointing where they did.
    extensions = (config.get("sphinx") or {}).get("local_extensions") or {}
    for name, path in extensions.items():
        extensions[name] = str((root / path).resolve())
    build_dir = root / "_build"
    build_dir.mkdir(exist_ok=True)
    generated = build_dir / "_config.generated.yml"
    generated.write_text(
        "# Generated by `refinenet study book` from _config.yml: edit that file instead.\n"
        + yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    cmd = _jupyter_book() + [
        "build", "book", "--config", str(generated), "--toc", str(root / "book" / "_toc.yml"),
        "--path-output", ".", "--builder", "html",
    ]
    if strict:
        cmd += ["-W", "-n", "--keep-going", "--all"]
        # Sphinx never deletes what an earlier build wrote: a page since removed (or an index
        # since switched off) would stay in the built book, so a strict build starts empty.
        shutil.rmtree(build_dir / "html", ignore_errors=True)
    echo(f"book: profile {profile} ({len(metas)}/{len(names)} notebooks) -> _build/html")
    done = subprocess.run(cmd, cwd=root)
    if done.returncode == 0:
        echo(f"book: open {(root / '_build' / 'html' / 'index.html').as_posix()}")
    return done.returncode
