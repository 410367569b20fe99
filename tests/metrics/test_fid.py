"""FID: closed forms, running statistics vs numpy, the pytorch-fid key layout, the real loading path
with random weights, batch-size independence, and the reference-statistics cache."""

from __future__ import annotations

import math
import os
import time

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from inpaintlab import weights
from inpaintlab.errors import InpaintlabError, MissingWeightsError
from inpaintlab.metrics import base
from inpaintlab.metrics.base import METRICS, values_on_features
from inpaintlab.metrics.fid import FID, GaussianStats, RunningStats, frechet_distance, reference_statistics
from inpaintlab.metrics.inception import (
    FIDInceptionE_1,
    FIDInceptionE_2,
    FIDInceptionV3,
    InceptionFeatures,
    load_inception,
    preprocess,
)

from ..conftest import DEEP_RTOL, SHALLOW_RTOL

FILE = "pt_inception-2015-12-05-6726825d.pth"

# ---------------------------------------------------------------------------------------------
# pytorch-fid's state-dict layout, written from torchvision's Inception3(num_classes=1008,
# aux_logits=False) as patched by pytorch-fid's fid_inception_v3(): (name, cin, cout, kh, kw)


def _inception_a(p, cin, pool):
    return [(f"{p}.branch1x1", cin, 64, 1, 1), (f"{p}.branch5x5_1", cin, 48, 1, 1), (f"{p}.branch5x5_2", 48, 64, 5, 5),
            (f"{p}.branch3x3dbl_1", cin, 64, 1, 1), (f"{p}.branch3x3dbl_2", 64, 96, 3, 3),
            (f"{p}.branch3x3dbl_3", 96, 96, 3, 3), (f"{p}.branch_pool", cin, pool, 1, 1)]


def _inception_c(p, c7):
    return [(f"{p}.branch1x1", 768, 192, 1, 1), (f"{p}.branch7x7_1", 768, c7, 1, 1), (f"{p}.branch7x7_2", c7, c7, 1, 7),
            (f"{p}.branch7x7_3", c7, 192, 7, 1), (f"{p}.branch7x7dbl_1", 768, c7, 1, 1),
            (f"{p}.branch7x7dbl_2", c7, c7, 7, 1), (f"{p}.branch7x7dbl_3", c7, c7, 1, 7),
            (f"{p}.branch7x7dbl_4", c7, c7, 7, 1), (f"{p}.branch7x7dbl_5", c7, 192, 1, 7),
            (f"{p}.branch_pool", 768, 192, 1, 1)]


def _inception_e(p, cin):
    return [(f"{p}.branch1x1", cin, 320, 1, 1), (f"{p}.branch3x3_1", cin, 384, 1, 1),
            (f"{p}.branch3x3_2a", 384, 384, 1, 3), (f"{p}.branch3x3_2b", 384, 384, 3, 1),
            (f"{p}.branch3x3dbl_1", cin, 448, 1, 1), (f"{p}.branch3x3dbl_2", 448, 384, 3, 3),
            (f"{p}.branch3x3dbl_3a", 384, 384, 1, 3), (f"{p}.branch3x3dbl_3b", 384, 384, 3, 1),
            (f"{p}.branch_pool", cin, 192, 1, 1)]


PYTORCH_FID_CONVS = (
    [("Conv2d_1a_3x3", 3, 32, 3, 3), ("Conv2d_2a_3x3", 32, 32, 3, 3), ("Conv2d_2b_3x3", 32, 64, 3, 3),
     ("Conv2d_3b_1x1", 64, 80, 1, 1), ("Conv2d_4a_3x3", 80, 192, 3, 3)]
    + _inception_a("Mixed_5b", 192, 32) + _inception_a("Mixed_5c", 256, 64) + _inception_a("Mixed_5d", 288, 64)
    + [("Mixed_6a.branch3x3", 288, 384, 3, 3), ("Mixed_6a.branch3x3dbl_1", 288, 64, 1, 1),
       ("Mixed_6a.branch3x3dbl_2", 64, 96, 3, 3), ("Mixed_6a.branch3x3dbl_3", 96, 96, 3, 3)]
    + _inception_c("Mixed_6b", 128) + _inception_c("Mixed_6c", 160) + _inception_c("Mixed_6d", 160)
    + _inception_c("Mixed_6e", 192)
    + [("Mixed_7a.branch3x3_1", 768, 192, 1, 1), ("Mixed_7a.branch3x3_2", 192, 320, 3, 3),
       ("Mixed_7a.branch7x7x3_1", 768, 192, 1, 1), ("Mixed_7a.branch7x7x3_2", 192, 192, 1, 7),
       ("Mixed_7a.branch7x7x3_3", 192, 192, 7, 1), ("Mixed_7a.branch7x7x3_4", 192, 192, 3, 3)]
    + _inception_e("Mixed_7b", 1280) + _inception_e("Mixed_7c", 2048)
)


def pytorch_fid_shapes() -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for name, cin, cout, kh, kw in PYTORCH_FID_CONVS:
        shapes[f"{name}.conv.weight"] = (cout, cin, kh, kw)
        for k in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.bn.{k}"] = (cout,)
        shapes[f"{name}.bn.num_batches_tracked"] = ()
    shapes["fc.weight"], shapes["fc.bias"] = (1008, 2048), (1008,)
    return shapes


def random_pytorch_fid_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights in pytorch-fid's layout; He-scaled convs keep the 2048-d features O(1)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in pytorch_fid_shapes().items():
        if key.endswith("conv.weight"):
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=g) * math.sqrt(2 / fan_in)
        elif key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith(("bn.weight", "running_var")):
            state[key] = 0.5 + torch.rand(shape, generator=g)
        else:  # bn.bias, running_mean, fc
            state[key] = 0.1 * torch.randn(shape, generator=g)
    return state


@pytest.fixture(scope="module")
def weights_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    state = random_pytorch_fid_state()
    torch.save(state, folder / FILE)
    return folder, state


@pytest.fixture
def use_weights(weights_folder, monkeypatch, tmp_path):
    folder, state = weights_folder
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(folder))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-home"))
    return folder, state


def smooth_images(n: int, size: int, seed: int) -> torch.Tensor:
    """Random low-frequency colour fields (upsampled noise) in [0, 1]."""
    rng = np.random.default_rng(seed)
    low = rng.uniform(0, 1, (n, 3, 4, 4)).astype(np.float32)
    up = torch.nn.functional.interpolate(torch.from_numpy(low), size=(size, size), mode="bicubic", align_corners=False)
    return (up + 0.05 * torch.from_numpy(rng.normal(size=up.shape).astype(np.float32))).clamp(0, 1)


# ---------------------------------------------------------------------------------------------
# the Frechet distance


def test_frechet_distance_diagonal_closed_form():
    rng = np.random.default_rng(0)
    d = 7
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    for method in ("sqrtm", "eigh"):
        assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2), method=method) == pytest.approx(expected, rel=1e-10)
    # 1-d: (m1 - m2)^2 + (sd1 - sd2)^2
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0, rel=1e-12)
    assert frechet_distance(mu1, np.diag(s1), mu1, np.diag(s1)) == pytest.approx(0.0, abs=1e-10)


def test_frechet_distance_non_diagonal_vs_eigenvalues():
    rng = np.random.default_rng(1)
    d = 9
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    # independent: S1 S2 is similar to a PSD matrix, so Tr sqrt(S1 S2) = sum sqrt(eigenvalues(S1 S2))
    lam = np.linalg.eigvals(s1 @ s2)
    assert np.allclose(lam.imag, 0, atol=1e-8) and (lam.real > 0).all()
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(lam.real).sum()
    for method in ("sqrtm", "eigh"):
        assert frechet_distance(mu1, s1, mu2, s2, method=method) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_singular_covariances_and_errors():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(5, 12)), rng.normal(size=(5, 12)) + 0.5  # rank-4 covariances in 12-d
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    mu1, mu2 = x.mean(0), y.mean(0)
    got = frechet_distance(mu1, s1, mu2, s2)
    lam = np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(lam).sum()
    assert isinstance(got, float) and math.isfinite(got)
    assert got == pytest.approx(expected, rel=1e-5)
    assert frechet_distance(mu1, s1, mu2, s2, method="eigh") == pytest.approx(expected, rel=1e-5)
    with pytest.raises(InpaintlabError, match="do not match"):
        frechet_distance(mu1, s1, mu2[:3], s2[:3, :3])
    with pytest.raises(ValueError):
        frechet_distance(mu1, s1, mu2, s2, method="svd")


# ---------------------------------------------------------------------------------------------
# running statistics


def test_running_stats_equal_numpy_for_any_split():
    rng = np.random.default_rng(3)
    feats = 1000.0 + rng.normal(size=(97, 16)) * rng.uniform(0.1, 2, 16)  # a large offset tests cancellation
    mu, cov = feats.mean(0), np.cov(feats, rowvar=False)
    results = []
    for splits in ([97], [1] * 97, [7] * 13 + [6], [50, 0, 47]):
        rs = RunningStats()
        start = 0
        for k in splits:
            rs.update(torch.from_numpy(feats[start:start + k]) if k % 2 else feats[start:start + k])
            start += k
        assert rs.n == 97
        np.testing.assert_allclose(rs.mean(), mu, rtol=1e-12)
        np.testing.assert_allclose(rs.cov(), cov, rtol=1e-8, atol=1e-10)
        results.append(rs.stats())
    for r in results[1:]:
        np.testing.assert_allclose(r.sigma, results[0].sigma, rtol=1e-9, atol=1e-12)
    one = RunningStats()
    one.update(feats[:1])
    with pytest.raises(InpaintlabError, match="at least 2"):
        one.cov()


# ---------------------------------------------------------------------------------------------
# the network: layout, input handling, FID-specific pools


def test_state_dict_keys_and_shapes_are_pytorch_fids():
    expected = pytorch_fid_shapes()
    got = {k: tuple(v.shape) for k, v in FIDInceptionV3().state_dict().items()}
    assert set(got) == set(expected)
    assert got == expected
    assert all(m.eps == 0.001 for m in FIDInceptionV3().modules() if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.parametrize("h, w", [(64, 64), (512, 384)])
def test_preprocess_is_half_pixel_bilinear_then_2x_minus_1(h, w):
    img = smooth_images(1, max(h, w), 4)[:, :, :h, :w]
    ours = preprocess(img)[0].permute(1, 2, 0).numpy()
    # OpenCV's INTER_LINEAR: half-pixel centres, no antialiasing, edge clamping (= align_corners=False)
    ref = cv2.resize(np.ascontiguousarray(img[0].permute(1, 2, 0).numpy()), (299, 299), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(ours, 2 * ref - 1, atol=2e-5)


def test_fid_pool_branches():
    x = torch.rand(1, 1, 4, 5, generator=torch.Generator().manual_seed(5))
    a = x[0, 0].numpy()
    avg, mx = FIDInceptionE_1.pool(None, x)[0, 0].numpy(), FIDInceptionE_2.pool(None, x)[0, 0].numpy()
    for i in range(4):
        for j in range(5):
            win = a[max(i - 1, 0):i + 2, max(j - 1, 0):j + 2]  # padding is left out of the mean (TF)
            assert avg[i, j] == pytest.approx(win.mean(), abs=1e-6)
            assert mx[i, j] == pytest.approx(win.max(), abs=0)


# ---------------------------------------------------------------------------------------------
# the real loading path with random weights under the official name


def test_fid_loads_through_weights_folder(use_weights, tmp_path):
    folder, state = use_weights
    fid = FID()  # the default extractor: load_inception -> weights.resolve
    assert str(folder / FILE) in fid.extractor.identity
    loaded = fid.extractor.model.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    # an old-style file without BatchNorm's batch counters loads too; a wrong file is one clear line
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(old, tmp_path / FILE)
    model = FIDInceptionV3().load_weights(tmp_path / FILE)
    assert torch.equal(model.Mixed_7c.branch_pool.conv.weight, state["Mixed_7c.branch_pool.conv.weight"])
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(MissingWeightsError, match="not pytorch-fid's") as err:
        FIDInceptionV3().load_weights(tmp_path / "bad.pth")
    assert "\n" not in str(err.value)


def test_extractors_are_shared_and_cache_batches(use_weights):
    assert load_inception("cpu") is FID().extractor  # one network for FID, P-IDS, U-IDS

    class Counting(torch.nn.Module):
        calls = 0

        def forward(self, x):
            Counting.calls += x.shape[0]
            return x.mean(dim=(2, 3)).repeat(1, 2)

    ext = InceptionFeatures(Counting(), batch_size=3, cache_batches=2)
    a, b = smooth_images(5, 8, 1), smooth_images(5, 8, 2)
    fa = ext(a)
    assert Counting.calls == 5 and torch.equal(fa, a.mean(dim=(2, 3)).repeat(1, 2))
    assert torch.equal(ext(a.clone()), fa) and Counting.calls == 5  # same content: cached
    ext(b)
    ext(a[:4])
    assert Counting.calls == 14
    ext(a)
    assert Counting.calls == 19  # evicted after two newer batches


def test_missing_weights_is_one_line(monkeypatch, tmp_path):
    from dataclasses import replace

    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    gone = (tmp_path / "nowhere" / FILE).as_uri()
    monkeypatch.setitem(weights.WEIGHT_FILES, FILE, replace(weights.WEIGHT_FILES[FILE], url=gone))
    with pytest.raises(MissingWeightsError, match=FILE) as err:
        FID(device="cpu")
    assert "\n" not in str(err.value)


def projection(dim: int = 32) -> torch.Tensor:
    """A fixed random (2048, dim) projection of Inception features (variance kept)."""
    return torch.from_numpy(np.random.default_rng(6).normal(size=(2048, dim)) / math.sqrt(2048)).float()


class Projected:
    """The real Inception features, recorded, then a fixed random projection to 32-d.

    2048-d ``sqrtm`` takes ~35 s on 2 cores, so FID itself is compared on a projection; the raw
    2048-d features and their statistics are compared separately.
    """

    def __init__(self, inner, dim: int = 32):
        self.inner = inner
        self.identity = inner.identity + ":projected"
        self.proj = projection(dim)
        self.raw: list[torch.Tensor] = []

    def __call__(self, images):
        f = self.inner(images)
        self.raw.append(f)
        return f @ self.proj


def test_fid_independent_of_batch_size(use_weights, one_thread):
    # N = 12 (not ~40): the full Inception costs ~0.3-1 s per image on 2 shared CPU cores;
    # batch size 7 still splits the data (7 + 5) and 32 takes it in one batch.
    n = 12
    fake = smooth_images(n, 64, 7)
    rng = np.random.default_rng(8)
    a = rng.normal(size=(32, 32)) * 0.05
    ref = GaussianStats(rng.normal(size=32) * 0.1, a @ a.T + 1e-3 * np.eye(32), 100)
    results, raws, stats2048 = {}, {}, {}
    for bs in (1, 7, 32):
        shared = load_inception("cpu", batch_size=bs)
        assert shared.batch_size == bs and shared.identity.endswith(str(os.stat(use_weights[0] / FILE).st_mtime_ns))
        # the same network, without the batch cache: every batch goes through it
        extractor = Projected(InceptionFeatures(shared.model, batch_size=bs, identity=shared.identity,
                                                cache_batches=0))
        fid = FID(reference_stats=ref, extractor=extractor)
        for i in range(0, n, bs):
            fid.update(fake[i:i + bs], None)
        results[bs] = fid.compute()
        raws[bs] = torch.cat(extractor.raw).double().numpy()
        rs = RunningStats()
        rs.update(raws[bs])
        stats2048[bs] = rs.stats()
    raw = raws[1]
    assert raw.shape == (n, 2048) and np.isfinite(raw).all()
    assert raw.std(0).mean() > 1e-3 * np.abs(raw).mean()  # the features see the images
    # Batched float32 convolutions round differently per batch size (and CPU): the features may move by
    # DEEP_RTOL of their largest magnitude (~28 here, not ~1); their mean no more; a covariance entry
    # by at most 2 (std_i + std_j) times that (+ its square); FID, quadratic in the features, by about
    # twice their relative round-off.
    feat_tol = DEEP_RTOL * np.abs(raw).max()
    sigma_tol = 4 * raw.std(0, ddof=1).max() * feat_tol + 4 * feat_tol**2
    for bs in (7, 32):
        assert np.abs(raws[bs] - raw).max() <= feat_tol
        assert np.abs(stats2048[bs].mu - stats2048[1].mu).max() <= feat_tol
        assert np.abs(stats2048[bs].sigma - stats2048[1].sigma).max() <= sigma_tol
        assert results[bs] == pytest.approx(results[1], rel=2 * DEEP_RTOL)
    # and it is the Frechet distance of numpy's statistics of the projected features
    proj = raw @ extractor.proj.double().numpy()
    expected = frechet_distance(proj.mean(0), np.cov(proj, rowvar=False), ref.mu, ref.sigma, method="eigh")
    assert results[1] == pytest.approx(expected, rel=1e-5)


# ---------------------------------------------------------------------------------------------
# the metric object with a cheap extractor, and the reference-statistics cache


class PixelFeatures:
    """A cheap deterministic extractor: 4x4 average-pooled pixels (48-d), counted."""

    identity = "pixels-4x4"

    def __init__(self):
        self.images = 0

    def __call__(self, images):
        self.images += images.shape[0]
        return torch.nn.functional.adaptive_avg_pool2d(images, 4).flatten(1)


def test_fid_metric_accumulates_like_numpy(tmp_path):
    fake, real = smooth_images(60, 16, 9), smooth_images(60, 16, 10) ** 1.5
    fid = FID(extractor=PixelFeatures())
    assert METRICS.get("fid") is FID and fid.dataset_level and not fid.higher_is_better
    for i in range(0, 60, 13):
        assert fid.update(fake[i:i + 13], real[i:i + 13]) is None
    ff = PixelFeatures()(fake).double().numpy()
    fr = PixelFeatures()(real).double().numpy()
    expected = frechet_distance(ff.mean(0), np.cov(ff, rowvar=False), fr.mean(0), np.cov(fr, rowvar=False), method="eigh")
    assert fid.compute() == pytest.approx(expected, rel=1e-6)
    # precomputed reference statistics, as an object or as a pytorch-fid style .npz
    ref = GaussianStats(fr.mean(0), np.cov(fr, rowvar=False), 60)
    np.savez(tmp_path / "ref.npz", mu=ref.mu, sigma=ref.sigma)
    for given in (ref, tmp_path / "ref.npz"):
        extractor = PixelFeatures()
        f2 = FID(extractor=extractor, reference_stats=given)
        f2.update(fake, None)
        assert extractor.images == 60  # the reference is not featurised
        assert f2.compute() == pytest.approx(expected, rel=1e-6)
    fid.reset()
    with pytest.raises(InpaintlabError, match="at least 2"):
        fid.compute()
    with pytest.raises(InpaintlabError, match="reference"):
        fid.update(fake[:2])


def test_fid_on_precomputed_features_in_any_chunks(monkeypatch):
    fake, real = smooth_images(60, 16, 9), smooth_images(60, 16, 10) ** 1.5
    ff, fr = PixelFeatures()(fake).numpy(), PixelFeatures()(real).numpy()
    fid = FID(extractor=PixelFeatures())
    assert fid.feature_key == "inception-pool3:pixels-4x4"
    for i in range(0, 60, 13):
        fid.update(fake[i:i + 13], real[i:i + 13])
    expected = fid.compute()
    for chunk in (1024, 7, 1):
        monkeypatch.setattr(base, "FEATURE_CHUNK", chunk)
        assert values_on_features({"fid": fid}, ff, fr) == {"fid": pytest.approx(expected, rel=1e-9)}
    with pytest.raises(InpaintlabError, match="at least 2"):
        fid.compute()  # left reset
    errors = {}
    assert values_on_features({"fid": fid}, ff[:1], fr[:1], on_error=errors.__setitem__) == {}
    assert "at least 2" in str(errors["fid"])


def _write_pngs(folder, n, seed):
    folder.mkdir(parents=True, exist_ok=True)
    imgs = smooth_images(n, 24, seed)
    for i in range(n):
        arr = (imgs[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(arr).save(folder / f"img{i}.png")
    return sorted(folder.glob("*.png"))


def test_reference_stats_cached_and_invalidated(tmp_path, monkeypatch):
    monkeypatch.setenv("INPAINTLAB_CACHE", str(tmp_path / "cache"))
    files = _write_pngs(tmp_path / "data", 6, 11)
    ext = PixelFeatures()
    first = reference_statistics(files, ext, batch_size=4)
    assert ext.images == 6
    cached = list((tmp_path / "cache" / "fid-stats").glob("*.npz"))
    assert len(cached) == 1
    # independent: read the files with PIL, features with numpy
    arrs = np.stack([np.asarray(Image.open(f).convert("RGB"), np.float64) / 255 for f in files])
    feats = arrs.reshape(6, 4, 6, 4, 6, 3).mean(axis=(2, 4)).transpose(0, 3, 1, 2).reshape(6, 48)
    np.testing.assert_allclose(first.mu, feats.mean(0), rtol=1e-6)
    # the extractor's float32 features round once (SHALLOW_RTOL of their magnitude); a covariance entry
    # moves by at most 2 (std_i + std_j) times that: relative to the features, not an absolute 1e-7
    feat_tol = SHALLOW_RTOL * np.abs(feats).max()
    sigma_tol = 4 * feats.std(0, ddof=1).max() * feat_tol + 4 * feat_tol**2
    assert np.abs(first.sigma - np.cov(feats, rowvar=False)).max() <= sigma_tol

    second = reference_statistics(reversed(files), ext, batch_size=4)  # order does not matter
    assert ext.images == 6  # a cache hit
    np.testing.assert_array_equal(second.sigma, first.sigma)

    other = PixelFeatures()
    other.identity = "another network"
    reference_statistics(files, other)
    assert other.images == 6  # the network is part of the key

    time.sleep(0.01)
    _write_pngs(tmp_path / "new", 1, 12)[0].replace(files[2])  # a changed file
    os.utime(files[2])
    third = reference_statistics(files, ext, batch_size=4)
    assert ext.images == 12  # recomputed
    assert not np.allclose(third.mu, first.mu)
    assert len(list((tmp_path / "cache" / "fid-stats").glob("*.npz"))) == 3
