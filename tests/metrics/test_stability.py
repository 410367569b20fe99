"""Seed-variance stability: pair means against NumPy references, and the hole-restricted LPIPS distance."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from inpaintlab import weights
from inpaintlab.errors import InpaintlabError
from inpaintlab.metrics import build_metric
from inpaintlab.metrics.base import PerImageMetric
from inpaintlab.metrics.stability import hole_distance, hole_lpips_distance, seed_variance

N, H, W = 2, 40, 48


def batches(k: int, seed: int = 0) -> list[torch.Tensor]:
    rng = np.random.default_rng(seed)
    return [torch.from_numpy(rng.random((N, 3, H, W), dtype=np.float32)) for _ in range(k)]


def hole_masks() -> torch.Tensor:
    """Two different holes: a box and a disc."""
    hole = np.zeros((N, 1, H, W), np.float32)
    hole[0, 0, 8:30, 10:40] = 1
    yy, xx = np.mgrid[0:H, 0:W]
    hole[1, 0] = (yy - 20) ** 2 + (xx - 24) ** 2 < 12 ** 2
    return torch.from_numpy(hole)


def np_hole_mae(a, b, hole) -> np.ndarray:
    """Independent reference: mean |a - b| over the hole's pixels and the three channels, per image."""
    a, b, h = (np.asarray(t, np.float64) for t in (a, b, hole))
    return (np.abs(a - b) * h).sum(axis=(1, 2, 3)) / (h.sum(axis=(1, 2, 3)) * 3)


def numpy_distance(a, b, hole):
    return np_hole_mae(a.numpy(), b.numpy(), hole.numpy())


def test_two_samples_give_their_one_distance():
    a, b = batches(2)
    hole = hole_masks()
    v = seed_variance([a, b], hole, numpy_distance)
    assert v.shape == (N,) and v.dtype == torch.float64
    np.testing.assert_allclose(v.numpy(), np_hole_mae(a, b, hole), rtol=1e-12)


def test_three_samples_give_the_mean_of_the_three_pairs():
    s = batches(3, seed=1)
    hole = hole_masks()
    v = seed_variance(s, hole, numpy_distance)
    pairs = [np_hole_mae(s[i], s[j], hole) for i, j in ((0, 1), (0, 2), (1, 2))]
    np.testing.assert_allclose(v.numpy(), (pairs[0] + pairs[1] + pairs[2]) / 3, rtol=1e-12)
    # an HxW hole applies to every image
    one = hole_masks()[0, 0]
    np.testing.assert_allclose(seed_variance(s, one, numpy_distance).numpy(),
                               np.mean([np_hole_mae(s[i], s[j], one[None, None].expand(N, 1, H, W))
                                        for i, j in ((0, 1), (0, 2), (1, 2))], axis=0), rtol=1e-12)


def test_identical_samples_give_zero_and_order_does_not_matter():
    a = batches(1, seed=2)[0]
    hole = hole_masks()
    assert seed_variance([a, a.clone(), a.clone()], hole, numpy_distance).tolist() == [0.0] * N
    s = batches(4, seed=3)
    ref = seed_variance(s, hole, numpy_distance)
    for perm in itertools.permutations(range(4)):
        np.testing.assert_allclose(seed_variance([s[p] for p in perm], hole, numpy_distance).numpy(), ref.numpy(),
                                   rtol=1e-12)


def test_bad_inputs_are_one_line():
    a, b = batches(2)
    hole = hole_masks()
    for samples in ([], [a]):
        with pytest.raises(InpaintlabError, match=f"at least 2 samples.*got {len(samples)}") as info:
            seed_variance(samples, hole, numpy_distance)
        assert "\n" not in str(info.value)
    with pytest.raises(InpaintlabError, match="at least 2 samples.*got a tensor"):
        seed_variance(torch.stack([a, b]), hole, numpy_distance)
    with pytest.raises(InpaintlabError, match=r"sample 1 has shape \(1, 3, 40, 48\) but sample 0 has \(2, 3, 40, 48\)"):
        seed_variance([a, b[:1]], hole, numpy_distance)
    with pytest.raises(InpaintlabError, match="0/1 mask"):
        seed_variance([a, b], hole * 0.5, numpy_distance)
    with pytest.raises(InpaintlabError, match=r"hole of shape \(2, 1, 8, 8\) does not fit"):
        seed_variance([a, b], torch.ones(N, 1, 8, 8), numpy_distance)
    with pytest.raises(InpaintlabError, match=r"the distance returned shape \(\) .*expected one value per image"):
        seed_variance([a, b], hole, lambda x, y, h: torch.tensor(0.0))


def test_hole_region_metric_scores_the_hole_only():
    """``mae@hole`` through the region machinery: the NumPy hole MAE, whatever the kept pixels hold."""
    a, b, c = batches(3, seed=4)
    hole = hole_masks()
    b_other_kept = hole * b + (1 - hole) * c  # the same hole content as b, other kept pixels
    d = hole_distance(build_metric("mae@hole"))
    np.testing.assert_allclose(d(a, b_other_kept, hole).numpy(), np_hole_mae(a, b, hole), rtol=1e-6)
    np.testing.assert_allclose(seed_variance([a, b, c], hole, d).numpy(),
                               np.mean([np_hole_mae(a, b, hole), np_hole_mae(a, c, hole), np_hole_mae(b, c, hole)], 0),
                               rtol=1e-6)
    with pytest.raises(InpaintlabError, match="kept region"):
        hole_distance(build_metric("psnr@kept"))


class BlurMSE(PerImageMetric):
    """An LPIPS-like stand-in: mean squared difference of 3x3 box-blurred images over the whole image."""

    name = "blur-mse"

    def values(self, images, reference, hole):
        blur = torch.nn.functional.avg_pool2d
        return (blur(images, 3, 1, 1, count_include_pad=False)
                - blur(reference, 3, 1, 1, count_include_pad=False)).pow(2).mean(dim=(1, 2, 3))


def np_blur(x: np.ndarray) -> np.ndarray:
    """3x3 box mean with edge windows averaged over their valid pixels (NumPy reference)."""
    pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ones = np.pad(np.ones(x.shape[2:]), 1)
    s = sum(pad[..., i:i + x.shape[2], j:j + x.shape[3]] for i in range(3) for j in range(3))
    c = sum(ones[i:i + x.shape[2], j:j + x.shape[3]] for i in range(3) for j in range(3))
    return s / c


def test_whole_image_metric_sees_the_results_on_one_common_kept_region():
    a, b, c = (t.double().numpy() for t in batches(3, seed=5))
    hole = hole_masks().numpy().astype(np.float64)
    d = hole_distance(BlurMSE())
    common = (a + b) / 2
    x, y = hole * a + (1 - hole) * common, hole * b + (1 - hole) * common
    ref = ((np_blur(x) - np_blur(y)) ** 2).mean(axis=(1, 2, 3))
    ta, tb, th = (torch.from_numpy(t).float() for t in (a, b, hole))
    np.testing.assert_allclose(d(ta, tb, th).numpy(), ref, rtol=1e-4)
    np.testing.assert_allclose(d(tb, ta, th).numpy(), d(ta, tb, th).numpy(), rtol=0)  # symmetric
    # Results that differ only outside the hole are at distance 0; composited results: the plain metric.
    same_hole = torch.from_numpy(hole * a + (1 - hole) * c).float()
    assert d(ta, same_hole, th).tolist() == [0.0, 0.0]
    ca, cb = (torch.from_numpy(hole * t + (1 - hole) * c).float() for t in (a, b))
    np.testing.assert_array_equal(d(ca, cb, th).numpy(), BlurMSE().values(ca, cb, th).double().numpy())
    assert (d(ta, tb, th).numpy() > 0).all()


@pytest.fixture
def random_lpips(monkeypatch):
    """``lpips-alex`` built by the registry, with a randomly initialised network instead of the weight files."""
    from inpaintlab.metrics import lpips as lpips_module

    torch.manual_seed(0)
    model = lpips_module.LPIPS("alex")
    monkeypatch.setattr(lpips_module, "load_lpips", lambda net, **kw: model)
    return model


def test_lpips_distance_is_whole_image_lpips_of_the_composited_pair(random_lpips):
    s = batches(3, seed=6)
    hole = hole_masks()
    d = hole_lpips_distance("alex")
    x, y = (hole * t + (1 - hole) * (s[0] + s[1]) / 2 for t in (s[0], s[1]))
    with torch.no_grad():
        direct = random_lpips(x, y).double()
        pairs = [random_lpips(*(hole * t + (1 - hole) * (s[i] + s[j]) / 2 for t in (s[i], s[j]))).double()
                 for i, j in ((0, 1), (0, 2), (1, 2))]
    torch.testing.assert_close(d(s[0], s[1], hole), direct, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(seed_variance(s, hole, d), sum(pairs) / 3, rtol=1e-5, atol=1e-7)
    assert seed_variance([s[0], s[0].clone()], hole, d).tolist() == [0.0, 0.0]


def test_lpips_alex_with_the_real_weights():
    files = ("alexnet-owt-7be5be79.pth", "alex.pth")
    if any(weights.find(f)[0] is None for f in files):
        pytest.skip(f"LPIPS-alex weights ({', '.join(files)}) are not on this machine")
    d = hole_lpips_distance("alex")
    a = batches(1, seed=7)[0]
    hole = hole_masks()
    smooth = torch.full_like(a, 0.5)
    other = hole * smooth + (1 - hole) * a  # noise replaced by grey in the hole
    near = hole * (a * 0.9 + 0.05) + (1 - hole) * a  # a slightly dimmed hole
    assert seed_variance([a, a.clone()], hole, d).tolist() == [0.0, 0.0]
    far_v, near_v = d(a, other, hole), d(a, near, hole)
    assert (far_v > near_v).all() and (near_v > 0).all()
