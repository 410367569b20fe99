"""The typed configuration of a RIP run, saved as ``config.json`` in the run folder."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import InpaintlabError

#: The paper's LPIPS backbones, plus PSNR and SSIM; a metric whose weights are missing is skipped.
DEFAULT_METRICS = ("psnr", "ssim", "lpips-alex", "lpips-squeeze", "lpips-vgg")
KEEP_POLICIES = ("checkpoints", "ends", "none")


@dataclass
class RipConfig:
    """Everything that determines a RIP run's results (defaults follow the RIP paper)."""

    images: str = "builtin"
    model: str = "telea"
    model_options: dict[str, Any] = field(default_factory=dict)
    compositing: str = "hard"
    mask_sizes: list[int] = field(default_factory=lambda: [64, 128, 256])
    percent: float = 400.0
    checkpoint_every: float = 50.0
    seeds: list[int] = field(default_factory=lambda: [0])
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS))
    size: int = 512
    pad_color: list[int] = field(default_factory=lambda: [0, 0, 0])
    sampling: str = "replacement"
    quantize: bool = True  # round each iteration's result to uint8, as a saved image would be
    keep_images: str = "checkpoints"
    # Run-time options below: they never change a result, so a resume may change them.
    batch_size: int = 8
    device: str = "cpu"
    feature_cache_gb: float = 4.0

    def __post_init__(self):
        # one spelling per folder ("imgs/" and "imgs" are one run): the resolved files are compared too
        if not self.images.startswith("hf:") and self.images not in ("", "builtin"):
            self.images = os.path.normpath(self.images)


RUNTIME_KEYS = frozenset({"batch_size", "device", "feature_cache_gb"})
#: lists whose order never changes a result (a resume with another order is the same run)
UNORDERED_KEYS = frozenset({"mask_sizes", "seeds", "metrics"})


#: the largest --percent accepted: 100 sweeps of the image already take 25,600 iterations of 64-px cells
MAX_PERCENT = 10_000.0
#: the most trajectories a run may hold (each is an image x cell size x seed, with its state in memory)
MAX_SEEDS = 10_000


def validate(cfg: RipConfig) -> None:
    """Reject impossible settings early, one line each (before anything is loaded or written)."""
    from ..devices import resolve_device
    from .schedule import SAMPLING

    if not math.isfinite(cfg.percent) or not math.isfinite(cfg.checkpoint_every):
        raise InpaintlabError(f"--percent and --checkpoint-every must be finite numbers, got {cfg.percent} and "
                              f"{cfg.checkpoint_every}")
    if cfg.percent > MAX_PERCENT:
        raise InpaintlabError(f"--percent {cfg.percent:g} is more than {MAX_PERCENT:g} (100 sweeps of the image); "
                              f"ask for less")
    if len(cfg.seeds) > MAX_SEEDS:
        raise InpaintlabError(f"--seeds gives {len(cfg.seeds):,} seeds, more than {MAX_SEEDS:,}; ask for fewer")
    if cfg.sampling not in SAMPLING:
        raise InpaintlabError(f"--sampling must be one of {', '.join(SAMPLING)}, got {cfg.sampling!r}")
    if not cfg.metrics:
        raise InpaintlabError("--metrics is empty; give at least one, e.g. psnr,ssim,lpips-vgg")
    if len(set(cfg.metrics)) != len(cfg.metrics):
        raise InpaintlabError(f"--metrics repeats a metric: {', '.join(cfg.metrics)}")
    if not math.isfinite(cfg.feature_cache_gb) or cfg.feature_cache_gb < 0:
        raise InpaintlabError(f"--feature-cache-gb must be a finite number >= 0, got {cfg.feature_cache_gb}")
    resolve_device(cfg.device)
    from ..inpainters import COMPOSITORS

    COMPOSITORS.get(cfg.compositing)
    if cfg.size <= 0:
        raise InpaintlabError(f"--size must be positive, got {cfg.size}")
    if not cfg.mask_sizes:
        raise InpaintlabError("--mask-sizes is empty; give at least one cell size, e.g. 64,128,256")
    for s in cfg.mask_sizes:
        if s >= cfg.size:
            raise InpaintlabError(f"cell size {s} leaves nothing of a {cfg.size}x{cfg.size} image to inpaint from; "
                                  f"use cells smaller than --size")
        if s <= 0 or cfg.size % s:
            raise InpaintlabError(f"cell size {s} does not divide the working size {cfg.size}; "
                                  f"use sizes that divide it (64, 128, 256 at 512)")
    if cfg.percent <= 0:
        raise InpaintlabError(f"--percent must be positive, got {cfg.percent}")
    if cfg.checkpoint_every <= 0:
        raise InpaintlabError(f"--checkpoint-every must be positive, got {cfg.checkpoint_every}")
    if not cfg.seeds:
        raise InpaintlabError("--seeds is empty; give at least one seed, e.g. 0 or 0-9")
    if len(set(cfg.seeds)) != len(cfg.seeds) or len(set(cfg.mask_sizes)) != len(cfg.mask_sizes):
        raise InpaintlabError("--seeds and --mask-sizes must not repeat a value")
    if cfg.keep_images not in KEEP_POLICIES:
        raise InpaintlabError(f"--keep-images must be one of {', '.join(KEEP_POLICIES)}, got {cfg.keep_images!r}")
    if cfg.batch_size <= 0:
        raise InpaintlabError(f"--batch-size must be positive, got {cfg.batch_size}")
    if len(cfg.pad_color) != 3 or not all(0 <= c <= 255 for c in cfg.pad_color):
        raise InpaintlabError(f"--pad-color must be three values in 0-255, got {cfg.pad_color}")
    from ..metrics import check_reference_metric

    for name in cfg.metrics:
        check_reference_metric(name)


__all__ = ["RipConfig", "DEFAULT_METRICS", "RUNTIME_KEYS", "UNORDERED_KEYS", "validate"]
