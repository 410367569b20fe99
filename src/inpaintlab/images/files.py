"""Finding image files and naming them: ``builtin``, folders, glob patterns, stable unique names."""

from __future__ import annotations

import glob
import os
from collections import Counter
from pathlib import Path
from typing import Sequence

from ..errors import InpaintlabError

SUPPORTED_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"})
"""Image file suffixes the toolkit reads and writes (compare lower-cased)."""

# The sample photographs inside scikit-image's wheel (skimage/data, no download needed).
# Chosen: real photographs only, in colour where possible, with a spread of content that
# matters for inpainting -- a portrait with flat colours and hard edges (astronaut), fur and
# fine detail (chelsea), smooth shading and specular highlights (coffee), a night scene with
# point lights (rocket), a cluttered indoor scene with strong lines (motorcycle_left), a dark
# sky with small bright sources, a collapse-prone case (hubble_deep_field), the classic
# grayscale photograph (camera) and two grayscale texture photographs: a periodic structure
# (brick) and a stochastic one (gravel).
# Left out: synthetic or drawn images (chessboard_*, color, horse, logo, phantom, text, page,
# clock_motion), microscopy / medical images (cell, ihc, microaneurysms, retina), low-contrast
# or near-duplicate photographs (moon, coins, grass ~ gravel, motorcycle_right ~ left), and
# non-image data (multipage*.tif, *.npz, *.npy, the GIF).
_BUILTIN_NAMES = (
    "astronaut.png",  # 512x512 RGB
    "brick.png",  # 512x512 L
    "camera.png",  # 512x512 L
    "chelsea.png",  # 451x300 RGB
    "coffee.png",  # 600x400 RGB
    "gravel.png",  # 512x512 L
    "hubble_deep_field.jpg",  # 1000x872 RGB
    "motorcycle_left.png",  # 741x500 RGB
    "rocket.jpg",  # 640x427 RGB
)


def builtin_images() -> list[Path]:
    """The sample photographs shipped inside scikit-image's wheel (no download), sorted by name.

    A file missing from an older scikit-image is skipped.
    """
    import skimage.data

    folder = Path(skimage.data.__file__).resolve().parent
    return sorted((folder / name for name in _BUILTIN_NAMES if (folder / name).is_file()), key=lambda p: p.name)


def _is_image_file(path: Path) -> bool:
    """A regular, non-hidden file with a supported suffix."""
    return path.suffix.lower() in SUPPORTED_SUFFIXES and not path.name.startswith(".") and path.is_file()


def image_files(spec: str) -> list[Path]:
    """Resolve a dataset spec to image files: ``"builtin"``, a folder, or a glob pattern.

    A folder gives its image files (supported suffixes, non-recursive, hidden files skipped),
    sorted; a pattern (``~`` expanded, ``**`` allowed) gives its sorted matching image files.
    Nothing found is an ``InpaintlabError`` naming the spec.
    """
    if spec == "builtin":
        found = builtin_images()
        if not found:
            raise InpaintlabError("no builtin images found in scikit-image's data folder: reinstall scikit-image")
        return found
    expanded = os.path.expanduser(spec)
    if os.path.isdir(expanded):
        found = sorted(p for p in Path(expanded).iterdir() if _is_image_file(p))
        where = f"folder {spec}"
    else:
        found = sorted(Path(p) for p in glob.glob(expanded, recursive=True) if _is_image_file(Path(p)))
        where = f"pattern {spec!r}"
    if not found:
        suffixes = " ".join(sorted(SUPPORTED_SUFFIXES))
        raise InpaintlabError(
            f"no images found for {where}: give 'builtin', a folder or a glob pattern of {suffixes} files"
        )
    return found


def unique_names(paths: Sequence[Path]) -> list[str]:
    """Stems, made unique: the suffix is kept for clashing stems, then the relative path."""
    names = [p.stem for p in paths]
    clash = Counter(names)
    names = [p.name if clash[n] > 1 else n for p, n in zip(paths, names)]
    clash = Counter(names)
    if any(c > 1 for c in clash.values()):
        absolute = [p.absolute() for p in paths]
        root = Path(os.path.commonpath([str(a.parent) for a in absolute]))
        names = [a.relative_to(root).as_posix() if clash[n] > 1 else n for a, n in zip(absolute, names)]
    seen: Counter[str] = Counter()
    unique = []
    for n in names:  # the same file listed twice
        seen[n] += 1
        unique.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return unique


def split_unencodable(paths: Sequence[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """``(usable, skipped)``: paths whose names are not valid UTF-8 cannot be stored in a run's
    database or config, so they are skipped with a reason (shown with the bad bytes escaped)."""
    usable, skipped = [], []
    for p in paths:
        try:
            str(p).encode("utf-8")
            usable.append(p)
        except UnicodeEncodeError:
            shown = os.fsencode(p).decode("utf-8", "backslashreplace")
            skipped.append((shown, "its file name is not valid UTF-8; rename it"))
    return usable, skipped
