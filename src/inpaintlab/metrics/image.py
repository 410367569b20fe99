"""The per-image metrics: PSNR, SSIM, MS-SSIM, MAE, Color Distance, boundary gradient, kept drift, LPIPS."""

from __future__ import annotations

import torch

from ..errors import InpaintlabError
from .base import METRICS, PerImageMetric, Prepared
from .boundary import boundary_gradient_error, color_distance
from .functional import kept_drift, mae, ms_ssim, psnr, ssim


@METRICS.register("psnr")
class PSNR(PerImageMetric):
    """PSNR ``10 log10(1 / MSE)`` per image, MSE over the region's pixels; ``inf`` for identical images."""

    name, higher_is_better, regions = "psnr", True, ("image", "hole", "kept")

    def values(self, images, reference, hole):
        return psnr(images, reference, hole=hole, region=self.region)


@METRICS.register("ssim")
class SSIM(PerImageMetric):
    """Mean SSIM (Wang et al. 2004); hole / kept: mean of the SSIM map over window centres in the region."""

    name, higher_is_better, regions = "ssim", True, ("image", "hole", "kept")

    def values(self, images, reference, hole):
        return ssim(images, reference, hole=hole, region=self.region)


@METRICS.register("ms-ssim")
class MSSSIM(PerImageMetric):
    """MS-SSIM (Wang, Simoncelli, Bovik 2003), 5 scales, whole image (min side 161)."""

    name, higher_is_better = "ms-ssim", True

    def values(self, images, reference, hole):
        try:
            return ms_ssim(images, reference)
        except ValueError as e:  # too small: a user error, one line
            raise InpaintlabError(str(e)) from None


@METRICS.register("mae")
class MAE(PerImageMetric):
    """Mean absolute error over the region's pixels and channels."""

    name, higher_is_better, regions = "mae", False, ("image", "hole", "kept")

    def values(self, images, reference, hole):
        return mae(images, reference, hole=hole, region=self.region)


@METRICS.register("cd")
class ColorDistance(PerImageMetric):
    """Color Distance (Seamless Borders): mean RGB L2 step across the hole's boundary, 0-255 scale."""

    name, higher_is_better, needs_hole = "cd", False, True

    def values(self, images, reference, hole):
        return color_distance(images, hole)


@METRICS.register("boundary-gradient")
class BoundaryGradientError(PerImageMetric):
    """Sobel magnitude of (result - reference) on the hole's inner 4-boundary, RGB in [0, 1], mean over channels.

    inpaintlab's own seam check, not ASUKA's evaluation (that is the ``grad`` metric).
    """

    name, higher_is_better, needs_hole = "boundary-gradient", False, True

    def values(self, images, reference, hole):
        return boundary_gradient_error(images, reference, hole)


@METRICS.register("kept-drift")
class KeptDrift(PerImageMetric):
    """Kept-region drift: mean |output - input| outside the hole, output taken before compositing."""

    name, higher_is_better, regions, needs_hole, reads_raw = "kept-drift", False, ("kept",), True, True

    def values(self, images, reference, hole):
        return kept_drift(images, reference, hole)


class LPIPS(PerImageMetric):
    """LPIPS v0.1 (Zhang et al. 2018) on whole images; the backbone is built at construction.

    :meth:`prepare` caches a reference's backbone features (on the CPU), so scoring many images
    against one reference (RIP) runs the backbone once per reference.
    """

    net: str = ""
    higher_is_better = False

    def __init__(self, *, region: str | None = None, device: str | torch.device = "cpu"):
        from .lpips import load_lpips  # deferred: builds a network and resolves weight files

        self.model = load_lpips(self.net, device=torch.device(device))  # may raise MissingWeightsError
        super().__init__(region=region, device=device)

    @torch.no_grad()
    def prepare(self, reference: torch.Tensor) -> Prepared:
        return [f.cpu() for f in self.model.features(reference.to(self.device))]

    @torch.no_grad()
    def score(self, prepared: Prepared, images: torch.Tensor, hole: torch.Tensor | None = None) -> torch.Tensor:
        feats = self.model.features(images.to(self.device))
        ref = [f.to(self.device) for f in prepared]
        return self.model.distance_from_features(ref, feats).detach().double().cpu().reshape(-1)


# (net, torchvision backbone file): the files each LPIPS variant needs, with its v0.1 head
_LPIPS_BACKBONES = {"alex": "alexnet-owt-7be5be79.pth", "squeeze": "squeezenet1_1-b8a52dc0.pth",
                    "vgg": "vgg16-397923af.pth"}

for _net, _backbone in _LPIPS_BACKBONES.items():
    METRICS.register(f"lpips-{_net}", type(f"LPIPS_{_net}", (LPIPS,), {
        "name": f"lpips-{_net}", "net": _net, "weight_files": (_backbone, f"{_net}.pth"),
        "__doc__": f"LPIPS v0.1 (Zhang et al. 2018) with the {_net} backbone, whole image."}))

__all__ = ["PSNR", "SSIM", "MSSSIM", "MAE", "ColorDistance", "BoundaryGradientError", "KeptDrift", "LPIPS"]
