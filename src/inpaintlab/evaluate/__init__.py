"""Benchmark evaluation: images x masks x (inpainter | results) x metrics -> SQLite rows and the papers' tables."""

from ..lazy import lazy_exports

from .config import DEFAULT_METRICS, MIN_BUCKET_IMAGES, EvalConfig

# The runner and tables pull in torch and pandas: import them on first use, so the CLI's
# `--help` (which imports this package for its defaults) stays fast.
_LAZY = {"Bucket": "buckets", "SCHEMES": "buckets", "OVERALL": "buckets", "EvalRun": "runner", "EvalSummary": "runner",
         "pair_files": "runner", "build_table": "tables", "compare_table": "tables", "write_tables": "tables"}

__all__ = ["EvalConfig", "EvalRun", "EvalSummary", "pair_files", "build_table", "compare_table", "write_tables",
           "Bucket", "SCHEMES", "OVERALL", "DEFAULT_METRICS", "MIN_BUCKET_IMAGES"]


__getattr__ = lazy_exports(__name__, _LAZY)
