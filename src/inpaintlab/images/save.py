"""Writing image tensors to 8-bit files, atomically, in the format the suffix names."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image

from ..atomic import atomic_write
from ..errors import InpaintlabError
from ._common import _one_line, _reason
from .decode import to_numpy_uint8
from .files import SUPPORTED_SUFFIXES


def _save_format(path: Path, lossless_only: bool = False) -> tuple[str, dict]:
    """PIL format name and options for a file suffix; no suffix means PNG."""
    suffix = path.suffix.lower()
    if suffix in ("", ".png"):
        # zlib level 1: about 4x faster than PIL's default 6 for ~20 % larger files; RIP keeps
        # hundreds of checkpoint images and the encoder dominated its harness time.
        return "PNG", {"compress_level": 1}
    if suffix in (".jpg", ".jpeg") and not lossless_only:
        return "JPEG", {"quality": 95}
    if suffix == ".webp":
        return "WEBP", {"lossless": True}
    if suffix in (".tif", ".tiff"):
        return "TIFF", {}
    if suffix == ".bmp":
        return "BMP", {}
    allowed = ".png .webp .tif .tiff .bmp" if lossless_only else " ".join(sorted(SUPPORTED_SUFFIXES))
    raise ValueError(f"unsupported suffix {path.suffix!r} (use one of: {allowed})")


def save_image(path: str | os.PathLike, image_tensor: torch.Tensor) -> None:
    """Save a ``(1, 3, H, W)`` or ``(3, H, W)`` tensor in [0, 1] as an 8-bit file, atomically.

    The format follows the suffix: PNG (also for a path with no suffix), JPEG (quality 95),
    WebP (lossless), TIFF, BMP. Parent folders are created.
    """
    path = Path(path)
    try:
        fmt, options = _save_format(path)
    except ValueError as exc:
        raise InpaintlabError(f"cannot save image {path}: {exc}") from None
    pil = Image.fromarray(to_numpy_uint8(image_tensor))
    try:
        atomic_write(path, lambda f: pil.save(f, format=fmt, **options))
    except OSError as exc:
        raise InpaintlabError(_one_line(f"cannot save image {path}: {_reason(exc)}")) from exc


def output_format(path: str | os.PathLike, *, alpha: bool = False) -> tuple[str, dict]:
    """The PIL format and options an image written to ``path`` gets; a suffix that cannot hold it is one line.

    Call it before long work, so that a wrong output name is refused before, not after.
    """
    path = Path(path)
    try:
        fmt, options = _save_format(path)
    except ValueError as exc:
        raise InpaintlabError(f"cannot save image {path}: {exc}") from None
    if alpha and fmt in ("JPEG", "BMP"):
        raise InpaintlabError(f"cannot save {path}: {fmt} has no alpha channel, and the input's transparency must be "
                              f"kept; write a .png, .webp or .tif")
    if path.is_dir():
        raise InpaintlabError(f"cannot save image {path}: it is a folder; give a file name")
    return fmt, options


def save_rgba(path: str | os.PathLike, rgba) -> None:
    """Save an ``HxWx4`` uint8 RGBA array atomically in a format that keeps alpha (PNG, WebP, TIFF)."""
    path = Path(path)
    fmt, options = output_format(path, alpha=True)
    pil = Image.fromarray(rgba, mode="RGBA")
    try:
        atomic_write(path, lambda f: pil.save(f, format=fmt, **options))
    except OSError as exc:
        raise InpaintlabError(_one_line(f"cannot save image {path}: {_reason(exc)}")) from exc
