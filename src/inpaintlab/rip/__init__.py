"""Recursive InPainting (RIP): the stability benchmark of Conde et al. (2024)."""

from .config import DEFAULT_METRICS, RipConfig
from .engine import RipRun, RunSummary, run_rip
from .schedule import Grid, checkpoint_iterations, draw_cells, iterations_for

__all__ = ["RipConfig", "DEFAULT_METRICS", "RipRun", "RunSummary", "run_rip", "Grid",
           "checkpoint_iterations", "draw_cells", "iterations_for"]
