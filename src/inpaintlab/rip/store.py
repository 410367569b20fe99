"""The SQLite store of a RIP run: metrics, chosen cells, kept images and resumable state.

Everything a checkpoint produces is committed in one transaction together with the
trajectory's state, so a process killed at any moment resumes from its last checkpoint and
writes exactly the rows an uninterrupted run writes.
"""

from __future__ import annotations

import io
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

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


class RipStore:
    """A run's ``results.sqlite``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        # One background writer thread commits; the owner only reads before it starts.
        self.con = sqlite3.connect(self.path, check_same_thread=False)
        # WAL with synchronous=NORMAL survives a killed process (only power loss can drop the
        # last transactions), and keeps each checkpoint's commit cheap.
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=NORMAL")
        self.con.executescript(SCHEMA)
        self.con.commit()

    def close(self) -> None:
        # Leave a single self-contained file behind (no -wal/-shm) for readers and copies.
        self.con.execute("PRAGMA journal_mode=DELETE")
        self.con.close()

    def __enter__(self) -> "RipStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

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


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """Open an existing results database for reading."""
    return sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
