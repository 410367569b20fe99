"""Parsing of the command line's list and KEY=VALUE arguments, shared by every command."""

from __future__ import annotations

import json

from .errors import InpaintlabError


def parse_ints(text: str, what: str) -> list[int]:
    """``"64,128"`` -> [64, 128]; ``"0-3"`` -> [0, 1, 2, 3] (non-negative integers)."""
    values: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()) or (hi and int(hi) < int(lo)):
            raise InpaintlabError(f"{what}: cannot read {part!r}; give non-negative integers separated by "
                                  f"commas, or a range like 0-9")
        values.extend(range(int(lo), int(hi) + 1) if hi else [int(lo)])
    return values


def parse_names(text: str) -> list[str]:
    """``"psnr, ssim"`` -> ["psnr", "ssim"]."""
    return [p.strip() for p in text.split(",") if p.strip()]


def parse_key_values(items: list[str] | None, flag: str, example: str = "radius=5") -> dict[str, object]:
    """``["radius=5", "name=x"]`` -> {"radius": 5, "name": "x"}: values read as JSON when they can be."""
    params: dict[str, object] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InpaintlabError(f"{flag} {item!r} is not KEY=VALUE, e.g. {flag} {example}")
        try:
            params[key.strip().replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip().replace("-", "_")] = value
    return params
