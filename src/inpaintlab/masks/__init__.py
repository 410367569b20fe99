"""Mask generators: small callables ``(height, width, rng) -> hole`` (HxW float32, 1 = hole).

``MASKS`` maps a name to a factory ``factory(**params) -> generate``. Families: ``grid-cell``
(RIP), ``lama-thin``/``lama-medium``/``lama-thick``/``lama-train`` (LaMa), ``comod``,
``mat-512-large``/``mat-512-small``/``mat-256`` (Co-Mod-GAN/MAT RandomMask), ``object`` and
``convex-hull`` (object shapes; Seamless Borders), ``rectangle``/``complement-rectangle``/
``outpaint``, ``misato`` (ASUKA's mixture) and ``bucket`` (any kind in a hole-ratio range).
"""

from __future__ import annotations

from .base import (MASKS, HoleRatioError, MaskGenerator, MaskParamError, hole_ratio, make_generator, make_rng,
                   with_hole_ratio)
from .grid import grid_cell
from .lama import LAMA_PRESETS, LAMA_TRAIN, lama_medium, lama_thick, lama_thin, lama_train
from .comod import RANDOM_MASK_PRESETS, comod, mat_256, mat_512_large, mat_512_small
from .shapes import complement_rectangle, outpaint, rectangle
from .objects import convex_hull, object_shape
from .misato import MISATO_WEIGHTS, MisatoMixture, misato
from .buckets import STRDIFFUSION_BUCKETS, bucket

__all__ = [
    "MASKS", "MaskGenerator", "MaskParamError", "HoleRatioError", "hole_ratio", "with_hole_ratio",
    "make_generator", "make_rng", "grid_cell", "LAMA_PRESETS", "LAMA_TRAIN", "lama_thin", "lama_medium",
    "lama_thick", "lama_train", "RANDOM_MASK_PRESETS", "comod", "mat_512_large", "mat_512_small", "mat_256",
    "rectangle", "complement_rectangle", "outpaint", "object_shape", "convex_hull", "MISATO_WEIGHTS",
    "MisatoMixture", "misato", "STRDIFFUSION_BUCKETS", "bucket",
]
