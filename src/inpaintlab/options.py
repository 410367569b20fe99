"""Typed options: the ``--option KEY=VALUE`` / ``--param KEY=VALUE`` values of a backend or mask kind.

An extension declares its options as a frozen dataclass (backends) or as a typed keyword
signature (mask factories); :func:`parse_options` reads the command line's strings (or Python
values from library callers) against it once: an unknown key, a value of the wrong type, a
non-finite number or one out of its declared range is one :class:`OptionError` line naming the
option, its type and what is accepted. :func:`resolved` gives the values with defaults filled
in, which every run stores in ``config.json`` so that a resume notices a changed default.

Field metadata (``option(default, "help", ge=0)``): ``help`` (one line), bounds ``ge``/``gt``/
``le``/``lt``. Supported types: ``bool``, ``int``, ``float``, ``str``, ``Literal[...]`` and
``tuple[int, ...]`` (``4,2,1``), and ``X | None`` of those (``none`` or ``null`` on the command line means None).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import types
import typing
from dataclasses import MISSING, dataclass, field
from typing import Any, Literal, Mapping

from .errors import InpaintlabError

T = typing.TypeVar("T")


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


#: the default of an option that has none (``dataclasses.MISSING`` cannot be a dataclass default)
NO_DEFAULT: Any = _NoDefault()

__all__ = ["OptionError", "OptionSpec", "option", "specs_of", "specs_of_signature", "parse_options",
           "parse_values", "resolved", "describe", "NoOptions"]


class OptionError(InpaintlabError):
    """An option that is unknown, of the wrong type or out of range."""


def option(default: Any, help: str, **bounds: float) -> Any:
    """A dataclass field with a one-line ``help`` and optional bounds ``ge``/``gt``/``le``/``lt``."""
    unknown = set(bounds) - {"ge", "gt", "le", "lt"}
    if unknown:
        raise TypeError(f"unknown bound(s) {sorted(unknown)}; use ge, gt, le, lt")
    return field(default=default, metadata={"help": help, **bounds})


@dataclass(frozen=True)
class NoOptions:
    """A backend without options."""


@dataclass(frozen=True)
class OptionSpec:
    """One option: its name, type, default, help line and bounds."""

    name: str
    type: Any
    default: Any = NO_DEFAULT
    help: str = ""
    bounds: tuple[tuple[str, float], ...] = ()

    @property
    def type_name(self) -> str:
        """``int``, ``float``, ``bool``, ``str``, ``one of a|b`` (``or none`` when optional)."""
        base, optional = _unwrap_optional(self.type)
        if typing.get_origin(base) is Literal:
            text = "one of " + "|".join(str(c) for c in typing.get_args(base))
        elif base == tuple[int, ...]:
            text = "whole numbers separated by commas"
        else:
            text = getattr(base, "__name__", str(base))
        return text + (" or none" if optional else "")

    @property
    def accepted(self) -> str:
        """What values the option takes, for error messages and help."""
        limits = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
        parts = [self.type_name] + [f"{limits[k]} {v:g}" for k, v in self.bounds]
        return ", ".join(parts)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (it, False)."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True
    return tp, False


def specs_of(cls: type) -> dict[str, OptionSpec]:
    """The options of a dataclass, in declaration order."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not MISSING else (
            f.default_factory() if f.default_factory is not MISSING else NO_DEFAULT)  # type: ignore[misc]
        bounds = tuple((k, float(f.metadata[k])) for k in ("ge", "gt", "le", "lt") if k in f.metadata)
        out[f.name] = OptionSpec(f.name, hints[f.name], default, f.metadata.get("help", ""), bounds)
    return out


def specs_of_signature(fn: Any) -> dict[str, OptionSpec]:
    """The keyword parameters of a factory (``**params`` left out), typed by their annotations."""
    hints = typing.get_type_hints(fn)
    out = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        default = NO_DEFAULT if p.default is inspect.Parameter.empty else p.default
        out[p.name] = OptionSpec(p.name, hints.get(p.name, Any), default)
    return out


def check_specs(owner: str, specs: Mapping[str, OptionSpec], *, need_help: bool) -> None:
    """Registration-time check: every option has a supported type, a default, and (if asked) a help line."""
    for s in specs.values():
        base, _ = _unwrap_optional(s.type)
        ok = base in (bool, int, float, str, tuple[int, ...]) or typing.get_origin(base) is Literal
        if not ok:
            raise TypeError(f"{owner}: option {s.name!r} has unsupported type {s.type!r}")
        if s.default is NO_DEFAULT:
            raise TypeError(f"{owner}: option {s.name!r} has no default")
        if need_help and not s.help:
            raise TypeError(f"{owner}: option {s.name!r} has no help line")


_INT = re.compile(r"^[+-]?\d+$")
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def convert(spec: OptionSpec, value: Any) -> Any:
    """``value`` (a command-line string or a Python value) as ``spec``'s type; ValueError says why."""
    base, optional = _unwrap_optional(spec.type)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null") and optional):
        if optional:
            return None
        raise ValueError("cannot be none")
    if typing.get_origin(base) is Literal:
        choices = typing.get_args(base)
        text = value.strip() if isinstance(value, str) else value
        if text not in choices:
            raise ValueError(f"{value!r} is not accepted")
        return text
    if base is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"{value!r} is not true or false")
    if base is int:
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a whole number")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and _INT.match(value.strip()):
            return int(value.strip())
        raise ValueError(f"{value!r} is not a whole number")
    if base is float:
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a number")
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"{value!r} is not a finite number")
        return number
    if base == tuple[int, ...]:
        parts = value.split(",") if isinstance(value, str) else value
        if not isinstance(parts, (list, tuple)) or not parts:
            raise ValueError(f"{value!r} is not a list of whole numbers")
        whole = [convert(OptionSpec(spec.name, int), p) for p in parts]
        return tuple(whole)
    if base is str:
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not text")
        return value
    raise ValueError(f"unsupported option type {spec.type!r}")


def _check_bounds(spec: OptionSpec, value: Any) -> None:
    if value is None or isinstance(value, (bool, str)):
        return
    for item in (value if isinstance(value, tuple) else (value,)):
        _check_bound_values(spec, item)


def _check_bound_values(spec: OptionSpec, value: float) -> None:
    for k, v in spec.bounds:
        ok = {"ge": value >= v, "gt": value > v, "le": value <= v, "lt": value < v}[k]
        if not ok:
            raise ValueError(f"{value!r} is out of range")


def parse_values(specs: Mapping[str, OptionSpec], raw: Mapping[str, Any], what: str, flag: str = "--option",
                 noun: str = "option") -> dict[str, Any]:
    """The given ``raw`` values converted and checked against ``specs`` (no defaults added)."""
    unknown = sorted(set(raw) - set(specs))
    if unknown:
        listing = "; ".join(f"{s.name} ({s.accepted}, default {_show(s.default)})" for s in specs.values()) or "none"
        raise OptionError(f"{what} has no {noun} {', '.join(unknown)}; its {noun}s: {listing}")
    out = {}
    for key, value in raw.items():
        spec = specs[key]
        try:
            out[key] = convert(spec, value)
            _check_bounds(spec, out[key])
        except ValueError as e:
            raise OptionError(f"{what}: {flag} {key}={_show(value)}: {e}; {key} takes {spec.accepted} "
                              f"(default {_show(spec.default)})") from None
    return out


def parse_options(cls: type[T], raw: Mapping[str, Any], what: str, flag: str = "--option") -> T:
    """An instance of the options dataclass ``cls`` from ``raw`` values; one :class:`OptionError` line if bad.

    A ``ValueError`` from the dataclass's own ``__post_init__`` (a check across options) becomes one
    line too.
    """
    values = parse_values(specs_of(cls), raw, what, flag)
    try:
        return cls(**values)
    except ValueError as e:
        raise OptionError(f"{what}: {e}") from None


def resolved(options: Any) -> dict[str, Any]:
    """Every option's value, defaults included (JSON-able), as runs store it."""
    return dataclasses.asdict(options)


def describe(specs: Mapping[str, OptionSpec]) -> list[tuple[str, str, str, str]]:
    """(name, accepted values, default, help) per option, for ``--help`` and ``inpaintlab models``."""
    return [(s.name, s.accepted, _show(s.default), s.help) for s in specs.values()]


def _show(value: Any) -> str:
    if value is NO_DEFAULT:
        return "required"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if value == "":
        return '""'
    return str(value)
