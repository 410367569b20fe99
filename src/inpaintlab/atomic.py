"""Atomic file writes: readers see the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from .errors import InpaintlabError


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it, then rename it into place.

    A failure (or a kill) leaves any previous file intact and no temporary file behind (a kill
    may leave a hidden ``.inpaintlab-*.tmp``, never a partial ``name``). The temporary name is
    short, so any name the file system accepts for ``path`` works. A destination that is a
    folder, or a folder without write permission, is one :class:`~inpaintlab.errors.InpaintlabError` line.
    """
    path = Path(path)
    if path.is_dir():
        raise InpaintlabError(f"cannot write {path}: it is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".inpaintlab-", suffix=".tmp", dir=path.parent)
    except PermissionError:
        raise InpaintlabError(f"cannot write {path}: permission denied in {path.parent}") from None
    except (FileExistsError, NotADirectoryError):
        raise InpaintlabError(f"cannot write {path}: a parent of it is a file") from None
    # mkstemp makes 0600 files; give the permissions an ordinary new file would get.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
