"""Benchmark evaluation: images x masks x (inpainter | results) x metrics -> SQLite rows and the papers' tables."""

from .buckets import OVERALL, SCHEMES, Bucket
from .config import DEFAULT_METRICS, MIN_BUCKET_IMAGES, EvalConfig
from .runner import EvalRun, EvalSummary, pair_files
from .tables import build_table, compare_table, write_tables

__all__ = ["EvalConfig", "EvalRun", "EvalSummary", "pair_files", "build_table", "compare_table", "write_tables",
           "Bucket", "SCHEMES", "OVERALL", "DEFAULT_METRICS", "MIN_BUCKET_IMAGES"]
