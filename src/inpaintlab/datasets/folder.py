"""Image-folder datasets: ``builtin``, a folder or a glob, with the loading rules of ``inpaintlab.images``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch

from ..images import image_files, load_images, unique_names

__all__ = ["Item", "FolderDataset"]


@dataclass
class Item:
    """One dataset image: a stable ``name``, the ``(1, 3, H, W)`` float32 tensor in [0, 1], its ``source``."""

    name: str
    image: torch.Tensor
    source: str


class FolderDataset:
    """The images of ``spec`` (``"builtin"``, a folder, or a glob), loaded lazily one at a time.

    Files and names follow ``inpaintlab.images.image_files`` / ``load_images``: supported suffixes,
    non-recursive folders, hidden files skipped, sorted; names are the stems made unique.
    Unreadable files are skipped and listed in ``failed`` as ``(path, reason)`` after iterating.
    ``size=None`` keeps each image's native size; an integer pads to square with blank bands
    and resizes, as ``load_image`` does.
    """

    def __init__(self, spec: str = "builtin", *, size: int | None = None,
                 pad_color: Sequence[int] = (0, 0, 0), quantize: bool = True):
        self.spec = spec
        self.paths: list[Path] = image_files(spec)
        self.names: list[str] = unique_names(self.paths)
        self.size, self.pad_color, self.quantize = size, tuple(pad_color), quantize
        self.failed: list[tuple[str, str]] = []

    def __len__(self) -> int:
        """The number of files (readable or not)."""
        return len(self.paths)

    def __iter__(self) -> Iterator[Item]:
        self.failed = []
        for path, name in zip(self.paths, self.names):
            loaded, failed = load_images([path], size=self.size, pad_color=self.pad_color, quantize=self.quantize)
            if failed:
                self.failed.append((str(failed[0][0]), failed[0][1]))
                continue
            yield Item(name=name, image=loaded[0][1], source=str(path))

    def __repr__(self) -> str:
        return f"FolderDataset({self.spec!r}, {len(self)} files)"
