"""Seamless Borders' training masks: random outpainting borders and holes restricted to the background."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from inpaintlab.errors import InpaintlabError
from inpaintlab.masks import HoleRatioError, MaskParamError, make_generator, make_rng
from inpaintlab.masks.background import background_hole, maybe_background_hole, read_foreground


# -- outpaint-random -------------------------------------------------------------------------------

def kept_box(hole: np.ndarray) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of the kept region, checked to be exactly one filled box."""
    ys, xs = np.nonzero(hole == 0)
    top, left, h, w = ys.min(), xs.min(), ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    assert (hole[top:top + h, left:left + w] == 0).all() and (hole == 0).sum() == h * w
    return int(top), int(left), int(h), int(w)


@pytest.mark.parametrize("h,w,lo,hi", [(64, 64, 0.4, 0.8), (90, 50, 0.4, 0.8), (37, 81, 0.2, 0.5)])
def test_outpaint_random_keeps_a_centred_box_of_random_ratios(h, w, lo, hi):
    params = {} if (lo, hi) == (0.4, 0.8) else {"min_ratio": lo, "max_ratio": hi}  # the defaults are 0.4-0.8
    gen = make_generator("outpaint-random", **params)
    rh, rw = [], []
    for s in range(500):
        hole = gen(h, w, make_rng(2, s))
        assert hole.dtype == np.float32 and hole.shape == (h, w) and np.isin(hole, (0, 1)).all()
        top, left, kh, kw = kept_box(hole)
        # centred: the margins differ by at most one pixel
        assert abs(top - (h - top - kh)) <= 1 and abs(left - (w - left - kw)) <= 1
        rh.append(kh / h)
        rw.append(kw / w)
    rh, rw = np.array(rh), np.array(rw)
    for r, n in ((rh, h), (rw, w)):
        assert np.all(r >= lo - 0.5 / n) and np.all(r <= hi + 0.5 / n)  # within rounding to whole pixels
        # spread over the range (uniform), not stuck at one value
        assert r.min() < lo + 0.1 * (hi - lo) + 1 / n and r.max() > hi - 0.1 * (hi - lo) - 1 / n
        assert abs(r.mean() - (lo + hi) / 2) < 0.03
    # the height and width ratios are drawn independently
    assert abs(np.corrcoef(rh, rw)[0, 1]) < 0.15


def test_outpaint_random_is_deterministic_per_seed_and_varies_across_seeds():
    gen = make_generator("outpaint-random")
    again = make_generator("outpaint-random")
    masks = [gen(64, 96, make_rng(5, s)) for s in range(20)]
    for s in reversed(range(20)):
        np.testing.assert_array_equal(again(64, 96, make_rng(5, s)), masks[s])
    distinct = {m.tobytes() for m in masks}
    assert len(distinct) >= 15
    assert not np.array_equal(gen(64, 96, make_rng(5, 0)), gen(64, 96, make_rng(6, 0)))
    # only the generator passed in is used: same state, same mask
    a, b = np.random.default_rng(123), np.random.default_rng(123)
    np.testing.assert_array_equal(gen(50, 50, a), gen(50, 50, b))


def test_outpaint_random_fixed_ratio_matches_outpaint():
    hole = make_generator("outpaint-random", min_ratio=0.5, max_ratio=0.5)(100, 60, make_rng(0, 0))
    np.testing.assert_array_equal(hole, make_generator("outpaint", ratio=0.5)(100, 60, make_rng(0, 0)))


@pytest.mark.parametrize("params", [{"min_ratio": 0.8, "max_ratio": 0.4}, {"min_ratio": 0.0},
                                    {"max_ratio": 1.2}, {"min_ratio": 1.0, "max_ratio": 1.0},
                                    {"min_ratio": -0.1}])
def test_outpaint_random_bad_range_is_one_line(params):
    with pytest.raises(MaskParamError) as e:
        make_generator("outpaint-random", **params)
    msg = str(e.value)
    assert "\n" not in msg and "outpaint-random" in msg and "min_ratio <= max_ratio" in msg


def test_outpaint_random_in_a_hole_ratio_bucket():
    # bucket's lo/hi are hole ratios and must not reach outpaint-random as kept-side ratios
    r = [make_generator("bucket", kind="outpaint-random", lo=0.5, hi=0.7)(64, 64, make_rng(1, s)).mean()
         for s in range(100)]
    assert np.all((np.array(r) >= 0.5) & (np.array(r) < 0.7))


# -- holes restricted to the background ----------------------------------------------------------

H, W = 48, 64


def disc_foreground(h: int = H, w: int = W) -> np.ndarray:
    fg = np.zeros((h, w), np.uint8)
    cv2.circle(fg, (w // 2, h // 2), min(h, w) // 3, 1, -1)
    return fg.astype(bool)


class Scripted:
    """A draw function that returns the given holes in turn and records its calls."""

    def __init__(self, *holes: np.ndarray):
        self.holes = list(holes)
        self.calls: list[tuple[int, int]] = []

    def __call__(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        self.calls.append((height, width))
        return self.holes[min(len(self.calls), len(self.holes)) - 1]


def box(top: int, left: int, h: int, w: int) -> np.ndarray:
    hole = np.zeros((H, W), np.float32)
    hole[top:top + h, left:left + w] = 1
    return hole


@pytest.mark.parametrize("kind,params", [("comod", {"lo": 0.3, "hi": 0.7}), ("lama-medium", {"size": 256}),
                                         ("rectangle", {})])
def test_background_hole_never_touches_the_foreground(kind, params):
    fg = disc_foreground()
    draw = make_generator(kind, **params)
    ratios = []
    for s in range(150):
        hole = background_hole(draw, fg, make_rng(4, s), lo=0.1, hi=0.4)
        assert hole.dtype == np.float32 and hole.shape == (H, W) and np.isin(hole, (0, 1)).all()
        assert not hole[fg].any()
        ratios.append(hole.mean())
    ratios = np.array(ratios)
    assert np.all((ratios > 0.1) & (ratios <= 0.4))
    assert ratios.max() - ratios.min() > 0.1  # redrawn into the range, not collapsed onto a value


def test_background_hole_is_the_draw_minus_the_foreground_and_deterministic():
    fg = disc_foreground()
    draw = make_generator("rectangle", min_area=0.3, max_area=0.6)
    for s in range(30):
        hole = background_hole(draw, fg, make_rng(9, s))  # default range: any non-empty hole
        raw = draw(H, W, make_rng(9, s))
        if (raw * ~fg).any():  # accepted on the first draw: exactly raw AND NOT foreground
            np.testing.assert_array_equal(hole, raw * ~fg)
        np.testing.assert_array_equal(hole, background_hole(draw, fg, make_rng(9, s)))
    assert not np.array_equal(background_hole(draw, fg, make_rng(9, 0)), background_hole(draw, fg, make_rng(9, 1)))
    # a 0/1 numeric foreground is the same as a boolean one
    np.testing.assert_array_equal(background_hole(draw, fg.astype(np.uint8), make_rng(9, 3)),
                                  background_hole(draw, fg, make_rng(9, 3)))


def test_background_hole_redraws_until_the_ratio_is_in_range():
    fg = np.zeros((H, W), bool)
    fg[:, :W // 2] = True  # left half is foreground
    inside = box(0, 0, H, W // 2)  # entirely foreground: restricted hole empty
    too_big = box(0, 0, H, W)  # restricted: the right half, ratio 0.5
    good = box(0, W // 2, H // 2, W // 4)  # background only, ratio 0.0625 * 2 = 0.125
    draw = Scripted(inside, too_big, good)
    hole = background_hole(draw, fg, make_rng(0, 0), lo=0.05, hi=0.3)
    np.testing.assert_array_equal(hole, good)
    assert draw.calls == [(H, W)] * 3
    # hi is inclusive, lo exclusive: (lo, hi]
    assert background_hole(Scripted(too_big), fg, make_rng(0, 0), lo=0.4, hi=0.5).mean() == 0.5
    with pytest.raises(HoleRatioError):
        background_hole(Scripted(too_big), fg, make_rng(0, 0), lo=0.5, hi=0.9, max_tries=3)


def test_background_hole_error_after_max_tries():
    fg = np.zeros((H, W), bool)
    fg[8:40, 8:56] = True
    draw = Scripted(box(10, 10, 20, 20))  # always inside the foreground
    with pytest.raises(HoleRatioError) as e:
        background_hole(draw, fg, make_rng(0, 0), max_tries=7)
    msg = str(e.value)
    assert len(draw.calls) == 7
    assert "\n" not in msg and "7 tries" in msg and "outside the foreground (50% of the image)" in msg
    assert "0.000-0.000" in msg


@pytest.mark.parametrize("call,match", [
    (lambda d, fg: background_hole(d, fg, make_rng(0, 0), lo=0.5, hi=0.2), "range"),
    (lambda d, fg: background_hole(d, fg, make_rng(0, 0), max_tries=0), "max_tries"),
    (lambda d, fg: background_hole(d, fg[None], make_rng(0, 0)), "HxW"),
    (lambda d, fg: background_hole(lambda h, w, rng: np.ones((h + 1, w), np.float32), fg, make_rng(0, 0)),
     "the mask drawn has shape"),
    (lambda d, fg: maybe_background_hole(d, H + 2, W, make_rng(0, 0), fg), "but the image is"),
])
def test_background_hole_bad_input_is_one_line(call, match):
    with pytest.raises(MaskParamError) as e:
        call(make_generator("rectangle"), disc_foreground())
    assert match in str(e.value) and "\n" not in str(e.value)


def test_without_a_foreground_the_hole_is_unrestricted():
    draw = make_generator("rectangle")
    for s in range(10):
        np.testing.assert_array_equal(maybe_background_hole(draw, H, W, make_rng(1, s)), draw(H, W, make_rng(1, s)))
    fg = disc_foreground()
    np.testing.assert_array_equal(maybe_background_hole(draw, H, W, make_rng(1, 0), fg, lo=0.01),
                                  background_hole(draw, fg, make_rng(1, 0), lo=0.01))


# -- foreground files ------------------------------------------------------------------------------

def test_read_foreground_resizes_nearest_and_reads_every_depth(tmp_path):
    fg = np.zeros((24, 32), bool)
    fg[6:18, 8:20] = True
    Image.fromarray(fg.astype(np.uint8) * 255).save(tmp_path / "white.png")
    cv2.imwrite(str(tmp_path / "ones.png"), fg.astype(np.uint8))  # 0/1 in 8 bits
    cv2.imwrite(str(tmp_path / "deep.png"), fg.astype(np.uint16) * 65535)
    Image.fromarray(np.repeat(fg[..., None].astype(np.uint8) * 255, 3, 2)).save(tmp_path / "rgb.png")
    Image.fromarray(fg).save(tmp_path / "bits.png")  # mode "1"
    for name in ("white.png", "ones.png", "deep.png", "rgb.png", "bits.png"):
        np.testing.assert_array_equal(read_foreground(tmp_path / name, 24, 32), fg, err_msg=name)
        # any size: nearest-neighbour to the image's (here twice as large, and a non-integer factor)
        big = read_foreground(tmp_path / name, 48, 64)
        assert big.dtype == bool and big.shape == (48, 64)
        np.testing.assert_array_equal(big, np.kron(fg, np.ones((2, 2), bool)), err_msg=name)
        odd = read_foreground(tmp_path / name, 30, 45)
        # sampled at pixel centres, as PIL's NEAREST (the grid of the image's own resizes)
        pil = np.asarray(Image.fromarray(fg.astype(np.uint8)).resize((45, 30), Image.NEAREST)) > 0
        np.testing.assert_array_equal(odd, pil)


def test_read_foreground_thresholds_a_saliency_map_at_half(tmp_path):
    sal = np.tile(np.arange(256, dtype=np.uint8), (4, 1))
    Image.fromarray(sal).save(tmp_path / "sal.png")
    fg = read_foreground(tmp_path / "sal.png", 4, 256)
    np.testing.assert_array_equal(fg, sal >= 127.5)
    # and the result restricts a hole
    hole = background_hole(lambda h, w, rng: np.ones((h, w), np.float32), fg, make_rng(0, 0))
    assert hole[:, :128].all() and not hole[:, 128:].any()


@pytest.mark.parametrize("make,match", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(b"not a png at all"), "not an image file"),
    (lambda p: p.mkdir(), "folder"),
])
def test_read_foreground_unreadable_file_is_one_line(tmp_path, make, match):
    path = tmp_path / "fg.png"
    make(path)
    with pytest.raises(InpaintlabError) as e:
        read_foreground(path, 16, 16)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and "foreground" in msg and match in msg, msg


def test_outpaint_random_from_the_command_line(tmp_path):
    import json

    from typer.testing import CliRunner

    from inpaintlab.masks.commands import app

    args = ["generate", "--kind", "outpaint-random", "--count", 4, "--size", 64, "--seed", 1,
            "--param", "min_ratio=0.5", "--out", tmp_path]
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["kind"] == "outpaint-random" and manifest["params"] == {"min_ratio": 0.5, "max_ratio": 0.8}
    # kept area (0.5-0.8)^2 of the image: hole ratio within 1 - 0.8^2 .. 1 - 0.5^2, up to pixel rounding
    assert all(0.36 - 0.03 < m["hole_ratio"] < 0.75 + 0.03 for m in manifest["masks"])
    assert len({m["hole_ratio"] for m in manifest["masks"]}) > 1
