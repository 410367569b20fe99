"""Hole-ratio buckets of the papers' tables, half-open ``[lo, hi)`` in percent of the image's pixels.

An image with ``k`` hole pixels out of ``n`` is in bucket ``[lo, hi)`` when ``lo <= 100 k / n < hi``,
decided in integers (``100 k >= lo n`` and ``100 k < hi n``) so an image exactly on an edge always
goes to the bucket above it, never to two or none. A valid mask is neither empty nor full, so
LaMa's ten bins cover every image; StrDiffusion's Table 1 uses four of the same intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..masks.buckets import STRDIFFUSION_BUCKETS


@dataclass(frozen=True)
class Bucket:
    """The half-open hole-ratio interval ``[lo, hi)`` percent."""

    lo: int
    hi: int

    @property
    def label(self) -> str:
        return f"{self.lo}-{self.hi}%"

    def contains(self, hole_pixels: int, pixels: int) -> bool:
        return 100 * hole_pixels >= self.lo * pixels and 100 * hole_pixels < self.hi * pixels


OVERALL = "all"

#: scheme -> its buckets: LaMa's 10 % bins, and the 10-20 / 20-30 / 30-40 / 40-50 % of StrDiffusion Table 1
SCHEMES: dict[str, tuple[Bucket, ...]] = {
    "lama": tuple(Bucket(lo, lo + 10) for lo in range(0, 100, 10)),
    "strdiffusion": tuple(Bucket(round(100 * lo), round(100 * hi)) for lo, hi in STRDIFFUSION_BUCKETS),
}


def all_buckets() -> list[Bucket]:
    """Every distinct interval of every scheme, sorted."""
    return sorted({b for bs in SCHEMES.values() for b in bs}, key=lambda b: (b.lo, b.hi))


def buckets_of(hole_pixels: int, pixels: int) -> list[str]:
    """Labels of the distinct intervals that hold an image with this hole."""
    return [b.label for b in all_buckets() if b.contains(hole_pixels, pixels)]


__all__ = ["Bucket", "SCHEMES", "OVERALL", "all_buckets", "buckets_of"]
