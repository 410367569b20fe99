"""Lazy package attributes (PEP 562): a package exports names whose modules load on first use.

The command line imports every package to wire its commands; packages whose modules pull in
torch, pandas or diffusers export them lazily so that ``inpaintlab --help`` answers at once.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, Callable


def lazy_exports(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` giving ``names[attr]``'s attribute ``attr`` (module relative to ``package``)."""

    def __getattr__(attr: str) -> Any:
        if attr in names:
            return getattr(import_module(f".{names[attr]}", package), attr)
        raise AttributeError(f"module {package!r} has no attribute {attr!r}")

    return __getattr__
