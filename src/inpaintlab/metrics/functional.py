"""Per-image quality metrics as pure functions: ``(x, y) -> (N,)`` for images in ``[0, 1]``.

``region`` restricts a metric to the hole (``hole == 1``), the kept pixels (``hole == 0``) or
the whole image (the default; ``hole`` is then not needed). PSNR and MAE average over the
region's pixels and channels; SSIM averages its map over the window centres in the region
(a masked mean of the SSIM map); MS-SSIM is defined on whole images only.
"""

from __future__ import annotations


import cv2
import numpy as np
import torch
import torch.nn.functional as F

REGIONS = ("image", "hole", "kept")

#: MS-SSIM scale weights beta_j = gamma_j (Wang, Simoncelli, Bovik 2003, Sec. 3.1), finest first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def region_weights(x: torch.Tensor, hole: torch.Tensor | None, region: str) -> torch.Tensor | None:
    """The (N,1,H,W) 0/1 weights of ``region`` (None for the whole image)."""
    if region not in REGIONS:
        raise ValueError(f"region must be one of {', '.join(REGIONS)}, got {region!r}")
    if region == "image":
        return None
    if hole is None:
        raise ValueError(f"region {region!r} needs the hole mask")
    h = hole_like(hole, x).to(torch.float64)
    return h if region == "hole" else 1.0 - h


def hole_like(hole: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``hole`` (HxW or (N|1,1,H,W)) as an (N,1,H,W) tensor on ``x``'s device; a shape that does not fit is an error."""
    h = hole.to(x.device)
    if h.ndim == 2:
        h = h[None, None]
    if h.shape[0] == 1 and x.shape[0] > 1:
        h = h.expand(x.shape[0], -1, -1, -1)
    if tuple(h.shape) != (x.shape[0], 1, *x.shape[-2:]):
        raise ValueError(f"hole of shape {tuple(hole.shape)} does not fit images of shape {tuple(x.shape)}")
    return h


def _region_mean(values: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    """Mean of (N,C,H,W) ``values`` over pixels with weight 1 and all channels, in float64 (NaN where empty)."""
    values = values.double()
    if w is None:
        return values.flatten(1).mean(1)
    total = (values * w).flatten(1).sum(1)
    count = w.flatten(1).sum(1) * values.shape[1]
    return total / count  # 0/0 = NaN: an empty region has no value


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, *, hole: torch.Tensor | None = None,
         region: str = "image") -> torch.Tensor:
    """Peak signal-to-noise ratio ``10 log10(R^2 / MSE)`` per image over ``region``; ``inf`` for identical images."""
    mse = _region_mean((x.double() - y.double()).pow(2), region_weights(x, hole, region))
    return (10.0 * torch.log10(data_range**2 / mse)).float()


def mae(x: torch.Tensor, y: torch.Tensor, *, hole: torch.Tensor | None = None, region: str = "image") -> torch.Tensor:
    """Mean absolute error per image over ``region`` (pixels and channels)."""
    return _region_mean((x.double() - y.double()).abs(), region_weights(x, hole, region)).float()


def kept_drift(output: torch.Tensor, inputs: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Kept-region drift: mean ``|output - input|`` over the pixels outside the hole (before compositing)."""
    return mae(output, inputs, hole=hole, region="kept")


def gaussian_kernel(size: int = 11, sigma: float = 1.5, dtype=torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian of ``size`` taps (the SSIM paper's window is its outer product)."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype)


def _gaussian_filter_valid(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter over "valid" positions (no padding), plane by plane."""
    r = (g.numel() - 1) // 2
    if x.device.type == "cpu":
        # OpenCV's SIMD separable filter is ~40x faster than torch's CPU conv2d here; the
        # border mode does not matter because the border is cropped away.
        k = g.double().numpy()
        planes = x.detach().reshape(-1, *x.shape[-2:]).numpy()
        out = np.stack([cv2.sepFilter2D(p, cv2.CV_32F, k, k, borderType=cv2.BORDER_REFLECT) for p in planes])
        return torch.from_numpy(out[:, r:-r, r:-r]).reshape(*x.shape[:-2], x.shape[-2] - 2 * r, x.shape[-1] - 2 * r)
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ssim_maps(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window: int = 11, sigma: float = 1.5,
              k1: float = 0.01, k2: float = 0.03) -> tuple[torch.Tensor, torch.Tensor]:
    """The SSIM map ``l * cs`` and the contrast-structure map ``cs`` (Wang et al. 2004, Eq. 13) over valid windows.

    Both are (N, C, H - window + 1, W - window + 1).
    """
    if min(x.shape[-2:]) < window:
        raise ValueError(f"SSIM needs images of at least {window}x{window} pixels, got {tuple(x.shape[-2:])}")
    g = gaussian_kernel(window, sigma).to(x.device)
    x, y = x.float(), y.float()
    # Centre both images on the same offset so E[x^2] - E[x]^2 loses no float32 precision.
    x, y = x - 0.5 * data_range, y - 0.5 * data_range
    n = x.shape[0]
    stats = _gaussian_filter_valid(torch.cat([x, y, x * x, y * y, x * y]), g)
    mu_x, mu_y, exx, eyy, exy = stats.split(n)
    sxx, syy, sxy = exx - mu_x**2, eyy - mu_y**2, exy - mu_x * mu_y
    mu_x, mu_y = mu_x + 0.5 * data_range, mu_y + 0.5 * data_range
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    return ((2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)) * cs, cs


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03, *, hole: torch.Tensor | None = None, region: str = "image") -> torch.Tensor:
    """Mean SSIM per image (Wang et al. 2004, Eq. 13) with an 11x11 Gaussian window, sigma 1.5.

    Local statistics are taken over "valid" window positions only (no padding), which equals
    scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)``: it filters with reflection and then crops the border.
    With ``region`` hole / kept the map is averaged over the valid windows whose centre pixel
    lies in that region (NaN when none does).
    """
    w = region_weights(x, hole, region)
    s, _ = ssim_maps(x, y, data_range, window, sigma, k1, k2)
    if w is not None:
        r = (window - 1) // 2
        w = w[..., r:w.shape[-2] - r, r:w.shape[-1] - r]
    return _region_mean(s, w).float()


def downsample2(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling; an odd last row / column is averaged over the pixels that exist (size ceil(n/2))."""
    return F.avg_pool2d(x, kernel_size=2, stride=2, ceil_mode=True)


def ms_ssim_min_size(window: int = 11, scales: int = len(MS_SSIM_WEIGHTS)) -> int:
    """Smallest image side whose coarsest scale still holds one window: ``(window - 1) * 2^(scales-1) + 1``."""
    return (window - 1) * 2 ** (scales - 1) + 1


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window: int = 11, sigma: float = 1.5,
            k1: float = 0.01, k2: float = 0.03, weights: tuple[float, ...] = MS_SSIM_WEIGHTS) -> torch.Tensor:
    """Multi-scale SSIM (Wang, Simoncelli, Bovik 2003, Eq. 7): ``l_M^a_M * prod_j cs_j^b_j`` per image.

    Scales 1..M-1 contribute the mean contrast-structure ``cs_j``, scale M the mean SSIM map
    (``l_M * cs_M``); each scale is the previous one 2x2 average-pooled. Per channel, then the
    mean over channels (as TensorFlow's ``ssim_multiscale`` and pytorch-msssim). Negative means
    are clamped to 0 before the fractional power, as those implementations do.
    """
    need = ms_ssim_min_size(window, len(weights))
    if min(x.shape[-2:]) < need:
        raise ValueError(f"MS-SSIM with {len(weights)} scales needs images of at least {need}x{need} pixels "
                         f"(the {window}x{window} window must fit the coarsest scale), got {tuple(x.shape[-2:])}")
    x, y = x.float(), y.float()
    factors = []
    for j, _ in enumerate(weights):
        if j:
            x, y = downsample2(x), downsample2(y)
        s, cs = ssim_maps(x, y, data_range, window, sigma, k1, k2)
        last = j == len(weights) - 1
        factors.append((s if last else cs).double().flatten(2).mean(2).clamp_min(0))  # (N, C)
    beta = torch.tensor(weights, dtype=torch.float64, device=factors[0].device)
    per_channel = torch.prod(torch.stack(factors) ** beta.view(-1, 1, 1), dim=0)
    return per_channel.mean(1).float()


__all__ = ["psnr", "ssim", "ms_ssim", "mae", "kept_drift", "gaussian_kernel", "ssim_maps", "region_weights",
           "downsample2", "ms_ssim_min_size", "MS_SSIM_WEIGHTS", "REGIONS"]
