"""Parsing of the command line's list and KEY=VALUE arguments, shared by every command."""

from __future__ import annotations

import dataclasses
from typing import Any

from .errors import InpaintlabError


#: the most values a list argument may expand to (``--seeds 0-99999999`` would build a 1.6 GB config)
MAX_LIST = 10_000


def parse_ints(text: str, what: str, limit: int = MAX_LIST) -> list[int]:
    """``"64,128"`` -> [64, 128]; ``"0-3"`` -> [0, 1, 2, 3] (non-negative integers, at most ``limit`` of them)."""
    values: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()) or (hi and int(hi) < int(lo)):
            raise InpaintlabError(f"{what}: cannot read {part!r}; give non-negative integers separated by "
                                  f"commas, or a range like 0-9")
        count = int(hi) - int(lo) + 1 if hi else 1
        if len(values) + count > limit or int(hi or lo) >= 2**63:
            raise InpaintlabError(f"{what}: {text!r} gives more than {limit:,} values (or one too large to be a "
                                  f"seed or a size); ask for fewer, e.g. 0-9")
        values.extend(range(int(lo), int(hi) + 1) if hi else [int(lo)])
    return values


def parse_names(text: str) -> list[str]:
    """``"psnr, ssim"`` -> ["psnr", "ssim"]."""
    return [p.strip() for p in text.split(",") if p.strip()]


def parse_key_values(items: list[str] | None, flag: str, example: str = "radius=5") -> dict[str, str]:
    """``["radius=5", "name=x"]`` -> {"radius": "5", "name": "x"}: values stay text, typed by whoever declares them.

    Keys may use ``-`` for ``_``; a key given twice is an error (the second would silently win).
    """
    params: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise InpaintlabError(f"{flag} {item!r} is not KEY=VALUE, e.g. {flag} {example}")
        if key in params:
            raise InpaintlabError(f"{flag} {key} is given twice ({params[key]!r} and {value!r}); give it once")
        params[key] = value
    return params


def default(config: type, name: str) -> Any:
    """The default of field ``name`` of the config dataclass ``config`` (so commands never repeat it)."""
    f = {f.name: f for f in dataclasses.fields(config)}[name]
    return f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]


def joined(values: Any) -> str:
    """``[64, 128]`` -> ``"64,128"``: a list default as the command line writes it."""
    return ",".join(str(v) for v in values)
