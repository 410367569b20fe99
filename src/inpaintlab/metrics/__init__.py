"""Metrics: pure functions in :mod:`.functional`, and reference metrics for repeated scoring.

A :class:`ReferenceMetric` scores images against a fixed reference many times (RIP compares
every checkpoint with the original): :meth:`~ReferenceMetric.prepare` turns the reference into
cached tensors once (LPIPS: its backbone features), :meth:`~ReferenceMetric.score` scores a
batch against prepared references, so each checkpoint costs one backbone pass.
"""

from __future__ import annotations

import abc
from typing import Callable

import torch

from ..registry import Registry
from .functional import mae, psnr, ssim

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
METRICS.register("mae", lambda device="cpu": FunctionMetric("mae", mae, False))
for _net in ("alex", "squeeze", "vgg"):
    METRICS.register(f"lpips-{_net}", lambda device="cpu", _net=_net: LPIPSMetric(_net, device))

#: the weight files each metric needs (for `weights list` and skip messages)
METRIC_WEIGHTS: dict[str, tuple[str, ...]] = {
    "lpips-alex": ("alexnet-owt-7be5be79.pth", "alex.pth"),
    "lpips-squeeze": ("squeezenet1_1-b8a52dc0.pth", "squeeze.pth"),
    "lpips-vgg": ("vgg16-397923af.pth", "vgg.pth"),
}


def load_metric(name: str, device: str | torch.device = "cpu") -> ReferenceMetric:
    """Build the registered metric ``name`` (may raise MissingWeightsError)."""
    return METRICS.get(name)(device=device)


__all__ = ["METRICS", "METRIC_WEIGHTS", "ReferenceMetric", "FunctionMetric", "LPIPSMetric", "load_metric",
           "psnr", "ssim", "mae"]
