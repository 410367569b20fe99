"""The stateful metric suite: regions against NumPy, the inpainter's drift, region names, the prepared-reference path.

Every registered metric's batch-size independence, reset, identity value and weight files: tests/test_registries.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from inpaintlab.errors import InpaintlabError
from inpaintlab.inpainters import Backend, Inpainter
from inpaintlab.metrics import METRICS, build_metric, metrics_using, reference_metric_names

from ..conftest import SHALLOW_RTOL, assert_close
from .test_lpips import FILES, random_backbone, random_heads, save_torch


def fake_lpips_weights(monkeypatch, tmp_path, net):
    """Random LPIPS weights for ``net`` under the official file names, found through $INPAINTLAB_WEIGHTS."""
    rng = np.random.default_rng(7)
    save_torch(random_backbone(net, rng), tmp_path / FILES[net])
    save_torch(random_heads(net, rng), tmp_path / f"{net}.pth")
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home-empty"))


def data(n=7, h=40, w=44, seed=0):
    g = torch.Generator().manual_seed(seed)
    ref = torch.rand(n, 3, h, w, generator=g)
    hole = torch.zeros(n, 1, h, w)
    for i in range(n):  # a different rectangle per image
        r, c = 3 + 2 * i, 4 + i
        hole[i, :, r:r + 12 + i, c:c + 15] = 1
    res = (ref + 0.15 * torch.randn(n, 3, h, w, generator=g) * (0.3 + hole)).clamp(0, 1)
    return res, ref, hole


def test_psnr_closed_form_per_region():
    ref = torch.zeros(1, 3, 16, 16)
    hole = torch.zeros(1, 1, 16, 16)
    hole[..., :8, :] = 1
    res = torch.where(hole.bool(), 0.1, 0.3).expand(1, 3, 16, 16)
    # hole: MSE 0.01 -> 20 dB; kept: MSE 0.09 -> 10 log10(1/0.09); image: MSE 0.05.
    # rel 1e-6: 0.1 and 0.3 in float32 and the float32 result each round once (~6e-8 relative)
    assert build_metric("psnr@hole").update(res, ref, hole).item() == pytest.approx(20.0, rel=1e-6)
    assert build_metric("psnr@kept").update(res, ref, hole).item() == pytest.approx(10 * math.log10(1 / 0.09), rel=1e-6)
    assert build_metric("psnr").update(res, ref, hole).item() == pytest.approx(10 * math.log10(1 / 0.05), rel=1e-6)


def test_regions_match_numpy():
    res, ref, hole = data()
    r, f, m = res.double().numpy(), ref.double().numpy(), hole.numpy()[:, 0].astype(bool)
    for i in range(res.shape[0]):
        for region, sel in (("hole", m[i]), ("kept", ~m[i])):
            d = r[i][:, sel] - f[i][:, sel]  # (3, pixels in region)
            assert build_metric(f"mae@{region}").update(res[i:i + 1], ref[i:i + 1], hole[i:i + 1]).item() == \
                pytest.approx(np.abs(d).mean(), rel=1e-5)
            assert build_metric(f"psnr@{region}").update(res[i:i + 1], ref[i:i + 1], hole[i:i + 1]).item() == \
                pytest.approx(10 * np.log10(1 / (d**2).mean()), rel=1e-5)
            # masked SSIM: scikit-image's full SSIM map, valid window centres (border 5 cropped), in the region
            _, smap = structural_similarity(r[i].transpose(1, 2, 0), f[i].transpose(1, 2, 0), channel_axis=2,
                                            gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                            data_range=1.0, full=True)
            valid = np.zeros_like(sel)
            valid[5:-5, 5:-5] = True
            expected = smap[sel & valid].mean()
            assert build_metric(f"ssim@{region}").update(res[i:i + 1], ref[i:i + 1], hole[i:i + 1]).item() == \
                pytest.approx(expected, abs=1e-5)


class Shifter(Backend):
    """A backend that fills the hole with grey and moves every kept pixel by 0.05."""

    def inpaint(self, images, hole, *, generator):
        return torch.where(hole > 0.5, 0.5, images + 0.05)


def test_kept_drift_is_the_inpainters_number():
    res, ref, hole = data(n=3, seed=2)
    out = Inpainter(Shifter(), name="shifter").run(ref, hole)
    metric = build_metric("kept-drift").update(out.raw, ref, hole)
    # the wrapper reports the metric's number (float32 of it) ...
    assert torch.equal(metric.float(), out.kept_drift)
    # ... and both are the mean |raw - input| over the kept pixels, here in float64 (rel 1e-6: the float32 raw
    # output and result round once each, ~1e-7 relative)
    r64, x64, h64 = out.raw.double(), ref.double(), hole.double()
    expected = ((r64 - x64).abs() * (1 - h64)).sum((1, 2, 3)) / ((1 - h64).sum((1, 2, 3)) * 3)
    assert_close(metric, expected, SHALLOW_RTOL, "kept drift")
    assert (expected > 0.02).all()  # not a degenerate case: the kept pixels moved


def test_regions_are_checked_and_named():
    with pytest.raises(InpaintlabError, match="supports region kept"):
        build_metric("kept-drift@hole")
    with pytest.raises(InpaintlabError, match="supports region image"):
        build_metric("cd@hole")
    with pytest.raises(InpaintlabError, match="unknown metric 'nope'"):
        build_metric("nope")
    assert build_metric("psnr@hole").key == "psnr@hole" and build_metric("psnr").key == "psnr"
    assert build_metric("kept-drift").key == "kept-drift"


@pytest.mark.parametrize("name", reference_metric_names())
def test_prepared_reference_scores_as_a_fresh_update(name, monkeypatch, tmp_path):
    """RIP's cached path (prepare once, score many) gives what an evaluation's update gives, for every such metric."""
    if name == "aesthetic":  # a tiny CLIP in a hub cache and a random head under the official names
        from huggingface_hub import constants

        from .test_aesthetic import HEAD_FILE, put_tiny_clip_in_hub_cache, save_random_head

        save_random_head(tmp_path / HEAD_FILE)
        put_tiny_clip_in_hub_cache(tmp_path / "hub")
        monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(tmp_path))
        monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home-empty"))
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    elif METRICS.get(name).weight_files:  # random weights under the official names: the loading code still runs
        fake_lpips_weights(monkeypatch, tmp_path, name.removeprefix("lpips-"))
    res, ref, hole = data(n=3)
    res, ref = (F.interpolate(t, size=176, mode="bilinear") for t in (res, ref))  # MS-SSIM needs 161 px
    m = build_metric(name)
    prepared = m.prepare(ref)
    fresh = build_metric(name).update(res, ref)
    for _ in range(2):  # the prepared reference is reusable
        assert torch.allclose(m.score(prepared, res), fresh, rtol=1e-6, atol=0)
    cached = m.score(prepared, ref)  # an image against itself: the metric's identity value
    assert torch.allclose(cached, build_metric(name).update(ref, ref), rtol=1e-6, atol=1e-12)


def test_metrics_using_a_weight_file():
    # one Inception for the three dataset-level metrics; each LPIPS head file for its own net only
    # (every metric's files known to inpaintlab.weights, and the offline error naming them: test_registries.py)
    assert metrics_using("pt_inception-2015-12-05-6726825d.pth") == ["fid", "p-ids", "u-ids"]
    assert metrics_using("alex.pth") == ["lpips-alex"]
    assert metrics_using("not-a-weight-file.pth") == []
