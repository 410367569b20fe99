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

from ..lazy import lazy_exports

_LAZY = {name: "base" for name in ("METRICS", "Metric", "PerImageMetric", "FeatureMetric", "values_on_features")}
_LAZY |= {name: "specs" for name in ("build_metric", "parse_metric_spec", "metrics_using", "reference_metric_names",
                                     "check_reference_metric")}
_LAZY |= {name: "functional" for name in ("psnr", "ssim", "ms_ssim", "mae", "kept_drift")}
_LAZY |= {name: "boundary" for name in ("color_distance", "boundary_gradient_error")}
_LAZY |= {name: "stability" for name in ("seed_variance", "hole_distance", "hole_lpips_distance")}

# torch loads on first use, so that `inpaintlab --help` (which wires `inpaintlab metrics`) answers at once
__all__ = sorted(_LAZY)
__getattr__ = lazy_exports(__name__, _LAZY)
