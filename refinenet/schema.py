"""Validated settings: the field types and error messages shared by every config class.

:class:`refinenet.models.RefineNetConfig` (the architecture) and
:class:`refinenet.engine.TrainConfig` (a training run) are pydantic v2 dataclasses built with
:func:`settings`. Validation is strict where a lax reading would hide a typo: ``"yes"`` is not
a bool, ``1.5`` or ``1.0`` is not an int, a bool is not a number, floats must be finite. It
is lax where YAML is: an int is a float, a list is a tuple, and ``"1e-3"`` (which PyYAML reads
as a string) is a float.

A :class:`pydantic.ValidationError` never reaches the caller: :func:`settings` turns it into
one ``ValueError`` naming the key, the value and what is allowed, e.g.
``config key optim.lr=inf (float): expected a float > 0``, and an unknown key into a hint,
``unknown config key 'optim.lrr'; did you mean 'optim.lr'?``.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import types
import typing
from typing import Annotated, Any, Literal, Union

import annotated_types
from pydantic import BeforeValidator, ConfigDict, Strict, ValidationError
from pydantic.fields import FieldInfo
from pydantic import dataclasses as pydantic_dataclasses
from pydantic_core import PydanticKnownError

__all__ = [
    "Bool", "Float", "Int", "IntChoice", "Invalid", "PathStr",
    "all_keys", "describe", "did_you_mean", "readable_error", "settings",
]


def _not_bool(value: Any) -> Any:
    # Python's bool is an int, and pydantic's lax float takes it; `lr: true` is a typo.
    if isinstance(value, bool):
        raise PydanticKnownError("float_type")
    return value


def _int_only(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticKnownError("int_type")
    return value


def _fspath(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


#: An int, and only an int (not 1.0, "1" or True).
Int = Annotated[int, Strict()]
#: true or false, and nothing else ("yes", 1 and "true" are typos here).
Bool = Annotated[bool, Strict()]
#: A finite float (finiteness is the settings' ``allow_inf_nan=False``); ints and number strings
#: such as "1e-3" are read as floats, bools are refused.
Float = Annotated[float, BeforeValidator(_not_bool)]
#: A file or directory path, stored as a string (a ``pathlib.Path`` is accepted).
PathStr = Annotated[str, BeforeValidator(_fspath)]


def IntChoice(*values: int) -> Any:  # noqa: N802 - used like a type
    """An int that must be one of ``values`` (pydantic's Literal alone would take True or 2.0)."""
    return Annotated[Literal[values], BeforeValidator(_int_only)]


class Invalid(ValueError):
    """Raised by a cross-field check: ``key`` (relative to the checked class) has ``value``,
    and the message says what it must be."""

    def __init__(self, key: str, value: Any, need: str) -> None:
        super().__init__(need)
        self.key, self.value = key, value


SETTINGS = ConfigDict(extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False)


def settings(cls: type | None = None, *, frozen: bool = False, noun: str = "config key", unknown: type = ValueError):
    """Make ``cls`` a pydantic dataclass whose construction raises readable errors.

    ``noun`` starts every message (``"config key"`` -> ``config key optim.lr=...``);
    ``unknown`` is the exception type for an unknown keyword (ValueError for configs read from
    files, TypeError for a class called from Python).
    """

    def wrap(cls: type) -> type:
        cls = pydantic_dataclasses.dataclass(cls, frozen=frozen, config=SETTINGS)
        init = cls.__init__

        @functools.wraps(init)
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            try:
                init(self, *args, **kwargs)
            except ValidationError as err:
                given = dict(zip((f.name for f in dataclasses.fields(cls)), args)) | kwargs
                raise readable_error(err, cls, given, noun=noun, unknown=unknown) from None

        cls.__init__ = __init__
        return cls

    return wrap if cls is None else wrap(cls)


# -- messages ------------------------------------------------------------------------------------


def did_you_mean(key: str, known: list[str]) -> str:
    """``"; did you mean 'optim.lr'?"`` for the closest known key, or ``""``."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def all_keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted key of a settings class, sections expanded (``["seed", "optim.lr", ...]``)."""
    keys = []
    for f in dataclasses.fields(cls):
        section = _section_type(_field_types(cls)[f.name])
        keys += all_keys(section, f"{prefix}{f.name}.") if section else [prefix + f.name]
    return keys


def describe(tp: Any, plural: bool = False) -> str:
    """What a field of type ``tp`` accepts, in words: ``a float > 0``, ``a list of 4 ints > 0``."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *meta = typing.get_args(tp)
        meta = [c for m in meta for c in (m.metadata if isinstance(m, FieldInfo) else [m])]
        limits = [x for x in map(_limit, meta) if x]
        text = describe(base, plural)
        if any(isinstance(m, annotated_types.MinLen) and m.min_length == 1 for m in meta):
            text = text.replace("a list", "a non-empty list", 1)
        return " and ".join([f"{text} {limits[0]}"] + limits[1:]) if limits else text
    if origin is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a, plural) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {describe(args[0], plural=True)}"
        if len(set(args)) == 1:
            return f"a list of {len(args)} {describe(args[0], plural=True)}"
        return f"a list of ({', '.join(describe(a) for a in args)})"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping of its keys"
    names = {int: ("an int", "ints"), float: ("a float", "floats"), bool: ("true/false", "true/false values"),
             str: ("a string", "strings"), dict: ("a mapping", "mappings")}
    return names.get(tp, (str(tp), str(tp)))[plural]


def _limit(meta: Any) -> str:
    for kind, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        bound = getattr(meta, kind, None)
        if bound is not None and not isinstance(meta, annotated_types.MinLen):
            return f"{sign} {bound:g}" if isinstance(bound, float) else f"{sign} {bound}"
    return ""


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _section_type(tp: Any) -> type | None:
    """The settings class a field holds (a section), or None for a plain value."""
    return tp if isinstance(tp, type) and dataclasses.is_dataclass(tp) else None


def _field_annotation(cls: type, name: str) -> Any:
    """A field's type with its constraints (``Field(gt=0)`` in the metadata) as ``Annotated``."""
    info = cls.__pydantic_fields__[name]
    meta = [m for m in info.metadata if _limit(m) or isinstance(m, annotated_types.MinLen)]
    return Annotated[(info.annotation, *meta)] if meta else info.annotation


def readable_error(err: ValidationError, cls: type, given: Any, *, noun: str = "config key", unknown: type = ValueError) -> Exception:
    """One exception for a :class:`pydantic.ValidationError` raised while building ``cls``
    from ``given`` (a mapping or an instance): one line per bad key, first error first."""
    lines, seen, unknown_keys = [], set(), False
    for e in err.errors(include_url=False):
        if e["type"] in ("unexpected_keyword_argument", "extra_forbidden", "invalid_key"):
            # the last location is the unknown key itself (an int for a YAML key such as `1:`)
            key = ".".join(_resolve(cls, e["loc"][:-1])[0] + [str(e["loc"][-1])])
            lines.append(f"unknown {noun} {key!r}{did_you_mean(key, all_keys(cls)) or _list_hint(noun)}")
            unknown_keys = True
            continue
        path, owner, tp = _resolve(cls, e["loc"])
        key = ".".join(path) or "(root)"
        error = (e.get("ctx") or {}).get("error")
        if isinstance(error, Invalid):
            key = ".".join(path + [error.key])
            if key not in seen:
                seen.add(key)
                lines.append(f"{noun} {key}={error.value!r}: must be {error}")
            continue
        if key in seen:  # a union reports one error per member
            continue
        seen.add(key)
        value = _lookup(given, path, e["input"])
        if _section_type(tp) is not None:
            lines.append(f"{noun} {key!r} is a section; give a mapping of its keys, not {value!r}")
        elif e["type"] == "missing_argument":
            lines.append(f"{noun} {key} is required")
        elif e["type"] == "value_error":
            lines.append(f"{noun} {key}={value!r}: {error}")
        else:
            lines.append(f"{noun} {key}={value!r} ({type(value).__name__}): expected {describe(tp)}")
    return (unknown if unknown_keys else ValueError)("; ".join(lines))


def _list_hint(noun: str) -> str:
    return "; `refinenet train --print-config` lists every key" if noun == "config key" else ""


def _resolve(cls: type, loc: tuple) -> tuple[list[str], type, Any]:
    """The field path a pydantic error location names (union tags and list indices dropped),
    the class holding the last field, and that field's annotation."""
    path, owner, tp = [], cls, cls
    for part in loc:
        if owner is None:
            break
        names = [f.name for f in dataclasses.fields(owner)]
        if isinstance(part, int) and part < len(names):  # a positional argument
            part = names[part]
        if part not in names:
            break
        path.append(part)
        tp = _field_annotation(owner, part)
        owner = _section_type(_field_types(owner)[part])
    return path, owner, tp


def _lookup(given: Any, path: list[str], default: Any) -> Any:
    """The value the caller gave at ``path`` (the whole list, not the element that failed)."""
    value = given
    for name in path:
        if isinstance(value, dict) and name in value:
            value = value[name]
        elif dataclasses.is_dataclass(value) and hasattr(value, name):
            value = getattr(value, name)
        else:
            return default
    return value
