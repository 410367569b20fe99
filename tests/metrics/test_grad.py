"""ASUKA's Grad metric against a line-by-line NumPy/OpenCV recomputation of ``eval/cal_grad.py``, and hand cases."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from inpaintlab.metrics import METRICS, build_metric
from inpaintlab.metrics.grad import grad_error


def reference_grad(result_u8: np.ndarray, gt_u8: np.ndarray, mask_u8: np.ndarray) -> float:
    """Yikai-Wang/asuka-misato ``eval/cal_grad.py``: ``process_image`` then ``calculate_gradient_gt_mean`` per channel.

    ``result_u8``, ``gt_u8``: HxWx3 uint8 RGB (as ``np.array(Image.open(..).convert("RGB"))``);
    ``mask_u8``: HxW uint8, 255 = hole (``.convert("L")``). Returns the mean of the three channel values.
    """
    result = result_u8 * (mask_u8[:, :, None] / 255.) + gt_u8 * (1 - mask_u8[:, :, None] / 255.)
    grad_mask = mask_u8
    grad_means = []
    for channel in range(3):
        image, gt = result[:, :, channel], gt_u8[:, :, channel]
        gray_image = image  # 2-D: the cvtColor branch of the reference is never taken
        gray_image_gt = gt
        edges = cv2.Canny(grad_mask, 100, 200)
        grad_x = cv2.Sobel(gray_image, cv2.CV_64F, 1, 0, ksize=3)
        grad_y = cv2.Sobel(gray_image, cv2.CV_64F, 0, 1, ksize=3)
        grad_x_gt = cv2.Sobel(gray_image_gt, cv2.CV_64F, 1, 0, ksize=3)
        grad_y_gt = cv2.Sobel(gray_image_gt, cv2.CV_64F, 0, 1, ksize=3)
        grad_x = grad_x - grad_x_gt
        grad_y = grad_y - grad_y_gt
        grad_magnitude = np.sqrt(grad_x ** 2 + grad_y ** 2)
        edge_gradients = grad_magnitude[edges > 0]
        grad_means.append(edge_gradients.mean() if edge_gradients.size > 0 else 0)
    return float(np.mean(grad_means))


def random_case(n: int, h: int, w: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 results, ground truths (N,H,W,3) and binary masks (N,H,W) 0/255: rectangles and smoothed-noise blobs."""
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    res = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    masks = np.zeros((n, h, w), np.uint8)
    for i in range(n):
        if i % 2 == 0:
            r0, c0 = rng.integers(1, h // 2), rng.integers(1, w // 2)
            masks[i, r0:r0 + rng.integers(3, h // 2), c0:c0 + rng.integers(3, w // 2)] = 255
        else:
            blob = cv2.GaussianBlur(rng.random((h, w)), (0, 0), 3)
            masks[i] = np.where(blob > np.median(blob), 255, 0).astype(np.uint8)
    return res, gt, masks


def to_tensors(res: np.ndarray, gt: np.ndarray, masks: np.ndarray):
    """Our conventions: (N,3,H,W) float in [0, 1] and (N,1,H,W) hole, 1 = hole (exact round trip of uint8)."""
    def img(a):
        return torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255
    return img(res), img(gt), torch.from_numpy(masks)[:, None].float() / 255


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grad_equals_the_reference_script_on_random_images_and_masks(seed):
    res, gt, masks = random_case(4, 40, 52, seed)
    got = grad_error(*to_tensors(res, gt, masks))
    assert got.shape == (4,) and got.dtype == torch.float64
    for i in range(4):
        assert got[i].item() == pytest.approx(reference_grad(res[i], gt[i], masks[i]), rel=1e-10, abs=1e-9)


def test_grad_equals_the_reference_script_with_a_soft_mask():
    # the reference composites with mask / 255: a non-binary mask blends (values here: 0, 128, 255)
    res, gt, masks = random_case(2, 32, 32, 7)
    masks[:, 10:14, :] = np.where(masks[:, 10:14, :] > 0, 128, 0)
    hole = torch.from_numpy(masks)[:, None].float() / 255
    r, g, _ = to_tensors(res, gt, masks)
    got = grad_error(r, g, hole)
    for i in range(2):
        assert got[i].item() == pytest.approx(reference_grad(res[i], gt[i], masks[i]), rel=1e-10, abs=1e-9)


def test_grad_composites_like_the_reference():
    # pixels outside the hole are taken from the reference: changing them changes nothing
    res, gt, masks = random_case(2, 32, 32, 3)
    r, g, h = to_tensors(res, gt, masks)
    scrambled = torch.where(h > 0.5, r, torch.rand_like(r))
    assert torch.equal(grad_error(scrambled, g, h), grad_error(r, g, h))


def test_grad_is_zero_for_identical_images():
    res, gt, masks = random_case(3, 32, 40, 5)
    _, g, h = to_tensors(res, gt, masks)
    assert torch.equal(grad_error(g, g, h), torch.zeros(3, dtype=torch.float64))


def test_grad_of_a_constant_offset_in_a_half_plane_hole_by_hand():
    # hole = columns [0, 12) of a 20x30 image; the result is the ground truth + 40/255 in the hole.
    # R' - G = 40 on the hole, 0 elsewhere: a vertical step at column 12. The 3x3 Sobel x of a
    # step of height 40 is (1 + 2 + 1) * 40 = 160 in magnitude on both columns next to the step
    # (11 and 12, whichever Canny marks) and Sobel y is 0 (constant along columns, reflect-101 at
    # the top and bottom). So every Canny edge pixel has magnitude 160 in every channel: Grad = 160.
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 200, (1, 20, 30, 3)).astype(np.uint8)
    res = gt.copy()
    res[:, :, :12] += 40
    masks = np.zeros((1, 20, 30), np.uint8)
    masks[:, :, :12] = 255
    edges = cv2.Canny(masks[0], 100, 200) > 0
    cols = np.unique(np.nonzero(edges)[1])
    assert edges.any() and set(cols.tolist()) <= {11, 12}
    got = grad_error(*to_tensors(res, gt, masks))
    assert got.item() == pytest.approx(160.0, abs=1e-9)


def test_grad_does_not_depend_on_the_batch_size():
    res, gt, masks = random_case(5, 36, 36, 11)
    r, g, h = to_tensors(res, gt, masks)
    whole = grad_error(r, g, h)
    alone = torch.cat([grad_error(r[i:i + 1], g[i:i + 1], h[i:i + 1]) for i in range(5)])
    assert torch.equal(whole, alone)
    metric = build_metric("grad")
    metric.update(r[:2], g[:2], h[:2])
    metric.update(r[2:], g[2:], h[2:])
    assert metric.compute() == pytest.approx(float(whole.mean()), rel=1e-12)


@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_a_mask_without_edges_gives_nan_or_the_reference_zero(fill):
    # no hole, or a hole over the whole image: Canny finds no edge (the reference returns 0)
    x, y = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    hole = torch.full((2, 1, 24, 24), fill)
    assert torch.isnan(grad_error(x, y, hole)).all()
    assert torch.equal(grad_error(x, y, hole, empty=0.0), torch.zeros(2, dtype=torch.float64))
    res, gt = (to_u8(t) for t in (x, y))
    assert reference_grad(res[0], gt[0], np.full((24, 24), int(255 * fill), np.uint8)) == 0.0


def to_u8(t: torch.Tensor) -> np.ndarray:
    return np.round(t.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)


def test_registered_metric_is_lower_is_better_and_needs_the_hole():
    cls = METRICS.get("grad")
    assert cls.name == "grad" and cls.higher_is_better is False and cls.needs_hole
    x = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match="needs the hole"):
        build_metric("grad").update(x, x)
    res, gt, masks = random_case(2, 16, 16, 1)
    v = build_metric("grad").update(*to_tensors(res, gt, masks))
    assert v.shape == (2,) and all(math.isfinite(float(a)) for a in v)
