"""RIP's grid-cell masks (Recursive InPainting benchmark)."""

from __future__ import annotations

import numpy as np

from .base import MASKS, MaskGenerator


@MASKS.register("grid-cell")
def grid_cell(cell: int = 64) -> MaskGenerator:
    """RIP's mask: one square cell of an aligned grid of ``cell x cell`` squares, drawn uniformly."""
    if cell <= 0:
        raise ValueError(f"cell must be positive, got {cell}")

    def generate(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        if height % cell or width % cell:
            raise ValueError(f"cell size {cell} does not divide the image size {height}x{width}")
        rows, cols = height // cell, width // cell
        r, c = divmod(int(rng.integers(0, rows * cols)), cols)
        hole = np.zeros((height, width), np.float32)
        hole[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = 1.0
        return hole

    return generate
