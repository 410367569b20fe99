"""StrDiffusion's discriminator and D loss against independent references (PyTorch losses, NumPy, SciPy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from scipy.signal import convolve2d

from inpaintlab.methods.strdiffusion.discriminator import (
    STDDEV_EPS, DiscriminatorConfig, TimeDiscriminator, adversarial_loss, discriminator_loss, fir_downsample,
    load_reference_state_dict, minibatch_stddev, timestep_embedding, triplet_loss)

from ..conftest import DEEP_RTOL, FLOAT32_EPS, SHALLOW_RTOL, assert_close


def randomised(cfg: DiscriminatorConfig, seed: int = 0) -> TimeDiscriminator:
    """A discriminator with every weight and bias O(1)-random.

    The reference initialisation makes conv2 / final_conv ~1e-5 (init scale 0) and biases 0, which
    would hide the stddev channel's and the blocks' contributions behind round-off.
    """
    torch.manual_seed(seed)
    d = TimeDiscriminator(cfg)
    with torch.no_grad():
        for p in d.parameters():
            fan_in = p[0].numel() if p.ndim > 1 else 1
            p.uniform_(-1.0, 1.0).mul_(math.sqrt(3.0 / fan_in) if p.ndim > 1 else 0.1)
    return d.eval()


def inputs(n: int, size: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g), torch.rand(n, 1, size, size, generator=g)


# ---------------------------------------------------------------------------------------------
# losses


def test_adversarial_loss_is_bce_with_logits():
    g = torch.Generator().manual_seed(0)
    real, fake = 3 * torch.randn(6, 1, generator=g), 3 * torch.randn(6, 1, generator=g)
    bce = nn.BCEWithLogitsLoss()
    want_real, want_fake = bce(real, torch.ones_like(real)), bce(fake, torch.zeros_like(fake))
    got_real, got_fake = adversarial_loss(real, fake)
    assert_close(got_real, want_real, SHALLOW_RTOL, "real term")
    assert_close(got_fake, want_fake, SHALLOW_RTOL, "fake term")
    # (N,) logits (our D's output) give the same numbers as the reference's (N, 1)
    r2, f2 = adversarial_loss(real.view(-1), fake.view(-1))
    assert_close(r2 + f2, want_real + want_fake, SHALLOW_RTOL, "adversarial sum")


def test_triplet_loss_matches_torch_and_numpy():
    g = torch.Generator().manual_seed(1)
    a, p, n = (2 * torch.randn(8, generator=g) for _ in range(3))
    n[0] = a[0] + 5  # one triplet far past the margin (clamped to 0) ...
    p[1] = a[1]      # ... and one with a zero positive distance (eps matters)
    want_torch = nn.TripletMarginLoss(margin=1.0)(a.view(-1, 1), p.view(-1, 1), n.view(-1, 1))
    an, pn, nn_ = (v.double().numpy() for v in (a, p, n))
    want_np = np.mean(np.maximum(np.abs(an - pn + 1e-6) - np.abs(an - nn_ + 1e-6) + 1.0, 0.0))
    got = triplet_loss(a, p, n)
    assert_close(got, want_torch, SHALLOW_RTOL, "triplet vs TripletMarginLoss")
    assert_close(got, want_np, SHALLOW_RTOL, "triplet vs NumPy")
    # (N, 1) input gives the same; a 1-D TripletMarginLoss would not (one norm over the batch)
    assert_close(triplet_loss(a.view(-1, 1), p.view(-1, 1), n.view(-1, 1)), want_np, SHALLOW_RTOL, "(N,1)")
    wrong = nn.TripletMarginLoss(margin=1.0)(a, p, n)
    assert abs(float(wrong) - want_np) > 1e-3


def test_discriminator_loss_sums_its_parts():
    g = torch.Generator().manual_seed(2)
    r, f, a = (torch.randn(4, generator=g, requires_grad=True) for _ in range(3))
    total, parts = discriminator_loss(r, f, a, margin=0.5, triplet_weight=2.0)
    bce = nn.BCEWithLogitsLoss()
    want = (bce(r, torch.ones(4)) + bce(f, torch.zeros(4))
            + 2.0 * nn.TripletMarginLoss(margin=0.5)(a.view(-1, 1), r.view(-1, 1), f.view(-1, 1)))
    assert_close(total, want, SHALLOW_RTOL, "total")
    assert_close(parts["adversarial"], parts["real"] + parts["fake"], SHALLOW_RTOL, "parts")
    total.backward()  # differentiable in all three logits
    assert all(v.grad is not None for v in (r, f, a))


# ---------------------------------------------------------------------------------------------
# building blocks


@pytest.mark.parametrize("h, w", [(16, 16), (15, 17)])
def test_fir_downsample_matches_scipy(h, w):
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, h, w, generator=g, dtype=torch.float64)
    x[0, 0, 3, 5] += 4.0  # an isolated spike and a hard edge: content the filter must place correctly
    x[1, 2, :, : w // 3] -= 2.0
    k = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0
    # 'full' output j sums x[j-3 .. j]; with one zero pixel of padding, output i of upfirdn2d(down=2)
    # sums x[2i-1 .. 2i+2], i.e. full index 2i+2; the output size is (H + 2 - 4) // 2 + 1
    oh, ow = (h - 2) // 2 + 1, (w - 2) // 2 + 1
    want = np.stack([np.stack([convolve2d(c, k, mode="full")[2:2 + 2 * oh:2, 2:2 + 2 * ow:2] for c in img])
                     for img in x.numpy()])
    got = fir_downsample(x)
    assert got.shape == (2, 3, oh, ow)
    assert_close(got, want, SHALLOW_RTOL, f"fir {h}x{w}")
    # an asymmetric kernel checks the orientation (upfirdn2d convolves, it does not correlate)
    ka = [1.0, 2.0, 4.0, 8.0]
    want_a = np.stack([np.stack([convolve2d(c, np.outer(ka, ka) / np.sum(ka) ** 2, mode="full")[2:2 + 2 * oh:2,
                                                                                           2:2 + 2 * ow:2]
                                 for c in img]) for img in x.numpy()])
    assert_close(fir_downsample(x, ka), want_a, SHALLOW_RTOL, "asymmetric kernel")


def test_timestep_embedding_matches_numpy():
    t = torch.tensor([1, 2, 57, 100, 400])
    for dim in (256, 7):
        half = dim // 2
        freq = np.exp(-np.log(1e4) * np.arange(half) / (half - 1))
        arg = t.numpy()[:, None].astype(np.float64) * freq[None]
        want = np.concatenate([np.sin(arg), np.cos(arg)] + ([np.zeros((len(t), 1))] if dim % 2 else []), 1)
        got = timestep_embedding(t, dim)
        assert got.shape == (5, dim)
        # float32 rounds the argument t * w (magnitude up to 400) by ~eps * 400 radians
        assert_close(got, want, 4 * FLOAT32_EPS * 400, f"dim {dim}")


def test_minibatch_stddev_matches_numpy():
    g = torch.Generator().manual_seed(4)
    h = torch.randn(8, 5, 3, 2, generator=g, dtype=torch.float64)
    out = minibatch_stddev(h, 4)
    assert out.shape == (8, 6, 3, 2)
    hn = h.numpy()
    m = 8 // 4
    for b in range(8):
        members = [b % m + k * m for k in range(4)]  # the reference's strided groups
        std = np.sqrt(hn[members].var(0) + STDDEV_EPS)
        assert_close(out[b, 5], np.full((3, 2), std.mean()), SHALLOW_RTOL, f"image {b}")
    assert torch.equal(out[:, :5], h)
    # group 1: a constant sqrt(1e-8) = 1e-4 channel
    assert_close(minibatch_stddev(h, 1)[:, 5], torch.full((8, 3, 2), 1e-4, dtype=torch.float64), SHALLOW_RTOL, "g1")
    with pytest.raises(ValueError, match="multiple"):
        minibatch_stddev(h[:6], 4)


# ---------------------------------------------------------------------------------------------
# the network


def test_state_dict_keys_are_the_reference_ones():
    cfg = DiscriminatorConfig(ngf=4, t_emb_dim=16)
    d = TimeDiscriminator(cfg)
    sd = d.state_dict()
    # attribute names of networks.py::Discriminator / DownConvBlock / TimestepEmbedding
    want = {"t_embed.main.0.weight": (16, 16), "t_embed.main.0.bias": (16,), "t_embed.main.2.weight": (16, 16),
            "t_embed.main.2.bias": (16,), "start_conv.weight": (8, 4, 1, 1), "start_conv.bias": (8,),
            "final_conv.weight": (32, 33, 3, 3), "final_conv.bias": (32,), "end_linear.weight": (1, 32),
            "end_linear.bias": (1,)}
    for i, (cin, cout) in enumerate([(8, 8), (8, 16), (16, 32), (32, 32)], 1):
        want |= {f"conv{i}.conv1.0.weight": (cout, cin, 3, 3), f"conv{i}.conv1.0.bias": (cout,),
                 f"conv{i}.conv2.0.weight": (cout, cout, 3, 3), f"conv{i}.conv2.0.bias": (cout,),
                 f"conv{i}.dense_t1.weight": (cout, 16), f"conv{i}.dense_t1.bias": (cout,),
                 f"conv{i}.skip.0.weight": (cout, cin, 1, 1)}
    assert {k: tuple(v.shape) for k, v in sd.items()} == want
    # a DataParallel-saved dict ("module." prefix) loads
    other = TimeDiscriminator(cfg)
    load_reference_state_dict(other, {"module." + k: v for k, v in sd.items()})
    assert all(torch.equal(other.state_dict()[k], v) for k, v in sd.items())


@torch.no_grad()
def test_initialisation_is_variance_scaling_with_fan_out():
    d = TimeDiscriminator(DiscriminatorConfig(ngf=4, t_emb_dim=16))
    w = d.conv2.conv1[0].weight  # (16, 8, 3, 3): fan_out 16 * 9
    assert float(w.abs().max()) <= math.sqrt(3.0 / (16 * 9)) and float(w.abs().max()) > 0.5 * math.sqrt(3.0 / 144)
    assert float(d.final_conv.weight.abs().max()) <= math.sqrt(3e-10 / (32 * 9))  # init scale 0 -> 1e-10
    assert float(d.conv4.conv2[0].weight.abs().max()) <= math.sqrt(3e-10 / (32 * 9))
    assert float(d.start_conv.bias.abs().max()) == 0.0


@pytest.mark.parametrize("size", [16, 32])
def test_one_logit_per_image(size, one_thread):
    d = TimeDiscriminator(DiscriminatorConfig(ngf=4, t_emb_dim=16))
    y, x = inputs(2, size)
    assert d(torch.tensor([3, 7]), y, x).shape == (2,)
    assert d(5, y, x).shape == (2,)  # a scalar step is shared by the batch
    assert d.score(torch.tensor([5]), y, x).shape == (2,)
    with pytest.raises(ValueError):
        d(torch.tensor([1, 2, 3]), y, x)
    # the float32 sinusoid follows the weights' dtype
    assert d.double()(3, y.double(), x.double()).dtype == torch.float64


def test_score_is_per_sample_and_training_forward_is_not(one_thread):
    d = randomised(DiscriminatorConfig(ngf=4, t_emb_dim=16))
    y, x = inputs(4, 16)
    t = torch.tensor([2, 9, 40, 100])
    with torch.no_grad():
        batched = d.score(t, y, x)
        alone = torch.cat([d(t[i:i + 1], y[i:i + 1], x[i:i + 1]) for i in range(4)])  # batch 1: group 1
        train = d(t, y, x)  # group min(4, 4) = 4
    assert_close(batched, alone, DEEP_RTOL, "score vs one at a time")
    assert float((train - alone).abs().max()) > 1e-3 * float(alone.abs().max())
    # the step conditions the logit
    with torch.no_grad():
        assert not torch.allclose(d.score(torch.full((4,), 2), y, x), d.score(torch.full((4,), 90), y, x))


def test_config_round_trip():
    cfg = DiscriminatorConfig(ngf=8, t_emb_dim=32)
    assert DiscriminatorConfig.from_dict(cfg.to_dict()) == cfg
    assert DiscriminatorConfig() == DiscriminatorConfig(nc=4, ngf=64, t_emb_dim=256)
    with pytest.raises(ValueError, match="unknown"):
        DiscriminatorConfig.from_dict({"ngf": 8, "ndf": 3})
    with pytest.raises(ValueError):
        DiscriminatorConfig(ngf=0)
