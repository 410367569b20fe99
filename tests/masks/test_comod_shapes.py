"""Co-Mod-GAN/MAT RandomMask, hole-ratio buckets, rectangles and outpainting."""

from __future__ import annotations

import numpy as np
import pytest

from inpaintlab.masks import STRDIFFUSION_BUCKETS, HoleRatioError, make_generator, make_rng
from inpaintlab.masks.comod import BrushParams, random_brush

from ._shared import mean_stroke_width, ratios


# -- Co-Mod-GAN / MAT ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind,lo,hi", [("comod", 0.5, 0.9), ("mat-512-large", 0.1, 0.5),
                                        ("mat-512-small", 0.2, 0.8), ("mat-256", 0.3, 0.7)])
def test_random_mask_hole_ratio_in_requested_range(kind, lo, hi):
    r = ratios(make_generator(kind, lo=lo, hi=hi), 128, 128)
    assert np.all(r > lo) and np.all(r < hi)
    # the range is reached by redrawing, not by collapsing onto one value
    assert r.max() - r.min() > 0.5 * (hi - lo)


def test_comod_max_width_widens_brush_strokes():
    def width(lo, hi):
        p = BrushParams(min_width=lo, max_width=hi)
        return np.mean([mean_stroke_width(random_brush(256, 256, make_rng(4, s), 4, p)) for s in range(60)
                        if random_brush(256, 256, make_rng(4, s), 4, p).any()])

    thin, thick = width(4, 8), width(24, 32)
    assert thin < 10 and thick > 2 * thin


# -- buckets, rectangles, outpaint -----------------------------------------------------------------

@pytest.mark.parametrize("lo,hi", STRDIFFUSION_BUCKETS)
def test_strdiffusion_buckets(lo, hi):
    r = ratios(make_generator("bucket", kind="mat-256", lo=lo, hi=hi), 96, 96)
    assert np.all(r >= lo) and np.all(r < hi)


def test_bucket_of_any_kind_and_impossible_ranges():
    r = ratios(make_generator("bucket", kind="lama-medium", lo=0.2, hi=0.3, size=256), 64, 64, range(300))
    assert np.all((r >= 0.2) & (r < 0.3))
    # a tiny range makes the Co-Mod/MAT shape counts zero (coef = lo + hi), as in the reference: clear error
    with pytest.raises(HoleRatioError, match="ranged 0.000-0.000"):
        make_generator("mat-512-small", lo=0.1, hi=0.3, max_tries=10)(64, 64, make_rng(0, 0))
    with pytest.raises(HoleRatioError):
        make_generator("bucket", kind="outpaint", lo=0.1, hi=0.2, max_tries=5)(64, 64, make_rng(0, 0))


@pytest.mark.parametrize("kind", ["rectangle", "complement-rectangle"])
def test_rectangles_are_one_box_or_its_complement(kind):
    gen = make_generator(kind, min_area=0.2, max_area=0.4)
    r = []
    for s in range(1000):
        hole = gen(64, 80, make_rng(1, s))
        box = hole if kind == "rectangle" else 1 - hole
        ys, xs = np.nonzero(box)
        assert box[ys.min():ys.max() + 1, xs.min():xs.max() + 1].all()  # exactly one filled box
        r.append(hole.mean())
    r = np.array(r)
    assert np.all(np.abs(r - np.clip(r, 0.2, 0.4)) < 0.02)  # within rounding of one pixel row
    assert abs(r.mean() - 0.3) < 0.01


@pytest.mark.parametrize("h,w,ratio,ratio_w", [(64, 64, 0.5, None), (100, 60, 0.3, 0.7), (33, 47, 0.61, None)])
def test_outpaint_keeps_exactly_the_centred_rectangle(h, w, ratio, ratio_w):
    hole = make_generator("outpaint", ratio=ratio, ratio_w=ratio_w)(h, w, make_rng(0, 0))
    kh, kw = round(h * ratio), round(w * (ratio if ratio_w is None else ratio_w))
    keep = np.zeros((h, w), bool)
    top, left = (h - kh) // 2, (w - kw) // 2
    keep[top:top + kh, left:left + kw] = True
    np.testing.assert_array_equal(hole == 0, keep)
    # centred: the margins differ by at most one pixel
    assert abs(top - (h - top - kh)) <= 1 and abs(left - (w - left - kw)) <= 1
