"""``refinenet study``: run the study's notebooks, show their state, build the book."""

from __future__ import annotations

import argparse
import sys

from ..cli_help import HelpFormatter
from .profiles import PROFILE_NAMES, default_profile


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
        formatter_class=HelpFormatter,
    )
    run.add_argument("--profile", default=None, help=f"{profiles} (default: gpu with CUDA, else cpu)")
    run.add_argument(
        "--only", action="append", metavar="NOTEBOOK",
        help="run only this notebook: name, number (02) or path; repeat or comma-separate",
    )
    run.add_argument("--force", action="store_true", help="run finished notebooks again (retrains nothing)")
    run.add_argument(
        "--time-budget", default=None, metavar="DURATION", type=parse_duration,
        help="train missing runs for at most this long (e.g. 150m, 2h, 900s): start only runs "
        "estimated to fit the time left (a later, shorter one when the next does not), stopping at "
        "a run boundary; notebooks whose runs are complete still execute",
    )
    run.add_argument(
        "--retrain", action="append", default=[], metavar="WHAT",
        help="train these ledger entries again from scratch: run ids, notebooks (04 or "
        "04_ablation_crp) or 'all'; repeat or comma-separate",
    )
    run.add_argument("--no-train", dest="train", action="store_false",
                     help="train nothing; execute the notebooks whose runs are all in the ledger")
    run.add_argument("--train-only", dest="execute", action="store_false",
                     help="fill the ledger, execute no notebook (a machine without the notebook libraries)")
    run.add_argument(
        "--jobs", default="auto", type=parse_jobs, metavar="N",
        help="runs to train at once, each in its own process with its share of the threads "
        "(auto: 2 on a CPU of 2 cores or more, 1 on CUDA)",
    )
    run.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    run.add_argument("--root", default=None, help="repository root (default: found from the current folder)")
    run.set_defaults(func=_run)

    status = sub.add_parser(
        "status",
        help="runs in the ledger and notebooks executed, per notebook",
        description="Per notebook: runs in the ledger / runs planned, the time the missing ones "
        "need on this machine (from the seconds per step its earlier entries measured), and "
        "each profile's executed notebooks.",
    )
    status.add_argument("--profile", default=None, help=f"{profiles} (default: gpu with CUDA, else cpu)")
    status.add_argument("--root", default=None)
    status.set_defaults(func=_status)

    book = sub.add_parser(
        "book",
        help="build the Jupyter Book into _build/html from results/<profile>/",
        description="Stage the executed notebooks of one profile into book/notebooks/ and build the "
        "book with Jupyter Book (no notebook is executed). Default profile: the most complete one "
        "results/ holds (gpu, then cpu, then smoke).",
        formatter_class=HelpFormatter,
    )
    book.add_argument("--profile", default=None, help="which results/<profile>/ to show")
    book.add_argument("--strict", action="store_true", help="warnings are errors (-W -n --keep-going)")
    book.add_argument("--root", default=None)
    book.set_defaults(func=_book)
    rerun = sub.add_parser(
        "rerun",
        help="per chapter: the commands that rerun its page, its times, its runs",
        description="For each notebook: the jupytext and papermill commands that re-execute its "
        "page into out/ with the page's own parameters, the page's and its runs' measured times, "
        "and how many of its runs the ledger holds.",
    )
    from .rerun import add_arguments as _rerun_arguments, run as _rerun

    _rerun_arguments(rerun)
    rerun.set_defaults(func=_rerun)
    study.set_defaults(func=lambda args: study.print_help() or 2)


def _run(args: argparse.Namespace) -> int:
    from ..errors import CommandError
    from ..signals import terminate_as_interrupt
    from .profiles import load_profile
    from .runner import StudyError, run_study

    profile = load_profile(args.profile or default_profile())
    try:
        with terminate_as_interrupt():  # `kill`, `timeout`: stop as on Ctrl-C, workers included
            results = run_study(
                profile, root=args.root, only=args.only, force=args.force, device=args.device,
                train=args.train, time_budget_s=args.time_budget, retrain=args.retrain,
                execute=args.execute, jobs=args.jobs,
            )
    except StudyError as err:
        raise CommandError(str(err)) from None
    except KeyboardInterrupt:
        # One line, not the traceback of wherever Ctrl-C landed (a training step, the kernel client).
        print(
            "refinenet study run: interrupted; runs already trained stay in the ledger and the notebook "
            "that was running is marked interrupted; run the same command again to continue",
            file=sys.stderr,
        )
        return 130
    ran = [r for r in results if r.status == "ok"]
    waiting = [r for r in results if r.status == "waiting"]
    total = sum(r.wall_time_s for r in ran)
    print(
        f"study: {len(ran)} notebooks run, {len(results) - len(ran) - len(waiting)} skipped, "
        f"{len(waiting)} waiting for runs, {total:.0f} s"
    )
    return 0


def parse_duration(text: str) -> float:
    """``"150m"``, ``"2h"``, ``"900s"`` or ``"900"`` (seconds) -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    value, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        seconds = float(value) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 150m, 2h, 900s)") from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"the time budget must be positive, got {text!r}")
    return seconds


def _status(args: argparse.Namespace) -> int:
    from ..errors import CommandError
    from .book import profile_status
    from .runner import StudyError, find_notebooks, find_root, ledger_status

    try:
        root = find_root(args.root)
        names = [p.stem for p in find_notebooks(root / "notebooks")]
    except StudyError as err:
        raise CommandError(str(err)) from None
    from .profiles import load_profile

    profile = load_profile(args.profile or default_profile())
    try:
        rows, where = ledger_status(profile, root)
    except StudyError as err:
        raise CommandError(str(err)) from None
    from .training import format_seconds

    print(f"ledger of profile {profile.name}: {where}")
    width = max([len(n) for n in names] + [len(r["notebook"]) for r in rows])
    for row in rows:
        todo = row["total"] - row["done"]
        text = "complete" if not todo else f"{todo} to train, {format_seconds(row['seconds_left'])}"
        pilot = row.get("waiting_for_pilot", 0)
        if pilot:
            text += f" ({pilot} of them wait for the pilot's choice: study.adopted in the profile)"
        elif row["waiting"]:
            text += f" ({row['waiting']} of them wait for the learning-rate sweep)"
        print(f"  {row['notebook']:<{width}}  {row['done']:>3} / {row['total']:<3} runs  {text}")
    print()
    print(f"{'notebook':<{width}}  " + "  ".join(f"{p:<8}" for p in PROFILE_NAMES))
    table = {p: profile_status(root / "results" / p, names) for p in PROFILE_NAMES}
    for name in names:
        print(f"{name:<{width}}  " + "  ".join(f"{table[p][name]:<8}" for p in PROFILE_NAMES))
    return 0


def parse_jobs(text: str) -> int | None:
    """``--jobs``: a positive count, or ``auto`` (None: :func:`~refinenet.study.training.default_jobs`)."""
    if text == "auto":
        return None
    try:
        jobs = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--jobs takes a positive number or auto, got {text!r}") from None
    if jobs < 1:
        raise argparse.ArgumentTypeError(f"--jobs must be at least 1, got {jobs}")
    return jobs


def _book(args: argparse.Namespace) -> int:
    from ..errors import CommandError
    from .book import BookError, build_book

    try:
        return build_book(root=args.root, profile=args.profile, strict=args.strict)
    except BookError as err:
        raise CommandError(str(err)) from None
