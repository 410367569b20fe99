"""Datasets: the built-in photos, image folders, Hugging Face hub datasets, and the MISATO builder.

``DATASETS`` maps a name to a factory returning an iterable of :class:`Item` (``name``,
``(1, 3, H, W)`` image in [0, 1], ``source``) with a ``failed`` list of skipped ``(source, reason)``:

- ``builtin``: scikit-image's sample photographs (``inpaintlab.images.builtin_images``);
- ``folder``: ``folder(spec)`` -- a folder or a glob, same rules as ``inpaintlab.images.image_files``;
- ``hf``: ``hf(name, split="train", streaming=False, image_column=None, limit=None)`` -- a hub
  dataset through ``datasets.load_dataset``, with one clear line when offline.

All take ``size=None`` (native size) or an integer (pad to square with blank bands, resize).
The MISATO-style benchmark builder is :func:`build_misato` (``inpaintlab.datasets.misato``).
"""

from __future__ import annotations

from typing import Callable, Iterable

from ..registry import Registry
from .folder import FolderDataset, Item

__all__ = ["DATASETS", "Item", "FolderDataset", "builtin", "folder", "hf"]

#: name -> factory(**params) -> an iterable of Item with a ``failed`` list
DATASETS: Registry[Callable[..., Iterable[Item]]] = Registry("dataset")


@DATASETS.register("builtin")
def builtin(**options) -> FolderDataset:
    """scikit-image's sample photographs (no download)."""
    return FolderDataset("builtin", **options)


@DATASETS.register("folder")
def folder(spec: str, **options) -> FolderDataset:
    """The images of a folder (non-recursive) or a glob pattern (``**`` allowed)."""
    return FolderDataset(spec, **options)


@DATASETS.register("hf")
def hf(name: str, **options):
    """A Hugging Face hub dataset via ``datasets.load_dataset(name, split=..., streaming=...)``."""
    from .hf import HubDataset  # imports the datasets library only when asked for

    return HubDataset(name, **options)


def __getattr__(attr: str):
    # The builder pulls in scikit-learn and transformers: import it on first use only.
    if attr in ("build_misato", "MisatoConfig"):
        from . import misato

        return getattr(misato, attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
