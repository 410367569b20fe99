"""ASUKA's Grad metric: the Sobel gradient error of the result on the Canny edge of the mask.

Source: the official ASUKA repository Yikai-Wang/asuka-misato, ``asuka-flux/eval/cal_grad.py``
(``calculate_gradient_gt_mean`` and ``process_image``), reproduced on our tensors. Per image, with
``R``, ``G`` the result and the ground truth as uint8 RGB arrays (0-255) and ``M`` the mask as
uint8 (255 = hole):

1. composite ``R' = R * (M / 255) + G * (1 - M / 255)`` (float64; the reference composites again
   even though results are usually composited already: with a binary mask it changes nothing
   where the result was pasted back);
2. edges ``E = cv2.Canny(M, 100, 200) > 0`` (aperture 3, L1 gradient: OpenCV's defaults);
3. per channel ``c`` (R, G, B separately; **no** greyscale conversion, see below):
   ``gx = Sobel_x(R'_c) - Sobel_x(G_c)``, ``gy = Sobel_y(R'_c) - Sobel_y(G_c)`` with
   ``cv2.Sobel(., cv2.CV_64F, dx, dy, ksize=3)`` (unnormalised 3x3 kernels, reflect-101 border),
   ``g_c = mean over E of sqrt(gx^2 + gy^2)``;
4. ``Grad = (g_R + g_G + g_B) / 3``, on the 8-bit scale; lower is better.

The reference's dataset number is the mean over channels of the per-channel means over images,
which equals the mean over images of this per-image value (every channel of an image has the same
edge count). Its ``calculate_gradient_gt_mean`` has a ``cv2.COLOR_BGR2GRAY`` branch, but
``process_image`` calls it with one 2-D channel at a time, so that branch never runs: the metric
is per channel, not on greyscale. A mask without Canny edges (no hole, or a hole covering the
whole image) gives 0 in the reference; here it gives NaN, as for :func:`~.boundary.color_distance`
(pass ``empty=0.0`` to :func:`grad_error` for the reference's value).

Our images are float in [0, 1]; they are put on the 8-bit grid as a saved file holds them
(:func:`inpaintlab.images.to_uint8`: clamp, scale by 255, round half to even) and the hole, 1 =
hole as everywhere in inpaintlab, becomes ``M = round(255 * hole)``, the reference's "255 = hole"
(its composite takes the result where ``M`` = 255). Canny's edges of a binary mask are the same
for ``M`` and ``255 - M``.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..images.quantization import to_uint8
from .base import METRICS, PerImageMetric
from .functional import hole_like

#: ``cv2.Canny(mask, CANNY_LOW, CANNY_HIGH)``, as in ASUKA's ``eval/cal_grad.py``
CANNY_LOW, CANNY_HIGH = 100, 200

# OpenCV's 3x3 Sobel kernels (cv2.Sobel(ksize=3), correlation form): dx=1,dy=0 and dx=0,dy=1.
_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=torch.float64)
_SOBEL_Y = _SOBEL_X.t().contiguous()


def sobel_xy(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel ``cv2.Sobel(x, cv2.CV_64F, 1, 0, ksize=3)`` and ``(.., 0, 1, ..)`` of (N,C,H,W) (reflect-101)."""
    c = x.shape[1]
    k = torch.stack([_SOBEL_X, _SOBEL_Y]).to(x.device, x.dtype)[:, None].repeat(c, 1, 1, 1)  # (2C,1,3,3)
    g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), k, groups=c)  # channels: c0x, c0y, c1x, ...
    return g[:, 0::2], g[:, 1::2]


def mask_edges(hole: torch.Tensor) -> torch.Tensor:
    """``cv2.Canny(round(255 * hole), 100, 200) > 0`` per image: (N,1,H,W) bool on ``hole``'s device."""
    m8 = to_uint8(hole.float()).cpu().numpy()
    edges = np.stack([cv2.Canny(np.ascontiguousarray(m8[i, 0]), CANNY_LOW, CANNY_HIGH) > 0 for i in range(len(m8))])
    return torch.from_numpy(edges)[:, None].to(hole.device)


def grad_error(images: torch.Tensor, reference: torch.Tensor, hole: torch.Tensor, *,
               empty: float = float("nan")) -> torch.Tensor:
    """ASUKA's Grad (``eval/cal_grad.py``): mean over the mask's Canny edge of ``|Sobel(R') - Sobel(G)|``, per image.

    ``images`` (results) and ``reference`` (ground truth) are (N,3,H,W) in [0, 1], ``hole``
    (N,1,H,W) with 1 = hole. Both images are rounded to uint8, ``R' = R * M/255 + G * (1 - M/255)``
    with ``M = round(255 * hole)``; per RGB channel, the gradient magnitude
    ``sqrt((Sx R' - Sx G)^2 + (Sy R' - Sy G)^2)`` (OpenCV's 3x3 Sobel, 0-255 scale) is averaged over
    the pixels of ``cv2.Canny(M, 100, 200)``, then the three channel means are averaged. Returns
    (N,) float64; ``empty`` (NaN by default, 0 in the reference) where the mask has no edge.
    """
    h = hole_like(hole, images)
    res = to_uint8(images).double()
    gt = to_uint8(reference.to(images.device)).double()
    m = to_uint8(h.float()).double() / 255.0
    res = res * m + gt * (1 - m)  # the reference's composite, float64 on the 0-255 scale
    gx, gy = sobel_xy(res)
    gx_gt, gy_gt = sobel_xy(gt)
    mag = torch.sqrt((gx - gx_gt) ** 2 + (gy - gy_gt) ** 2)  # (N,3,H,W)
    edge = mask_edges(h).to(mag.dtype)  # (N,1,H,W)
    count = edge.flatten(1).sum(1)
    per_channel = (mag * edge).flatten(2).sum(2) / count[:, None].clamp(min=1)
    value = per_channel.mean(1)
    return torch.where(count > 0, value, torch.full_like(value, empty))


@METRICS.register("grad")
class Grad(PerImageMetric):
    """ASUKA's Grad (eval/cal_grad.py): RGB Sobel error of result vs reference on the mask's Canny edge, 0-255."""

    name, higher_is_better, needs_hole = "grad", False, True

    def values(self, images, reference, hole):
        return grad_error(images, reference, hole)


__all__ = ["grad_error", "mask_edges", "sobel_xy", "Grad", "CANNY_LOW", "CANNY_HIGH"]
