"""Seam metrics on the hole's boundary: Color Distance (CD) and the boundary gradient error.

Both look only at the pixels where the hole meets the kept region, where a visible seam lives.
The boundary gradient error is our own quantity; ASUKA's evaluation metric is ``grad``
(:mod:`.grad`, after its ``eval/cal_grad.py``). Pixels are 4-connected: a hole pixel and a kept
pixel *straddle the boundary* when they share an edge. The image border is not a boundary
(nothing lies beyond it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .functional import hole_like

#: CD is reported on the 8-bit scale, as Seamless Borders' Tables 1-2 (values 8-21) imply.
CD_SCALE = 255.0

# OpenCV's 3x3 Sobel kernels (cv2.Sobel(ksize=3), correlation form): d/dx and d/dy.
_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=torch.float64)
_SOBEL_Y = _SOBEL_X.t().contiguous()


def _hole4(hole: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The hole as a (N,1,H,W) bool tensor on ``x``'s device."""
    return hole_like(hole, x) > 0.5


def color_distance(images: torch.Tensor, hole: torch.Tensor, scale: float = CD_SCALE) -> torch.Tensor:
    """Color Distance (Seamless Borders, Sec. 4): mean RGB L2 distance across the hole's boundary, per image.

    Every pair of 4-adjacent pixels (p, q) with p in the hole and q kept contributes
    ``scale * ||x_p - x_q||_2`` (Euclidean over R, G, B); CD is the mean over those pairs.
    p is thus an inner boundary pixel and q its neighbour across the boundary: the one-pixel
    step a seam makes. ``scale`` = 255 reports it on the 8-bit scale of the paper's tables.
    """
    h = _hole4(hole, images)
    x = images.double()
    total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    count = torch.zeros_like(total)
    for dim in (-1, -2):  # horizontal neighbours, then vertical neighbours
        n = x.shape[dim]
        a, b = x.narrow(dim, 0, n - 1), x.narrow(dim, 1, n - 1)
        straddle = (h.narrow(dim, 0, n - 1) != h.narrow(dim, 1, n - 1)).double()  # (N,1,...)
        dist = torch.linalg.vector_norm(a - b, dim=1, keepdim=True)
        total += (dist * straddle).flatten(1).sum(1)
        count += straddle.flatten(1).sum(1)
    return (scale * total / count).float()  # NaN for a mask without a boundary


def inner_boundary(hole: torch.Tensor) -> torch.Tensor:
    """The hole's edge pixels: hole pixels with a kept 4-neighbour ((N,1,H,W) bool; 1-pixel inner ring)."""
    h = hole > 0.5
    kept = F.pad((~h).float(), (1, 1, 1, 1), value=0.0)  # beyond the border is not kept
    near = (kept[..., :-2, 1:-1] + kept[..., 2:, 1:-1] + kept[..., 1:-1, :-2] + kept[..., 1:-1, 2:]) > 0
    return h & near


def sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    """Per-channel Sobel gradient magnitude ``sqrt(Gx^2 + Gy^2)`` (OpenCV's 3x3 kernels, reflect-101 border)."""
    c = x.shape[1]
    k = torch.stack([_SOBEL_X, _SOBEL_Y]).to(x.device, x.dtype)[:, None].repeat(c, 1, 1, 1)  # (2C,1,3,3)
    g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), k, groups=c)  # channels: c0x, c0y, c1x, ...
    return torch.sqrt(g[:, 0::2] ** 2 + g[:, 1::2] ** 2)


def boundary_gradient_error(images: torch.Tensor, reference: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Boundary gradient error (inpaintlab's own): Sobel magnitude of ``images - reference`` on the hole's edge.

    Per RGB channel, the mean of ``|Sobel(result - reference)|`` over the inner 4-boundary pixels
    (:func:`inner_boundary`), then the mean over channels. Images in [0, 1] (not rounded, no
    compositing); the Sobel kernels are OpenCV's unnormalised ones (a unit step across a straight
    edge gives 4). This is *not* ASUKA's evaluation: ASUKA's Grad (``eval/cal_grad.py``) works on
    the 8-bit scale over the Canny edge of the mask and is :func:`inpaintlab.metrics.grad.grad_error`
    (metric ``grad``).
    """
    h = _hole4(hole, images)
    edge = inner_boundary(h).double()
    mag = sobel_magnitude(images.double() - reference.to(images.device).double())
    per_channel = (mag * edge).flatten(2).sum(2) / edge.flatten(2).sum(2)
    return per_channel.mean(1).float()


__all__ = ["color_distance", "boundary_gradient_error", "inner_boundary", "sobel_magnitude", "CD_SCALE"]
