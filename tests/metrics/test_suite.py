"""The stateful metric suite: regions against NumPy, batch-size independence, reset, shared names, weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from inpaintlab import weights
from inpaintlab.errors import InpaintlabError, MissingWeightsError
from inpaintlab.inpainters import load_inpainter
from inpaintlab.metrics import METRICS, build_metric, metrics_using, reference_metric_names

from .test_lpips import FILES, random_backbone, random_heads, save_torch

def fake_lpips_weights(monkeypatch, tmp_path, net):
    """Random LPIPS weights for ``net`` under the official file names, found through $INPAINTLAB_WEIGHTS."""
    rng = np.random.default_rng(7)
    save_torch(random_backbone(net, rng), tmp_path / FILES[net])
    save_torch(random_heads(net, rng), tmp_path / f"{net}.pth")
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home-empty"))


PER_IMAGE = ["psnr", "psnr@hole", "psnr@kept", "ssim", "ssim@hole", "ssim@kept", "mae", "mae@hole", "mae@kept",
             "cd", "boundary-gradient", "kept-drift"]


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
    assert build_metric("psnr@hole").update(res, ref, hole).item() == pytest.approx(20.0, abs=1e-4)
    assert build_metric("psnr@kept").update(res, ref, hole).item() == pytest.approx(10 * math.log10(1 / 0.09), abs=1e-4)
    assert build_metric("psnr").update(res, ref, hole).item() == pytest.approx(10 * math.log10(1 / 0.05), abs=1e-4)


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


@pytest.mark.parametrize("spec", PER_IMAGE)
def test_batch_size_never_changes_compute_and_reset_forgets(spec):
    res, ref, hole = data()
    n = res.shape[0]
    results = []
    for bs in (1, 3, n):
        m = build_metric(spec)
        for s in range(0, n, bs):
            m.update(res[s:s + bs], ref[s:s + bs], hole[s:s + bs])
        results.append(m.compute())
    assert results[0] == pytest.approx(results[1], rel=1e-6) and results[0] == pytest.approx(results[2], rel=1e-6)
    m.reset()
    assert math.isnan(m.compute())
    m.update(res[:2], ref[:2], hole[:2])
    alone = build_metric(spec)
    alone.update(res[:2], ref[:2], hole[:2])
    assert m.compute() == alone.compute()
    assert not math.isnan(results[0])


def test_kept_drift_is_the_inpainters_number():
    res, ref, hole = data(n=3, seed=2)
    out = load_inpainter("telea").run(ref, hole)
    assert torch.allclose(build_metric("kept-drift").update(out.raw, ref, hole).float(), out.kept_drift, atol=1e-6)
    shifted = (ref + 0.05 * (1 - hole)).clamp(0, 1)  # a backend that moved the kept pixels
    expected = ((shifted - ref).abs() * (1 - hole)).sum((1, 2, 3)) / ((1 - hole).sum((1, 2, 3)) * 3)
    assert torch.allclose(build_metric("kept-drift").update(shifted, ref, hole).float(), expected, atol=1e-6)


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
    if METRICS.get(name).weight_files:  # random weights under the official names: the loading code still runs
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


def test_weight_files_of_every_metric(monkeypatch, tmp_path):
    assert METRICS.get("fid").weight_files == METRICS.get("p-ids").weight_files == \
        METRICS.get("u-ids").weight_files == ("pt_inception-2015-12-05-6726825d.pth",)
    assert metrics_using("pt_inception-2015-12-05-6726825d.pth") == ["fid", "p-ids", "u-ids"]
    assert metrics_using("alex.pth") == ["lpips-alex"]
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(tmp_path / "none"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))

    def offline(name, *a, **k):  # what an offline machine gets from the download step
        raise MissingWeightsError(f"weight file {name} is missing and could not be downloaded")

    monkeypatch.setattr(weights, "download_file", offline)
    with pytest.raises(MissingWeightsError, match="alexnet-owt-7be5be79.pth"):
        build_metric("lpips-alex")
