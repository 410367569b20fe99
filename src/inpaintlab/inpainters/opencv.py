"""OpenCV's classical inpainters: Telea's fast marching method and the Navier-Stokes method."""

from __future__ import annotations

import cv2
import numpy as np

from .base import INPAINTERS, NumpyBackend


class OpenCVBackend(NumpyBackend):
    """``cv2.inpaint`` with a neighbourhood ``radius`` in pixels."""

    flag: int = cv2.INPAINT_TELEA

    def __init__(self, radius: float = 3.0):
        if radius <= 0:
            raise ValueError(f"radius must be positive, got {radius}")
        self.radius = float(radius)

    def inpaint_one(self, image: np.ndarray, hole: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # OpenCV works in BGR, but both methods treat channels independently, so RGB is fine.
        return cv2.inpaint(image, hole.astype(np.uint8), self.radius, self.flag)


class TeleaBackend(OpenCVBackend):
    """Telea 2004, "An image inpainting technique based on the fast marching method"."""

    flag = cv2.INPAINT_TELEA


class NavierStokesBackend(OpenCVBackend):
    """Bertalmio, Bertozzi & Sapiro 2001, "Navier-Stokes, fluid dynamics, and image inpainting"."""

    flag = cv2.INPAINT_NS


INPAINTERS.register("telea", TeleaBackend)
INPAINTERS.register("navier-stokes", NavierStokesBackend)
