import pytest
import torch
from skimage.metrics import structural_similarity

from inpaintlab.metrics.functional import psnr, ssim

from ..conftest import SHALLOW_RTOL, assert_close


def pair(seed=0, n=3, h=40, w=36):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, h, w, generator=g)
    y = (x + 0.1 * torch.randn(n, 3, h, w, generator=g)).clamp(0, 1)
    return x, y


def test_psnr_closed_form():
    x = torch.zeros(1, 3, 8, 8)
    y = torch.full((1, 3, 8, 8), 0.1)
    # MSE = 0.01 -> PSNR = 10 log10(1 / 0.01) = 20 dB exactly (rel 1e-6: 0.1 and the result in float32).
    assert psnr(x, y).item() == pytest.approx(20.0, rel=1e-6)
    assert torch.isinf(psnr(x, x)).all()


def test_ssim_matches_scikit_image():
    x, y = pair()
    ours = ssim(x, y)
    for i in range(x.shape[0]):
        ref = structural_similarity(x[i].permute(1, 2, 0).double().numpy(), y[i].permute(1, 2, 0).double().numpy(),
                                    channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                    data_range=1.0)
        assert ours[i].item() == pytest.approx(ref, abs=1e-5)


def test_ssim_identity_and_batch_independence():
    x, y = pair(1, n=4)
    assert torch.allclose(ssim(x, x), torch.ones(4), atol=1e-6)
    singles = torch.cat([ssim(x[i:i + 1], y[i:i + 1]) for i in range(4)])
    assert_close(ssim(x, y), singles, SHALLOW_RTOL, "SSIM, batch vs single images")


def test_ssim_rejects_images_smaller_than_the_window():
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
