"""Every command's --help states defaults only where they inform."""

from __future__ import annotations

import argparse
import re

from refinenet.cli import build_parser


def _helps(parser: argparse.ArgumentParser, name: str = "refinenet"):
    yield name, parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                yield from _helps(child, f"{name} {sub}")


def test_help_states_no_empty_or_flag_default_and_no_default_twice():
    seen = 0
    for name, text in _helps(build_parser()):
        flat = " ".join(text.split())  # argparse wraps lines
        for noise in ("(default: None)", "(default: True)", "(default: False)", "(default: [])"):
            assert noise not in flat, f"{name} --help says {noise}"
        # one option's help, from its flag to the next flag: at most one "(default"
        for option in re.split(r"\s(?=-{1,2}[a-z])", flat):
            assert option.count("(default") <= 1, f"{name}: {option}"
        seen += 1
    assert seen > 10  # every sub-command was reached
