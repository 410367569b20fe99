"""Image and mask I/O: the edge where files become tensors and tensors become files.

Inside the library an image batch is ``torch.float32`` ``(N, 3, H, W)`` in ``[0, 1]`` and a hole
mask is ``(N, 1, H, W)`` with **1 = hole** (to fill) and 0 = keep. This package is the only
place that knows about file formats, colour modes, bit depths and EXIF orientation.

Everything public is importable from ``inpaintlab.images``; one module per concern:

- ``decode``: files and PIL images to arrays and tensors (``read_image``, ``image_from_pil``,
  ``load_image``, ``shape_image``, ``array_from_pil``, ``read_rgba8``, ``pad_rgb``, ``pad_to_square``, ``resize``, ``to_tensor``,
  ``to_numpy_uint8``);
- ``save``: ``save_image``, ``save_rgba``, ``output_format``;
- ``maskio``: ``load_mask``, ``save_mask``;
- ``validate``: ``validate_images``, ``validate_hole``;
- ``files``: ``builtin_images``, ``image_files``, ``unique_names``, ``split_unencodable``,
  ``SUPPORTED_SUFFIXES``;
- ``quantization``: rounding to the 8-bit grid (``to_uint8``, ``quantize``, ``quantize_array``).

Reading (``read_image`` / ``load_image``):

- EXIF orientation is applied, so an image is seen upright, as a viewer shows it.
- Grayscale becomes three equal channels; palette, CMYK and the other PIL modes become RGB.
- Transparency (LA, RGBA, palette or colour-key transparency) is alpha-composited onto the
  pad colour.
- 16-bit files (grayscale or colour, PNG or TIFF) keep their 16-bit precision in
  ``read_image``; ``load_image`` then rounds to the 8-bit grid by default (``quantize=True``),
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

from .decode import (
    array_from_pil,
    image_from_pil,
    load_image,
    pad_rgb,
    pad_to_square,
    read_image,
    read_rgba8,
    resize,
    shape_image,
    to_numpy_uint8,
    to_tensor,
)
from .files import SUPPORTED_SUFFIXES, builtin_images, image_files, split_unencodable, unique_names
from .maskio import load_mask, save_mask
from .quantization import quantize, quantize_array, to_uint8
from .save import output_format, save_image, save_rgba
from .validate import validate_hole, validate_images

__all__ = [
    "array_from_pil",
    "SUPPORTED_SUFFIXES",
    "builtin_images",
    "image_files",
    "image_from_pil",
    "load_image",
    "load_mask",
    "output_format",
    "pad_rgb",
    "pad_to_square",
    "quantize",
    "quantize_array",
    "read_image",
    "read_rgba8",
    "resize",
    "save_image",
    "save_mask",
    "save_rgba",
    "shape_image",
    "split_unencodable",
    "to_numpy_uint8",
    "to_tensor",
    "to_uint8",
    "unique_names",
    "validate_hole",
    "validate_images",
]
