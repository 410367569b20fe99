"""Image-folder sources: ``builtin``, a folder or a glob, with the loading rules of ``inpaintlab.images``."""

from __future__ import annotations

import numpy as np

from . import DATASETS
from ..images import image_files, read_image, split_unencodable, unique_names
from .source import ImageSource, Item

__all__ = ["Item", "FolderDataset", "BuiltinImages"]


@DATASETS.register("folder")
class FolderDataset(ImageSource):
    """The images of a folder (non-recursive) or a glob pattern (``**`` allowed), read one at a time.

    Files and names follow ``inpaintlab.images.image_files`` / ``unique_names``: supported
    suffixes, non-recursive folders, hidden files skipped, sorted; names are the stems made
    unique. A file whose name is not valid UTF-8 is skipped and listed (no run could store it).
    """

    def __init__(self, spec: str = "builtin", **options):
        super().__init__(**options)
        self.spec = spec
        self.paths, self.skipped = split_unencodable(image_files(spec))
        self.names: list[str] = unique_names(self.paths)
        self.sources = [str(p) for p in self.paths]

    @classmethod
    def from_spec(cls, spec: str, **options) -> "FolderDataset":
        return cls(spec, **options)

    def read(self, i: int) -> np.ndarray:
        return read_image(self.paths[i], pad_color=self.pad_color)

    def __repr__(self) -> str:
        return f"FolderDataset({self.spec!r}, {len(self)} files)"


@DATASETS.register("builtin")
class BuiltinImages(FolderDataset):
    """scikit-image's sample photographs (no download)."""

    def __init__(self, **options):
        super().__init__("builtin", **options)

    @classmethod
    def from_spec(cls, spec: str, **options) -> "BuiltinImages":
        if spec:
            from ..errors import InpaintlabError

            raise InpaintlabError(f"'builtin' takes no argument, got 'builtin:{spec}'")
        return cls(**options)
