"""Datasets: the built-in photos, image folders, Hugging Face hub datasets, and the MISATO builder.

``DATASETS`` maps a name to a factory returning an iterable of :class:`Item` (``name``,
``(1, 3, H, W)`` image in [0, 1], ``source``) with a ``failed`` list of skipped ``(source, reason)``:

- ``builtin``: scikit-image's sample photographs (``inpaintlab.images.builtin_images``);
- ``folder``: ``folder_dataset(spec)`` -- a folder or a glob, same rules as ``inpaintlab.images.image_files``;
- ``hf``: ``hub_dataset(name, split="train", streaming=False, image_column=None, limit=None)`` -- a hub
  dataset through ``datasets.load_dataset``, with one clear line when offline.

All take ``size=None`` (native size) or an integer (pad to square with blank bands, resize).
The MISATO-style benchmark builder is :func:`build_misato` (``inpaintlab.datasets.misato``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable

from ..errors import InpaintlabError
from ..registry import Registry

if TYPE_CHECKING:
    from .folder import FolderDataset, Item

__all__ = ["DATASETS", "DEFAULT_CLIP", "Item", "FolderDataset", "builtin", "folder_dataset", "hub_dataset", "open_image_set"]

# The MISATO builder's CLIP model (see .clip); here so the CLI can show it without importing torch.
DEFAULT_CLIP = "openai/clip-vit-large-patch14"

#: name -> factory(**params) -> an iterable of Item with a ``failed`` list
DATASETS: Registry[Callable[..., Iterable[Item]]] = Registry("dataset")


@DATASETS.register("builtin")
def builtin(**options) -> FolderDataset:
    """scikit-image's sample photographs (no download)."""
    from .folder import FolderDataset

    return FolderDataset("builtin", **options)


@DATASETS.register("folder")
def folder_dataset(spec: str, **options) -> FolderDataset:  # not `folder`: the submodule would shadow it
    """The images of a folder (non-recursive) or a glob pattern (``**`` allowed)."""
    from .folder import FolderDataset

    return FolderDataset(spec, **options)


@DATASETS.register("hf")
def hub_dataset(name: str, **options):  # not named `hf`: the submodule `hf` would shadow it
    """A Hugging Face hub dataset via ``datasets.load_dataset(name, split=..., streaming=...)``."""
    from .hf import HubDataset  # imports the datasets library only when asked for

    return HubDataset(name, **options)


def open_image_set(spec: str, **options) -> Iterable[Item]:
    """An image set from one string: ``builtin``, a folder, a glob, or ``hf:NAME[?key=value&...]``.

    The ``hf:`` form takes :class:`~.hf.HubDataset` options in the query, e.g.
    ``hf:huggan/wikiart?sample=100&seed=0`` (the RIP paper's 100 random WikiArt images) or
    ``hf:NAME?split=test&limit=50``.
    """
    if not spec.startswith("hf:"):
        return folder_dataset(spec, **options)
    from urllib.parse import parse_qsl

    name, _, query = spec[3:].partition("?")
    params: dict[str, object] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in ("limit", "sample", "seed"):
            if not value.isdigit():
                raise InpaintlabError(f"{spec}: {key} must be a whole number, got {value!r}")
            params[key] = int(value)
        elif key == "streaming":
            params[key] = value.lower() in ("1", "true", "yes")
        elif key in ("split", "image_column", "config"):
            params[key] = value
        else:
            raise InpaintlabError(f"{spec}: unknown option {key!r}; use split, config, image_column, limit, "
                                  f"sample, seed or streaming")
    if not name:
        raise InpaintlabError(f"{spec!r} names no dataset; write hf:OWNER/NAME, e.g. hf:huggan/wikiart")
    return hub_dataset(name, **params, **options)


def __getattr__(attr: str):
    # torch (the folder reader) and the builder (scikit-learn, transformers) on first use only,
    # so `inpaintlab --help` does not wait for them.
    if attr in ("FolderDataset", "Item"):
        from . import folder as folder_module

        return getattr(folder_module, attr)
    if attr in ("build_misato", "MisatoConfig"):
        from . import misato

        return getattr(misato, attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
