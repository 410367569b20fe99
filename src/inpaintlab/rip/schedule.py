"""RIP's grid of square cells, its schedule, and the per-trajectory random streams.

Progress is counted as inpainted pixels over image pixels (the paper's Section 4): with
``size x size`` images and ``s x s`` cells one iteration adds ``s^2 / size^2``, so 400 % takes
256 / 64 / 16 iterations for 64 / 128 / 256 cells at 512.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InpaintlabError

SAMPLING = ("replacement", "no-replacement")


@dataclass(frozen=True)
class Grid:
    """A ``size x size`` image cut into ``(size / cell)^2`` square cells, row-major."""

    size: int
    cell: int

    def __post_init__(self):
        if self.cell <= 0 or self.size % self.cell:
            raise InpaintlabError(
                f"cell size {self.cell} does not divide the working size {self.size}; "
                f"choose cell sizes that divide {self.size} (e.g. 64, 128, 256 at 512)")

    @property
    def per_side(self) -> int:
        return self.size // self.cell

    @property
    def count(self) -> int:
        return self.per_side**2

    def row_col(self, index: int) -> tuple[int, int]:
        return divmod(int(index), self.per_side)

    def hole(self, index: int) -> torch.Tensor:
        """The (1,1,size,size) hole mask of cell ``index`` (1 inside the cell)."""
        r, c = self.row_col(index)
        m = torch.zeros(1, 1, self.size, self.size)
        m[..., r * self.cell:(r + 1) * self.cell, c * self.cell:(c + 1) * self.cell] = 1.0
        return m


def percent_per_iteration(size: int, cell: int) -> float:
    """Share of the image's pixels one cell inpaints, in percent."""
    return 100.0 * cell * cell / (size * size)


def iterations_for(percent: float, size: int, cell: int) -> int:
    """Iterations needed to inpaint ``percent`` % of the pixels (rounded up)."""
    # Round first so that float noise (e.g. 400 / 1.5625) does not add an iteration.
    return math.ceil(round(percent / percent_per_iteration(size, cell), 9))


def checkpoint_iterations(percent: float, every: float, size: int, cell: int) -> list[int]:
    """Iterations at which metrics are taken: 0, every ``every`` %, and the last one."""
    if every <= 0:
        raise InpaintlabError(f"--checkpoint-every must be positive, got {every}")
    last = iterations_for(percent, size, cell)
    marks = {0, last}
    k = 1
    while k * every < percent + 1e-9:
        marks.add(iterations_for(k * every, size, cell))
        k += 1
    return sorted(m for m in marks if m <= last)


def trajectory_key(image: str, cell: int, seed: int) -> list[int]:
    """Entropy words naming one trajectory: independent of the run's other trajectories."""
    return [int(seed), zlib.crc32(image.encode("utf-8")), int(cell)]


def draw_cells(image: str, cell: int, seed: int, grid: Grid, n: int, sampling: str = "replacement") -> np.ndarray:
    """The ``n`` cells a trajectory inpaints, one per iteration, drawn from its own stream.

    ``replacement`` draws each cell independently (what the paper implies: "in each iteration,
    a square is randomly selected"); ``no-replacement`` visits every cell once per sweep of the
    grid, in a fresh random order each sweep.
    """
    rng = np.random.default_rng(np.random.SeedSequence(trajectory_key(image, cell, seed) + [0]))
    if sampling == "replacement":
        return rng.integers(0, grid.count, size=n)
    if sampling == "no-replacement":
        sweeps = -(-n // grid.count)
        return np.concatenate([rng.permutation(grid.count) for _ in range(max(sweeps, 1))])[:n]
    raise InpaintlabError(f"unknown cell sampling {sampling!r}; choose one of: {', '.join(SAMPLING)}")


def iteration_generator(image: str, cell: int, seed: int, iteration: int) -> torch.Generator:
    """The inpainter's generator for one trajectory's iteration, so resumes and batches agree."""
    words = np.random.SeedSequence(trajectory_key(image, cell, seed) + [1, int(iteration)]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(words[0]) << 31 | int(words[1]) >> 1)
