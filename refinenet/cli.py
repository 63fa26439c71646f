"""The ``refinenet`` command line.

Each area of the package registers its own sub-commands from a ``cli`` module with a
``register(subparsers)`` function; this file only assembles them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import CommandError

# Modules that provide sub-commands, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "refinenet.models.cli",
    "refinenet.data.cli",
    "refinenet.engine.cli",
    "refinenet.study.cli",
    "refinenet.bench.cli",
)

__all__ = ["COMMAND_MODULES", "CommandError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="refinenet",
        description="RefineNet (Lin et al., CVPR 2017): models, data, training and the study.",
    )
    parser.add_argument("--version", action="version", version=f"refinenet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (CommandError, ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"refinenet {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"refinenet {args.command}: interrupted", file=sys.stderr)
        return 130
