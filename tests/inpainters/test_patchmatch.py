"""The PatchMatch backend against independent references.

* NNF search vs an exhaustive nearest-neighbour search written here with plain NumPy;
* completion of periodic textures vs the ground truth and vs OpenCV's Telea inpainting;
* determinism, faithfulness to the known pixels, border / huge holes, tiny images, bad input.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
import torch

from inpaintlab.inpainters import INPAINTERS, load_inpainter
from inpaintlab.inpainters.patchmatch import PatchMatchBackend, nnf_search
from inpaintlab.options import OptionError


# ----------------------------------------------------------------------------------------------
# references and fixtures
# ----------------------------------------------------------------------------------------------


def brute_force_nn(a: np.ndarray, b: np.ndarray, p: int) -> np.ndarray:
    """Exact SSD to the nearest p x p patch of ``b`` for every p x p patch of ``a`` (float64)."""
    ha, wa = a.shape[0] - p + 1, a.shape[1] - p + 1
    hb, wb = b.shape[0] - p + 1, b.shape[1] - p + 1
    pa = np.stack([a[y : y + p, x : x + p].ravel() for y in range(ha) for x in range(wa)]).astype(np.float64)
    pb = np.stack([b[y : y + p, x : x + p].ravel() for y in range(hb) for x in range(wb)]).astype(np.float64)
    best = np.full(len(pa), np.inf)
    for i in range(0, len(pb), 512):  # exhaustive, in chunks to bound memory
        d = ((pa[:, None, :] - pb[None, i : i + 512, :]) ** 2).sum(-1)
        best = np.minimum(best, d.min(1))
    return best.reshape(ha, wa)


def ssd_at(a: np.ndarray, b: np.ndarray, nnf: np.ndarray, p: int) -> np.ndarray:
    """SSD of every patch of ``a`` to the patch of ``b`` that ``nnf`` names, recomputed here."""
    out = np.empty(nnf.shape[:2])
    for y in range(nnf.shape[0]):
        for x in range(nnf.shape[1]):
            sy, sx = nnf[y, x]
            d = a[y : y + p, x : x + p].astype(np.float64) - b[sy : sy + p, sx : sx + p]
            out[y, x] = (d * d).sum()
    return out


def smooth_noise(rng: np.random.Generator, h: int, w: int, sigma: float = 1.5) -> np.ndarray:
    x = rng.random((h, w, 3)).astype(np.float32)
    return cv2.GaussianBlur(x, (0, 0), sigma) * 255 * 3


def tiled_texture(rng: np.random.Generator, size: int, period: int) -> np.ndarray:
    tile = rng.integers(0, 256, (period, period, 3)).astype(np.uint8)
    reps = size // period + 1
    return np.ascontiguousarray(np.tile(tile, (reps, reps, 1))[:size, :size])


def diagonal_stripes(size: int, period: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    phase = (xx + 0.5 * yy) * 2 * np.pi / period
    r = 128 + 100 * np.sin(phase)
    g = 128 + 80 * np.cos(phase)
    b = 128 + 60 * np.sign(np.sin(phase))
    return np.clip(np.rint(np.stack([r, g, b], -1)), 0, 255).astype(np.uint8)


def natural_like(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth blobs plus fine noise, values kept inside [40, 200] (so 0/255 artefacts show)."""
    x = cv2.resize(rng.random((h // 8 + 1, w // 8 + 1, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    x = np.clip(x, 0, 1) * 0.85 + 0.15 * rng.random((h, w, 3)).astype(np.float32)
    return (40 + 160 * x).round().astype(np.uint8)


def square_hole(h: int, w: int, y: int, x: int, s: int) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    hole[y : y + s, x : x + s] = True
    return hole


# ----------------------------------------------------------------------------------------------
# 1. the NNF search
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nnf_matches_exhaustive_search_on_a_recomposed_pair(seed):
    """A is four noisy crops of B: PatchMatch must find (near-)exact matches like brute force."""
    rng = np.random.default_rng(seed)
    b = smooth_noise(rng, 48, 48)
    a = np.zeros((40, 40, 3), np.float32)
    for by in (0, 20):
        for bx in (0, 20):
            oy, ox = rng.integers(0, 28, 2)
            a[by : by + 20, bx : bx + 20] = b[oy : oy + 20, ox : ox + 20]
    a += rng.normal(0, 1.0, a.shape).astype(np.float32)
    p = 5

    nnf, dist = nnf_search(a, b, patch_size=p, iterations=10, rng=np.random.default_rng(seed))
    exact = brute_force_nn(a, b, p)

    assert nnf.shape == (36, 36, 2) and dist.shape == (36, 36)
    assert (nnf >= 0).all() and (nnf <= 48 - p).all()
    # the reported distances are the true SSDs of the reported matches
    np.testing.assert_allclose(dist, ssd_at(a, b, nnf, p), rtol=1e-4, atol=1e-2)
    assert (dist >= exact - 1e-2 * (1 + exact)).all()  # nothing beats the exhaustive minimum
    close = dist <= 1.05 * exact + 1e-3
    assert close.mean() > 0.95, close.mean()


def test_nnf_converges_towards_exhaustive_search_on_an_independent_pair():
    """Two unrelated smooth noise images: no coherence to exploit, still close after 20 rounds."""
    rng = np.random.default_rng(7)
    a, b = smooth_noise(rng, 40, 40, 2.0), smooth_noise(rng, 48, 48, 2.0)
    exact = brute_force_nn(a, b, 5)
    _, d1 = nnf_search(a, b, patch_size=5, iterations=1, rng=np.random.default_rng(0))
    _, d20 = nnf_search(a, b, patch_size=5, iterations=20, rng=np.random.default_rng(0))
    assert d1.sum() / exact.sum() > 1.3  # one round is far from converged ...
    assert d20.sum() / exact.sum() < 1.06  # ... twenty are close
    assert (d20 <= 1.25 * exact + 1e-3).mean() > 0.9


# ----------------------------------------------------------------------------------------------
# 2. completion quality
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, seed",
    [("tiled", 0), ("tiled", 3), ("stripes", 1)],
)
def test_periodic_texture_is_completed_far_better_than_telea(kind, seed):
    rng = np.random.default_rng(seed)
    img = tiled_texture(rng, 96, int(rng.integers(8, 13))) if kind == "tiled" else diagonal_stripes(96, 10.0)
    y, x = (int(v) for v in rng.integers(12, 60, 2))
    hole = square_hole(96, 96, y, x, 24)

    out = PatchMatchBackend().inpaint_one(img, hole, np.random.default_rng(seed))
    telea = cv2.inpaint(img, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)

    err = np.abs(out.astype(np.float64) - img)[hole].mean()
    err_telea = np.abs(telea.astype(np.float64) - img)[hole].mean()
    assert err_telea > 10  # the reference really struggles on this texture
    assert err / err_telea < 0.5, (err, err_telea)
    assert err < 3.0, err  # and the result is close to the ground truth in absolute terms


@pytest.mark.parametrize(
    "options",
    [
        {"coarse_init": "diffusion"},
        {"weighting": "uniform", "confidence_gamma": 1.0},
        {"jump_steps": (1,), "patch_size": 5},
    ],
)
def test_option_variants_also_complete_the_texture(options):
    rng = np.random.default_rng(4)
    img = tiled_texture(rng, 80, 10)
    hole = square_hole(80, 80, 30, 26, 24)
    out = PatchMatchBackend(**options).inpaint_one(img, hole, np.random.default_rng(0))
    assert np.abs(out.astype(np.float64) - img)[hole].mean() < 5.0


# ----------------------------------------------------------------------------------------------
# 3. determinism and faithfulness
# ----------------------------------------------------------------------------------------------


def test_same_seed_same_result_and_known_pixels_untouched():
    rng = np.random.default_rng(11)
    img = natural_like(rng, 64, 64)
    hole = square_hole(64, 64, 20, 24, 16)
    before = img.copy()
    be = PatchMatchBackend()

    a = be.inpaint_one(img, hole, np.random.default_rng(5))
    b = be.inpaint_one(img, hole, np.random.default_rng(5))
    others = [be.inpaint_one(img, hole, np.random.default_rng(s)) for s in (6, 7, 8)]

    np.testing.assert_array_equal(img, before)  # the input is not modified in place
    np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, o) for o in others)
    for out in [a, *others]:
        assert out.shape == img.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out[~hole], img[~hole])


def test_wrapped_backend_is_registered_deterministic_and_batch_independent():
    assert INPAINTERS.get("patchmatch") is PatchMatchBackend
    rng = np.random.default_rng(3)
    imgs = np.stack([natural_like(rng, 40, 48) for _ in range(2)])
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
    hole = torch.zeros(2, 1, 40, 48)
    hole[0, :, 5:17, 10:22] = 1
    hole[1, :, 20:36, 0:14] = 1
    inp = load_inpainter("patchmatch", patch_size=5)

    def gens():
        return [torch.Generator().manual_seed(s) for s in (1, 2)]

    both = inp(x, hole, generator=gens())
    assert torch.equal(both, inp(x, hole, generator=gens()))
    second = inp(x[1:], hole[1:], generator=gens()[1:])
    assert torch.equal(both[1:], second)


# ----------------------------------------------------------------------------------------------
# 4. border holes, huge holes, tiny images
# ----------------------------------------------------------------------------------------------


def _holes_64() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    h = {}
    h["corner"] = square_hole(64, 64, 0, 0, 20)
    band = np.zeros((64, 64), bool)
    band[50:, :] = True
    h["bottom band, full width"] = band
    h["70% centred"] = square_hole(64, 64, 5, 5, 54)  # 71 % of the pixels
    h["70% in a corner"] = square_hole(64, 64, 10, 10, 54)
    h["90% scattered pixels"] = rng.random((64, 64)) < 0.9
    cols = np.zeros((64, 64), bool)
    cols[:, ::2] = True  # no fully known patch exists at any patch size
    h["every other column"] = cols
    return h


@pytest.mark.parametrize("name", list(_holes_64()))
def test_border_and_huge_holes_give_valid_images(name):
    hole = _holes_64()[name]
    img = natural_like(np.random.default_rng(1), 64, 64)
    out = PatchMatchBackend().inpaint_one(img, hole, np.random.default_rng(0))
    assert out.shape == img.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~hole], img[~hole])
    known = img[~hole].reshape(-1, 3)
    # votes and the diffusion fill are convex combinations of known colours: a NaN or an
    # overflow (cast to 0 / 255) would fall outside [40, 200]
    assert (out[hole] >= known.min(0)).all() and (out[hole] <= known.max(0)).all()
    if hole.mean() < 0.8:
        # something image-like was filled in, not a flat colour
        assert out[hole].std() > 3


@pytest.mark.parametrize("shape", [(2, 2), (3, 5), (6, 6), (9, 9), (1, 30), (30, 4)])
def test_tiny_images(shape):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, shape + (3,)).astype(np.uint8)
    hole = np.zeros(shape, bool)
    hole.flat[1::3] = True
    out = PatchMatchBackend().inpaint_one(img, hole, rng)
    assert out.shape == img.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~hole], img[~hole])
    known = img[~hole]
    assert (out[hole] >= known.min(0)).all() and (out[hole] <= known.max(0)).all()


def test_small_case_is_fast():
    img = natural_like(np.random.default_rng(2), 64, 64)
    hole = square_hole(64, 64, 24, 24, 16)
    be = PatchMatchBackend()
    be.inpaint_one(img, hole, np.random.default_rng(0))  # warm caches
    t = time.process_time()
    be.inpaint_one(img, hole, np.random.default_rng(0))
    assert time.process_time() - t < 1.0  # about 0.05 s on a laptop core; generous for CI


# ----------------------------------------------------------------------------------------------
# 5. bad input
# ----------------------------------------------------------------------------------------------


def test_no_known_pixels_is_an_error():
    img = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="known pixels"):
        PatchMatchBackend().inpaint_one(img, np.ones((16, 16), bool), np.random.default_rng(0))


def test_no_hole_returns_the_input():
    img = natural_like(np.random.default_rng(0), 20, 20)
    out = PatchMatchBackend().inpaint_one(img, np.zeros((20, 20), bool), np.random.default_rng(0))
    np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize(
    "options",
    [
        {"patch_size": 4},
        {"patch_size": 1},
        {"pm_iterations": 0},
        {"alpha": 1.0},
        {"weighting": "median"},
        {"coarse_init": "random"},
        {"jump_steps": ()},
    ],
)
def test_bad_options_are_rejected(options):
    (name,) = options
    with pytest.raises(OptionError, match=name) as e:
        PatchMatchBackend(**options)
    assert "\n" not in str(e.value)


def test_mismatched_hole_is_rejected():
    with pytest.raises(ValueError, match="hole shape"):
        PatchMatchBackend().inpaint_one(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9), bool), np.random.default_rng(0))
