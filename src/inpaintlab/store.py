"""The SQLite store every run folder shares (RIP runs, evaluations): opening, writing, reading back.

- Writing: WAL with ``synchronous=NORMAL``, so a killed process loses at most its open
  transaction and each commit stays cheap; closing switches back to a single self-contained file.
- Reading: :func:`read_tables` opens read-only and checks that the file is an SQLite database
  holding the tables asked for, so a truncated, empty, corrupted or foreign ``results.sqlite``
  is one line naming the file and what is wrong, never a traceback.
- A full disk (``database or disk is full``, ``ENOSPC``) is :class:`DiskFullError`: what was
  committed stays, and the same command resumes once space is freed.
"""

from __future__ import annotations

import errno
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import InpaintlabError

SQLITE_HEADER = b"SQLite format 3\x00"


class BadStoreError(InpaintlabError):
    """A results database that is missing, damaged or not one of ours."""


class DiskFullError(InpaintlabError):
    """The disk filled up during a run; what was committed is kept."""


class SqliteStore:
    """A run's ``results.sqlite``: subclasses give :attr:`SCHEMA` and their reads and commits."""

    SCHEMA: str = ""

    def __init__(self, path: str | Path, *, threaded: bool = False):
        self.path = Path(path)
        if self.path.exists():
            check_database(self.path, ())
        try:
            # ``threaded``: one background writer thread commits; the owner only reads before it starts.
            self.con = sqlite3.connect(self.path, check_same_thread=not threaded)
            self.con.execute("PRAGMA journal_mode=WAL")
            self.con.execute("PRAGMA synchronous=NORMAL")
            self.con.executescript(self.SCHEMA)
            self.con.commit()
        except sqlite3.DatabaseError as e:
            raise store_error(self.path, e) from None

    def close(self) -> None:
        try:
            self.con.execute("PRAGMA journal_mode=DELETE")  # one self-contained file for readers and copies
        except sqlite3.DatabaseError:
            pass  # a full disk can refuse the checkpoint; the WAL file still holds every commit
        self.con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the database's quota) is full."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc)


def store_error(path: Path, exc: BaseException) -> InpaintlabError:
    """One line for an SQLite failure on ``path``."""
    if is_disk_full(exc):
        return DiskFullError(f"the disk is full: cannot write {path}")
    return BadStoreError(f"{path} is not a readable results database ({str(exc).strip() or type(exc).__name__}); "
                         f"move it away to start over, or restore it from a copy")


def check_database(path: Path, tables: tuple[str, ...], what: str = "results database") -> None:
    """Raise :class:`BadStoreError` unless ``path`` is an SQLite file holding ``tables``."""
    if not path.is_file():
        raise BadStoreError(f"{path} does not exist or is not a file")
    size = path.stat().st_size
    if size == 0:
        raise BadStoreError(f"{path} is empty (0 bytes), not a {what}; move it away to start over")
    with open(path, "rb") as f:
        header = f.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise BadStoreError(f"{path} is not an SQLite {what} (its first bytes are not SQLite's header)")
    if not tables:
        return
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        found = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        con.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as e:
        raise BadStoreError(f"{path} is damaged ({e}); restore it from a copy, or move it away to start over") from None
    finally:
        con.close()
    missing = [t for t in tables if t not in found]
    if missing:
        raise BadStoreError(f"{path} is an SQLite file but not an inpaintlab {what} (no table "
                            f"{', '.join(missing)}); point at the run folder that wrote it")


@contextmanager
def read_only(path: str | Path, tables: tuple[str, ...], what: str = "results database") -> Iterator[sqlite3.Connection]:
    """A read-only connection to a checked database; read errors become one :class:`BadStoreError` line."""
    path = Path(path)
    check_database(path, tables, what)
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield con
    except sqlite3.DatabaseError as e:
        raise BadStoreError(f"{path} is damaged ({e}); restore it from a copy, or move it away to start over") from None
    finally:
        con.close()


@contextmanager
def disk_full_is_one_line(out: Path, what: str) -> Iterator[None]:
    """Turn a full disk during a run into one line saying what is kept and how to resume."""
    try:
        yield
    except DiskFullError as e:
        raise DiskFullError(f"{e}; everything committed before is kept in {out}: free some space and run the same "
                            f"command again to resume the {what}") from None
    except (OSError, sqlite3.OperationalError, InpaintlabError) as e:
        if not (is_disk_full(e) or (e.__cause__ is not None and is_disk_full(e.__cause__))):
            raise
        e = e.__cause__ if not is_disk_full(e) else e
        raise DiskFullError(f"the disk is full ({getattr(e, 'strerror', None) or e}); everything committed before is "
                            f"kept in {out}: free some space and run the same command again to resume the {what}") from None
