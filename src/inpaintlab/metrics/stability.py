"""Seed-variance stability: how much an inpainter's hole content changes with its random seed.

ASUKA's central claim is *stable* inpainting: fewer random insertions, so results for different
seeds agree more. Our small-scale reproduction measures it (research notes, ASUKA 2.8 item 5) as
the mean pairwise distance between K >= 2 results of the same images inpainted with K seeds:

    stability_n = 2 / (K (K - 1)) * sum_{i < j} distance(sample_i, sample_j, hole)_n

per image ``n`` (lower = more stable). :func:`seed_variance` computes it for any per-image
``distance``; :func:`hole_distance` builds one from an inpaintlab per-image metric, and
:func:`hole_lpips_distance` the one of the notes: "LPIPS in the hole".

**What "LPIPS in the hole" means here.** inpaintlab's LPIPS metrics (``lpips-alex``, ...) support
only the whole-image region: there is no ``lpips-alex@hole`` (``mae@hole``, ``psnr@hole`` and
``ssim@hole`` exist). So the two results are first made to differ *only inside the hole*: both are
composited onto one common kept region, the mean of the two results there,

    x = hole * a + (1 - hole) * (a + b) / 2,     y = hole * b + (1 - hole) * (a + b) / 2,

and the metric is then applied with its own region rule: for ``lpips-alex`` the ordinary
whole-image LPIPS v0.1 of ``x`` against ``y`` (Zhang et al. 2018, Eq. 1: every layer's distance
map averaged over *all* its positions). Positions whose receptive field misses the hole add
exactly 0, so the value comes from the hole and its surroundings only, but it is averaged over
the whole image: for the same change of content, a smaller hole gives a smaller value (as in
ASUKA's evaluation, which scores LPIPS on composited whole images). For results that are
already composited (the kept pixels equal the input in both), ``(a + b) / 2 == a == b`` there,
bit for bit, so this is the plain whole-image LPIPS between the two composited results. A metric
built with the hole region (e.g. ``mae@hole``) averages over the hole's pixels instead, by its own
rule (:func:`inpaintlab.metrics.functional.region_weights`); the compositing then changes
nothing for pixel-wise metrics and only sets the context seen by windowed ones (``ssim@hole``).
The common context makes the distance symmetric in ``a`` and ``b`` whenever the metric is, so
:func:`seed_variance` does not depend on the order of the samples.
"""

from __future__ import annotations

from itertools import combinations
from typing import Callable, Sequence

import numpy as np
import torch

from ..errors import InpaintlabError
from .base import PerImageMetric
from .functional import hole_like

__all__ = ["Distance", "seed_variance", "hole_distance", "hole_lpips_distance", "composite_pair"]

#: ``distance(a, b, hole) -> (N,)``: a per-image distance between two (N,3,H,W) batches, given the (N,1,H,W) hole
Distance = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], "torch.Tensor | np.ndarray"]


def _as_images(x, what: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
    if t.ndim != 4 or t.shape[1] != 3 or not t.is_floating_point():
        raise InpaintlabError(f"{what} must be float images of shape (N, 3, H, W) in [0, 1], got "
                              f"{tuple(t.shape)} {t.dtype}")
    return t


def _as_hole(hole, images: torch.Tensor) -> torch.Tensor:
    h = torch.as_tensor(np.asarray(hole)) if not isinstance(hole, torch.Tensor) else hole
    try:
        h = hole_like(h, images)
    except ValueError as e:
        raise InpaintlabError(str(e)) from None
    if not bool(((h == 0) | (h == 1)).all()):
        raise InpaintlabError("the hole must be a 0/1 mask (1 = hole)")
    return h.to(images.dtype)


def seed_variance(samples: Sequence, hole, distance: Distance) -> torch.Tensor:
    """Per-image mean of ``distance`` over the K(K-1)/2 pairs of K >= 2 results with different seeds, (N,) float64.

    ``samples``: K batches (N,3,H,W) in [0, 1], the same N images inpainted with K seeds;
    ``hole``: (N,1,H,W), (1,1,H,W) or HxW, 1 = hole. ``distance`` should be symmetric, or the
    value depends on the order of the samples.
    """
    if isinstance(samples, torch.Tensor) or len(samples) < 2:
        n = "a tensor" if isinstance(samples, torch.Tensor) else f"{len(samples)}"
        raise InpaintlabError(f"seed variance needs a list of at least 2 samples (results with different seeds), "
                              f"got {n}")
    batches = [_as_images(s, f"sample {k}") for k, s in enumerate(samples)]
    shape = batches[0].shape
    for k, b in enumerate(batches):
        if b.shape != shape:
            raise InpaintlabError(f"sample {k} has shape {tuple(b.shape)} but sample 0 has {tuple(shape)}; "
                                  f"the samples must be the same images")
    h = _as_hole(hole, batches[0])
    total = torch.zeros(shape[0], dtype=torch.float64)
    pairs = list(combinations(range(len(batches)), 2))
    for i, j in pairs:
        d = distance(batches[i], batches[j], h)
        d = d.detach().double().cpu() if isinstance(d, torch.Tensor) else torch.as_tensor(np.asarray(d, np.float64))
        if tuple(d.shape) != (shape[0],):
            raise InpaintlabError(f"the distance returned shape {tuple(d.shape)} for samples {i} and {j}; "
                                  f"expected one value per image, ({shape[0]},)")
        total += d
    return total / len(pairs)


def composite_pair(a: torch.Tensor, b: torch.Tensor, hole: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``a`` and ``b`` in the hole, both on their mean outside it: two images that differ only in the hole."""
    h = hole_like(hole, a).to(a.dtype)
    common = (a + b) / 2
    return h * a + (1 - h) * common, h * b + (1 - h) * common


def hole_distance(metric: PerImageMetric) -> Distance:
    """A per-image distance from an inpaintlab per-image metric, the two results composited onto one kept region.

    The metric's own region applies: ``lpips-alex`` scores the whole composited images,
    ``mae@hole`` averages over the hole's pixels (see the module docstring). Nothing is
    accumulated in the metric (it is scored through ``prepare`` / ``score``, not ``update``).
    """
    if not isinstance(metric, PerImageMetric):
        raise InpaintlabError(f"a seed-variance distance needs a per-image metric, got {type(metric).__name__}")
    if metric.region == "kept":
        raise InpaintlabError(f"metric {metric.key!r} scores the kept region, which the samples share; "
                              f"use the whole image or the hole")

    def distance(a: torch.Tensor, b: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        x, y = composite_pair(a, b, hole)
        return metric.score(metric.prepare(y), x, hole)

    distance.metric_key = metric.key  # type: ignore[attr-defined]
    return distance


def hole_lpips_distance(net: str = "alex", *, device: str | torch.device = "cpu",
                        metric: PerImageMetric | None = None) -> Distance:
    """LPIPS v0.1 between two results that differ only in the hole (see the module docstring); lower = more alike.

    Builds the registered ``lpips-<net>`` metric (may raise :class:`MissingWeightsError`) unless
    ``metric`` is given (e.g. one already built for an evaluation).
    """
    if metric is None:
        from .specs import build_metric

        metric = build_metric(f"lpips-{net}", device=device)
    return hole_distance(metric)
