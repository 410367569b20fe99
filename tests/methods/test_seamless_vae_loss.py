"""The port of LDM's ``LPIPSWithDiscriminator`` and taming's PatchGAN (methods/seamless/vae_loss.py).

Every expected value is recomputed independently: NumPy closed forms for the losses and reductions,
``torch.autograd.grad`` / analytic gradients for the adaptive weight, taming's layer list for the
discriminator's size. Tiny CPU models only.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn as nn

from inpaintlab.errors import InpaintlabError
from inpaintlab.methods.seamless.vae_loss import (LDMVAELoss, ModelRangeLPIPS, NLayerDiscriminator, VAELossConfig,
                                                  adaptive_weight, adopt_weight, hinge_d_loss, vanilla_d_loss,
                                                  weights_init)


def close(a, b, rel=1e-5, abs_floor=1e-7):
    """|a - b| <= rel * max(|a|, |b|) + abs_floor, elementwise (tolerance relative to the magnitudes)."""
    a = np.asarray(a.detach().cpu().double() if isinstance(a, torch.Tensor) else a, dtype=np.float64)
    b = np.asarray(b.detach().cpu().double() if isinstance(b, torch.Tensor) else b, dtype=np.float64)
    tol = rel * np.maximum(np.abs(a), np.abs(b)) + abs_floor
    return bool(np.all(np.abs(a - b) <= tol))


class TinyDecoder(nn.Module):
    """A stand-in for the VAE: conv -> SiLU -> ``conv_out`` (the last layer the adaptive weight uses)."""

    def __init__(self):
        super().__init__()
        self.conv_in = nn.Conv2d(3, 4, 3, padding=1)
        self.conv_out = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, x):
        return self.conv_out(torch.nn.functional.silu(self.conv_in(x)))


class ToyPerceptual(nn.Module):
    """A differentiable per-sample distance shaped like LPIPS's output, (N, 1, 1, 1)."""

    def forward(self, x, y):
        return ((x - y) ** 2).mean(dim=(1, 2, 3), keepdim=True) * 3.0 + 0.125


def toy_perceptual_np(x, y):
    return ((x - y) ** 2).mean(axis=(1, 2, 3), keepdims=True) * 3.0 + 0.125


@pytest.fixture
def batch():
    torch.manual_seed(0)
    dec = TinyDecoder()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    kl = torch.rand(2) * 50 + 10
    return dec, x, kl


def make_loss(**kw):
    torch.manual_seed(1)
    cfg = VAELossConfig(**kw)
    return LDMVAELoss(cfg, ToyPerceptual() if cfg.perceptual_weight > 0 else None)


# ---- config and taming's functions ------------------------------------------------------------


def test_config_defaults_are_sd15_vae_config():
    cfg = VAELossConfig()
    assert (cfg.disc_start, cfg.kl_weight, cfg.disc_weight, cfg.disc_in_channels, cfg.perceptual_weight,
            cfg.disc_num_layers, cfg.disc_loss, cfg.logvar_init, cfg.disc_factor, cfg.disc_ndf) == (
        50001, 0.000001, 0.5, 3, 1.0, 3, "hinge", 0.0, 1.0, 64)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.kl_weight = 1.0  # type: ignore[misc]
    with pytest.raises(InpaintlabError):
        VAELossConfig(disc_loss="wgan")  # type: ignore[arg-type]
    with pytest.raises(InpaintlabError):
        VAELossConfig(kl_weight=-1.0)
    with pytest.raises(InpaintlabError, match="perceptual"):
        LDMVAELoss(VAELossConfig(), None)
    loss = make_loss(perceptual_weight=0.0)
    w = torch.zeros(3, 3, 1, 1, requires_grad=True)
    with pytest.raises(InpaintlabError, match="per-sample KL"):
        loss.generator_loss(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8), torch.tensor(1.0), 0, w)


def test_adopt_weight_and_disc_factor_switch_at_disc_start():
    assert adopt_weight(1.0, 0, threshold=5) == 0.0
    assert adopt_weight(1.0, 4, threshold=5) == 0.0
    assert adopt_weight(1.0, 5, threshold=5) == 1.0
    assert adopt_weight(1.0, 6, threshold=5) == 1.0
    assert adopt_weight(0.7, 3, threshold=5, value=0.25) == 0.25
    assert adopt_weight(0.7, 3) == 0.7  # threshold 0: always on
    loss = make_loss(perceptual_weight=0.0)
    assert [loss.disc_factor(s) for s in (0, 50000, 50001, 50002, 10 ** 6)] == [0.0, 0.0, 1.0, 1.0, 1.0]


def test_hinge_and_vanilla_against_closed_forms():
    g = torch.Generator().manual_seed(3)
    real = torch.randn(2, 1, 6, 6, generator=g) * 2
    fake = torch.randn(2, 1, 6, 6, generator=g) * 2
    r, f = real.double().numpy(), fake.double().numpy()
    hinge = 0.5 * (np.maximum(0.0, 1.0 - r).mean() + np.maximum(0.0, 1.0 + f).mean())
    vanilla = 0.5 * (np.log1p(np.exp(-r)).mean() + np.log1p(np.exp(f)).mean())
    assert close(hinge_d_loss(real, fake), hinge)
    assert close(vanilla_d_loss(real, fake), vanilla)
    # the loss module picks the configured one
    loss = make_loss(perceptual_weight=0.0, disc_loss="vanilla")
    assert loss.d_loss is vanilla_d_loss


# ---- the adaptive weight ----------------------------------------------------------------------


def test_adaptive_weight_equals_hand_computation():
    # recon = W h with W the last layer; nll = sum |x - W h|; g = -mean(a * (W h))
    g = torch.Generator().manual_seed(4)
    W = torch.randn(3, 5, generator=g).requires_grad_(True)
    h = torch.randn(5, 7, generator=g)
    x = torch.randn(3, 7, generator=g)
    a = torch.randn(3, 7, generator=g)
    recon = W @ h
    nll = torch.sum(torch.abs(x - recon))
    g_loss = -torch.mean(a * recon)
    got = adaptive_weight(nll, g_loss, W, 0.5)
    assert not got.requires_grad
    # analytic gradients (NumPy)
    Wn, hn, xn, an = (t.detach().double().numpy() for t in (W, h, x, a))
    grad_nll = -np.sign(xn - Wn @ hn) @ hn.T
    grad_g = -(an / an.size) @ hn.T
    want = np.linalg.norm(grad_nll) / (np.linalg.norm(grad_g) + 1e-4) * 0.5
    assert close(got, want)
    # and with torch.autograd.grad by hand
    gn = torch.autograd.grad(nll, W, retain_graph=True)[0]
    gg = torch.autograd.grad(g_loss, W, retain_graph=True)[0]
    assert close(got, torch.clamp(gn.norm() / (gg.norm() + 1e-4), 0, 1e4) * 0.5)
    # graphs were retained for the caller's backward
    (nll + g_loss).backward()
    assert W.grad is not None


def test_adaptive_weight_clamps_at_1e4():
    W = torch.ones(2, 2, requires_grad=True)
    nll = (W * 3.0).sum()
    g_loss = (W * 1e-9).sum()  # ||grad g|| ~ 2e-9 -> ratio ~ 6 / 1e-4 = 6e4 > 1e4
    assert close(adaptive_weight(nll, g_loss, W, 0.5), 1e4 * 0.5)


def test_generator_loss_uses_adaptive_weight_on_the_decoder_last_layer(batch):
    dec, x, kl = batch
    loss = make_loss(disc_start=0)
    xh = dec(x)
    total, log = loss.generator_loss(x, xh, kl, step=10, last_layer=dec.conv_out.weight)
    # recompute the parts independently
    nll = (loss.rec_loss(x, xh) / torch.exp(loss.logvar) + loss.logvar).sum() / x.shape[0]
    g_loss = -loss.discriminator(xh).mean()
    gn = torch.autograd.grad(nll, dec.conv_out.weight, retain_graph=True)[0]
    gg = torch.autograd.grad(g_loss, dec.conv_out.weight, retain_graph=True)[0]
    want = torch.clamp(gn.norm() / (gg.norm() + 1e-4), 0, 1e4) * 0.5
    assert close(log["d_weight"], want, rel=1e-4)
    assert close(log["g"], g_loss, rel=1e-5)


# ---- reductions and the total -----------------------------------------------------------------


def test_nll_and_kl_reductions_against_numpy(batch):
    dec, x, kl = batch
    loss = make_loss(perceptual_weight=0.7)
    with torch.no_grad():
        loss.logvar.fill_(0.3)
    xh = dec(x)
    _, log = loss.generator_loss(x, xh, kl, step=0, last_layer=dec.conv_out.weight)
    xn, xhn = x.double().numpy(), xh.detach().double().numpy()
    # LPIPS-like (N,1,1,1) broadcast over C, H, W before the sum
    rec = np.abs(xn - xhn) + 0.7 * toy_perceptual_np(xn, xhn)
    nll = np.sum(rec / np.exp(0.3) + 0.3) / xn.shape[0]
    assert close(log["nll"], nll, rel=1e-5)
    assert close(log["weighted_nll"], nll, rel=1e-5)
    assert close(log["rec"], rec.mean(), rel=1e-5)
    assert close(log["kl"], kl.double().numpy().sum() / 2, rel=1e-6)
    assert close(log["logvar"], 0.3)
    # perceptual_weight = 0: plain L1
    loss0 = make_loss(perceptual_weight=0.0)
    _, log0 = loss0.generator_loss(x, xh, kl, step=0, last_layer=dec.conv_out.weight)
    assert close(log0["nll"], np.abs(xn - xhn).sum() / 2, rel=1e-5)


def test_weighted_nll_uses_the_weights(batch):
    dec, x, kl = batch
    loss = make_loss(perceptual_weight=0.0)
    xh = dec(x)
    w = torch.rand(x.shape, generator=torch.Generator().manual_seed(5))
    _, log = loss.generator_loss(x, xh, kl, step=0, last_layer=dec.conv_out.weight, weights=w)
    want = (w.double().numpy() * np.abs(x.double().numpy() - xh.detach().double().numpy())).sum() / 2
    assert close(log["weighted_nll"], want, rel=1e-5)
    assert close(log["nll"], np.abs(x.double().numpy() - xh.detach().double().numpy()).sum() / 2, rel=1e-5)


def test_total_generator_loss_is_its_parts_recombined(batch):
    dec, x, kl = batch
    loss = make_loss(disc_start=100, kl_weight=1e-3)
    xh = dec(x)
    total, log = loss.generator_loss(x, xh, kl, step=100, last_layer=dec.conv_out.weight)
    assert log["disc_factor"].item() == 1.0
    want = log["weighted_nll"] + 1e-3 * log["kl"] + log["d_weight"] * 1.0 * log["g"]
    assert close(total, want, rel=1e-6)
    assert close(log["total"], total)


def test_before_disc_start_the_gan_term_is_zeroed_but_the_weight_is_computed(batch):
    dec, x, kl = batch
    loss = make_loss(disc_start=50001)
    xh = dec(x)
    total, log = loss.generator_loss(x, xh, kl, step=50000, last_layer=dec.conv_out.weight)
    # as coded in LDM: disc_factor (config) > 0, so the adaptive weight is still computed ...
    assert log["d_weight"].item() > 0
    assert log["disc_factor"].item() == 0.0
    # ... and multiplied by adopt_weight's 0: the total is exactly nll + kl_weight * kl
    assert total.item() == (log["weighted_nll"] + 1e-6 * log["kl"]).item()
    # the generator's gradients are those of the NLL + KL alone
    total.backward()
    got = [p.grad.clone() for p in dec.parameters()]
    dec.zero_grad()
    xh2 = dec(x)
    nll = (loss.rec_loss(x, xh2) / torch.exp(loss.logvar) + loss.logvar).sum() / 2
    (nll + 1e-6 * kl.sum() / 2).backward()
    for a, b in zip(got, (p.grad for p in dec.parameters())):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7 * float(b.abs().max()))
    # disc_factor = 0 in the config: no adaptive weight at all
    loss_off = make_loss(disc_factor=0.0)
    _, log_off = loss_off.generator_loss(x, dec(x), kl, step=10 ** 6, last_layer=dec.conv_out.weight)
    assert log_off["d_weight"].item() == 0.0


def test_adaptive_weight_falls_back_to_zero_in_eval_without_graph(batch):
    dec, x, kl = batch
    loss = make_loss(disc_start=0).eval()
    with torch.no_grad():
        total, log = loss.generator_loss(x, dec(x), kl, step=5, last_layer=dec.conv_out.weight)
    assert log["d_weight"].item() == 0.0
    assert torch.isfinite(total)
    assert close(total, log["weighted_nll"] + 1e-6 * log["kl"], rel=1e-6)
    loss.train()
    with torch.no_grad(), pytest.raises(InpaintlabError, match="adaptive"):
        loss.generator_loss(x, dec(x), kl, step=5, last_layer=dec.conv_out.weight)


# ---- gradient flow between the two players ----------------------------------------------------


def test_generator_step_leaves_no_gradient_on_the_discriminator(batch):
    dec, x, kl = batch
    loss = make_loss(disc_start=0)
    total, _ = loss.generator_loss(x, dec(x), kl, step=1, last_layer=dec.conv_out.weight)
    total.backward()
    assert all(p.grad is None for p in loss.discriminator.parameters())
    assert all(p.grad is not None for p in dec.parameters())
    assert loss.logvar.grad is not None  # logvar is a learned parameter (the trainer decides whether to step it)
    # the GAN term does reach the generator after disc_start: its gradient differs from the NLL-only one
    g_on = dec.conv_out.weight.grad.clone()
    dec.zero_grad()
    loss_pre = make_loss(disc_start=10)
    loss_pre.generator_loss(x, dec(x), kl, step=1, last_layer=dec.conv_out.weight)[0].backward()
    assert not torch.allclose(g_on, dec.conv_out.weight.grad)


def test_discriminator_step_sees_detached_inputs(batch):
    dec, x, kl = batch
    loss = make_loss(disc_start=0)
    xh = dec(x)
    d_loss, log = loss.discriminator_loss(x, xh, step=3)
    # value: hinge of two separate discriminator calls (BatchNorm statistics per call, as LDM)
    want = hinge_d_loss(loss.discriminator(x), loss.discriminator(xh.detach()))
    assert close(d_loss, want, rel=1e-5)
    assert close(log["disc"], d_loss)
    d_loss.backward()
    assert all(p.grad is None for p in dec.parameters())
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in loss.discriminator.parameters())
    assert loss.logvar.grad is None
    # before disc_start the discriminator loss is 0 x hinge
    d0, _ = make_loss(disc_start=10).discriminator_loss(x, xh, step=9)
    assert d0.item() == 0.0


# ---- the PatchGAN -----------------------------------------------------------------------------


def _taming_layers(input_nc=3, ndf=64, n_layers=3):
    """taming's layer list as (in, out, stride, bias, batchnorm) tuples."""
    layers = [(input_nc, ndf, 2, True, False)]
    mult = 1
    for n in range(1, n_layers):
        prev, mult = mult, min(2 ** n, 8)
        layers.append((ndf * prev, ndf * mult, 2, False, True))
    prev, mult = mult, min(2 ** n_layers, 8)
    layers.append((ndf * prev, ndf * mult, 1, False, True))
    layers.append((ndf * mult, 1, 1, True, False))
    return layers


@pytest.mark.parametrize("size", [32, 64])
def test_patchgan_output_shape(size):
    torch.manual_seed(0)
    d = NLayerDiscriminator()
    side = size
    for _, _, stride, _, _ in _taming_layers():
        side = (side + 2 * 1 - 4) // stride + 1
    with torch.no_grad():
        out = d(torch.zeros(2, 3, size, size))
    assert out.shape == (2, 1, side, side)
    assert side == {32: 2, 64: 6}[size]


def test_patchgan_parameter_count_and_keys():
    torch.manual_seed(0)
    d = NLayerDiscriminator(3, ndf=64, n_layers=3)
    want = sum(cin * cout * 16 + (cout if bias else 0) + (2 * cout if bn else 0)
               for cin, cout, _, bias, bn in _taming_layers())
    assert sum(p.numel() for p in d.parameters()) == want == 2_765_633
    keys = set(d.state_dict())
    assert {"main.0.weight", "main.0.bias", "main.2.weight", "main.3.weight", "main.3.bias", "main.3.running_mean",
            "main.5.weight", "main.6.weight", "main.8.weight", "main.9.weight", "main.11.weight",
            "main.11.bias"} <= keys
    assert "main.2.bias" not in keys and "main.8.bias" not in keys
    assert [type(m).__name__ for m in d.main] == [
        "Conv2d", "LeakyReLU", "Conv2d", "BatchNorm2d", "LeakyReLU", "Conv2d", "BatchNorm2d", "LeakyReLU",
        "Conv2d", "BatchNorm2d", "LeakyReLU", "Conv2d"]
    assert all(m.negative_slope == 0.2 for m in d.main if isinstance(m, nn.LeakyReLU))
    assert [(m.stride, m.padding, m.kernel_size) for m in d.main if isinstance(m, nn.Conv2d)] == [
        ((2, 2), (1, 1), (4, 4))] * 3 + [((1, 1), (1, 1), (4, 4))] * 2


def test_weights_init_statistics():
    torch.manual_seed(0)
    d = NLayerDiscriminator()
    d.apply(weights_init)
    convs = [m for m in d.main if isinstance(m, nn.Conv2d)]
    bns = [m for m in d.main if isinstance(m, nn.BatchNorm2d)]
    w = torch.cat([c.weight.detach().flatten() for c in convs]).double()
    # 2.76M draws of N(0, 0.02): mean within a few standard errors, std within 1 %
    assert abs(w.mean().item()) < 5 * 0.02 / w.numel() ** 0.5
    assert abs(w.std().item() / 0.02 - 1) < 0.01
    g = torch.cat([b.weight.detach() for b in bns]).double()  # 128 + 256 + 512 draws of N(1, 0.02)
    assert abs(g.mean().item() - 1) < 5 * 0.02 / g.numel() ** 0.5
    assert abs(g.std().item() / 0.02 - 1) < 0.15
    assert all(torch.count_nonzero(b.bias) == 0 for b in bns)
    # the loss module initialises its discriminator that way
    loss = make_loss(perceptual_weight=0.0)
    wl = torch.cat([m.weight.detach().flatten() for m in loss.discriminator.main if isinstance(m, nn.Conv2d)])
    assert abs(wl.std().item() / 0.02 - 1) < 0.01


# ---- the perceptual wrapper and the module plumbing ------------------------------------------


def test_model_range_lpips_matches_inpaintlab_lpips():
    from inpaintlab.metrics.lpips import LPIPS

    torch.manual_seed(0)
    lp = LPIPS("alex")
    wrap = ModelRangeLPIPS(lp)
    g = torch.Generator().manual_seed(6)
    x = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    y = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    got = wrap(x, y)
    assert got.shape == (2, 1, 1, 1)
    assert close(got.flatten(), lp((x + 1) / 2, (y + 1) / 2), rel=1e-4)
    # out of [-1, 1]: no error, and gradients reach the reconstruction
    y2 = (y * 1.3).requires_grad_(True)
    wrap(x, y2).sum().backward()
    assert y2.grad is not None and torch.isfinite(y2.grad).all()
    wrap.train()
    assert not wrap.training and not lp.training


def test_state_dict_and_device_plumbing():
    perceptual = ToyPerceptual()
    perceptual.register_buffer("scale", torch.ones(3))
    loss = LDMVAELoss(VAELossConfig(), perceptual)
    keys = set(loss.state_dict())
    assert "logvar" in keys and "discriminator.main.0.weight" in keys
    assert not any(k.startswith("perceptual") for k in keys)
    assert loss.logvar.item() == 0.0 and loss.logvar.shape == ()
    loss.double()  # the unregistered perceptual module follows dtype/device moves
    assert loss.logvar.dtype == torch.float64 and perceptual.scale.dtype == torch.float64
