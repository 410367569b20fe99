"""Private helpers shared by the image modules: the internal "unreadable" error and one-line messages."""

from __future__ import annotations

import numpy as np
from PIL import UnidentifiedImageError

from ..errors import InpaintlabError


class _Unreadable(Exception):
    """Internal: a file could not be decoded; ``reason`` is the short user-facing cause."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _one_line(text: str) -> str:
    """Put ``text`` on one line (error messages are printed as one line)."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _reason(exc: BaseException) -> str:
    """A short, one-line cause for an exception raised while reading or writing a file."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "it is a folder, not a file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image file (or a format Pillow cannot read)"
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        text = exc.strerror  # the path is already in our message
    return _one_line(text or type(exc).__name__)[:200]


def _check_size(size: int, what: str = "size") -> int:
    """Validate an output side length: a positive integer."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
        raise InpaintlabError(f"{what} must be a positive integer, got {size!r}")
    return int(size)
