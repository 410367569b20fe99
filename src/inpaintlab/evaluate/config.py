"""The typed configuration of an evaluation run, saved as ``config.json`` in the run folder."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import InpaintlabError

#: Per-image metrics that need no weight files, plus LPIPS (skipped with a note when its weights are missing).
DEFAULT_METRICS = ("psnr", "ssim", "mae@hole", "cd", "boundary-gradient", "kept-drift", "lpips-alex")

#: A dataset-level metric (FID, P-IDS, U-IDS) is computed on a hole-ratio bucket only when the bucket
#: holds at least this many images: FID's covariance of 2048-d features is strongly biased on fewer
#: (its bias shrinks like 1/n), and an SVM on a handful of samples says nothing. Overall always.
MIN_BUCKET_IMAGES = 50


@dataclass
class EvalConfig:
    """Everything that determines an evaluation's results."""

    images: str = ""
    masks: str = ""
    results: str | None = None  # a folder of results to score, or None with ``model``
    model: str | None = None  # an inpainter to run, or None with ``results``
    model_options: dict[str, Any] = field(default_factory=dict)
    compositing: str = "hard"
    seed: int = 0  # per-image generators are derived from (seed, image name)
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS))
    size: int | None = None  # None: native size; else pad to square and resize (image, mask, result alike)
    pad_color: list[int] = field(default_factory=lambda: [0, 0, 0])
    min_bucket_images: int = MIN_BUCKET_IMAGES
    # Run-time options below: they never change a result, so a resume may change them.
    batch_size: int = 8
    device: str = "cpu"

    def __post_init__(self):
        # one spelling per folder ("imgs/" and "imgs" are one evaluation): the resolved files are compared too
        for key in ("images", "masks", "results"):
            value = getattr(self, key)
            if value and not value.startswith("hf:") and value != "builtin":
                setattr(self, key, os.path.normpath(value))


RUNTIME_KEYS = frozenset({"batch_size", "device"})
#: lists whose order never changes a result (a resume with another order is the same run)
UNORDERED_KEYS = frozenset({"metrics"})


def validate(cfg: EvalConfig) -> None:
    """Reject impossible settings early, one line each (before anything is loaded or written)."""
    from ..devices import resolve_device
    from ..inpainters import COMPOSITORS

    resolve_device(cfg.device)
    COMPOSITORS.get(cfg.compositing)
    if cfg.seed < 0 or cfg.seed >= 2**63:
        raise InpaintlabError(f"--seed must be in 0 to 2**63 - 1, got {cfg.seed}")
    if (cfg.results is None) == (cfg.model is None):
        raise InpaintlabError("give exactly one of --results DIR (score existing results) or --model NAME (run it)")
    if cfg.model is None and cfg.model_options:
        raise InpaintlabError("--option only applies with --model")
    if cfg.size is not None and cfg.size <= 0:
        raise InpaintlabError(f"--size must be positive, got {cfg.size}")
    if cfg.batch_size <= 0:
        raise InpaintlabError(f"--batch-size must be positive, got {cfg.batch_size}")
    if cfg.min_bucket_images < 2:
        raise InpaintlabError(f"--min-bucket-images must be at least 2, got {cfg.min_bucket_images}")
    if not cfg.metrics:
        raise InpaintlabError("--metrics is empty; give at least one, e.g. psnr,ssim")
    if len(set(cfg.metrics)) != len(cfg.metrics):
        raise InpaintlabError(f"--metrics repeats a metric: {', '.join(cfg.metrics)}")
    if len(cfg.pad_color) != 3 or not all(0 <= c <= 255 for c in cfg.pad_color):
        raise InpaintlabError(f"--pad-color must be three values in 0-255, got {cfg.pad_color}")


__all__ = ["EvalConfig", "DEFAULT_METRICS", "MIN_BUCKET_IMAGES", "RUNTIME_KEYS", "UNORDERED_KEYS", "validate"]
