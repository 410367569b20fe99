"""The image-source contract every ``--images`` / ``--data`` argument resolves to.

An :class:`ImageSource` knows its items' ``names`` and ``sources`` up front and decodes an image
only when asked: ``source[i]`` (an :class:`Item`) or ``source.read(i)`` (the native array), so a
training data loader can index it from worker processes, and an evaluation can pair names before
reading anything. Iterating skips unreadable items and lists them in ``failed``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from ..errors import BadImageError

__all__ = ["Item", "ImageSource"]


@dataclass
class Item:
    """One dataset image: a stable ``name``, the ``(1, 3, H, W)`` float32 tensor in [0, 1], its ``source``."""

    name: str
    image: torch.Tensor
    source: str


class ImageSource(abc.ABC):
    """Images with known names, decoded on demand with ``inpaintlab.images``' rules.

    ``size=None`` keeps each image's native size; an integer pads to a square with blank bands
    of ``pad_color`` and resizes; ``quantize`` rounds to the 8-bit grid (what a saved image holds).
    ``skipped`` lists items excluded before any read (e.g. file names that are not UTF-8), and
    ``failed`` (after iterating) those plus the unreadable ones, as ``(source, reason)``.
    """

    names: list[str]
    sources: list[str]

    def __init__(self, *, size: int | None = None, pad_color: Sequence[int] = (0, 0, 0), quantize: bool = True):
        self.size, self.pad_color, self.quantize = size, tuple(pad_color), quantize
        self.skipped: list[tuple[str, str]] = []
        self.failed: list[tuple[str, str]] = []

    @classmethod
    @abc.abstractmethod
    def from_spec(cls, spec: str, **options) -> "ImageSource":
        """The source named by what follows ``NAME:`` on the command line (or the whole spec for folders)."""

    @abc.abstractmethod
    def read(self, i: int) -> np.ndarray:
        """Item ``i`` as float32 ``HxWx3`` in [0, 1] at its native size; :class:`BadImageError` if unreadable."""

    def __len__(self) -> int:
        return len(self.names)

    def load(self, i: int) -> torch.Tensor:
        """Item ``i`` as a ``(1, 3, H, W)`` tensor, shaped by ``size`` / ``pad_color`` / ``quantize``."""
        from ..images import shape_image

        try:
            arr = self.read(i)
        except MemoryError:
            raise BadImageError(f"cannot read image {self.sources[i]}: too large to load into memory") from None
        return shape_image(arr, size=self.size, pad_color=self.pad_color, quantize=self.quantize)

    def __getitem__(self, i: int) -> Item:
        if not -len(self) <= i < len(self):
            raise IndexError(f"item {i} of {len(self)}")
        i %= len(self)
        return Item(name=self.names[i], image=self.load(i), source=self.sources[i])

    def __iter__(self) -> Iterator[Item]:
        self.failed = list(self.skipped)
        for i in range(len(self)):
            try:
                yield self[i]
            except BadImageError as exc:
                self.failed.append((self.sources[i], _reason(str(exc), self.sources[i])))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} images)"


def _reason(message: str, source: str) -> str:
    """The cause in a ``cannot read image <source>: <cause>`` message."""
    prefix = f"cannot read image {source}: "
    return message[len(prefix):] if message.startswith(prefix) else message.removeprefix("cannot decode image: ")
