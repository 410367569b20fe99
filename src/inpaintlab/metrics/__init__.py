"""Metrics: pure functions, and one family of stateful metrics in one registry.

:data:`METRICS` maps a name to a :class:`~.base.Metric` subclass (``update`` / ``compute`` /
``reset``); :func:`build_metric` builds one from a spec ``name`` or ``name@region`` (region
image / hole / kept). The modules of this package register on the registry's first look-up, so
a new metric is one module with one ``METRICS.register`` call.

- Per-image metrics (:class:`~.base.PerImageMetric`, :mod:`.image`): PSNR, SSIM, MS-SSIM, MAE,
  CD, boundary gradient, kept drift, LPIPS. ``prepare`` / ``score`` let RIP cache the work on
  the original it scores every checkpoint against (LPIPS: its backbone features).
- Dataset-level feature metrics (:class:`~.base.FeatureMetric`): FID, P-IDS, U-IDS share one
  Inception feature key, so an evaluation extracts each image's features once for all three
  and computes them with :func:`~.base.values_on_features` (P-IDS and U-IDS from one SVM fit).
"""

from __future__ import annotations

import torch

from ..errors import InpaintlabError
from .base import METRICS, FeatureMetric, Metric, PerImageMetric, values_on_features
from .boundary import boundary_gradient_error, color_distance
from .functional import kept_drift, mae, ms_ssim, psnr, ssim


def metrics_using(file_name: str) -> list[str]:
    """The metrics that need the weight file ``file_name`` (for ``inpaintlab weights list``)."""
    return [name for name, cls in METRICS.items() if file_name in cls.weight_files]


def parse_metric_spec(spec: str) -> tuple[str, str | None]:
    """``"psnr@hole"`` -> ("psnr", "hole"); ``"psnr"`` -> ("psnr", None). Names and regions are checked."""
    name, _, region = spec.strip().partition("@")
    cls = METRICS.get(name)
    if region and region not in cls.regions:
        raise InpaintlabError(f"metric {name!r} supports region {', '.join(cls.regions)}, not {region!r} "
                              f"(in {spec!r})")
    return name, (region or None)


def build_metric(spec: str, device: str | torch.device = "cpu") -> Metric:
    """Build the metric of ``spec`` (``name`` or ``name@region``); may raise MissingWeightsError."""
    name, region = parse_metric_spec(spec)
    return METRICS.get(name)(region=region, device=device)


def reference_metric_names() -> list[str]:
    """Metrics that score a whole image against a reference alone (what RIP can use)."""
    return [name for name, cls in METRICS.items()
            if issubclass(cls, PerImageMetric) and not cls.needs_hole and not cls.reads_raw and "image" in cls.regions]


def check_reference_metric(spec: str) -> None:
    """Refuse, in one line, a metric that needs more than an image and its reference (RIP)."""
    name, region = parse_metric_spec(spec)
    if name not in reference_metric_names() or region not in (None, "image"):
        cls = METRICS.get(name)
        why = ("is dataset-level" if cls.dataset_level else "needs the hole mask" if cls.needs_hole or region
               else "scores a backend's raw output" if cls.reads_raw else "does not score whole images")
        raise InpaintlabError(f"metric {spec!r} {why}; RIP compares whole images with the original: "
                              f"use {', '.join(reference_metric_names())}")


__all__ = ["METRICS", "Metric", "PerImageMetric", "FeatureMetric", "values_on_features", "build_metric",
           "parse_metric_spec", "metrics_using", "reference_metric_names", "check_reference_metric", "psnr", "ssim",
           "ms_ssim", "mae", "kept_drift", "color_distance", "boundary_gradient_error"]
