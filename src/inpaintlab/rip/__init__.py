"""Recursive InPainting (RIP): the stability benchmark of Conde et al. (2024)."""

from ..lazy import lazy_exports
from .config import DEFAULT_METRICS, RipConfig

_LAZY = {"RipRun": "engine", "RunSummary": "engine", "run_rip": "engine", "Grid": "schedule",
         "checkpoint_iterations": "schedule", "draw_cells": "schedule", "iterations_for": "schedule"}

__all__ = ["RipConfig", "DEFAULT_METRICS", *_LAZY]
__getattr__ = lazy_exports(__name__, _LAZY)
