"""Reading and writing binary hole masks (white = hole, black = keep)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ..atomic import atomic_write
from ..errors import BadMaskError
from ._common import _one_line, _reason, _Unreadable
from .save import _save_format


def _mask_levels(im: Image.Image, path: Path) -> tuple[np.ndarray, int]:
    """A mask image to one integer/float channel and its full-scale (white) value."""
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("LA", "PA", "La", "RGBa"):
        im, mode = im.convert("RGBA"), "RGBA"
    if mode == "RGBA":
        arr = np.asarray(im)
        if (arr[..., 3] != 255).any():
            raise BadMaskError(
                f"mask {path} has transparent pixels: save it without an alpha channel "
                "(white = hole, black = keep)"
            )
        im, mode = Image.fromarray(np.ascontiguousarray(arr[..., :3])), "RGB"
    if mode == "RGB":
        arr = np.asarray(im)
        if (arr[..., 0] != arr[..., 1]).any() or (arr[..., 0] != arr[..., 2]).any():
            raise BadMaskError(
                f"mask {path} is coloured (its R, G, B channels differ): "
                "binarize it: white = hole, black = keep"
            )
        return arr[..., 0], 255
    if mode == "1":
        return np.asarray(im).astype(np.uint8), 1
    if mode == "L":
        return np.asarray(im), 255
    if mode.startswith("I;16") or mode == "I":
        return np.asarray(im).astype(np.int64), 65535
    if mode == "F":
        return np.asarray(im), 1
    raise BadMaskError(f"mask {path} has colour mode {mode}: save it as an 8-bit grayscale PNG")


def load_mask(path: str | os.PathLike, *, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Read a binary hole mask (white = hole, black = keep) as float32 ``(1, 1, H, W)``.

    The file must hold only two levels: 0 and white (255; 65535 for 16-bit), or 0 and 1.
    Grayscale, or RGB with three equal channels. EXIF orientation is applied. ``size`` is the
    ``(H, W)`` the mask must have (the image's); a mismatch is a ``BadMaskError``. An empty or
    full mask is returned as is: ``validate_hole`` refuses it where it matters.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise _Unreadable("it is a folder, not a file")
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
    except _Unreadable as exc:
        raise BadMaskError(_one_line(f"cannot read mask {path}: {exc.reason}")) from None
    except Exception as exc:  # decoders raise many types on corrupt data
        raise BadMaskError(_one_line(f"cannot read mask {path}: {_reason(exc)}")) from None
    levels, white = _mask_levels(im, path)
    values = np.unique(levels)
    if np.isin(values, (0, white)).all():
        hole = levels == white
    elif np.isin(values, (0, 1)).all():
        hole = levels == 1
    else:
        stray = [v for v in values.tolist() if v not in (0, 1, white)][:4]
        hint = " and save it as PNG (JPEG blurs the edges)" if path.suffix.lower() in (".jpg", ".jpeg") else ""
        raise BadMaskError(
            f"mask {path} is not binary ({values.size} levels, e.g. {', '.join(f'{v:g}' for v in stray)}): "
            f"binarize it: white = hole, black = keep{hint}"
        )
    h, w = hole.shape
    if size is not None and (h, w) != (int(size[0]), int(size[1])):
        raise BadMaskError(
            f"mask {path} is {h}x{w} (HxW) but the image is {int(size[0])}x{int(size[1])}: "
            "make the mask at the image's size"
        )
    return torch.from_numpy(hole.astype(np.float32))[None, None]


def save_mask(path: str | os.PathLike, hole: torch.Tensor | np.ndarray) -> None:
    """Save a binary hole mask (``(1, 1, H, W)``, ``(1, H, W)`` or ``(H, W)``; 1 = hole) as white = hole.

    Written atomically as 8-bit grayscale 0 / 255 in a lossless format (PNG by default).
    """
    path = Path(path)
    try:
        fmt, options = _save_format(path, lossless_only=True)
    except ValueError as exc:
        raise BadMaskError(f"cannot save mask {path}: {exc}; masks must be stored losslessly") from None
    arr = hole.detach().cpu().numpy() if isinstance(hole, torch.Tensor) else np.asarray(hole)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise BadMaskError(f"cannot save mask {path}: expected one (1, 1, H, W) mask, got shape {tuple(np.shape(hole))}")
    if not np.isin(arr, (0, 1)).all():
        raise BadMaskError(f"cannot save mask {path}: values must be 0 (keep) or 1 (hole)")
    pil = Image.fromarray((arr != 0).astype(np.uint8) * 255)
    try:
        atomic_write(path, lambda f: pil.save(f, format=fmt, **options))
    except OSError as exc:
        raise BadMaskError(_one_line(f"cannot save mask {path}: {_reason(exc)}")) from exc
