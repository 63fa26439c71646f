"""The help format every ``refinenet`` sub-command shares."""

from __future__ import annotations

import argparse

__all__ = ["HelpFormatter"]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults in the help, but only where they inform: not for flags (whose
    default is "off"), not for an unset or empty default, and not where the help already says
    its default in words."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.nargs == 0 or action.default in (None, [], ()) or "(default" in text:
            return text
        return super()._get_help_string(action)
