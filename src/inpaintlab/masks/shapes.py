"""Geometric masks: random rectangles, their complements (ASUKA's 5 % + 5 %), and outpainting (fixed or random borders)."""

from __future__ import annotations

import math

import numpy as np

from .base import MASKS, MaskGenerator, check, check_range


def rectangle_box(height: int, width: int, rng: np.random.Generator, area: float,
                  max_aspect: float) -> tuple[int, int, int, int]:
    """A uniformly placed box ``(top, left, h, w)`` of about ``area`` of the image, aspect log-uniform in [1/a, a]."""
    pixels = area * height * width
    aspect = math.exp(rng.uniform(-math.log(max_aspect), math.log(max_aspect)))  # h / w
    h = min(max(round(math.sqrt(pixels * aspect)), 1), height)
    w = min(max(round(pixels / h), 1), width)
    h = min(max(round(pixels / w), 1), height)  # re-balance after clipping the width
    top = int(rng.integers(0, height - h + 1))
    left = int(rng.integers(0, width - w + 1))
    return top, left, h, w


def _check_rect(min_area: float, max_area: float, max_aspect: float) -> None:
    check_range(min_area, max_area, "area")
    check(float(max_aspect) >= 1, f"max_aspect must be >= 1, got {max_aspect}")


@MASKS.register("rectangle")
def rectangle(min_area: float = 0.1, max_area: float = 0.5, max_aspect: float = 2.0) -> MaskGenerator:
    """One random box as the hole; its area share uniform in [min_area, max_area] (default 10-50 %), aspect up to max_aspect."""
    _check_rect(min_area, max_area, max_aspect)

    def generate(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        top, left, h, w = rectangle_box(height, width, rng, rng.uniform(min_area, max_area), max_aspect)
        hole = np.zeros((height, width), np.float32)
        hole[top:top + h, left:left + w] = 1.0
        return hole

    return generate


@MASKS.register("complement-rectangle")
def complement_rectangle(min_area: float = 0.1, max_area: float = 0.5, max_aspect: float = 2.0) -> MaskGenerator:
    """Keep one random box, hole everywhere else; the hole's share uniform in [min_area, max_area] (default 10-50 %)."""
    _check_rect(min_area, max_area, max_aspect)

    def generate(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        top, left, h, w = rectangle_box(height, width, rng, 1.0 - rng.uniform(min_area, max_area), max_aspect)
        hole = np.ones((height, width), np.float32)
        hole[top:top + h, left:left + w] = 0.0
        return hole

    return generate


def centred_span(n: int, ratio: float) -> tuple[int, int]:
    """``[start, stop)`` of a centred run of ``round(n * ratio)`` of ``n`` pixels."""
    k = min(max(round(n * ratio), 1), n)
    start = (n - k) // 2
    return start, start + k


@MASKS.register("outpaint")
def outpaint(ratio: float = 0.5, ratio_w: float | None = None) -> MaskGenerator:
    """Outpainting: keep the centred rectangle of ratio x the height and ratio_w (default ratio) x the width; hole elsewhere."""
    check(0 < float(ratio) < 1, f"ratio must be in (0, 1), got {ratio}")
    rw = float(ratio if ratio_w is None else ratio_w)
    check(0 < rw < 1, f"ratio_w must be in (0, 1), got {ratio_w}")

    def generate(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        (y0, y1), (x0, x1) = centred_span(height, float(ratio)), centred_span(width, rw)
        hole = np.ones((height, width), np.float32)
        hole[y0:y1, x0:x1] = 0.0
        return hole

    return generate


@MASKS.register("outpaint-random")
def outpaint_random(min_ratio: float = 0.4, max_ratio: float = 0.8) -> MaskGenerator:
    """Outpainting for training: keep a centred box, its height and width ratios each U[min_ratio, max_ratio]; hole elsewhere.

    Seamless Borders (Hou et al. 2025, Sec. 4, implementation details) only says "we apply a mask
    around the edges of the training images, retaining only the central portion". The range of the
    ratios (kept side / image side, drawn independently for the height and the width; default
    0.4-0.8) is our default, not the paper's. The parameters are not called ``lo``/``hi`` because
    ``bucket`` hands those on to its inner kind as a *hole*-ratio range.
    """
    lo, hi = float(min_ratio), float(max_ratio)
    check(0 < lo <= hi <= 1 and lo < 1,
          f"outpaint-random kept-side ratio range [{min_ratio}, {max_ratio}] is not valid: "
          "need 0 < min_ratio <= max_ratio <= 1 and min_ratio < 1")

    def generate(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        ratio_h, ratio_w = rng.uniform(lo, hi, size=2)  # height first, then width
        (y0, y1), (x0, x1) = centred_span(height, float(ratio_h)), centred_span(width, float(ratio_w))
        hole = np.ones((height, width), np.float32)
        hole[y0:y1, x0:x1] = 0.0
        return hole

    return generate
