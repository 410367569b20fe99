"""Shift-map inpainting from OpenCV's contrib module (``cv2.xphoto.inpaint`` with INPAINT_SHIFTMAP).

He & Sun, "Statistics of patch offsets for image completion", ECCV 2012: the dominant offsets
between similar patches of the known region are found first, then the hole is filled by a
graph-cut labelling that assigns each hole pixel one of those offsets (a shift map), so the
fill copies whole shifted regions of the image. OpenCV expects a CIELab image (intensity first,
then the two colour axes); we convert from RGB and back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from ..options import option
from .base import INPAINTERS, NumpyBackend


@dataclass(frozen=True)
class ShiftMapOptions:
    """The options of :class:`ShiftMapBackend`."""

    colorspace: Literal["lab", "rgb"] = option("lab", "colour space the offsets are found in: lab (what OpenCV "
                                                      "expects) or rgb")


@INPAINTERS.register("shiftmap")
class ShiftMapBackend(NumpyBackend):
    """Shift-map completion with patch-offset statistics (He & Sun 2012), OpenCV xphoto."""

    Options = ShiftMapOptions

    def inpaint_one(self, image: np.ndarray, hole: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        known = np.where(hole, 0, 255).astype(np.uint8)  # xphoto: non-zero = known pixels
        lab = self.options.colorspace == "lab"
        src = cv2.cvtColor(image, cv2.COLOR_RGB2Lab) if lab else np.ascontiguousarray(image)
        out = np.zeros_like(src)
        cv2.xphoto.inpaint(src, known, out, cv2.xphoto.INPAINT_SHIFTMAP)
        return cv2.cvtColor(out, cv2.COLOR_Lab2RGB) if lab else out
