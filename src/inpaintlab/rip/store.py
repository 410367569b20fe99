"""The SQLite store of a RIP run: metrics, chosen cells, kept images and resumable state.

Everything a checkpoint produces is committed in one transaction together with the
trajectory's state, so a process killed at any moment resumes from its last checkpoint and
writes exactly the rows an uninterrupted run writes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ..store import SqliteStore, read_only

SCHEMA = """
CREATE TABLE IF NOT EXISTS metrics (
    image TEXT NOT NULL, mask_size INTEGER NOT NULL, seed INTEGER NOT NULL,
    iteration INTEGER NOT NULL, percent REAL NOT NULL, metric TEXT NOT NULL, value REAL,
    PRIMARY KEY (image, mask_size, seed, iteration, metric)
);
CREATE TABLE IF NOT EXISTS cells (
    image TEXT NOT NULL, mask_size INTEGER NOT NULL, seed INTEGER NOT NULL,
    iteration INTEGER NOT NULL, cell INTEGER NOT NULL, row INTEGER NOT NULL, col INTEGER NOT NULL,
    kept_drift REAL,
    PRIMARY KEY (image, mask_size, seed, iteration)
);
CREATE TABLE IF NOT EXISTS kept (
    image TEXT NOT NULL, mask_size INTEGER NOT NULL, seed INTEGER NOT NULL,
    iteration INTEGER NOT NULL, percent REAL NOT NULL, path TEXT NOT NULL,
    PRIMARY KEY (image, mask_size, seed, iteration)
);
CREATE TABLE IF NOT EXISTS progress (
    image TEXT NOT NULL, mask_size INTEGER NOT NULL, seed INTEGER NOT NULL,
    iteration INTEGER NOT NULL, state BLOB NOT NULL,
    PRIMARY KEY (image, mask_size, seed)
);
"""

Key = tuple[str, int, int]  # (image, mask_size, seed)


@dataclass
class Checkpoint:
    """Everything one trajectory commits at one checkpoint."""

    key: Key
    iteration: int
    percent: float
    values: dict[str, float]
    cells: list[tuple[int, int, int, int, float]]  # (iteration, cell, row, col, kept_drift)
    state: np.ndarray
    kept_path: str | None = None


def encode_state(state: np.ndarray) -> bytes:
    """Lossless bytes of a trajectory's current image (``.npy`` format)."""
    buf = io.BytesIO()
    np.save(buf, state, allow_pickle=False)
    return buf.getvalue()


def decode_state(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(blob), allow_pickle=False)


class RipStore(SqliteStore):
    """A run's ``results.sqlite``; one background writer thread commits (see :class:`~inpaintlab.store.SqliteStore`)."""

    SCHEMA = SCHEMA
    TABLES = ("metrics", "cells", "kept", "progress")

    def __init__(self, path: str | Path):
        super().__init__(path, threaded=True)

    def progress(self) -> dict[Key, tuple[int, np.ndarray]]:
        """The last committed iteration and state of every trajectory that has one."""
        rows = self.con.execute("SELECT image, mask_size, seed, iteration, state FROM progress")
        return {(im, ms, sd): (it, decode_state(st)) for im, ms, sd, it, st in rows}

    def commit(self, checkpoints: Iterable[Checkpoint]) -> None:
        """Write the checkpoints' rows and states in one transaction."""
        with self.con:
            for cp in checkpoints:
                im, ms, sd = cp.key
                self.con.executemany(
                    "INSERT OR REPLACE INTO metrics VALUES (?,?,?,?,?,?,?)",
                    [(im, ms, sd, cp.iteration, cp.percent, m, float(v)) for m, v in cp.values.items()])
                self.con.executemany(
                    "INSERT OR REPLACE INTO cells VALUES (?,?,?,?,?,?,?,?)",
                    [(im, ms, sd, *c) for c in cp.cells])
                if cp.kept_path is not None:
                    self.con.execute("INSERT OR REPLACE INTO kept VALUES (?,?,?,?,?,?)",
                                     (im, ms, sd, cp.iteration, cp.percent, cp.kept_path))
                self.con.execute("INSERT OR REPLACE INTO progress VALUES (?,?,?,?,?)",
                                 (im, ms, sd, cp.iteration, encode_state(cp.state)))

    def frame(self, table: str) -> pd.DataFrame:
        """A whole table as a DataFrame (sorted by its key for stable output)."""
        if table not in ("metrics", "cells", "kept"):
            raise ValueError(f"unknown table {table!r}")
        order = "image, mask_size, seed, iteration" + (", metric" if table == "metrics" else "")
        return pd.read_sql_query(f"SELECT * FROM {table} ORDER BY {order}", self.con)


def open_readonly(path: str | Path):
    """A checked read-only connection to a RIP run's database (a context manager)."""
    return read_only(path, RipStore.TABLES, "RIP results database")
