"""Typed, self-discovering registries for the extension points (inpainters, metrics, masks, datasets).

Modelled on torch-fidelity's explicit registries: names are validated on registration and on
look-up, an unknown name is an error that lists the known ones, and each registry checks the
*kind* of what it is given (a backend class, a metric class, a mask factory, a dataset source),
so a wrong registration fails where it is made, not when a user first picks it.

**Discovery.** A registry names the packages its entries live in. On the first look-up it
imports every public module of those packages, every sub-package of ``inpaintlab.methods`` and,
in each, the modules the registry names (``inpainter`` for backends, ``method`` for training
methods: a method package registers its backend there without importing Lightning), then the
modules that installed packages declare under the ``inpaintlab.plugins`` entry-point group. So adding a backend is one new module
with one ``register`` call: no list of imports to edit. Discovery is lazy because backends import
torch, and ``inpaintlab --help`` should not wait for it.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
import sys
from typing import Callable, Generic, Iterator, TypeVar

from .errors import InpaintlabError

T = TypeVar("T")

_NAME = re.compile(r"^[a-z0-9][a-z0-9\-_.]*$")

#: entry-point group of out-of-tree plugins: each entry names a module that registers on import
PLUGIN_GROUP = "inpaintlab.plugins"

Check = Callable[[str, object], None]  # raises TypeError when the item is not of the registry's kind


class Registry(Generic[T]):
    """A mapping from a lower-case name to an item of one checked kind, discovered on first use."""

    def __init__(self, kind: str, *, check: Check | None = None, packages: tuple[str, ...] = (),
                 method_modules: tuple[str, ...] = ()):
        self.kind = kind
        self._check = check
        self.packages = packages
        self.method_modules = method_modules
        self._items: dict[str, T] = {}
        self._discovered = False
        self._discovering = False

    # registration ------------------------------------------------------------------------------
    def register(self, name: str, item: T | None = None, *, overwrite: bool = False):
        """Register ``item`` under ``name``; without ``item``, return a decorator."""
        if not _NAME.match(name):
            raise ValueError(f"{self.kind} name {name!r} must be lower-case letters, digits, '-', '_' or '.'")

        def add(obj: T) -> T:
            if name in self._items and not overwrite and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            if self._check is not None:
                self._check(name, obj)
            self._items[name] = obj
            return obj

        return add(item) if item is not None else add

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register throwaway entries clean up with it)."""
        self._items.pop(name, None)

    # look-up -----------------------------------------------------------------------------------
    def get(self, name: str) -> T:
        """Return the item registered under ``name``; an unknown name lists the known ones."""
        self.discover()
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise InpaintlabError(f"unknown {self.kind} {name!r}; choose one of: {known}") from None

    def names(self) -> list[str]:
        self.discover()
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        return [(n, self._items[n]) for n in self.names()]

    def __contains__(self, name: object) -> bool:
        self.discover()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self.discover()
        return len(self._items)

    # discovery ---------------------------------------------------------------------------------
    def discover(self, *, again: bool = False) -> None:
        """Import the modules that register into this registry (once; ``again`` rescans)."""
        if (self._discovered and not again) or self._discovering:
            return
        self._discovering = True
        try:
            for package in self.packages:
                import_submodules(package)
            for method in import_submodules("inpaintlab.methods", packages_only=True):
                for module in self.method_modules:  # e.g. methods/lama/inpainter.py for INPAINTERS
                    if importlib.util.find_spec(f"{method}.{module}") is not None:
                        importlib.import_module(f"{method}.{module}")
            import_plugins()
            self._discovered = True
        finally:
            self._discovering = False


def import_submodules(package: str, *, packages_only: bool = False) -> list[str]:
    """Import every public module (or only the sub-packages) of ``package``; return their names.

    A missing package is fine (``inpaintlab.methods`` before any method exists); a module that
    fails to import is a bug in that module and raises.
    """
    try:
        pkg = importlib.import_module(package)
    except ModuleNotFoundError as e:
        if e.name == package:
            return []
        raise
    found = []
    for info in pkgutil.iter_modules(getattr(pkg, "__path__", [])):
        if info.name.startswith("_") or (packages_only and not info.ispkg):
            continue
        name = f"{package}.{info.name}"
        if name not in sys.modules:
            importlib.import_module(name)
        found.append(name)
    return found


def import_plugins() -> list[str]:
    """Import the modules installed packages declare under :data:`PLUGIN_GROUP`."""
    from importlib.metadata import entry_points

    found = []
    for ep in entry_points(group=PLUGIN_GROUP):
        if ep.module not in sys.modules:
            try:
                importlib.import_module(ep.module)
            except Exception as e:  # someone else's package: say which, do not take the tool down
                print(f"inpaintlab: plugin {ep.name!r} ({ep.module}) failed to import: {e}", file=sys.stderr)
                continue
        found.append(ep.module)
    return found


# kind checks -------------------------------------------------------------------------------------

def subclass_of(base: type, *extra: Callable[[str, type], None]) -> Check:
    """A check that the item is a subclass of ``base`` (then each of ``extra``)."""

    def check(name: str, item: object) -> None:
        if not (isinstance(item, type) and issubclass(item, base)):
            raise TypeError(f"{name!r}: expected a subclass of {base.__qualname__}, got {item!r}")
        for more in extra:
            more(name, item)

    return check


def callable_item(name: str, item: object) -> None:
    """A check that the item can be called."""
    if not callable(item):
        raise TypeError(f"{name!r}: expected a callable, got {item!r}")
