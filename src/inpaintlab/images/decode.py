"""Reading files and in-memory PIL images into float32 RGB arrays and ``(1, 3, H, W)`` tensors.

EXIF orientation, colour modes, 16-bit depth and transparency (``read_image``,
``image_from_pil``), square padding and resizing (``pad_to_square``, ``resize``), array <->
tensor conversion (``to_tensor``, ``to_numpy_uint8``) and loading ready for the library
(``load_image``). The rules are in the package docstring (``inpaintlab.images``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import BadImageError, InpaintlabError
from ._common import _check_size, _one_line, _reason, _Unreadable
from .quantization import quantize_array, to_uint8
from .validate import validate_images

_EXIF_ORIENTATION = 0x0112


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


def _has_alpha(im: Image.Image) -> bool:
    """Whether a PIL image carries transparency (an alpha channel or a transparent colour key)."""
    return im.mode in ("RGBA", "PA", "LA", "La", "RGBa") or (im.mode in ("P", "L", "RGB") and "transparency" in im.info)


def read_rgba8(path: str | os.PathLike) -> np.ndarray | None:
    """An image file with transparency as upright 8-bit ``HxWx4`` RGBA, its colours not composited; None
    when it has no transparency. ``inpaint`` copies these values back outside the hole, so transparency
    and the colours under it survive exactly."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if not _has_alpha(im):
                return None
            return np.ascontiguousarray(np.asarray(ImageOps.exif_transpose(im).convert("RGBA")))
    except Exception as exc:  # decoders raise many types on corrupt data
        raise BadImageError(_one_line(f"cannot read image {path}: {_reason(exc)}")) from None


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
        arr = quantize_array(arr)
    return to_tensor(arr)


def shape_image(arr: np.ndarray, *, size: int | None = 512, pad_color: Sequence[int] = (0, 0, 0),
                quantize: bool = True) -> torch.Tensor:
    """A read ``HxWx3`` image as ``load_image`` returns it: padded to square and resized (``size``), quantized."""
    if size is not None:
        _check_size(size)
    return _prepare(arr, size, pad_rgb(pad_color), quantize)


def array_from_pil(im: Image.Image, *, pad_color: Sequence[int] = (0, 0, 0)) -> np.ndarray:
    """An in-memory PIL image (any mode) as ``read_image`` reads a file: float32 ``HxWx3`` in [0, 1], native size.

    Same rules as files: EXIF orientation, modes and transparency on ``pad_color``. Undecodable
    data raises ``BadImageError`` with a one-line reason.
    """
    pad = pad_rgb(pad_color)
    try:
        im.load()
        return np.clip(np.ascontiguousarray(_from_pil(ImageOps.exif_transpose(im), pad)), 0, 1)
    except Exception as exc:  # decoders raise many types on corrupt data; all mean "unreadable"
        raise BadImageError(f"cannot decode image: {_reason(exc)}") from None


def image_from_pil(im: Image.Image, *, size: int | None = 512, pad_color: Sequence[int] = (0, 0, 0),
                   quantize: bool = True) -> torch.Tensor:
    """An in-memory PIL image (any mode, e.g. from a dataset library) as ``load_image`` would load it."""
    return _prepare(array_from_pil(im, pad_color=pad_color), size, pad_rgb(pad_color), quantize)


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
    return to_uint8(t).permute(1, 2, 0).contiguous().numpy()


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
