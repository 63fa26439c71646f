"""``refinenet model``: build a model and print its summary, parameters and MACs.

The architecture options are generated from :class:`~refinenet.models.RefineNetConfig`'s
fields (a bool ``x_y`` -> ``--x-y/--no-x-y``, ``scales`` -> ``--scales 1.2,0.6``),
with the fields' docstrings as help, so a new switch needs no edit here.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Annotated, Any, Literal, Union

from ..cli_help import HelpFormatter
from ..schema import describe

# The command's own defaults where they differ from RefineNetConfig's: a model needs a class
# count (21: PASCAL VOC, as refinenet()).
CLI_DEFAULTS = {"num_classes": 21}


def _base(tp: Any) -> Any:
    """``tp`` without ``Annotated`` constraints and without ``None`` (``Optional[int]`` -> int)."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        else:
            return tp


def _scalar(tp: Any) -> type:
    """The Python type a command-line word is converted to for a scalar field."""
    tp = _base(tp)
    if typing.get_origin(tp) is Literal:
        return type(typing.get_args(tp)[0])
    return tp


def _list_of(element: type):
    def parse(text: str) -> tuple:
        return tuple(element(s) for s in text.split(",") if s.strip())

    parse.__name__ = f"comma-separated {element.__name__}"  # argparse names it in errors
    return parse


def _option(name: str, tp: Any, default: Any, help_text: str) -> tuple[str, dict]:
    flag = "--" + name.replace("_", "-")
    kwargs: dict = {"dest": name, "default": default, "help": help_text.replace("%", "%%")}
    base = _base(tp)
    if base is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif typing.get_origin(base) is tuple:
        kwargs["type"] = _list_of(_scalar(typing.get_args(base)[0]))
        kwargs["metavar"] = "A,B,..."
    else:
        kwargs["type"] = _scalar(base)
    return flag, kwargs


def architecture_options(parser: argparse.ArgumentParser) -> None:
    """Add one option per :class:`RefineNetConfig` field to ``parser``."""
    from .config import RefineNetConfig

    hints = typing.get_type_hints(RefineNetConfig, include_extras=True)
    group = parser.add_argument_group("architecture (RefineNetConfig fields)")
    for f in dataclasses.fields(RefineNetConfig):
        info = RefineNetConfig.__pydantic_fields__[f.name]
        what = describe(hints[f.name])
        help_text = " ".join(RefineNetConfig.field_help(f.name).split()) + f" Expected: {what}."
        flag, kwargs = _option(f.name, hints[f.name], CLI_DEFAULTS.get(f.name, info.default), help_text)
        group.add_argument(flag, **kwargs)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "model",
        help="print a RefineNet variant's layers, parameters and MACs",
        description="Build a RefineNet variant (random weights unless --backbone-weights) and print its "
        "torchinfo summary, parameter counts and multiply-accumulates.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"))
    p.add_argument("--depth", type=int, default=2, help="summary depth (0 = totals only)")
    architecture_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..summary import count_macs, summary, summary_text
    from .config import RefineNetConfig
    from .refinenet import RefineNet

    config = RefineNetConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(RefineNetConfig)})
    model = RefineNet(config)
    size = (1, 3, *args.size)
    if args.depth > 0:
        print(summary_text(summary(model, size, depth=args.depth)))
    total = sum(p.numel() for p in model.parameters())
    backbone = sum(p.numel() for p in model.backbones.parameters())
    macs = count_macs(model, size)
    print(f"model:      {model.extra_repr()}")
    print(f"parameters: {total / 1e6:.2f} M ({backbone / 1e6:.2f} M backbone, {(total - backbone) / 1e6:.2f} M decoder)")
    print(f"MACs:       {macs / 1e9:.1f} G at {args.size[0]}x{args.size[1]}")
    return 0
