"""Metrics: pure functions, stateful metrics for evaluation, and reference metrics for repeated scoring.

Two families share one set of names:

* :data:`METRIC_CLASSES` (:mod:`.base`): stateful :class:`~.base.Metric` objects with
  ``update`` / ``compute`` / ``reset``, used by ``inpaintlab eval``. Build one with
  :func:`build_metric` from a spec ``name`` or ``name@region`` (region image / hole / kept).
  FID, P-IDS and U-IDS are feature metrics (:class:`~.base.FeatureMetric`) with one feature
  key, so an evaluation extracts each image's Inception features once for all three and
  computes them with :func:`~.base.values_on_features` (P-IDS and U-IDS from one SVM fit).
* :data:`METRICS`: :class:`ReferenceMetric` factories used by RIP through :func:`load_metric`.
  A reference metric scores images against a fixed reference many times (RIP compares every
  checkpoint with the original): :meth:`~ReferenceMetric.prepare` turns the reference into
  cached tensors once (LPIPS: its backbone features), :meth:`~ReferenceMetric.score` scores a
  batch against prepared references, so each checkpoint costs one backbone pass. Metrics that
  need the hole (CD, boundary gradient error, kept-region drift) or a whole dataset (FID,
  P-IDS, U-IDS) exist only as stateful metrics.
"""

from __future__ import annotations

import abc
from typing import Callable

import torch

from ..errors import InpaintlabError
from ..registry import Registry
from .base import METRIC_CLASSES, FeatureMetric, Metric, PerImageMetric, values_on_features
from .boundary import boundary_gradient_error, color_distance
from .functional import kept_drift, mae, ms_ssim, psnr, ssim

Prepared = list[torch.Tensor]  # tensors with a leading batch dimension


class ReferenceMetric(abc.ABC):
    """A per-image metric against a reference image, with the reference's work cached."""

    name: str = ""
    higher_is_better: bool = False

    def prepare(self, reference: torch.Tensor) -> Prepared:
        """Cacheable work on ``reference`` (N,3,H,W); by default the image itself."""
        return [reference]

    @abc.abstractmethod
    def score(self, prepared: Prepared, images: torch.Tensor) -> torch.Tensor:
        """Score ``images`` (N,3,H,W) against prepared references (leading dim N); returns (N,)."""

    def __call__(self, reference: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        return self.score(self.prepare(reference), images)


class FunctionMetric(ReferenceMetric):
    """A reference metric from a pure function ``f(reference, images) -> (N,)``."""

    def __init__(self, name: str, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], higher_is_better: bool):
        self.name, self.fn, self.higher_is_better = name, fn, higher_is_better

    def score(self, prepared: Prepared, images: torch.Tensor) -> torch.Tensor:
        return self.fn(prepared[0].to(images.device), images)


class LPIPSMetric(ReferenceMetric):
    """LPIPS (Zhang et al. 2018) with cached reference features; lower is more similar."""

    higher_is_better = False

    def __init__(self, net: str, device: str | torch.device = "cpu"):
        from .lpips import load_lpips  # deferred: builds a network and resolves weight files

        self.name = f"lpips-{net}"
        self.device = torch.device(device)
        self.model = load_lpips(net, device=self.device)

    @torch.no_grad()
    def prepare(self, reference: torch.Tensor) -> Prepared:
        return [f.cpu() for f in self.model.features(reference.to(self.device))]

    @torch.no_grad()
    def score(self, prepared: Prepared, images: torch.Tensor) -> torch.Tensor:
        feats = self.model.features(images.to(self.device))
        ref = [f.to(self.device) for f in prepared]
        return self.model.distance_from_features(ref, feats).cpu()


#: name -> factory(device) -> ReferenceMetric
METRICS: Registry[Callable[..., ReferenceMetric]] = Registry("metric")
METRICS.register("psnr", lambda device="cpu": FunctionMetric("psnr", psnr, True))
METRICS.register("ssim", lambda device="cpu": FunctionMetric("ssim", ssim, True))
METRICS.register("ms-ssim", lambda device="cpu": FunctionMetric("ms-ssim", ms_ssim, True))
METRICS.register("mae", lambda device="cpu": FunctionMetric("mae", mae, False))
for _net in ("alex", "squeeze", "vgg"):
    METRICS.register(f"lpips-{_net}", lambda device="cpu", _net=_net: LPIPSMetric(_net, device))


# -- stateful per-image metrics ----------------------------------------------------------------

@METRIC_CLASSES.register("psnr")
class PSNR(PerImageMetric):
    """PSNR ``10 log10(1 / MSE)`` per image, MSE over the region's pixels; ``inf`` for identical images."""

    name, higher_is_better, regions = "psnr", True, ("image", "hole", "kept")

    def values(self, images, reference, hole):
        return psnr(images, reference, hole=hole, region=self.region)


@METRIC_CLASSES.register("ssim")
class SSIM(PerImageMetric):
    """Mean SSIM (Wang et al. 2004); hole / kept: mean of the SSIM map over window centres in the region."""

    name, higher_is_better, regions = "ssim", True, ("image", "hole", "kept")

    def values(self, images, reference, hole):
        return ssim(images, reference, hole=hole, region=self.region)


@METRIC_CLASSES.register("ms-ssim")
class MSSSIM(PerImageMetric):
    """MS-SSIM (Wang, Simoncelli, Bovik 2003), 5 scales, whole image (min side 161)."""

    name, higher_is_better = "ms-ssim", True

    def values(self, images, reference, hole):
        try:
            return ms_ssim(images, reference)
        except ValueError as e:  # too small: a user error, one line
            raise InpaintlabError(str(e)) from None


@METRIC_CLASSES.register("mae")
class MAE(PerImageMetric):
    """Mean absolute error over the region's pixels and channels."""

    name, higher_is_better, regions = "mae", False, ("image", "hole", "kept")

    def values(self, images, reference, hole):
        return mae(images, reference, hole=hole, region=self.region)


@METRIC_CLASSES.register("cd")
class ColorDistance(PerImageMetric):
    """Color Distance (Seamless Borders): mean RGB L2 step across the hole's boundary, 0-255 scale."""

    name, higher_is_better, needs_hole = "cd", False, True

    def values(self, images, reference, hole):
        return color_distance(images, hole)


@METRIC_CLASSES.register("boundary-gradient")
class BoundaryGradientError(PerImageMetric):
    """Sobel magnitude of (result - reference) on the hole's edge pixels, per channel then averaged (ASUKA)."""

    name, higher_is_better, needs_hole = "boundary-gradient", False, True

    def values(self, images, reference, hole):
        return boundary_gradient_error(images, reference, hole)


@METRIC_CLASSES.register("kept-drift")
class KeptDrift(PerImageMetric):
    """Kept-region drift: mean |output - input| outside the hole, output taken before compositing."""

    name, higher_is_better, regions, needs_hole = "kept-drift", False, ("kept",), True

    def values(self, images, reference, hole):
        return kept_drift(images, reference, hole)


class LPIPS(PerImageMetric):
    """LPIPS v0.1 (Zhang et al. 2018) on whole images; the backbone is built at construction."""

    net: str = ""
    higher_is_better = False

    def __init__(self, *, region: str | None = None, device: str | torch.device = "cpu"):
        self._model = LPIPSMetric(self.net, device)  # may raise MissingWeightsError
        super().__init__(region=region, device=device)

    def values(self, images, reference, hole):
        return self._model(reference, images)


for _net in ("alex", "squeeze", "vgg"):
    METRIC_CLASSES.register(f"lpips-{_net}", type(f"LPIPS_{_net}", (LPIPS,), {
        "name": f"lpips-{_net}", "net": _net, "__doc__": f"LPIPS v0.1 with the {_net} backbone, whole image."}))

#: the weight files each metric needs (for `weights list` and skip messages)
METRIC_WEIGHTS: dict[str, tuple[str, ...]] = {
    "lpips-alex": ("alexnet-owt-7be5be79.pth", "alex.pth"),
    "lpips-squeeze": ("squeezenet1_1-b8a52dc0.pth", "squeeze.pth"),
    "lpips-vgg": ("vgg16-397923af.pth", "vgg.pth"),
    "fid": ("pt_inception-2015-12-05-6726825d.pth",),
    "p-ids": ("pt_inception-2015-12-05-6726825d.pth",),
    "u-ids": ("pt_inception-2015-12-05-6726825d.pth",),
}


def metrics_using(file_name: str) -> list[str]:
    """The metrics that need the weight file ``file_name`` (for ``inpaintlab weights list``)."""
    return sorted(m for m, files in METRIC_WEIGHTS.items() if file_name in files)


def load_metric(name: str, device: str | torch.device = "cpu") -> ReferenceMetric:
    """Build the registered reference metric ``name`` (may raise MissingWeightsError)."""
    return METRICS.get(name)(device=device)


def parse_metric_spec(spec: str) -> tuple[str, str | None]:
    """``"psnr@hole"`` -> ("psnr", "hole"); ``"psnr"`` -> ("psnr", None). Names and regions are checked."""
    name, _, region = spec.strip().partition("@")
    cls = METRIC_CLASSES.get(name)
    if region and region not in cls.regions:
        raise InpaintlabError(f"metric {name!r} supports region {', '.join(cls.regions)}, not {region!r} "
                              f"(in {spec!r})")
    return name, (region or None)


def build_metric(spec: str, device: str | torch.device = "cpu") -> Metric:
    """Build the stateful metric of ``spec`` (``name`` or ``name@region``); may raise MissingWeightsError."""
    name, region = parse_metric_spec(spec)
    return METRIC_CLASSES.get(name)(region=region, device=device)


def metric_names() -> list[str]:
    """Every metric name of either family."""
    return sorted(set(METRIC_CLASSES.names()) | set(METRICS.names()))


# The Inception-based dataset-level metrics (FID, P-IDS, U-IDS) register themselves in
# METRIC_CLASSES on import.
from . import fid as _fid  # noqa: F401,E402
from . import ids as _ids  # noqa: F401,E402

__all__ = ["METRICS", "METRIC_CLASSES", "METRIC_WEIGHTS", "ReferenceMetric", "FunctionMetric", "LPIPSMetric",
           "Metric", "PerImageMetric", "FeatureMetric", "values_on_features", "load_metric", "build_metric", "parse_metric_spec", "metric_names",
           "metrics_using", "psnr", "ssim", "ms_ssim", "mae", "kept_drift", "color_distance",
           "boundary_gradient_error", "PSNR", "SSIM", "MSSSIM", "MAE", "ColorDistance", "BoundaryGradientError",
           "KeptDrift", "LPIPS"]
