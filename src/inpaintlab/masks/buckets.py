"""Hole-ratio buckets: any registered generator constrained to a ratio range (StrDiffusion Table 1)."""

from __future__ import annotations

from .base import MASKS, MaskGenerator, MaskParamError, check, check_range, factory_params, make_generator, with_hole_ratio

#: StrDiffusion (Liu et al. 2024) Table 1 evaluates in hole-ratio bins of 10-20, 20-30, 30-40, 40-50 %.
STRDIFFUSION_BUCKETS: tuple[tuple[float, float], ...] = ((0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5))


@MASKS.register("bucket")
def bucket(kind: str = "comod", lo: float = 0.1, hi: float = 0.2, max_tries: int = 1000, **params) -> MaskGenerator:
    """Masks of `kind` redrawn until lo <= hole ratio < hi (StrDiffusion bins 0.1-0.2 ... 0.4-0.5); other params go to `kind`.

    Kinds with their own ``lo``/``hi`` (the Co-Mod/MAT family, misato) also get the range, so they
    draw fewer shapes for small ranges as their reference does.
    """
    check(kind != "bucket", "bucket of a bucket: give the inner kind directly")
    check_range(float(lo), float(hi))
    inner = dict(params)
    known = factory_params(kind)
    if "lo" in known and "hi" in known:
        inner.setdefault("lo", float(lo))
        inner.setdefault("hi", float(hi))
    if "max_tries" in known:
        inner.setdefault("max_tries", int(max_tries))
    try:
        inner_generator = make_generator(kind, **inner)
    except MaskParamError as e:  # say whose parameter it was: bucket passes the ones it does not know on
        raise MaskParamError(f"bucket passes parameters other than kind, lo, hi, max_tries to {kind!r}: {e}") from None
    return with_hole_ratio(inner_generator, float(lo), float(hi), int(max_tries))
