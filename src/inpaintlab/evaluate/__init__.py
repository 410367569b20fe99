"""Benchmark evaluation: images x masks x (inpainter | results) x metrics -> SQLite rows and the papers' tables."""

from importlib import import_module

from .config import DEFAULT_METRICS, MIN_BUCKET_IMAGES, EvalConfig

# The runner and tables pull in torch and pandas: import them on first use, so the CLI's
# `--help` (which imports this package for its defaults) stays fast.
_LAZY = {"Bucket": "buckets", "SCHEMES": "buckets", "OVERALL": "buckets", "EvalRun": "runner", "EvalSummary": "runner",
         "pair_files": "runner", "build_table": "tables", "compare_table": "tables", "write_tables": "tables"}

__all__ = ["EvalConfig", "EvalRun", "EvalSummary", "pair_files", "build_table", "compare_table", "write_tables",
           "Bucket", "SCHEMES", "OVERALL", "DEFAULT_METRICS", "MIN_BUCKET_IMAGES"]


def __getattr__(attr: str):
    if attr in _LAZY:
        return getattr(import_module(f".{_LAZY[attr]}", __name__), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
