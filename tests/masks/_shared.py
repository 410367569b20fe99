"""Measurements shared by the mask tests."""

import numpy as np
from skimage.morphology import skeletonize

from inpaintlab.masks import make_rng

SEEDS = range(1000)


def ratios(generate, h: int, w: int, seeds=SEEDS) -> np.ndarray:
    """Hole ratios of a generator over many seeds."""
    return np.array([generate(h, w, make_rng(7, s)).mean() for s in seeds])


def mean_stroke_width(hole: np.ndarray) -> float:
    """Area / skeleton length: the mean width of a union of strokes."""
    length = skeletonize(hole > 0.5).sum()
    return float(hole.sum() / max(length, 1))
