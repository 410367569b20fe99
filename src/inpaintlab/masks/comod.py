"""Co-Mod-GAN / MAT ``RandomMask``: rectangles at two scales plus brush strokes, in a ratio range.

Ported from ``training/mask_generator.py`` of github.com/zsyzzsoft/co-mod-gan (Zhao et al. 2021)
and ``datasets/mask_generator_{512,512_small,256}.py`` of github.com/fenglinglwb/MAT (Li et al.
2022). The three coefficients scale, by ``coef = min(lo + hi, 1)``, the maximum number of small
rectangles (up to half the side), large rectangles (up to the full side) and brush strokes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .base import MASKS, MaskGenerator, check, check_range, resample


@dataclass(frozen=True)
class BrushParams:
    """``RandomBrush`` arguments (pixels and radians), identical in Co-Mod-GAN and MAT."""

    min_num_vertex: int = 4
    max_num_vertex: int = 18
    mean_angle: float = 2 * math.pi / 5
    angle_range: float = 2 * math.pi / 15
    min_width: int = 12
    max_width: int = 48


@dataclass(frozen=True)
class RandomMaskPreset:
    """``RandomMask`` coefficients: (small rectangles, large rectangles, brush strokes)."""

    small_rects: int
    large_rects: int
    strokes: int


#: Co-Mod-GAN (10, 5, 20); MAT-512 large (5, 3, 9) and small (3, 2, 4); MAT-256 (4, 2, 8).
RANDOM_MASK_PRESETS: dict[str, RandomMaskPreset] = {
    "comod": RandomMaskPreset(10, 5, 20),
    "mat-512-large": RandomMaskPreset(5, 3, 9),
    "mat-512-small": RandomMaskPreset(3, 2, 4),
    "mat-256": RandomMaskPreset(4, 2, 8),
}


def random_brush(height: int, width: int, rng: np.random.Generator, max_tries: int,
                 p: BrushParams = BrushParams()) -> np.ndarray:
    """``RandomBrush``: up to ``max_tries - 1`` zig-zag polylines with round joints, then random flips."""
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    average_radius = math.sqrt(height * height + width * width) / 8
    for _ in range(int(rng.integers(max_tries))):
        num_vertex = int(rng.integers(p.min_num_vertex, p.max_num_vertex))
        angle_min = p.mean_angle - rng.uniform(0, p.angle_range)
        angle_max = p.mean_angle + rng.uniform(0, p.angle_range)
        angles = [2 * math.pi - rng.uniform(angle_min, angle_max) if i % 2 == 0 else rng.uniform(angle_min, angle_max)
                  for i in range(num_vertex)]
        vertex = [(int(rng.integers(0, width)), int(rng.integers(0, height)))]
        for angle in angles:
            # the reference's scale is average_radius // 2 (floor division on a float)
            r = float(np.clip(rng.normal(average_radius, average_radius // 2), 0, 2 * average_radius))
            new_x = min(max(vertex[-1][0] + r * math.cos(angle), 0), width)
            new_y = min(max(vertex[-1][1] + r * math.sin(angle), 0), height)
            vertex.append((int(new_x), int(new_y)))
        w = int(rng.uniform(p.min_width, p.max_width))
        draw.line(vertex, fill=1, width=w)
        for vx, vy in vertex:
            draw.ellipse((vx - w // 2, vy - w // 2, vx + w // 2, vy + w // 2), fill=1)
        # (the reference's per-stroke PIL transposes discard their result, so they are left out)
    hole = np.asarray(canvas, np.float32)
    if rng.random() > 0.5:
        hole = hole[::-1]
    if rng.random() > 0.5:
        hole = hole[:, ::-1]
    return np.ascontiguousarray(hole)


def multi_fill(hole: np.ndarray, rng: np.random.Generator, max_tries: int, max_h: int, max_w: int) -> None:
    """``MultiFill``: up to ``max_tries - 1`` rectangles, sides below ``max_*``, allowed half outside."""
    height, width = hole.shape
    for _ in range(int(rng.integers(max_tries))):
        w, h = int(rng.integers(max(max_w, 1))), int(rng.integers(max(max_h, 1)))
        ww, hh = w // 2, h // 2
        x, y = int(rng.integers(-ww, width - w + ww)), int(rng.integers(-hh, height - h + hh))
        hole[max(y, 0):min(y + h, height), max(x, 0):min(x + w, width)] = 1.0


def random_mask_once(height: int, width: int, rng: np.random.Generator, preset: RandomMaskPreset,
                     coef: float, brush: BrushParams) -> np.ndarray:
    """One unconstrained ``RandomMask`` draw (1 = hole)."""
    hole = np.zeros((height, width), np.float32)
    # max(.., 1): numpy refuses integers(0); the reference would crash where we draw zero shapes
    multi_fill(hole, rng, max(int(preset.small_rects * coef), 1), height // 2, width // 2)
    multi_fill(hole, rng, max(int(preset.large_rects * coef), 1), height, width)
    np.maximum(hole, random_brush(height, width, rng, max(int(preset.strokes * coef), 1), brush), out=hole)
    return hole


def random_mask(preset: RandomMaskPreset, lo: float = 0.0, hi: float = 1.0, max_tries: int = 1000,
                brush: BrushParams = BrushParams()) -> MaskGenerator:
    """``RandomMask(s, hole_range=[lo, hi])``: redraw until lo < hole ratio < hi (open, as the reference)."""
    check_range(lo, hi)
    coef = min(lo + hi, 1.0)

    def generate(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        return resample(lambda: random_mask_once(height, width, rng, preset, coef, brush),
                        lambda r: lo < r < hi, max_tries, f"in ({lo:g}, {hi:g})")

    return generate


def _random_mask_factory(name: str):
    preset = RANDOM_MASK_PRESETS[name]

    def factory(lo: float = 0.0, hi: float = 1.0, max_tries: int = 1000, min_width: int = 12,
                max_width: int = 48) -> MaskGenerator:
        check(1 <= int(min_width) < int(max_width), f"need 1 <= min_width < max_width, got {min_width}, {max_width}")
        return random_mask(preset, float(lo), float(hi), int(max_tries),
                           BrushParams(min_width=int(min_width), max_width=int(max_width)))

    factory.__name__ = name.replace("-", "_")
    factory.__doc__ = (
        f"Co-Mod-GAN/MAT RandomMask, coefficients {tuple(vars(preset).values())} (small rects, large rects, "
        f"strokes): redrawn until lo < hole ratio < hi (default 0-1); brush width min_width-max_width px (12-48).")
    return factory


comod = MASKS.register("comod", _random_mask_factory("comod"))
mat_512_large = MASKS.register("mat-512-large", _random_mask_factory("mat-512-large"))
mat_512_small = MASKS.register("mat-512-small", _random_mask_factory("mat-512-small"))
mat_256 = MASKS.register("mat-256", _random_mask_factory("mat-256"))
