"""The typed configuration of a training run (what every method shares), saved in ``config.json``."""

from __future__ import annotations

import math
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import InpaintlabError

#: the keys that never change a result (a resume may change them)
#: (``steps``: training longer continues the same run; every step already taken stays as it was)
RUNTIME_KEYS = frozenset({"num_workers", "max_time", "log_every", "checkpoint_every", "accelerator", "steps"})


@dataclass
class TrainConfig:
    """Everything about a training run that is not the method's own options."""

    method: str = ""
    data: str = "builtin"  # any image source: builtin, a folder, a glob, hf:NAME?...
    size: int = 256  # side of the square training crops
    masks: str = "lama-train"  # a mask kind of inpaintlab.masks.MASKS (LaMa's training mix by default)
    mask_params: dict[str, Any] = field(default_factory=dict)
    mask_size: int | None = None  # draw masks at this size, then resize them to size (e.g. LaMa's 256 presets at 128)
    foreground: str | None = None  # a folder of per-image foreground masks (<stem>.png, white): holes avoid them
    holdout: Literal["right", "images"] = "right"  # validation: the right quarter of every image, or whole images
    val_count: int = 16  # validation pairs (fixed image crop + mask)
    crop_min: float = 0.5  # a crop covers this share of the training region's shorter side at least...
    crop_max: float = 1.0  # ...and at most (then resized to size: the scale jitter)
    flip: bool = True  # horizontal flips, half of the crops
    batch_size: int = 8
    steps: int = 10_000  # training batches (generator updates)
    accumulate: int = 1  # batches per optimiser step
    grad_clip: float | None = None  # gradient norm clipping (None: off)
    precision: str = "32-true"  # Lightning precision: 32-true, bf16-mixed, 16-mixed
    ema_decay: float | None = None  # EMA of the weights, used for validation and export (None or 0: off)
    ema_every: int = 1  # update the EMA every this many optimiser steps
    ema_warmup: int | None = None  # ema_pytorch's schedule: copy the weights this many steps, then ramp the decay
    val_every: int = 500  # validate (and draw a sample grid) every this many steps
    seed: int = 0
    deterministic: bool = False  # torch's deterministic algorithms (bit-exact resumes on CPU)
    # Run-time options below: they never change a result, so a resume may change them.
    checkpoint_every: int = 1000
    log_every: int = 10
    num_workers: int = 0
    devices: int = 1
    num_nodes: int = 1
    accelerator: str = "auto"
    strategy: str = "auto"
    max_time: str | None = None  # "DD:HH:MM:SS": stop (with a checkpoint) after this long


def validate(cfg: TrainConfig) -> None:
    """One line per impossible setting, before anything is loaded or written."""
    for name in ("size", "batch_size", "steps", "accumulate", "val_every", "checkpoint_every", "log_every",
                 "devices", "num_nodes", "val_count"):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InpaintlabError(f"--{name.replace('_', '-')} must be a positive whole number, got {value!r}")
    if cfg.size % 8:
        raise InpaintlabError(f"--size must be a multiple of 8 (the generators downsample by 8), got {cfg.size}")
    if cfg.num_workers < 0:
        raise InpaintlabError(f"--num-workers must be >= 0, got {cfg.num_workers}")
    if not (0 < cfg.crop_min <= cfg.crop_max <= 1):
        raise InpaintlabError(f"crop_min and crop_max must satisfy 0 < min <= max <= 1, got {cfg.crop_min}, "
                              f"{cfg.crop_max}")
    if cfg.grad_clip is not None and (not math.isfinite(cfg.grad_clip) or cfg.grad_clip <= 0):
        raise InpaintlabError(f"--grad-clip must be a positive number, got {cfg.grad_clip}")
    if cfg.ema_decay is not None and not 0 <= cfg.ema_decay < 1:
        raise InpaintlabError(f"--ema-decay must be in [0, 1) (0: off), got {cfg.ema_decay}")
    if isinstance(cfg.ema_every, bool) or not isinstance(cfg.ema_every, int) or cfg.ema_every <= 0:
        raise InpaintlabError(f"--ema-every must be a positive whole number, got {cfg.ema_every!r}")
    if cfg.ema_warmup is not None and (isinstance(cfg.ema_warmup, bool) or not isinstance(cfg.ema_warmup, int)
                                       or cfg.ema_warmup < 0):
        raise InpaintlabError(f"--ema-warmup must be a whole number >= 0, got {cfg.ema_warmup!r}")
    if cfg.ema_decay is None and (cfg.ema_every != 1 or cfg.ema_warmup is not None):
        raise InpaintlabError("--ema-every and --ema-warmup shape the EMA: give --ema-decay too (e.g. 0.995)")
    if cfg.precision not in ("32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "64-true"):
        raise InpaintlabError(f"--precision must be one of 32-true, bf16-mixed, 16-mixed, bf16-true, 64-true; "
                              f"got {cfg.precision!r}")
    if cfg.mask_size is not None and cfg.mask_size < 8:
        raise InpaintlabError(f"--mask-size must be at least 8, got {cfg.mask_size}")
    if cfg.foreground is not None and not Path(cfg.foreground).expanduser().is_dir():
        raise InpaintlabError(f"--foreground {cfg.foreground}: no such folder (one mask per image, <image name's "
                              f"stem>.png, white = foreground)")
    if cfg.holdout not in ("right", "images"):
        raise InpaintlabError(f"--holdout must be right or images, got {cfg.holdout!r}")
    if cfg.seed < 0 or cfg.seed >= 2**63:
        raise InpaintlabError(f"--seed must be in 0 to 2**63 - 1, got {cfg.seed}")
    if cfg.max_time is not None:
        parts = cfg.max_time.split(":")
        if len(parts) != 4 or not all(p.isdigit() for p in parts):
            raise InpaintlabError(f"--max-time must be DD:HH:MM:SS, e.g. 00:12:00:00, got {cfg.max_time!r}")


__all__ = ["TrainConfig", "RUNTIME_KEYS", "validate"]
