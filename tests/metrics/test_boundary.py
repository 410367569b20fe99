"""CD and the boundary gradient error on synthetic cases with hand-derived answers, and against NumPy / OpenCV."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from inpaintlab.metrics import build_metric
from inpaintlab.metrics.boundary import boundary_gradient_error, color_distance, inner_boundary

H, W = 24, 30
R0, R1, C0, C1 = 6, 16, 8, 22  # the hole: rows [6, 16), cols [8, 22): 10 x 14 pixels


def rect_hole() -> torch.Tensor:
    hole = torch.zeros(1, 1, H, W)
    hole[..., R0:R1, C0:C1] = 1
    return hole


def ramp_image(slope: float) -> torch.Tensor:
    """Red rises by ``slope`` per column; green and blue are flat."""
    x = torch.zeros(1, 3, H, W, dtype=torch.float64)
    x[:, 0] = 0.1 + slope * torch.arange(W, dtype=torch.float64)
    x[:, 1], x[:, 2] = 0.4, 0.6
    return x


def test_cd_colour_step_on_the_boundary_adds_what_the_formula_predicts():
    s, delta = 0.01, 0.2
    smooth = ramp_image(s)
    step = smooth.clone()
    step[:, 1, R0:R1, C0:C1] += delta  # a green step exactly on the hole's boundary
    hole = rect_hole()
    # By hand: pairs across the left / right sides (2 x 10 of them) differ by s in red; pairs
    # across the top / bottom sides (2 x 14) differ by 0. The step adds delta in green to every pair.
    n_lr, n_tb = 2 * (R1 - R0), 2 * (C1 - C0)
    cd_smooth = 255 * (n_lr * s) / (n_lr + n_tb)
    cd_step = 255 * (n_lr * math.hypot(s, delta) + n_tb * delta) / (n_lr + n_tb)
    got_smooth = color_distance(smooth.float(), hole).item()
    got_step = color_distance(step.float(), hole).item()
    assert got_smooth == pytest.approx(cd_smooth, rel=1e-4)
    assert got_step == pytest.approx(cd_step, rel=1e-4)
    assert got_step - got_smooth == pytest.approx(cd_step - cd_smooth, rel=1e-4)
    assert got_step > got_smooth


def cd_loops(img: np.ndarray, hole: np.ndarray) -> float:
    """CD by explicit loops: each hole pixel against each 4-neighbour outside the hole, 0-255 scale."""
    dists = []
    for r in range(hole.shape[0]):
        for c in range(hole.shape[1]):
            if not hole[r, c]:
                continue
            for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                rr, cc = r + dr, c + dc
                if 0 <= rr < hole.shape[0] and 0 <= cc < hole.shape[1] and not hole[rr, cc]:
                    dists.append(255 * np.linalg.norm(img[:, r, c] - img[:, rr, cc]))
    return float(np.mean(dists))


def test_cd_matches_loops_on_random_irregular_holes():
    rng = np.random.default_rng(0)
    imgs = rng.random((3, 3, 20, 17))
    holes = rng.random((3, 1, 20, 17)) < 0.4  # irregular, touching the border
    got = color_distance(torch.tensor(imgs, dtype=torch.float32), torch.tensor(holes, dtype=torch.float32))
    for i in range(3):
        assert got[i].item() == pytest.approx(cd_loops(imgs[i].astype(np.float32), holes[i, 0]), rel=1e-5)


def test_boundary_gradient_constant_offset_in_a_rectangle():
    c = 0.25
    ref = ramp_image(0.02).float()
    res = ref.clone()
    res[..., R0:R1, C0:C1] += c  # the result is off by c in every channel inside the hole
    # By hand (OpenCV 3x3 Sobel): along a straight side |G| = (1 + 2 + 1) c = 4c; at a corner
    # Gx = Gy = (2 + 1) c so |G| = 3 sqrt(2) c. The ring has 2 (h + w) - 4 pixels, 4 of them corners.
    h, w = R1 - R0, C1 - C0
    ring = 2 * (h + w) - 4
    expected = ((ring - 4) * 4 * c + 4 * 3 * math.sqrt(2) * c) / ring
    assert boundary_gradient_error(res, ref, rect_hole()).item() == pytest.approx(expected, rel=1e-5)
    assert boundary_gradient_error(ref, ref, rect_hole()).item() == 0.0


def test_boundary_gradient_matches_opencv_sobel():
    rng = np.random.default_rng(1)
    ref, res = rng.random((2, 2, 3, 21, 26)).astype(np.float32)
    hole = np.zeros((2, 21, 26), bool)
    hole[0, 3:12, 5:20] = True
    hole[1, 0:9, 10:26] = True  # touches the top and right borders: those sides are no boundary
    got = boundary_gradient_error(torch.tensor(res), torch.tensor(ref), torch.tensor(hole[:, None], dtype=torch.float32))
    for i in range(2):
        kept = ~hole[i]
        near = np.zeros_like(kept)
        near[:-1] |= kept[1:]
        near[1:] |= kept[:-1]
        near[:, :-1] |= kept[:, 1:]
        near[:, 1:] |= kept[:, :-1]
        edge = hole[i] & near
        per_channel = []
        for ch in range(3):
            d = (res[i, ch] - ref[i, ch]).astype(np.float64)
            gx, gy = cv2.Sobel(d, cv2.CV_64F, 1, 0, ksize=3), cv2.Sobel(d, cv2.CV_64F, 0, 1, ksize=3)
            per_channel.append(np.hypot(gx, gy)[edge].mean())
        assert got[i].item() == pytest.approx(np.mean(per_channel), rel=1e-5)


def test_inner_boundary_ignores_the_image_border():
    hole = torch.zeros(1, 1, 6, 6)
    hole[..., :3, :] = 1  # top half: its only boundary with kept pixels is row 2
    ring = inner_boundary(hole)[0, 0]
    assert ring[2].all() and ring.sum() == 6


def test_stateful_versions_need_the_hole():
    x = torch.rand(2, 3, 16, 16)
    for name in ("cd", "boundary-gradient"):
        with pytest.raises(ValueError, match="needs the hole"):
            build_metric(name).update(x, x)
