"""The SQLite store of an evaluation: per-image rows, dataset-level rows, each image's hole.

One transaction per batch writes the batch's images and all their metric rows, so a killed
run resumes after its last committed batch and ends with the rows of an uninterrupted run.
With FID / P-IDS / U-IDS the same transaction stores each image's features (``features``:
float32 little-endian bytes of the result's and the reference's vectors, 16 KiB per image for
Inception's 2048-d pool3), so a resume computes dataset-level metrics without reading the
images scored before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ..store import SqliteStore, read_only

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    image TEXT PRIMARY KEY, height INTEGER NOT NULL, width INTEGER NOT NULL,
    hole_pixels INTEGER NOT NULL, pixels INTEGER NOT NULL, hole_ratio REAL NOT NULL, result TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    image TEXT NOT NULL, metric TEXT NOT NULL, value REAL,
    PRIMARY KEY (image, metric)
);
CREATE TABLE IF NOT EXISTS dataset_metrics (
    bucket TEXT NOT NULL, metric TEXT NOT NULL, value REAL, n_images INTEGER NOT NULL,
    PRIMARY KEY (bucket, metric)
);
CREATE TABLE IF NOT EXISTS features (
    image TEXT NOT NULL, feature_key TEXT NOT NULL, fake BLOB NOT NULL, real BLOB NOT NULL,
    PRIMARY KEY (image, feature_key)
);
"""

FEATURE_DTYPE = np.dtype("<f4")

ImageRow = tuple[str, int, int, int, int, float, str]  # image, height, width, hole_pixels, pixels, ratio, result
FeatureRow = tuple[str, str, np.ndarray, np.ndarray]  # image, feature key, fake (d,), real (d,)


def _blob(v: np.ndarray) -> bytes:
    return np.ascontiguousarray(v, FEATURE_DTYPE).reshape(-1).tobytes()


class EvalStore(SqliteStore):
    """An evaluation's ``results.sqlite`` (see :class:`~inpaintlab.store.SqliteStore`)."""

    SCHEMA = SCHEMA
    TABLES = ("images", "metrics", "dataset_metrics")

    def scored(self) -> set[str]:
        """Images whose batch was committed."""
        return {r[0] for r in self.con.execute("SELECT image FROM images")}

    def commit_batch(self, images: Iterable[ImageRow], values: Iterable[tuple[str, str, float]],
                     features: Iterable[FeatureRow] = ()) -> None:
        """Write a batch's images, their (image, metric, value) rows and their features in one transaction."""
        with self.con:
            self.con.executemany("INSERT OR REPLACE INTO images VALUES (?,?,?,?,?,?,?)", list(images))
            self.con.executemany("INSERT OR REPLACE INTO metrics VALUES (?,?,?)",
                                 [(i, m, float(v)) for i, m, v in values])
            self._put_features(features)

    def commit_features(self, features: Iterable[FeatureRow]) -> None:
        """Store features computed outside a batch (for images scored by an older version)."""
        with self.con:
            self._put_features(features)

    def _put_features(self, features: Iterable[FeatureRow]) -> None:
        self.con.executemany("INSERT OR REPLACE INTO features VALUES (?,?,?,?)",
                             [(i, k, _blob(fake), _blob(real)) for i, k, fake, real in features])

    def features(self, feature_key: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """image -> its stored (fake, real) float32 feature vectors under ``feature_key``."""
        rows = self.con.execute("SELECT image, fake, real FROM features WHERE feature_key = ?", (feature_key,))
        return {i: (np.frombuffer(f, FEATURE_DTYPE), np.frombuffer(r, FEATURE_DTYPE)) for i, f, r in rows}

    def dataset_done(self) -> set[tuple[str, str]]:
        return {(b, m) for b, m in self.con.execute("SELECT bucket, metric FROM dataset_metrics")}

    def commit_dataset(self, rows: Iterable[tuple[str, str, float, int]]) -> None:
        with self.con:
            self.con.executemany("INSERT OR REPLACE INTO dataset_metrics VALUES (?,?,?,?)", list(rows))


def read_frames(path: str | Path) -> dict[str, pd.DataFrame]:
    """The three tables of a results database (read-only, checked), sorted by key."""
    with read_only(path, EvalStore.TABLES, "evaluation results database") as con:
        return {
            "images": pd.read_sql_query("SELECT * FROM images ORDER BY image", con),
            "metrics": pd.read_sql_query("SELECT * FROM metrics ORDER BY image, metric", con),
            "dataset_metrics": pd.read_sql_query("SELECT * FROM dataset_metrics ORDER BY bucket, metric", con),
        }


__all__ = ["EvalStore", "read_frames", "SCHEMA"]
