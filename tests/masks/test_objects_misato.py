"""Object-shape and convex-hull masks from a synthetic folder; the MISATO mixture's frequencies."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import binary_dilation
from skimage.morphology import convex_hull_image, disk

from inpaintlab.masks import MaskParamError, make_generator, make_rng
from inpaintlab.masks.objects import expand_convex_hull, load_objects


@pytest.fixture
def object_dir(tmp_path):
    """Four non-convex objects (an L, a ring, a cross, a crescent) as 0/255 and 0/1 PNGs, plus an empty file."""
    d = tmp_path / "objects"
    d.mkdir()
    shapes = []
    m = np.zeros((80, 100), np.uint8); m[10:70, 10:30] = 255; m[50:70, 10:80] = 255; shapes.append(m)
    m = np.zeros((80, 80), np.uint8); cv2.circle(m, (40, 40), 30, 255, 10); shapes.append(m)
    m = np.zeros((60, 90), np.uint8); m[25:35, 10:80] = 1; m[5:55, 40:50] = 1; shapes.append(m)
    m = np.zeros((90, 90), np.uint8); cv2.circle(m, (45, 45), 35, 255, -1); cv2.circle(m, (60, 45), 30, 0, -1); shapes.append(m)
    for i, m in enumerate(shapes):
        Image.fromarray(m).save(d / f"obj{i}.png")
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(d / "empty.png")
    return d


def test_loads_every_non_empty_object(object_dir):
    objs = load_objects(object_dir)
    assert [o.source for o in objs] == ["obj0.png", "obj1.png", "obj2.png", "obj3.png"]
    assert objs[0].crop.shape == (60, 70) and objs[2].crop.shape == (50, 70)
    with pytest.raises(MaskParamError, match="does not exist"):
        load_objects(object_dir / "nope")
    with pytest.raises(MaskParamError, match="needs --param folder"):
        make_generator("object")


def test_object_masks_are_scaled_and_shifted_objects(object_dir):
    objs = load_objects(object_dir)
    gen = make_generator("object", folder=str(object_dir))
    areas = {i: [] for i in range(len(objs))}
    tops = []
    for s in range(400):
        hole = gen(128, 128, make_rng(1, s))
        np.testing.assert_array_equal(hole, make_generator("object", folder=str(object_dir))(128, 128, make_rng(1, s)))
        # which object: the one whose (area-fitted) crop aspect matches the hole's bounding box
        ys, xs = np.nonzero(hole)
        tops.append(ys.min())
        h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        i = int(np.argmin([abs(math.log((h / w) / (o.crop.shape[0] / o.crop.shape[1]))) for o in objs]))
        fit = math.sqrt(128 * 128 / (objs[i].frame[0] * objs[i].frame[1]))
        areas[i].append(hole.sum() / (objs[i].crop.sum() * fit * fit))
    for i, a in areas.items():
        assert len(a) > 50  # each object drawn
        a = np.array(a)
        # area scales with the square of a U(0.75, 1.25) factor (nearest-neighbour rounding aside)
        assert a.min() > 0.75 ** 2 * 0.85 and a.max() < 1.25 ** 2 * 1.15
        assert a.max() / a.min() > 2.0
    assert np.ptp(tops) > 40  # shifted around the image


def test_convex_hull_contains_the_dilated_hull_of_the_object(object_dir):
    objects = make_generator("object", folder=str(object_dir))
    hulls = make_generator("convex-hull", folder=str(object_dir), dilation=5)
    for s in range(30):
        obj = objects(128, 128, make_rng(2, s))
        hole = hulls(128, 128, make_rng(2, s))  # same draws: the same object
        assert (hole >= obj).all() and hole.sum() >= obj.sum()
        ref_hull = convex_hull_image(obj > 0)
        ref = binary_dilation(ref_hull, structure=disk(5))
        np.testing.assert_array_equal(hole > 0, ref)
        # convex: its own convex hull adds (almost) nothing
        assert convex_hull_image(hole > 0).sum() <= hole.sum() * 1.02
    # the shape is gone: the ring's hole is filled
    ring = np.zeros((100, 100), np.float32)
    cv2.circle(ring, (50, 50), 30, 1.0, 8)
    filled = expand_convex_hull(ring, 0)
    assert filled[50, 50] == 1 and filled.sum() > 2 * ring.sum()


def test_convex_hull_dilation_as_share_of_side(object_dir):
    a = make_generator("convex-hull", folder=str(object_dir), dilation=0.05)(200, 100, make_rng(0, 3))
    b = make_generator("convex-hull", folder=str(object_dir), dilation=5)(200, 100, make_rng(0, 3))
    np.testing.assert_array_equal(a, b)  # 5 % of the shorter side (100) = 5 px


def test_misato_family_frequencies(object_dir):
    mix = make_generator("misato", object_folder=str(object_dir), lo=0.05, hi=0.6)
    n = 20000
    counts: dict[str, int] = {}
    for s in range(n):
        fam = mix.choose_family(make_rng(9, s))
        counts[fam] = counts.get(fam, 0) + 1
    expected = {"object": 0.5 * 0.5, "object+comod": 0.5 * 0.25, "object+lama": 0.5 * 0.25,
                "comod": 0.2, "lama": 0.2, "rectangle": 0.05, "complement-rectangle": 0.05}
    assert set(counts) == set(expected)
    for fam, p in expected.items():
        assert abs(counts[fam] / n - p) < 4 * math.sqrt(p * (1 - p) / n), fam


def test_misato_draws_stay_in_range_and_match_their_family(object_dir):
    mix = make_generator("misato", object_folder=str(object_dir), lo=0.1, hi=0.5)
    seen = set()
    for s in range(1000):
        rng = make_rng(4, s)
        fam_only = mix.choose_family(make_rng(4, s))
        hole, fam = mix.draw(96, 96, rng)
        assert fam == fam_only
        seen.add(fam)
        assert 0.1 <= hole.mean() < 0.5
        if fam in ("rectangle", "complement-rectangle"):
            box = hole if fam == "rectangle" else 1 - hole
            ys, xs = np.nonzero(box)
            assert box[ys.min():ys.max() + 1, xs.min():xs.max() + 1].all()
    assert len(seen) == 7


def test_misato_without_objects_renormalises_the_other_families():
    mix = make_generator("misato", lo=0.1, hi=0.5)
    n = 10000
    fams = [mix.choose_family(make_rng(1, s)) for s in range(n)]
    for fam, p in {"comod": 0.4, "lama": 0.4, "rectangle": 0.1, "complement-rectangle": 0.1}.items():
        assert abs(fams.count(fam) / n - p) < 4 * math.sqrt(p * (1 - p) / n)
    r = [mix(64, 64, make_rng(2, s)).mean() for s in range(300)]
    assert min(r) >= 0.1 and max(r) < 0.5


@pytest.mark.parametrize("with_objects", [True, False])
def test_misato_without_rectangles_renormalises_and_never_draws_one(object_dir, with_objects):
    folder = {"object_folder": str(object_dir)} if with_objects else {}
    mix = make_generator("misato", lo=0.1, hi=0.5, rectangles="false", **folder)  # as --param rectangles=false
    weights = {"object": 0.5 / 0.9, "comod": 0.2 / 0.9, "lama": 0.2 / 0.9} if with_objects else {"comod": 0.5, "lama": 0.5}
    assert set(mix.weights) == set(weights) and mix.weights == pytest.approx(weights, abs=1e-12)
    n = 10000
    fams = [mix.choose_family(make_rng(5, s)) for s in range(n)]
    expected = {"comod": weights["comod"], "lama": weights["lama"]}
    if with_objects:
        expected |= {"object": 5 / 18, "object+comod": 5 / 36, "object+lama": 5 / 36}
    assert set(fams) == set(expected)
    for fam, p in expected.items():
        assert abs(fams.count(fam) / n - p) < 4 * math.sqrt(p * (1 - p) / n), fam
    for s in range(200):
        hole, fam = mix.draw(64, 64, make_rng(6, s))
        assert fam not in ("rectangle", "complement-rectangle")
        assert 0.1 <= hole.mean() < 0.5


def test_misato_keeps_the_rectangles_by_default(object_dir):
    for folder in ({"object_folder": str(object_dir)}, {}):
        default = make_generator("misato", lo=0.1, hi=0.5, **folder)
        explicit = make_generator("misato", lo=0.1, hi=0.5, rectangles=True, **folder)
        assert default.rectangles is True and default.weights == explicit.weights
        assert {"rectangle", "complement-rectangle"} <= set(default.weights)
        for s in range(20):
            np.testing.assert_array_equal(default(64, 64, make_rng(7, s)), explicit(64, 64, make_rng(7, s)))
