"""P-IDS / U-IDS (Co-Mod-GAN): limits on synthetic features, sklearn's own score as reference, pairing checks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import sklearn.svm
import torch
from sklearn.svm import LinearSVC

from inpaintlab import weights
from inpaintlab.errors import InpaintlabError, MissingWeightsError
from inpaintlab.metrics.base import METRICS, FeatureMetric, values_on_features
from inpaintlab.metrics.ids import PIDS, UIDS, PairingError, check_pairing, ids_scores

FILE = "pt_inception-2015-12-05-6726825d.pth"


class PixelFeatures:
    """A cheap deterministic stand-in for Inception: 2x2 average-pooled pixels (12-d)."""

    identity = "pixels-2x2"

    def __call__(self, images):
        return torch.nn.functional.adaptive_avg_pool2d(images, 2).flatten(1)


def metrics():
    return PIDS(extractor=PixelFeatures()), UIDS(extractor=PixelFeatures())


def test_registered_as_dataset_metrics():
    assert METRICS.get("p-ids") is PIDS and METRICS.get("u-ids") is UIDS
    p, u = metrics()
    assert p.dataset_level and u.dataset_level and p.higher_is_better and u.higher_is_better


def test_separable_features_give_zero():
    rng = np.random.default_rng(0)
    d, n = 16, 40
    direction = np.zeros(d)
    direction[0] = 1
    real = rng.normal(size=(n, d)) + 4 * direction
    fake = rng.normal(size=(n, d)) - 4 * direction
    assert (real[:, 0] > fake[:, 0].max()).all()  # separable by construction
    p, u = metrics()
    for m in (p, u):
        for i in range(0, n, 15):  # in several updates
            m.update_features(fake[i:i + 15], real[i:i + 15])
    assert u.compute() == 0.0
    assert p.compute() == 0.0


def test_identical_sets_give_half_and_zero():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(30, 8)).astype(np.float32)
    p_ids, u_ids = ids_scores(real, real.copy())
    # Each pair has one decision value d: d <= 0 misclassifies the real copy, d > 0 the fake one,
    # so exactly half of all images are misclassified; no fake scores strictly above its real twin.
    assert u_ids == 0.5
    assert p_ids == 0.0
    images = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    p, u = metrics()
    for m in (p, u):
        m.update(images, images.clone(), names=list("abcdef"), reference_names=list("abcdef"))
    assert u.compute() == 0.5 and p.compute() == 0.0


def test_matches_sklearn_score_on_overlapping_features():
    rng = np.random.default_rng(3)
    n, d = 80, 10
    real = rng.normal(size=(n, d))
    fake = real + rng.normal(size=(n, d)) * 0.8 + 0.3  # paired, overlapping
    # the reference: Co-Mod-GAN's recipe written out with sklearn directly
    svm = LinearSVC(dual=False).fit(np.concatenate([real, fake]), np.r_[np.ones(n), np.zeros(n)])
    ref_u = 1 - svm.score(np.concatenate([real, fake]), np.r_[np.ones(n), np.zeros(n)])
    ref_p = np.mean(svm.decision_function(fake) > svm.decision_function(real))
    assert 0 < ref_u < 0.5 and 0 < ref_p < 0.5  # a non-trivial case
    p, u = metrics()
    for m in (p, u):
        m.update_features(torch.from_numpy(fake[:50]), torch.from_numpy(real[:50]))
        m.update_features(fake[50:], real[50:])
    assert u.compute() == pytest.approx(ref_u, abs=1e-6)
    assert p.compute() == pytest.approx(ref_p, abs=1e-6)


def test_p_ids_and_u_ids_share_one_svm_fit(monkeypatch):
    rng = np.random.default_rng(7)
    n, d = 60, 10
    real = rng.normal(size=(n, d)).astype(np.float32)
    fake = (real + rng.normal(size=(n, d)) * 0.8 + 0.3).astype(np.float32)
    fits = []

    class CountingSVC(LinearSVC):
        def fit(self, *a, **k):
            fits.append(1)
            return super().fit(*a, **k)

    monkeypatch.setattr(sklearn.svm, "LinearSVC", CountingSVC)
    p, u = metrics()
    assert isinstance(p, FeatureMetric) and p.feature_key == u.feature_key == "inception-pool3:pixels-2x2"
    got = values_on_features({"p-ids": p, "u-ids": u}, fake, real)
    assert len(fits) == 1
    # each on its own (its own fit) gives the same numbers, and the sklearn recipe too
    for m in (p, u):
        m.update_features(fake, real)
    assert got == {"p-ids": p.compute(), "u-ids": u.compute()} and len(fits) == 3
    x, y = np.concatenate([real, fake]).astype(np.float64), np.r_[np.ones(n), np.zeros(n)]
    svm = LinearSVC(dual=False).fit(x, y)
    assert got["u-ids"] == pytest.approx(1 - svm.score(x, y), abs=1e-12)
    assert got["p-ids"] == pytest.approx(np.mean(svm.decision_function(x[n:]) > svm.decision_function(x[:n])), abs=1e-12)
    assert 0 < got["u-ids"] < 0.5 and 0 < got["p-ids"] < 0.5
    # a failure is reported per metric, and the metrics are left reset
    errors = {}
    assert values_on_features({"p-ids": p, "u-ids": u}, fake[:0], real[:0], on_error=errors.__setitem__) == {}
    assert set(errors) == {"p-ids", "u-ids"} and "no images" in str(errors["u-ids"])


def test_p_ids_counts_pairs_by_index():
    # The fakes are the reals shifted towards "real" for the first 10 pairs and away for the rest.
    rng = np.random.default_rng(4)
    n, d = 40, 6
    base = rng.normal(size=(n, d))
    real = base + np.r_[2.0, np.zeros(d - 1)]
    fake = base - np.r_[2.0, np.zeros(d - 1)]
    fake[:10] = real[:10] + np.r_[0.5, np.zeros(d - 1)]  # these look more real than their originals
    p_ids, _ = ids_scores(real, fake)
    svm = LinearSVC(dual=False).fit(np.concatenate([real, fake]), np.r_[np.ones(n), np.zeros(n)])
    assert svm.coef_[0, 0] > 0  # the SVM learned that feature 0 means "real"
    assert p_ids == pytest.approx(10 / 40)
    # pairing matters: reversing the fakes' order changes the pairs and the score
    assert ids_scores(real, fake[::-1])[0] != p_ids


def test_pairing_mismatch_is_an_error():
    images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    p, u = metrics()
    with pytest.raises(PairingError, match="first at index 1: inpainted 'b' vs reference 'c'") as err:
        p.update(images, images, names=["a", "b", "c"], reference_names=["a", "c", "b"])
    assert "\n" not in str(err.value) and isinstance(err.value, InpaintlabError)
    with pytest.raises(PairingError):
        u.update(images, images, names=["a", "b"], reference_names=["a", "b"])  # 2 names, 3 images
    with pytest.raises(PairingError):
        u.update(images, images[:2])
    with pytest.raises(PairingError):
        u.update(images, images, names=["a", "b", "c"])  # only one side named
    with pytest.raises(PairingError):
        u.update_features(np.zeros((3, 4)), np.zeros((2, 4)))
    with pytest.raises(PairingError):
        check_pairing(["a"], ["a", "b"])
    check_pairing(["x", "y"], ["x", "y"])
    with pytest.raises(InpaintlabError, match="no images"):
        p.compute()  # nothing was added by the failed updates
    with pytest.raises(InpaintlabError, match="reference"):
        p.update(images)


def test_reset_forgets():
    rng = np.random.default_rng(6)
    p, _ = metrics()
    p.update_features(rng.normal(size=(5, 3)), rng.normal(size=(5, 3)))
    p.reset()
    with pytest.raises(InpaintlabError, match="no images"):
        p.compute()


def test_default_extractor_needs_the_inception_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    gone = (tmp_path / "nowhere" / FILE).as_uri()
    monkeypatch.setitem(weights.WEIGHT_FILES, FILE, replace(weights.WEIGHT_FILES[FILE], url=gone))
    for cls in (PIDS, UIDS):
        with pytest.raises(MissingWeightsError, match=FILE):
            cls()
