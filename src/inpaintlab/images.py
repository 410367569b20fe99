"""Image and mask I/O: the edge where files become tensors and tensors become files.

Inside the library an image batch is ``torch.float32`` ``(N, 3, H, W)`` in ``[0, 1]`` and a hole
mask is ``(N, 1, H, W)`` with **1 = hole** (to fill) and 0 = keep. This module is the only
place that knows about file formats, colour modes, bit depths and EXIF orientation.

Reading (``read_image`` / ``load_image``):

- EXIF orientation is applied, so an image is seen upright, as a viewer shows it.
- Grayscale becomes three equal channels; palette, CMYK and the other PIL modes become RGB.
- Transparency (LA, RGBA, palette or colour-key transparency) is alpha-composited onto the
  pad colour.
- 16-bit files (grayscale or colour, PNG or TIFF) keep their 16-bit precision in
  ``read_image``; ``load_image`` then rounds to the 8-bit grid by default (``quantize``),
  because that is what every saved result holds.
- Multi-frame files (GIF, APNG, multi-page TIFF) give their first frame.
- Any failure is a one-line ``BadImageError``: ``cannot read image <path>: <reason>``.

Square images (the RIP protocol): an image whose form factor is not square gets **blank bands**
on its two short sides, centred (an odd remainder goes to the bottom / right band), and is then
resized to ``size x size`` (area interpolation when shrinking, bicubic when enlarging). The
band colour is ``pad_color``, an ``(R, G, B)`` triple in 0-255; the default is **black
(0, 0, 0)**. Transparent pixels are composited onto the same colour.

Masks (``load_mask`` / ``save_mask``): white = hole, black = keep, and a mask file must be
binary (0 and 255, or 0 and 1; 16-bit: 0 and 65535). Anti-aliased or JPEG masks are refused
with a one-line ``BadMaskError`` rather than thresholded silently.

Writing (``save_image`` / ``save_mask``) is atomic: a temporary file in the same folder, then
``os.replace``, so a killed run never leaves a half-written image behind.
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic import atomic_write
from .errors import BadImageError, BadMaskError, InpaintlabError

__all__ = [
    "SUPPORTED_SUFFIXES",
    "builtin_images",
    "image_files",
    "image_name",
    "load_image",
    "load_images",
    "load_mask",
    "pad_to_square",
    "read_image",
    "resize",
    "save_image",
    "save_mask",
    "to_numpy_uint8",
    "to_tensor",
    "validate_hole",
    "validate_images",
]

SUPPORTED_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"})
"""Image file suffixes the toolkit reads and writes (compare lower-cased)."""

_TOLERANCE = 1e-6  # how far outside [0, 1] a float image may stray (rounding noise)
_EXIF_ORIENTATION = 0x0112

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


class _Unreadable(Exception):
    """Internal: a file could not be decoded; ``reason`` is the short user-facing cause."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# ----------------------------------------------------------------------------------------------
# small helpers


def _one_line(text: str) -> str:
    """Put ``text`` on one line (error messages are printed as one line)."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _reason(exc: BaseException) -> str:
    """A short, one-line cause for an exception raised while reading or writing a file."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "it is a folder, not a file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image file (or a format Pillow cannot read)"
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        text = exc.strerror  # the path is already in our message
    return _one_line(text or type(exc).__name__)[:200]


def pad_rgb(pad_color: Sequence[int]) -> tuple[int, int, int]:
    """Validate a pad colour: three integers in 0-255 (R, G, B)."""
    try:
        if isinstance(pad_color, (str, bytes)):
            raise TypeError(pad_color)
        values = tuple(pad_color)
        ok = len(values) == 3 and all(float(v) == int(v) and 0 <= int(v) <= 255 for v in values)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InpaintlabError(f"pad colour must be three integers 0-255 (R, G, B), got {pad_color!r}")
    return tuple(int(v) for v in values)  # type: ignore[return-value]


def _check_size(size: int, what: str = "size") -> int:
    """Validate an output side length: a positive integer."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
        raise InpaintlabError(f"{what} must be a positive integer, got {size!r}")
    return int(size)


def _composite(rgb: np.ndarray, alpha: np.ndarray, pad: tuple[int, int, int]) -> np.ndarray:
    """Alpha-composite float ``rgb`` (HxWx3) with float ``alpha`` (HxW) onto the pad colour."""
    a = alpha[..., None]
    background = np.asarray(pad, dtype=np.float32) / np.float32(255)
    return rgb * a + background * (np.float32(1) - a)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    """Repeat an HxW channel into HxWx3."""
    return np.repeat(gray[..., None], 3, axis=2)


def _scale(arr: np.ndarray) -> np.ndarray:
    """Integer or float samples to float32 in [0, 1], by the true bit depth of the dtype."""
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255)
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 2:  # uint16 in either byte order
        return arr.astype(np.float32) / np.float32(65535)
    if arr.dtype.kind in "iu":  # 32-bit integer mode "I": PNG / TIFF 16-bit data land here
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise _Unreadable("32-bit integer pixels outside 0-65535 are not supported")
        return arr.astype(np.float32) / np.float32(65535)
    if arr.dtype.kind == "f":
        out = arr.astype(np.float32)
        if out.size and not (np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1):
            raise _Unreadable("floating-point pixels must be finite and within [0, 1]")
        return out
    raise _Unreadable(f"unsupported sample type {arr.dtype}")


def _rawmodes(im: Image.Image) -> list[str]:
    """The raw (file) modes of the tiles PIL will decode, e.g. 'RGB;16B' for 16-bit RGB."""
    modes = []
    for tile in im.tile or ():
        args = tile[3]
        if isinstance(args, tuple):
            args = args[0] if args else ""
        modes.append(str(args))
    return modes


def _is_deep_colour(im: Image.Image) -> bool:
    """True when PIL would silently cut a 16-bit colour (or gray+alpha) file down to 8 bits."""
    return im.mode in ("RGB", "RGBA", "LA") and any(";16" in m for m in _rawmodes(im))


def _exif_orientation(im: Image.Image) -> int:
    """The EXIF orientation tag (1-8), 1 when absent or invalid."""
    value = im.getexif().get(_EXIF_ORIENTATION, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation to an HxWxC array, exactly as ``ImageOps.exif_transpose``."""
    if orientation == 2:
        arr = arr[:, ::-1]
    elif orientation == 3:
        arr = arr[::-1, ::-1]
    elif orientation == 4:
        arr = arr[::-1]
    elif orientation == 5:
        arr = arr.transpose(1, 0, 2)
    elif orientation == 6:
        arr = np.rot90(arr, -1)
    elif orientation == 7:
        arr = arr[::-1, ::-1].transpose(1, 0, 2)
    elif orientation == 8:
        arr = np.rot90(arr, 1)
    return np.ascontiguousarray(arr)


def _from_cv2(arr: np.ndarray, pad: tuple[int, int, int]) -> np.ndarray:
    """An array from ``cv2.imdecode(..., IMREAD_UNCHANGED)`` to float32 RGB HxWx3 in [0, 1]."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    values = _scale(arr)
    if values.ndim == 2:
        return _gray_to_rgb(values)
    channels = values.shape[2]
    if channels == 2:  # gray + alpha
        return _composite(_gray_to_rgb(values[..., 0]), values[..., 1], pad)
    if channels == 3:
        return values[..., ::-1]
    if channels == 4:
        return _composite(values[..., 2::-1], values[..., 3], pad)
    raise _Unreadable(f"unsupported number of channels ({channels})")


@contextlib.contextmanager
def _quiet_opencv():
    """Silence OpenCV's log while it probes a file (a failure is reported by our own error)."""
    log = getattr(getattr(cv2, "utils", None), "logging", None)
    if log is None:
        yield
        return
    level = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        log.setLogLevel(level)


def _imdecode(path: Path) -> np.ndarray | None:
    """Decode a file with OpenCV as stored (no colour or depth conversion); None if it cannot."""
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        return None
    with _quiet_opencv():
        return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def _from_pil(im: Image.Image, pad: tuple[int, int, int]) -> np.ndarray:
    """A loaded, upright PIL image (any mode) to float32 RGB HxWx3 in [0, 1]."""
    mode = im.mode
    if mode == "1":
        im, mode = im.convert("L"), "L"
    has_key = "transparency" in im.info
    if mode in ("PA", "LA", "La", "RGBa") or (mode in ("P", "L", "RGB") and has_key):
        im, mode = im.convert("RGBA"), "RGBA"
    elif mode == "P":
        im, mode = im.convert("RGB"), "RGB"
    if mode == "RGBA":
        arr = _scale(np.asarray(im))
        return _composite(arr[..., :3], arr[..., 3], pad)
    if mode == "RGB":
        return _scale(np.asarray(im))
    if mode in ("L", "I", "F") or mode.startswith("I;16"):
        return _gray_to_rgb(_scale(np.asarray(im)))
    try:  # CMYK, YCbCr, LAB, HSV, ...
        converted = im.convert("RGB")
    except (ValueError, OSError):
        raise _Unreadable(f"unsupported colour mode {mode}") from None
    return _scale(np.asarray(converted))


def _decode(path: Path, pad: tuple[int, int, int]) -> np.ndarray:
    """Read ``path`` into float32 RGB HxWx3 in [0, 1]; raises ``_Unreadable``."""
    if path.is_dir():
        raise _Unreadable("it is a folder, not a file")
    try:
        with Image.open(path) as im:
            deep = _is_deep_colour(im)
            orientation = _exif_orientation(im) if deep else 1
            im.load()  # full decode now, so truncated or corrupt data fails here
            if not deep:
                return _from_pil(ImageOps.exif_transpose(im), pad)
        # 16-bit colour: PIL only offers 8 bits per channel, OpenCV keeps all 16.
        arr = _imdecode(path)
        if arr is None:
            raise _Unreadable("OpenCV cannot decode its 16-bit colour data")
        return _orient(_from_cv2(arr, pad), orientation)
    except _Unreadable:
        raise
    except UnidentifiedImageError as exc:
        # Pillow has no reader for some TIFF flavours (float samples, >4 channels); OpenCV may.
        if path.suffix.lower() in (".tif", ".tiff"):
            arr = _imdecode(path)
            if arr is not None:
                return _from_cv2(arr, pad)
        raise _Unreadable(_reason(exc)) from None
    except Exception as exc:  # decoders raise many types on corrupt data; all mean "unreadable"
        raise _Unreadable(_reason(exc)) from None


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


# ----------------------------------------------------------------------------------------------
# reading and shaping images


def read_image(path: str | os.PathLike, *, pad_color: Sequence[int] = (0, 0, 0)) -> np.ndarray:
    """Read an image file as float32 RGB ``HxWx3`` in ``[0, 1]`` at its native size.

    EXIF orientation is applied; transparency is composited onto ``pad_color`` (0-255 RGB);
    16-bit files keep 16-bit precision; multi-frame files give their first frame. Raises
    ``BadImageError`` (one line) for a missing, non-image, truncated or corrupt file.
    """
    path = Path(path)
    try:
        return _read(path, pad_rgb(pad_color))
    except _Unreadable as exc:
        raise BadImageError(_one_line(f"cannot read image {path}: {exc.reason}")) from None


def _read(path: Path, pad: tuple[int, int, int]) -> np.ndarray:
    """``read_image`` without the error wrapping: raises ``_Unreadable``."""
    out = np.ascontiguousarray(_decode(path, pad), dtype=np.float32)
    np.clip(out, 0.0, 1.0, out=out)  # compositing may round a hair above 1
    return out


def _prepare(arr: np.ndarray, size: int | None, pad: tuple[int, int, int], quantize: bool) -> torch.Tensor:
    """Pad, resize and quantize a read image as ``load_image`` documents."""
    if size is not None:
        arr = resize(pad_to_square(arr, pad), size)
    if quantize:
        arr = np.round(arr * np.float32(255)) / np.float32(255)
    return to_tensor(arr)


def image_from_pil(im: Image.Image, *, size: int | None = 512, pad_color: Sequence[int] = (0, 0, 0),
                   quantize: bool = True) -> torch.Tensor:
    """An in-memory PIL image (any mode, e.g. from a dataset library) as ``load_image`` would load it.

    Same rules as files: EXIF orientation, modes and transparency on ``pad_color``, pad, resize,
    quantize. Undecodable data raises ``BadImageError`` with a one-line reason.
    """
    pad = pad_rgb(pad_color)
    try:
        im.load()
        arr = np.clip(np.ascontiguousarray(_from_pil(ImageOps.exif_transpose(im), pad)), 0, 1)
    except Exception as exc:  # decoders raise many types on corrupt data; all mean "unreadable"
        raise BadImageError(f"cannot decode image: {_reason(exc)}") from None
    return _prepare(arr, size, pad, quantize)


def pad_to_square(image: np.ndarray, pad_color: Sequence[int] = (0, 0, 0)) -> np.ndarray:
    """Centre ``image`` (HxWx3, float in [0, 1] or uint8) between blank bands to make it square.

    The bands are ``pad_color`` (0-255 RGB; default black). An odd remainder goes to the
    bottom / right band. Always returns a new array of the same dtype.
    """
    pad = pad_rgb(pad_color)
    if image.ndim != 3 or image.shape[2] != 3:
        raise BadImageError(f"pad_to_square expects an HxWx3 array, got shape {tuple(image.shape)}")
    h, w = image.shape[:2]
    n = max(h, w)
    fill = np.asarray(pad, dtype=np.float64)
    if image.dtype.kind == "f":
        fill = fill / 255.0
    out = np.empty((n, n, 3), dtype=image.dtype)
    out[...] = fill.astype(image.dtype)
    top, left = (n - h) // 2, (n - w) // 2
    out[top : top + h, left : left + w] = image
    return out


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Resize ``image`` (HxWx3) to ``size x size`` as float32 in [0, 1].

    Area interpolation when shrinking (``cv2.INTER_AREA``), bicubic when enlarging on both
    axes, then clipped to [0, 1]. A uint8 input is first scaled to [0, 1]. A non-square input
    is stretched: call ``pad_to_square`` first to keep the aspect ratio.
    """
    size = _check_size(size)
    if image.ndim != 3 or image.shape[2] != 3:
        raise BadImageError(f"resize expects an HxWx3 array, got shape {tuple(image.shape)}")
    arr = image.astype(np.float32) / np.float32(255) if image.dtype == np.uint8 else image.astype(np.float32)
    h, w = arr.shape[:2]
    if (h, w) == (size, size):
        return arr  # astype made a copy
    enlarge = size > h and size > w
    out = cv2.resize(
        np.ascontiguousarray(arr), (size, size), interpolation=cv2.INTER_CUBIC if enlarge else cv2.INTER_AREA
    )
    np.clip(out, 0.0, 1.0, out=out)
    return out


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """An ``HxWx3`` array (float in [0, 1], or uint8 in 0-255) to a float32 ``(1, 3, H, W)`` tensor."""
    a = np.asarray(arr)
    if a.ndim != 3 or a.shape[2] != 3:
        raise BadImageError(f"to_tensor expects an HxWx3 array, got shape {tuple(a.shape)}")
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / np.float32(255)
    elif a.dtype.kind == "f":
        a = a.astype(np.float32, copy=False)
    else:
        raise BadImageError(f"to_tensor expects a float or uint8 array, got {a.dtype}")
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


def to_numpy_uint8(tensor: torch.Tensor) -> np.ndarray:
    """A ``(1, 3, H, W)`` or ``(3, H, W)`` float tensor in [0, 1] to ``HxWx3`` uint8 (nearest)."""
    if not isinstance(tensor, torch.Tensor):
        raise BadImageError(f"expected a torch.Tensor image, got {type(tensor).__name__}")
    t = tensor[None] if tensor.ndim == 3 else tensor
    validate_images(t, "image")
    if t.shape[0] != 1:
        raise BadImageError(f"expected one image (1, 3, H, W), got a batch of shape {tuple(t.shape)}")
    t = t[0].detach().to(device="cpu", dtype=torch.float32)
    return t.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def load_image(
    path: str | os.PathLike,
    *,
    size: int | None = 512,
    pad_color: Sequence[int] = (0, 0, 0),
    quantize: bool = True,
) -> torch.Tensor:
    """Read an image as a float32 ``(1, 3, S, S)`` tensor in [0, 1], ready for the library.

    Pads to square with blank bands of ``pad_color`` and resizes to ``size``; ``size=None``
    keeps the native ``(1, 3, H, W)`` with no padding. With ``quantize`` the values are rounded
    to the 8-bit grid (``round(x * 255) / 255``), which is what a saved image holds, so a
    result compared with its saved copy compares equal.
    """
    if size is not None:
        _check_size(size)
    return _prepare(read_image(path, pad_color=pad_color), size, pad_rgb(pad_color), quantize)


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


# ----------------------------------------------------------------------------------------------
# masks


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


# ----------------------------------------------------------------------------------------------
# validation (cheap: runs every RIP iteration)


def validate_images(images: torch.Tensor, name: str = "images") -> None:
    """Check the image convention: float ``(N, 3, H, W)``, finite, in [0, 1]; else ``BadImageError``."""
    if not isinstance(images, torch.Tensor):
        raise BadImageError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise BadImageError(f"{name} must have shape (N, 3, H, W), got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise BadImageError(f"{name} must be a float tensor in [0, 1], got dtype {images.dtype}")
    if images.numel() == 0:
        raise BadImageError(f"{name} is empty (shape {tuple(images.shape)})")
    lo, hi = torch.aminmax(images.detach())
    lo, hi = float(lo), float(hi)  # NaN propagates through aminmax
    if lo >= -_TOLERANCE and hi <= 1 + _TOLERANCE:
        return
    if not bool(torch.isfinite(images).all()):
        raise BadImageError(f"{name} contain NaN or infinite values")
    raise BadImageError(f"{name} must be in [0, 1], got values in [{lo:.6g}, {hi:.6g}]")


def validate_hole(hole: torch.Tensor, images: torch.Tensor) -> None:
    """Check a hole mask against its images; else ``BadMaskError`` naming the first bad sample.

    The mask must be ``(N, 1, H, W)`` with the images' N, H, W, hold only 0 and 1, and leave
    each sample neither empty (nothing to inpaint) nor full (nothing to inpaint from).
    """
    if not isinstance(hole, torch.Tensor):
        raise BadMaskError(f"hole must be a torch.Tensor, got {type(hole).__name__}")
    n, h, w = images.shape[0], images.shape[-2], images.shape[-1]
    if hole.ndim != 4 or tuple(hole.shape) != (n, 1, h, w):
        raise BadMaskError(
            f"hole has shape {tuple(hole.shape)} but must be {(n, 1, h, w)} "
            f"for images of shape {tuple(images.shape)}"
        )
    if n == 0 or h * w == 0:
        return
    flat = hole.detach().reshape(n, h * w)
    nonzero = flat != 0
    if flat.dtype == torch.bool:
        nonbinary = torch.zeros((n,), dtype=torch.bool, device=flat.device)
    else:
        nonbinary = (nonzero & (flat != 1)).any(dim=1)
    count = nonzero.sum(dim=1)
    empty, full = count == 0, count == h * w
    flags = torch.stack([nonbinary.any(), empty.any(), full.any()]).tolist()  # one device sync
    if not any(flags):
        return
    for failed, message in zip(
        (nonbinary, empty, full),
        (
            "is not binary: hole values must be 0 (keep) or 1 (fill)",
            "is empty: nothing to inpaint",
            "covers the whole image: nothing is left to inpaint from",
        ),
    ):
        if failed.any():
            index = int(failed.nonzero()[0, 0])
            raise BadMaskError(f"mask {index} {message}")


# ----------------------------------------------------------------------------------------------
# finding and loading many images


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


def image_name(path: str | os.PathLike, root: str | os.PathLike | None = None) -> str:
    """A stable name for result tables: the file stem, or with ``root`` the relative path
    without its suffix, '/'-joined (``root/a/b.png`` -> ``"a/b"``)."""
    p = Path(path)
    if root is None:
        return p.stem
    try:
        rel = p.relative_to(root)
    except ValueError:
        try:
            rel = p.absolute().relative_to(Path(root).absolute())
        except ValueError:
            raise InpaintlabError(f"image {p} is not inside {root}") from None
    return rel.with_suffix("").as_posix()


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


def load_images(
    paths: Iterable[str | os.PathLike],
    *,
    size: int | None = 512,
    pad_color: Sequence[int] = (0, 0, 0),
    quantize: bool = True,
) -> tuple[list[tuple[str, torch.Tensor]], list[tuple[Path, str]]]:
    """Load every readable file as ``(name, (1, 3, S, S) tensor)``; collect failures as ``(path, reason)``.

    A broken file never stops the others. Names are the file stems; files whose stems clash
    (``a.png`` and ``a.jpg``) keep their suffix, and stems that still clash use the path
    relative to the files' common folder. Names depend on ``paths`` only, not on which files fail.
    """
    pad = pad_rgb(pad_color)
    if size is not None:
        _check_size(size)
    paths = [Path(p) for p in paths]
    loaded: list[tuple[str, torch.Tensor]] = []
    failed: list[tuple[Path, str]] = []
    for path, name in zip(paths, unique_names(paths)):
        try:
            loaded.append((name, _prepare(_read(path, pad), size, pad, quantize)))
        except _Unreadable as exc:
            failed.append((path, exc.reason))
        except MemoryError:
            failed.append((path, "too large to load into memory"))
    return loaded, failed
