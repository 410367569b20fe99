"""Compositing modes: how an inpainted result is merged with the input.

Every mode leaves pixels outside the hole equal to the input *bit for bit*; they differ only in
how the hole's content meets its border.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
import torch

from ..images import to_uint8
from ..registry import Registry

Compositor = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

COMPOSITORS: Registry[Compositor] = Registry("compositing mode")


@COMPOSITORS.register("hard")
def composite_hard(images: torch.Tensor, result: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Paste the result inside the hole only: ``x * (1 - m) + y * m`` with a binary ``m``."""
    return torch.where(hole > 0.5, result, images)


def feather_alpha(hole: torch.Tensor, width: float) -> torch.Tensor:
    """An alpha that is 0 outside the hole and ramps to 1 over ``width`` px inside it."""
    # Distance from each hole pixel to the nearest kept pixel; the ramp lies inside the hole
    # so the kept region still equals the input exactly.
    out = torch.empty_like(hole)
    for i in range(hole.shape[0]):
        h = (hole[i, 0].detach().cpu().numpy() > 0.5).astype(np.uint8)
        dist = cv2.distanceTransform(h, cv2.DIST_L2, 5)
        out[i, 0] = torch.from_numpy(np.clip(dist / max(width, 1e-6), 0.0, 1.0))
    return out


def composite_feather(images: torch.Tensor, result: torch.Tensor, hole: torch.Tensor, width: float = 8.0) -> torch.Tensor:
    """Blend the result into the input with an alpha that ramps up inside the hole."""
    alpha = feather_alpha(hole, width).to(images.device, images.dtype)
    return images * (1 - alpha) + result * alpha


COMPOSITORS.register("feather", composite_feather)


@COMPOSITORS.register("poisson")
def composite_poisson(images: torch.Tensor, result: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Poisson (gradient-domain) blending of the hole's content, Perez et al. 2003, via OpenCV."""
    out = result.clone()
    for i in range(images.shape[0]):
        m = (hole[i, 0].detach().cpu().numpy() > 0.5).astype(np.uint8) * 255
        # seamlessClone needs the mask strictly inside the image; hole pixels on the outer
        # border row/column keep the plain result.
        m[0, :] = m[-1, :] = m[:, 0] = m[:, -1] = 0
        ys, xs = np.nonzero(m)
        if len(ys) == 0:
            continue
        # OpenCV places the mask's bounding box with its centre (x0 + w // 2, y0 + h // 2) at
        # ``center``; this centre puts the clone back exactly where it came from.
        center = (int(xs.min() + (xs.max() - xs.min() + 1) // 2), int(ys.min() + (ys.max() - ys.min() + 1) // 2))
        cloned = torch.from_numpy(m > 0).to(images.device)
        # seamlessClone writes into the mask it is given: hand it a copy.
        blended = cv2.seamlessClone(_u8(result[i]), _u8(images[i]), m.copy(), center, cv2.NORMAL_CLONE)
        t = torch.from_numpy(blended).permute(2, 0, 1).to(images.device, images.dtype) / 255.0
        out[i] = torch.where(cloned, t, result[i])
    return composite_hard(images, out, hole)


def _u8(image: torch.Tensor) -> np.ndarray:
    return to_uint8(image).permute(1, 2, 0).cpu().numpy().copy()
