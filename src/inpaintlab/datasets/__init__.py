"""Image sources: the built-in photos, image folders and globs, Hugging Face hub datasets; the MISATO builder.

Every ``--images`` / ``--data`` / ``--names-from`` argument goes through :func:`open_image_set`,
so all commands accept the same specs with the same errors:

- ``builtin``: scikit-image's sample photographs (no download);
- a folder or a glob (``**`` allowed): the same rules as ``inpaintlab.images.image_files``;
- ``hf:NAME[?split=...&config=...&image_column=...&limit=N&sample=N&seed=S&streaming=1]``: a hub
  dataset through ``datasets.load_dataset`` (the cache first; offline and absent, one line).

:data:`DATASETS` maps a spec prefix (``builtin``, ``folder``, ``hf``) to an
:class:`~.source.ImageSource` subclass: names known up front, images decoded on demand
(``len``, ``[i]``), unreadable items skipped and listed in ``failed``. A new kind of source is
one module in this package with one ``DATASETS.register`` call; ``NAME:REST`` then reaches it.
The MISATO-style benchmark builder is :func:`build_misato` (``inpaintlab.datasets.misato``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..errors import InpaintlabError
from ..lazy import lazy_exports
from ..registry import Registry

if TYPE_CHECKING:
    from .source import ImageSource

__all__ = ["DATASETS", "DEFAULT_CLIP", "Item", "ImageSource", "FolderDataset", "HubDataset", "open_image_set",
           "split_spec", "build_misato", "MisatoConfig"]

# The MISATO builder's CLIP model (see .clip); here so the CLI can show it without importing torch.
DEFAULT_CLIP = "openai/clip-vit-large-patch14"


def _source_class(name: str, item: object) -> None:
    from .source import ImageSource

    if not (isinstance(item, type) and issubclass(item, ImageSource)):
        raise TypeError(f"dataset source {name!r}: expected an ImageSource subclass, got {item!r}")
    if not (item.__doc__ or "").strip():
        raise TypeError(f"dataset source {name!r}: {item.__qualname__} needs a docstring")


#: prefix -> ImageSource subclass; ``cls.from_spec(rest, size=..., pad_color=..., quantize=...)``
DATASETS: Registry[type] = Registry("dataset source", check=_source_class, packages=("inpaintlab.datasets",),
                                    method_modules=("dataset",))

_PREFIX = re.compile(r"^([a-z][a-z0-9_-]+):(.*)$", re.S)  # two letters at least: never a drive letter


def split_spec(spec: str) -> tuple[str, str]:
    """``"hf:x?y"`` -> ("hf", "x?y"); ``"builtin"`` -> ("builtin", ""); a folder or glob -> ("folder", spec)."""
    if spec == "builtin":
        return "builtin", ""
    m = _PREFIX.match(spec)
    if m and m.group(1) in DATASETS:
        return m.group(1), m.group(2)
    return "folder", spec


def open_image_set(spec: str, **options) -> "ImageSource":
    """The image source of one command-line string (see the module docstring); ``options``: size, pad_color, quantize."""
    if not isinstance(spec, str) or not spec.strip():
        raise InpaintlabError("no image set given; use 'builtin', a folder, a glob or hf:NAME")
    kind, rest = split_spec(spec)
    return DATASETS.get(kind).from_spec(rest, **options)


# torch (the readers) and the builder (scikit-learn, transformers) on first use only, so that
# `inpaintlab --help` does not wait for them.
__getattr__ = lazy_exports(__name__, {"Item": "source", "ImageSource": "source", "FolderDataset": "folder",
                                      "HubDataset": "hf", "build_misato": "misato", "MisatoConfig": "misato"})
