"""Fourier-series inpainting (FSR) from OpenCV's contrib module (``cv2.xphoto.inpaint``).

Frequency-selective reconstruction (Seiler, Jonscher, Schoeberl & Kaup, "Complex-valued
frequency selective extrapolation for fast image and video signal extrapolation", IEEE SPL
2010 / TIP 2015; Genser, Seiler, Schilling & Kaup, "Signal and loss geometry aware frequency
selective extrapolation for error concealment", PCS 2018): each block around the hole is
modelled as a sparse sum of Fourier basis functions fitted to the known pixels, one basis
function per iteration. ``fast`` and ``best`` are OpenCV's two quality presets (``best`` is
about 50 times slower: 0.2 s against 10 s for a 64x64 hole at 512x512 on 2 cores).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from ..options import option
from .base import INPAINTERS, NumpyBackend


@dataclass(frozen=True)
class FSROptions:
    """The options of :class:`FSRBackend`."""

    quality: Literal["fast", "best"] = option("fast", "OpenCV's preset: fast (INPAINT_FSR_FAST) or best "
                                                      "(INPAINT_FSR_BEST, ~50x slower)")


@INPAINTERS.register("fsr")
class FSRBackend(NumpyBackend):
    """Frequency-selective reconstruction (Seiler et al. 2015; Genser et al. 2018), OpenCV xphoto."""

    Options = FSROptions

    def inpaint_one(self, image: np.ndarray, hole: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        flag = cv2.xphoto.INPAINT_FSR_FAST if self.options.quality == "fast" else cv2.xphoto.INPAINT_FSR_BEST
        # xphoto's mask is the opposite of ours: non-zero = known pixels; FSR expects BGR.
        known = np.where(hole, 0, 255).astype(np.uint8)
        bgr = np.ascontiguousarray(image[..., ::-1])
        out = np.zeros_like(bgr)
        cv2.xphoto.inpaint(bgr, known, out, flag)
        return out[..., ::-1]
