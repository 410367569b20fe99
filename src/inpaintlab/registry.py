"""Named registries for the extension points (inpainters, metrics, mask generators, datasets).

Modelled on torch-fidelity's explicit registries: names are validated on registration and on
look-up, and an unknown name is an error that lists the known ones.
"""

from __future__ import annotations

import re
from typing import Generic, Iterator, TypeVar

from .errors import InpaintlabError

T = TypeVar("T")

_NAME = re.compile(r"^[a-z0-9][a-z0-9\-_.]*$")


class Registry(Generic[T]):
    """A mapping from a lower-case name to a factory or object of one kind."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T | None = None, *, overwrite: bool = False):
        """Register ``item`` under ``name``; without ``item``, return a decorator."""
        if not _NAME.match(name):
            raise ValueError(f"{self.kind} name {name!r} must be lower-case letters, digits, '-', '_' or '.'")

        def add(obj: T) -> T:
            if name in self._items and not overwrite:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return add(item) if item is not None else add

    def get(self, name: str) -> T:
        """Return the item registered under ``name``; an unknown name lists the known ones."""
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise InpaintlabError(f"unknown {self.kind} {name!r}; choose one of: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

