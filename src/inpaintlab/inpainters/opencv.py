"""OpenCV's classical inpainters: Telea's fast marching method and the Navier-Stokes method."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..options import option
from .base import INPAINTERS, NumpyBackend


@dataclass(frozen=True)
class RadiusOptions:
    """The options of the ``cv2.inpaint`` methods."""

    radius: float = option(3.0, "neighbourhood radius in pixels around each filled pixel", gt=0)


class OpenCVBackend(NumpyBackend):
    """``cv2.inpaint`` with a neighbourhood ``radius`` in pixels."""

    Options = RadiusOptions
    flag: int = cv2.INPAINT_TELEA

    def inpaint_one(self, image: np.ndarray, hole: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # OpenCV works in BGR, but both methods treat channels independently, so RGB is fine.
        return cv2.inpaint(image, hole.astype(np.uint8), self.options.radius, self.flag)


@INPAINTERS.register("telea")
class TeleaBackend(OpenCVBackend):
    """Telea 2004, "An image inpainting technique based on the fast marching method" (OpenCV)."""

    flag = cv2.INPAINT_TELEA


@INPAINTERS.register("navier-stokes")
class NavierStokesBackend(OpenCVBackend):
    """Bertalmio, Bertozzi & Sapiro 2001, "Navier-Stokes, fluid dynamics, and image inpainting" (OpenCV)."""

    flag = cv2.INPAINT_NS
