"""``refinenet study``: run the study's notebooks, show their state, build the book."""

from __future__ import annotations

import argparse

from .profiles import PROFILE_NAMES


def default_profile() -> str:
    """The profile for this machine: ``gpu`` with a CUDA device, else ``cpu``."""
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def register(subparsers) -> None:
    study = subparsers.add_parser(
        "study",
        help="run the study's notebooks and build the book",
        description="Run the study's notebooks (notebooks/*.py) with papermill into results/<profile>/ "
        "and build the Jupyter Book from them.",
    )
    sub = study.add_subparsers(dest="study_command", metavar="ACTION")
    profiles = f"{', '.join(PROFILE_NAMES)} or a .yaml file"

    run = sub.add_parser(
        "run",
        help="execute the notebooks of a profile into results/<profile>/",
        description="Convert each notebook with jupytext and execute it with papermill into "
        "results/<profile>/ (executed notebook, tables, figures, metadata.json). Finished notebooks "
        "whose source and parameters are unchanged are skipped.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    run.add_argument("--profile", default=None, help=f"{profiles} (default: gpu with CUDA, else cpu)")
    run.add_argument(
        "--only", action="append", metavar="NOTEBOOK",
        help="run only this notebook: name, number (02) or path; repeat or comma-separate",
    )
    run.add_argument("--force", action="store_true", help="run finished notebooks again")
    run.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    run.add_argument("--root", default=None, help="repository root (default: found from the current folder)")
    run.set_defaults(func=_run)

    status = sub.add_parser("status", help="show which notebooks each profile has finished")
    status.add_argument("--root", default=None)
    status.set_defaults(func=_status)

    book = sub.add_parser(
        "book",
        help="build the Jupyter Book into _build/html from results/<profile>/",
        description="Stage the executed notebooks of one profile into book/notebooks/ and build the "
        "book with Jupyter Book (no notebook is executed). Default profile: the most complete one "
        "results/ holds (gpu, then cpu, then smoke).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    book.add_argument("--profile", default=None, help="which results/<profile>/ to show")
    book.add_argument("--strict", action="store_true", help="warnings are errors (-W -n --keep-going)")
    book.add_argument("--root", default=None)
    book.set_defaults(func=_book)
    study.set_defaults(func=lambda args: study.print_help() or 2)


def _run(args: argparse.Namespace) -> int:
    from ..errors import CommandError
    from .profiles import load_profile
    from .runner import StudyError, run_study

    profile = load_profile(args.profile or default_profile())
    try:
        results = run_study(profile, root=args.root, only=args.only, force=args.force, device=args.device)
    except StudyError as err:
        raise CommandError(str(err)) from None
    ran = [r for r in results if r.status == "ok"]
    total = sum(r.wall_time_s for r in ran)
    print(f"study: {len(ran)} run, {len(results) - len(ran)} skipped, {total:.0f} s; results/{profile.name}/")
    return 0


def _status(args: argparse.Namespace) -> int:
    from ..errors import CommandError
    from .book import profile_status
    from .runner import StudyError, find_notebooks, find_root

    try:
        root = find_root(args.root)
        names = [p.stem for p in find_notebooks(root / "notebooks")]
    except StudyError as err:
        raise CommandError(str(err)) from None
    width = max(len(n) for n in names) if names else 8
    print(f"{'notebook':<{width}}  " + "  ".join(f"{p:<8}" for p in PROFILE_NAMES))
    table = {p: profile_status(root / "results" / p, names) for p in PROFILE_NAMES}
    for name in names:
        print(f"{name:<{width}}  " + "  ".join(f"{table[p][name]:<8}" for p in PROFILE_NAMES))
    return 0


def _book(args: argparse.Namespace) -> int:
    from ..errors import CommandError
    from .book import BookError, build_book

    try:
        return build_book(root=args.root, profile=args.profile, strict=args.strict)
    except BookError as err:
        raise CommandError(str(err)) from None
