"""Holes restricted to an image's background: ``hole AND NOT foreground``, redrawn into a ratio range.

Seamless Borders (Hou et al. 2025, Sec. 4, implementation details) trains inpainting with
"the saliency detection model U2Net [...] to segment out the background, then randomly sample
masks within the background areas"; ASUKA's MISATO COCO domain likewise "remove[s]" the
foreground "from the generated masks". Both are ``hole AND NOT foreground`` with a per-image
foreground, so these are pure functions of (draw, foreground, rng), not a registered kind: a
registered kind sees only ``(height, width, rng)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from ..errors import InpaintlabError
from .base import MaskGenerator, check, resample


def check_foreground(foreground: np.ndarray, what: str = "foreground") -> np.ndarray:
    """``foreground`` as a boolean HxW array: bool as is, numbers ``>= 0.5`` (0/1 masks, saliency in [0, 1])."""
    fg = np.asarray(foreground)
    check(fg.ndim == 2, f"{what} must be one HxW mask, got shape {fg.shape}")
    if fg.dtype == bool:
        return fg
    check(fg.dtype.kind in "uif", f"{what} must be boolean or numeric, got dtype {fg.dtype}")
    check(bool(np.isfinite(fg).all()), f"{what} has NaN or infinite values")
    return fg >= 0.5


def background_hole(draw: MaskGenerator, foreground: np.ndarray, rng: np.random.Generator, *,
                    lo: float = 0.0, hi: float = 1.0, max_tries: int = 100) -> np.ndarray:
    """``draw(H, W, rng) AND NOT foreground``, redrawn until its hole ratio is in ``(lo, hi]``.

    ``foreground`` (HxW, bool or 0/1; 1 = salient pixel) is never in the returned hole (HxW
    float32, 1 = hole). The ratio is the restricted hole's share of the whole image; the default
    range only refuses an empty hole. Every redraw uses the same ``rng``, so the result depends
    only on its state. After ``max_tries`` misses, one :class:`HoleRatioError` line.
    """
    lo, hi = float(lo), float(hi)
    check(0.0 <= lo < hi <= 1.0, f"background hole ratio range ({lo}, {hi}] is not valid: need 0 <= lo < hi <= 1")
    fg = check_foreground(foreground)
    height, width = fg.shape
    keep_out = np.float32(1) - fg.astype(np.float32)

    def restricted() -> np.ndarray:
        hole = np.asarray(draw(height, width, rng))
        check(hole.shape == (height, width),
              f"the mask drawn has shape {hole.shape} but the foreground is {height}x{width}")
        return (hole > 0.5).astype(np.float32) * keep_out

    return resample(restricted, lambda r: lo < r <= hi, max_tries,
                    f"in ({lo:g}, {hi:g}] outside the foreground ({fg.mean():.0%} of the image)")


def maybe_background_hole(draw: MaskGenerator, height: int, width: int, rng: np.random.Generator,
                          foreground: np.ndarray | None = None, *, lo: float = 0.0, hi: float = 1.0,
                          max_tries: int = 100) -> np.ndarray:
    """``background_hole`` when there is a ``foreground``; without one (None), ``draw(height, width, rng)`` unrestricted.

    ``lo``, ``hi`` and ``max_tries`` apply only to the restricted hole. Saying that no
    foreground was used (one line) is the caller's job; this prints nothing.
    """
    if foreground is None:
        return np.asarray(draw(int(height), int(width), rng), np.float32)
    fg = check_foreground(foreground)
    check(fg.shape == (int(height), int(width)),
          f"the foreground is {fg.shape[0]}x{fg.shape[1]} but the image is {int(height)}x{int(width)}")
    return background_hole(draw, fg, rng, lo=lo, hi=hi, max_tries=max_tries)


def read_foreground(path: str | os.PathLike, height: int, width: int) -> np.ndarray:
    """A per-image foreground mask file (white = foreground) as a boolean ``height`` x ``width`` array.

    Any size (resized nearest-neighbour to the image's) and any depth: a binary mask (0/255, or
    0/1) or a grayscale saliency map such as U2Net's, foreground where it is at least half of
    white. EXIF orientation is applied; colour is read as luminance. A file that cannot be read is
    one :class:`InpaintlabError` line naming it.
    """
    from ..images._common import _one_line, _reason  # lazily: the images package imports torch

    path = Path(path)
    check(int(height) > 0 and int(width) > 0, f"image size must be positive, got {height}x{width}")
    try:
        if path.is_dir():
            raise IsADirectoryError(path)
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode == "1":
                levels, white = np.asarray(im, np.uint8), 1
            elif im.mode.startswith("I;16") or im.mode == "I":
                levels, white = np.asarray(im).astype(np.int64), 65535
            elif im.mode == "F":
                levels, white = np.asarray(im), 1.0
            else:
                levels, white = np.asarray(im.convert("L")), 255
    except Exception as exc:  # decoders raise many types on corrupt data
        raise InpaintlabError(_one_line(f"cannot read foreground mask {path}: {_reason(exc)}")) from None
    if white != 1 and np.isin(levels, (0, 1)).all():  # a 0/1 mask saved as 8/16-bit
        fg = levels == 1
    else:
        fg = levels >= white / 2
    if fg.shape != (int(height), int(width)):
        # INTER_NEAREST_EXACT samples at pixel centres (PIL's NEAREST), the grid the image's resizes use;
        # INTER_NEAREST is offset by up to a source pixel
        fg = cv2.resize(fg.astype(np.uint8), (int(width), int(height)), interpolation=cv2.INTER_NEAREST_EXACT) > 0
    return fg


#: the file types a foreground mask may have, tried in this order
FOREGROUND_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def foreground_file(folder: str | os.PathLike, name: str) -> Path | None:
    """``folder/<stem of name>.png`` (or another of :data:`FOREGROUND_SUFFIXES`), if it exists."""
    stem = Path(name).stem
    for suffix in FOREGROUND_SUFFIXES:
        path = Path(folder).expanduser() / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None
