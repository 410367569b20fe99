"""Checks of the image and hole-mask conventions (cheap: they run every RIP iteration)."""

from __future__ import annotations

import torch

from ..errors import BadImageError, BadMaskError

_TOLERANCE = 1e-6  # how far outside [0, 1] a float image may stray (rounding noise)


def validate_images(images: torch.Tensor, name: str = "images") -> None:
    """Check the image convention: float ``(N, 3, H, W)``, finite, in [0, 1]; else ``BadImageError``."""
    if not isinstance(images, torch.Tensor):
        raise BadImageError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise BadImageError(f"{name} must have shape (N, 3, H, W), got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise BadImageError(f"{name} must be a float tensor in [0, 1], got dtype {images.dtype}")
    if images.numel() == 0:
        raise BadImageError(f"{name} is empty (shape {tuple(images.shape)})")
    lo, hi = torch.aminmax(images.detach())
    lo, hi = float(lo), float(hi)  # NaN propagates through aminmax
    if lo >= -_TOLERANCE and hi <= 1 + _TOLERANCE:
        return
    if not bool(torch.isfinite(images).all()):
        raise BadImageError(f"{name} contain NaN or infinite values")
    raise BadImageError(f"{name} must be in [0, 1], got values in [{lo:.6g}, {hi:.6g}]")


def validate_hole(hole: torch.Tensor, images: torch.Tensor) -> None:
    """Check a hole mask against its images; else ``BadMaskError`` naming the first bad sample.

    The mask must be ``(N, 1, H, W)`` with the images' N, H, W, hold only 0 and 1, and leave
    each sample neither empty (nothing to inpaint) nor full (nothing to inpaint from).
    """
    if not isinstance(hole, torch.Tensor):
        raise BadMaskError(f"hole must be a torch.Tensor, got {type(hole).__name__}")
    n, h, w = images.shape[0], images.shape[-2], images.shape[-1]
    if hole.ndim != 4 or tuple(hole.shape) != (n, 1, h, w):
        raise BadMaskError(
            f"hole has shape {tuple(hole.shape)} but must be {(n, 1, h, w)} "
            f"for images of shape {tuple(images.shape)}"
        )
    if n == 0 or h * w == 0:
        return
    flat = hole.detach().reshape(n, h * w)
    nonzero = flat != 0
    if flat.dtype == torch.bool:
        nonbinary = torch.zeros((n,), dtype=torch.bool, device=flat.device)
    else:
        nonbinary = (nonzero & (flat != 1)).any(dim=1)
    count = nonzero.sum(dim=1)
    empty, full = count == 0, count == h * w
    flags = torch.stack([nonbinary.any(), empty.any(), full.any()]).tolist()  # one device sync
    if not any(flags):
        return
    for failed, message in zip(
        (nonbinary, empty, full),
        (
            "is not binary: hole values must be 0 (keep) or 1 (fill)",
            "is empty: nothing to inpaint",
            "covers the whole image: nothing is left to inpaint from",
        ),
    ):
        if failed.any():
            index = int(failed.nonzero()[0, 0])
            raise BadMaskError(f"mask {index} {message}")
