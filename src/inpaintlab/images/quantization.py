"""Rounding to the 8-bit grid: what a saved image holds, in one place.

``to_uint8`` clamps a float image to ``[0, 1]``, scales it by 255 and rounds half to even
(``torch.round``), giving uint8 of the same shape on the same device. ``quantize`` gives the
same grid as floats, ``round(clamp(x, 0, 1) * 255) / 255`` in the input's dtype; it equals
``to_uint8(x).to(x.dtype) / 255`` bit for bit except that NaN stays NaN and ``-0.0`` stays
``-0.0``. ``quantize_array`` is the NumPy twin of ``quantize`` (``np.round`` is also half to even).

RIP runs and evaluations store values computed through these functions and a resumed run must
reproduce them exactly: do not change the order of the operations.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["quantize", "quantize_array", "to_uint8"]


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """A float image tensor (any shape; values in [0, 1], others clamped) as uint8 0-255, rounded half to even."""
    if not images.is_floating_point():
        raise TypeError(f"to_uint8 expects a float tensor in [0, 1], got dtype {images.dtype}")
    y = images.detach().mul(255)  # in-place steps after this one copy: half the time of chained ops
    return y.clamp_(0, 255).round_().to(torch.uint8)


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Round a float image tensor to the 8-bit grid (clamped to [0, 1]), as the saved file holds."""
    return torch.round(images.clamp(0, 1) * 255) / 255


def quantize_array(arr: np.ndarray) -> np.ndarray:
    """NumPy twin of ``quantize`` for a float array: the 8-bit grid, in the array's float dtype."""
    return np.round(np.clip(arr, 0, 1) * np.float32(255)) / np.float32(255)
