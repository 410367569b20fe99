"""Object-shape masks from a folder of segmentation masks, and their convex-hull expansion.

Object shapes are the MISATO/ASUKA "object-shape" family (Wang et al., ASUKA Sec. 3.1) and the
object masks of LaMa's ``segm`` family; the convex-hull expansion is the BrushBench mask fix of
the Seamless Borders paper (Sec. 5: "identify its convex hull and then slightly expand [it]").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .base import MASKS, MaskGenerator, MaskParamError, check

MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".webp", ".jpg", ".jpeg", ".gif")


@dataclass(frozen=True)
class ObjectShape:
    """One object: its mask cropped to its bounding box, and the size of the frame it came from."""

    crop: np.ndarray  # bool, bounding box of the object
    frame: tuple[int, int]  # (height, width) of the source mask
    source: str


def read_object(path: Path) -> ObjectShape | None:
    """A binary segmentation mask file as one object (white or 1 = object); None when it is empty.

    Files are read as hole masks are (``inpaintlab.images.load_mask``): two levels only, so a
    photograph or a blurred mask in the folder is refused, naming it, instead of being thresholded.
    """
    from ..errors import BadMaskError
    from ..images import load_mask

    try:
        obj = load_mask(path)[0, 0].numpy() > 0.5
    except BadMaskError as exc:
        raise MaskParamError(f"object masks must be binary images (white or 1 = object): {exc}") from None
    if not obj.any():
        return None
    rows, cols = np.flatnonzero(obj.any(1)), np.flatnonzero(obj.any(0))
    crop = obj[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return ObjectShape(np.ascontiguousarray(crop), obj.shape, path.name)


def load_objects(folder: str | Path) -> list[ObjectShape]:
    """All non-empty object masks of ``folder`` (sorted by name, so the same folder gives the same draws)."""
    folder = Path(str(folder)).expanduser()
    check(folder.is_dir(), f"object mask folder {folder} does not exist or is not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MASK_SUFFIXES)
    objects = [o for o in (read_object(p) for p in files) if o is not None]
    check(bool(objects), f"object mask folder {folder} holds no non-empty mask image "
                         f"(white or 1 = object; {', '.join(MASK_SUFFIXES)})")
    return objects


def place_object(obj: ObjectShape, height: int, width: int, rng: np.random.Generator,
                 scale_jitter: float = 0.25) -> np.ndarray:
    """Fit the object's frame to the image's area, scale by U(1 - jitter, 1 + jitter), place uniformly at random."""
    fit = np.sqrt(height * width / (obj.frame[0] * obj.frame[1]))
    scale = fit * rng.uniform(1 - scale_jitter, 1 + scale_jitter)
    ch = max(1, round(obj.crop.shape[0] * scale))
    cw = max(1, round(obj.crop.shape[1] * scale))
    crop = cv2.resize(obj.crop.astype(np.uint8), (cw, ch), interpolation=cv2.INTER_NEAREST)
    # an object larger than the image keeps a random window of itself
    y0 = int(rng.integers(0, max(ch - height, 0) + 1))
    x0 = int(rng.integers(0, max(cw - width, 0) + 1))
    crop = crop[y0:y0 + height, x0:x0 + width]
    ch, cw = crop.shape
    top, left = int(rng.integers(0, height - ch + 1)), int(rng.integers(0, width - cw + 1))
    hole = np.zeros((height, width), np.float32)
    hole[top:top + ch, left:left + cw] = crop
    return hole


def object_hole(objects: list[ObjectShape], height: int, width: int, rng: np.random.Generator,
                scale_jitter: float = 0.25) -> np.ndarray:
    """A random object of ``objects``, placed by ``place_object``."""
    return place_object(objects[int(rng.integers(len(objects)))], height, width, rng, scale_jitter)


def expand_convex_hull(hole: np.ndarray, radius: int) -> np.ndarray:
    """Seamless Borders' mask: the convex hull of the hole dilated by a disk of ``radius`` px."""
    if not hole.any():
        return hole.astype(np.float32)
    from skimage.morphology import convex_hull_image, disk  # 0.4 s of imports: only when used

    hull = convex_hull_image(hole > 0.5).astype(np.uint8)
    if radius > 0:
        hull = cv2.dilate(hull, disk(radius).astype(np.uint8))
    return hull.astype(np.float32)


def dilation_radius(dilation: float, height: int, width: int) -> int:
    """``dilation`` < 1 is a share of the shorter side, otherwise pixels."""
    return int(round(dilation * min(height, width))) if dilation < 1 else int(round(dilation))


@MASKS.register("object")
def object_shape(folder: str | None = None, scale_jitter: float = 0.25) -> MaskGenerator:
    """Object-shape masks: a random object of `folder` (segmentation masks, white = object), scaled +-25 %, shifted at random."""
    check(folder is not None, "the object mask kind needs --param folder=DIR (a folder of binary object masks)")
    check(0 <= float(scale_jitter) < 1, f"scale_jitter must be in [0, 1), got {scale_jitter}")
    objects = load_objects(folder)

    def generate(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        return object_hole(objects, height, width, rng, float(scale_jitter))

    return generate


@MASKS.register("convex-hull")
def convex_hull(folder: str | None = None, dilation: float = 0.03, scale_jitter: float = 0.25) -> MaskGenerator:
    """Seamless Borders: an object mask's convex hull dilated by `dilation` (< 1: share of the shorter side, default 3 %; else px)."""
    check(float(dilation) >= 0, f"dilation must be >= 0, got {dilation}")
    objects_of = object_shape(folder, scale_jitter)

    def generate(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        return expand_convex_hull(objects_of(height, width, rng), dilation_radius(float(dilation), height, width))

    return generate
