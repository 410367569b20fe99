"""Mask generators: ratio ranges over 1,000 seeds, stroke widths, the LaMa mixture and presets in use."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inpaintlab.errors import InpaintlabError
from inpaintlab.masks import (LAMA_PRESETS, HoleRatioError, MaskParamError, grid_cell, make_generator, make_rng,
                              with_hole_ratio)
from inpaintlab.masks.lama import IrregularParams, irregular_strokes

from ._shared import mean_stroke_width, ratios


# -- the generic contract (every registered kind: tests/test_registries.py) ----------------------

def test_grid_cell_still_importable_and_one_cell():
    hole = grid_cell(32)(128, 128, make_rng(0, 0))
    assert hole.sum() == 32 * 32
    ys, xs = np.nonzero(hole)
    assert ys.min() % 32 == 0 and xs.min() % 32 == 0 and ys.max() - ys.min() == 31


def test_with_hole_ratio_resamples_into_range_and_errors_clearly():
    def half_or_tenth(h, w, rng):
        hole = np.zeros((h, w), np.float32)
        hole[: (h // 2 if rng.random() < 0.5 else h // 10)] = 1
        return hole

    r = ratios(with_hole_ratio(half_or_tenth, 0.4, 0.6), 40, 40, range(200))
    assert np.all(r == 0.5)
    with pytest.raises(HoleRatioError) as err:
        with_hole_ratio(half_or_tenth, 0.7, 0.9, max_tries=20)(40, 40, make_rng(0, 0))
    assert "\n" not in str(err.value) and "0.1" in str(err.value) and "20 tries" in str(err.value)
    with pytest.raises(MaskParamError):
        with_hole_ratio(half_or_tenth, 0.5, 0.5)


def test_unknown_kind_or_param_is_one_line_error():
    with pytest.raises(InpaintlabError, match="choose one of"):
        make_generator("nope")
    with pytest.raises(MaskParamError):
        make_generator("lama-thin", size=300)


# -- LaMa ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["lama-thin", "lama-medium", "lama-thick"])
def test_lama_evaluation_masks_never_exceed_half_the_image(kind):
    side = 128 if kind == "lama-thin" else 64  # 4-50 strokes of the thin preset fill a 64 px image
    r = ratios(make_generator(kind, size=256), side, side)
    assert np.all(r > 0) and np.all(r <= 0.5)
    if kind == "lama-thick":
        # the cap does something: uncapped, thick strokes at this size often cover more than half
        uncapped = ratios(make_generator(kind, size=256, max_hole_ratio=None), 64, 64, range(300))
        assert (uncapped > 0.5).mean() > 0.05


def test_lama_size_param_picks_the_512_preset():
    # the 512 thick preset draws strokes up to 255 px wide, the 256 one up to 105
    w256 = np.mean([mean_stroke_width(irregular_strokes(512, 512, make_rng(1, s), LAMA_PRESETS[("thick", 256)].irregular))
                    for s in range(30)])
    w512 = np.mean([mean_stroke_width(irregular_strokes(512, 512, make_rng(1, s), LAMA_PRESETS[("thick", 512)].irregular))
                    for s in range(30)])
    assert w512 > 1.5 * w256
    a = make_generator("lama-thin")(512, 512, make_rng(0, 0))
    b = make_generator("lama-thin", size=512)(512, 512, make_rng(0, 0))
    np.testing.assert_array_equal(a, b)


def test_stroke_width_measure_on_a_known_line():
    # a stadium drawn in NumPy: pixels within 7.5 px of a slanted segment, i.e. a 15 px wide stroke
    yy, xx = np.mgrid[0:200, 0:200].astype(float)
    p0, p1 = np.array([10.0, 100.0]), np.array([190.0, 120.0])
    d = p1 - p0
    t = np.clip(((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / (d @ d), 0, 1)
    dist = np.hypot(xx - p0[0] - t * d[0], yy - p0[1] - t * d[1])
    hole = (dist < 7.5).astype(np.float32)
    assert abs(mean_stroke_width(hole) - 15) < 0.1 * 15  # the round caps add a little area


def test_lama_max_width_widens_strokes():
    def width(max_width):
        p = IrregularParams(max_angle=4, max_len=100, max_width=max_width, min_times=2, max_times=4)
        return np.mean([mean_stroke_width(irregular_strokes(256, 256, make_rng(2, s), p)) for s in range(40)])

    thin, thick = width(5), width(40)
    # brush width is 5 + U{0..max_width-1}: means 7 and 24.5 px
    assert 5 < thin < 11 and 17 < thick < 32


@pytest.mark.parametrize("kind,p_box", [("lama-train", 0.5), ("lama-medium", 0.3 / 1.3), ("lama-thin", 0.0)])
def test_lama_mix_frequencies(monkeypatch, kind, p_box):
    """Big-LaMa training draws strokes or boxes 50/50; medium/thick weight boxes 0.3 against strokes 1."""
    import inpaintlab.masks.lama as lama

    calls = {"box": 0, "strokes": 0}
    real_boxes, real_strokes = lama.random_boxes, lama.irregular_strokes

    def boxes(*a):
        calls["box"] += 1
        return real_boxes(*a)

    def strokes(*a):
        calls["strokes"] += 1
        return real_strokes(*a)

    monkeypatch.setattr(lama, "random_boxes", boxes)
    monkeypatch.setattr(lama, "irregular_strokes", strokes)
    n = 1500 if p_box else 200
    gen = make_generator(kind, size=256) if kind != "lama-train" else make_generator(kind)
    for s in range(n):
        gen(128, 128, make_rng(5, s))
    total = calls["box"] + calls["strokes"]  # redraws (area cap) count too: each is one mixture draw
    share = calls["box"] / total
    assert abs(share - p_box) <= 4 * math.sqrt(p_box * (1 - p_box) / total) + 1e-12


