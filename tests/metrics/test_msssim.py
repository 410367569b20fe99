"""MS-SSIM against an independent NumPy / SciPy implementation of Wang, Simoncelli, Bovik 2003."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from inpaintlab.errors import InpaintlabError
from inpaintlab.metrics import build_metric
from inpaintlab.metrics.functional import ms_ssim, ms_ssim_min_size

from ..conftest import SHALLOW_RTOL, assert_close

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # the paper's beta_j = gamma_j, finest scale first


def gauss_valid(a: np.ndarray) -> np.ndarray:
    """11-tap Gaussian (sigma 1.5) filter, keeping only positions where the window fits."""
    f = ndimage.gaussian_filter(a, sigma=1.5, truncate=5 / 1.5, mode="reflect")  # radius 5 -> 11 taps
    return f[5:-5, 5:-5]


def ssim_terms(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(mean of l*cs, mean of cs) for one channel, float64 (Wang et al. 2004, C1=(0.01)^2, C2=(0.03)^2)."""
    c1, c2 = 0.01**2, 0.03**2
    mx, my = gauss_valid(x), gauss_valid(y)
    vx, vy = gauss_valid(x * x) - mx**2, gauss_valid(y * y) - my**2
    cxy = gauss_valid(x * y) - mx * my
    cs = (2 * cxy + c2) / (vx + vy + c2)
    lum = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
    return float((lum * cs).mean()), float(cs.mean())


def halve(a: np.ndarray) -> np.ndarray:
    """2x2 mean; an odd last row / column is repeated (so the mean is over the pixels that exist)."""
    a = np.pad(a, ((0, a.shape[0] % 2), (0, a.shape[1] % 2)), mode="edge")
    return a.reshape(a.shape[0] // 2, 2, a.shape[1] // 2, 2).mean(axis=(1, 3))


def ms_ssim_np(x: np.ndarray, y: np.ndarray) -> float:
    """x, y: (3, H, W) float64. Per channel prod_j cs_j^b_j * (l cs)_M^b_M, then mean over channels."""
    out = []
    for xc, yc in zip(x, y):
        value = 1.0
        for j, b in enumerate(WEIGHTS):
            if j:
                xc, yc = halve(xc), halve(yc)
            s, cs = ssim_terms(xc, yc)
            value *= max(s if j == len(WEIGHTS) - 1 else cs, 0.0) ** b
        out.append(value)
    return float(np.mean(out))


def pair(seed: int, n: int = 2, h: int = 170, w: int = 181):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, h // 8 + 1, w // 8 + 1, generator=g)
    x = torch.nn.functional.interpolate(base, size=(h, w), mode="bilinear", align_corners=False)  # some structure
    y = (x + 0.08 * torch.randn(n, 3, h, w, generator=g)).clamp(0, 1)
    return x, y


@pytest.mark.parametrize("shape", [(170, 181), (161, 161), (200, 176)])
def test_matches_independent_numpy(shape):
    x, y = pair(1, h=shape[0], w=shape[1])
    ours = ms_ssim(x, y)
    for i in range(x.shape[0]):
        ref = ms_ssim_np(x[i].double().numpy(), y[i].double().numpy())
        assert ours[i].item() == pytest.approx(ref, abs=2e-5)
    assert 0.0 < ours.min() and ours.max() < 1.0


def test_identity_order_and_batch_independence():
    x, y = pair(2, n=3)
    assert torch.allclose(ms_ssim(x, x), torch.ones(3), atol=1e-5)
    worse = (y + 0.1 * torch.randn(y.shape, generator=torch.Generator().manual_seed(3))).clamp(0, 1)
    assert (ms_ssim(x, worse) < ms_ssim(x, y)).all()
    singles = torch.cat([ms_ssim(x[i:i + 1], y[i:i + 1]) for i in range(3)])
    # per-plane filters, but batched float32 pooling and elementwise kernels: equal up to round-off
    assert_close(ms_ssim(x, y), singles, SHALLOW_RTOL, "MS-SSIM, batch vs single images")


def test_too_small_for_five_scales_is_one_clear_error():
    assert ms_ssim_min_size() == (11 - 1) * 2**4 + 1 == 161
    with pytest.raises(ValueError, match=r"at least 161x161"):
        ms_ssim(torch.rand(1, 3, 160, 300), torch.rand(1, 3, 160, 300))
    ms_ssim(torch.rand(1, 3, 161, 161), torch.rand(1, 3, 161, 161))  # exactly enough
    m = build_metric("ms-ssim")
    with pytest.raises(InpaintlabError, match="161") as e:
        m.update(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64))
    assert "\n" not in str(e.value)
