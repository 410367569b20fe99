"""StrDiffusion's structure: the grayscale image and the edge map of its known pixels (notes A3, Part C).

The reference (``GT_dataset.py::image_to_edge``) takes ``skimage.color.rgb2gray`` (BT.709 weights
0.2125 / 0.7154 / 0.0721) and ``skimage.feature.canny(gray, sigma)`` of the *complete* image, then
multiplies the edges by keep: at test time the edge map then carries hole content (within about
2 sigma of the hole's border). An inpainter only has the known pixels, so the default here is
``canny(gray, sigma, mask=keep)``: scikit-image smooths with a mask-normalised Gaussian and erodes
the mask, so no hole pixel reaches the map. ``edges="complete"`` reproduces the reference. sigma:
3 in the reference's training sets, 2 in its test set.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

#: skimage.color.rgb2gray's weights (ITU-R BT.709)
GRAY_WEIGHTS = (0.2125, 0.7154, 0.0721)

__all__ = ["grayscale", "structure_edges", "GRAY_WEIGHTS"]


def grayscale(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] -> (N, 1, H, W): 0.2125 R + 0.7154 G + 0.0721 B, as ``skimage.color.rgb2gray``."""
    w = torch.tensor(GRAY_WEIGHTS, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * w).sum(dim=1, keepdim=True)


def structure_edges(images: torch.Tensor, hole: torch.Tensor, sigma: float,
                    edges: Literal["known", "complete"] = "known") -> torch.Tensor:
    """mu_x: binary Canny edges of the grayscale x keep, (N, 1, H, W) in {0, 1} (hysteresis 0.1 / 0.2, skimage's).

    ``known``: Canny on the known pixels only (no hole content can leak); ``complete``: the
    reference's Canny of the whole image, multiplied by keep afterwards.
    """
    from skimage.feature import canny

    gray = grayscale(images.detach().double()).cpu().numpy()[:, 0]
    keep = (hole.detach().cpu().numpy()[:, 0] < 0.5)
    out = np.zeros_like(gray, dtype=np.float32)
    for i in range(gray.shape[0]):
        mask = keep[i] if edges == "known" else None
        out[i] = canny(gray[i], sigma=sigma, mask=mask) * keep[i]
    return torch.from_numpy(out)[:, None].to(device=images.device, dtype=images.dtype)
