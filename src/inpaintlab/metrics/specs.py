"""Metric specs on the command line (``name`` or ``name@region``) and questions asked of the registry."""

from __future__ import annotations

import torch

from ..errors import InpaintlabError
from .base import METRICS, Metric, PerImageMetric


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
