"""What the command modules print: one console pair, progress and status that suit a terminal or a log.

The library reports progress through plain callbacks ``progress(done, total)`` and log lines
through ``log(message)``; only the command modules (``*/commands.py``) import this module and
rich. On a terminal, progress is a rich bar; otherwise (a pipe, a file, a CI log) it is plain
lines with the rate and an ETA, at most one every :data:`PLAIN_EVERY_S` seconds, so a log of a
long run stays readable.
"""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator

from rich.console import Console

#: stdout (results, tables, paths) and stderr (progress, notes); soft wrap keeps a message on one
#: copyable line, tables still fit the width
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

#: seconds between two plain progress lines
PLAIN_EVERY_S = 10.0

Progress = Callable[[int, int], None]


def note(message: str) -> None:
    """One line on stderr, printed as is (no rich markup: paths may hold brackets)."""
    err.print(message, markup=False, highlight=False)


def duration(seconds: float) -> str:
    """``75`` -> ``1 min 15 s``; ``4000`` -> ``1 h 07 min``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


class PlainProgress:
    """Progress as plain lines: ``what: done/total unit (p %), elapsed, ETA``; at most one per ``every`` s."""

    def __init__(self, what: str, unit: str, *, every: float = PLAIN_EVERY_S, write: Callable[[str], None] = note,
                 clock: Callable[[], float] = time.monotonic):
        self.what, self.unit, self.every, self.write, self.clock = what, unit, every, write, clock
        self.t0 = clock()
        self.start_done: int | None = None
        self.t_rate = self.t0
        self.last_print = -float("inf")
        self.last: tuple[int, int] | None = None

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if self.start_done is None:
            # the rate counts from the first report: work resumed from an earlier run, and loading or
            # scoring before it, say nothing about the time per item
            self.start_done, self.t_rate = done, now
        self.last = (done, total)
        if done >= total or now - self.last_print >= self.every:
            self.last_print = now
            self.write(self.line(done, total, now))

    def line(self, done: int, total: int, now: float) -> str:
        elapsed = now - self.t0
        text = f"{self.what}: {done}/{total} {self.unit}"
        if total:
            text += f" ({100 * done / total:.1f} %)"
        text += f", {duration(elapsed)} elapsed"
        fresh, spent = done - (self.start_done or 0), now - self.t_rate
        if 0 < done < total and fresh > 0 and spent > 0:
            text += f", ETA {duration((total - done) * spent / fresh)}"
        return text


@contextlib.contextmanager
def progress(what: str, unit: str) -> Iterator[Progress]:
    """A ``progress(done, total)`` callback: a rich bar on a terminal, plain lines with an ETA otherwise."""
    if not err.is_terminal:
        yield PlainProgress(what, unit)
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Bar(*columns, console=err, transient=False) as bar:
        task = bar.add_task(what, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner while something loads, on a terminal (a log gets nothing: an error there stays one line)."""
    if not err.is_terminal:
        yield
        return
    with err.status(message, spinner="dots"):
        yield


def run_with_progress(job, what: str, unit: str, out_dir) -> object:
    """``job.run()`` with ``job.progress`` reporting to :func:`progress`; Ctrl-C says what is kept and exits 130."""
    import typer

    with progress(what, unit) as job.progress:
        try:
            return job.run()
        except KeyboardInterrupt:
            note(f"interrupted: what was finished is saved in {out_dir}; run the same command to resume")
            raise typer.Exit(130)
