"""Seamless Borders' blend helpers and Algorithm 1 against independent derivations (notes 1.2 and 1.7)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inpaintlab.methods.seamless.blend import (at, blended_reconstruction, eps_from_v, known_latent,
                                               masked_model_input, two_step_loss, two_step_targets, v_target,
                                               x0_from_v)

from ..conftest import SHALLOW_RTOL, assert_close


@pytest.fixture(scope="module")
def vae():
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3, latent_channels=4,
                         down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2).eval()


@pytest.fixture(scope="module")
def abar():
    from diffusers import DDPMScheduler

    s = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
    return s.alphas_cumprod.double()


def pair(n=2, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, size, size, generator=g)
    hole = torch.zeros(n, 1, size, size)
    hole[0, :, 3:9, 5:12] = 1
    hole[1:, :, 8:16, 0:7] = 1
    return images, hole


def test_the_masked_model_input_is_the_image_in_minus_one_one_with_grey_holes():
    images, hole = pair()
    want = (2 * images.numpy() - 1) * (1 - hole.numpy())
    assert np.allclose(masked_model_input(images, hole).numpy(), want, rtol=0, atol=1e-7)
    assert masked_model_input(images, hole)[hole.expand_as(images) > 0].abs().max() == 0  # grey = 0


def test_the_known_latent_is_the_scaled_posterior_of_the_masked_image(vae):
    images, hole = pair()
    with torch.no_grad():
        mean = vae.encode((2 * images - 1) * (1 - hole)).latent_dist.mean * vae.config.scaling_factor
        assert_close(known_latent(vae, images, hole), mean, SHALLOW_RTOL, "mode")
        drawn = known_latent(vae, images, hole, [torch.Generator().manual_seed(s) for s in (4, 5)])
        alone = known_latent(vae, images[1:], hole[1:], [torch.Generator().manual_seed(5)])
        by_hand = vae.encode((2 * images[1:] - 1) * (1 - hole[1:])).latent_dist.sample(
            generator=torch.Generator().manual_seed(5)) * vae.config.scaling_factor
    assert_close(drawn[1:], alone, SHALLOW_RTOL, "a posterior sample does not depend on the batch")
    assert_close(alone, by_hand, SHALLOW_RTOL, "diffusers' own draw")
    assert not torch.allclose(drawn, known_latent(vae, images, hole))


def test_eq6_is_the_decoded_blend_of_the_two_encodings(vae):
    images, hole = pair()
    with torch.no_grad():
        z_image = vae.encode(2 * images - 1).latent_dist.mean
        z_known = vae.encode((2 * images - 1) * (1 - hole)).latent_dist.mean
        # the latent hole by an independent NumPy block max over the 2x2 cells of the factor-2 VAE
        h = hole[:, 0].numpy().reshape(2, 8, 2, 8, 2).max(axis=(2, 4))
        hole_r = torch.from_numpy(h)[:, None].float()
        want = vae.decode(z_image * hole_r + z_known * (1 - hole_r)).sample
        assert_close(blended_reconstruction(vae, images, hole), want, SHALLOW_RTOL, "Eq. 6")
        plain = vae.decode(z_image).sample
        for whole in (torch.zeros_like(hole), torch.ones_like(hole)):  # no hole: x_known = x; all hole: E(x)
            assert_close(blended_reconstruction(vae, images, whole), plain, SHALLOW_RTOL, "degenerate masks")


def numpy_algorithm_1(z0, z_known, hole_r, eps1, eps2, v_pred, a, ap):
    """Algorithm 1, lines 1-8, line by line in float64 NumPy (paper's m = 1 - hole)."""
    m = 1 - hole_r
    z_t = np.sqrt(a) * z0 + np.sqrt(1 - a) * eps1  # 1
    v1 = np.sqrt(a) * eps1 - np.sqrt(1 - a) * z0  # 2
    z0_hat = np.sqrt(a) * z_t - np.sqrt(1 - a) * v_pred  # 4
    z0_hat = z0_hat * (1 - m) + z_known * m  # 5
    z_tp = np.sqrt(ap) * z0_hat + np.sqrt(1 - ap) * eps2  # 6
    eps2_star = (z_tp - np.sqrt(ap) * z0) / np.sqrt(1 - ap)  # 7
    v2 = np.sqrt(ap) * eps2_star - np.sqrt(1 - ap) * z0  # 8
    return z_t, v1, z0_hat, z_tp, eps2_star, v2


# t' = t - k with k = 1 (the paper's literal t - 1) and 20 (the inference stride); t >= k always
@pytest.mark.parametrize("t, k", [(1, 1), (30, 1), (500, 1), (999, 1), (30, 20), (500, 20), (999, 20)])
def test_algorithm_1_targets_follow_every_line_and_their_closed_forms(abar, t, k):
    g = np.random.default_rng(t * 100 + k)
    shape = (2, 4, 6, 6)
    z0, z_known, eps1, eps2, v_pred = (g.standard_normal(shape) for _ in range(5))
    hole_r = (g.random((2, 1, 6, 6)) > 0.5).astype(np.float64)
    a, ap = float(abar[t]), float(abar[t - k])
    z_t, v1, z0_hat, z_tp, eps2_star, v2 = numpy_algorithm_1(z0, z_known, hole_r, eps1, eps2, v_pred, a, ap)
    T = torch.from_numpy
    ta = at(abar, torch.tensor([t, t]), T(z0))
    tp = at(abar, torch.tensor([t - k, t - k]), T(z0))
    got = two_step_targets(T(z0), T(z_known), T(hole_r), T(z_t), T(v_pred), T(eps2), ta, tp)
    for name, mine, ref in (("z0_hat", got.z0_hat, z0_hat), ("z_tp", got.z_tp, z_tp),
                            ("eps2*", got.eps2_star, eps2_star), ("v2", got.v2, v2)):
        assert np.allclose(mine.numpy(), ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max()), name
    assert np.allclose(v_target(T(z0), T(eps1), ta).numpy(), v1, rtol=1e-12, atol=1e-14)
    # closed forms (notes 1.2)
    assert np.allclose(eps2_star, eps2 + np.sqrt(ap / (1 - ap)) * (z0_hat - z0), rtol=1e-9, atol=1e-9)
    closed_v2 = np.sqrt(ap) * eps2 + ap / np.sqrt(1 - ap) * (z0_hat - z0) - np.sqrt(1 - ap) * z0
    assert np.allclose(v2, closed_v2, rtol=1e-9, atol=1e-9 * np.abs(v2).max())
    # the x0 implied by (z_hat_t', v2) is exactly z0; the eps implied is eps2*
    assert np.allclose(x0_from_v(got.z_tp, got.v2, tp).numpy(), z0, rtol=1e-9, atol=1e-9 * np.abs(v2).max())
    assert np.allclose(eps_from_v(got.z_tp, got.v2, tp).numpy(), eps2_star, rtol=1e-9,
                       atol=1e-9 * np.abs(eps2_star).max())


def test_a_perfect_first_prediction_and_known_latents_give_the_plain_v_target(abar):
    g = torch.Generator().manual_seed(3)
    z0, eps1, eps2 = (torch.randn(2, 4, 5, 5, generator=g, dtype=torch.float64) for _ in range(3))
    hole_r = (torch.rand(2, 1, 5, 5, generator=g) > 0.5).double()
    ta, tp = at(abar, torch.tensor([400, 400]), z0), at(abar, torch.tensor([399, 399]), z0)
    z_t = ta.sqrt() * z0 + (1 - ta).sqrt() * eps1
    got = two_step_targets(z0, z0, hole_r, z_t, v_target(z0, eps1, ta), eps2, ta, tp)
    assert_close(got.z0_hat, z0, 1e-12, "z0_hat")
    assert_close(got.eps2_star, eps2, 1e-12, "eps2* = eps2")
    assert_close(got.v2, v_target(z0, eps2, tp), 1e-12, "v2 = the plain v target at t'")


def test_eq4_is_the_ddim_schedulers_pred_original_sample(abar):
    from diffusers import DDIMScheduler

    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                          set_alpha_to_one=False, prediction_type="v_prediction")
    sched.set_timesteps(50)
    g = torch.Generator().manual_seed(1)
    z_t, v = torch.randn(1, 4, 6, 6, generator=g), torch.randn(1, 4, 6, 6, generator=g)
    for t in (981, 501, 21):
        ref = sched.step(v, t, z_t).pred_original_sample
        mine = x0_from_v(z_t, v, at(sched.alphas_cumprod, torch.tensor([t]), z_t))
        assert_close(mine, ref, SHALLOW_RTOL, f"Eq. 4 at t={t}")


@pytest.fixture(scope="module")
def unet():
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32)


def batch_for_loss(seed=0):
    g = torch.Generator().manual_seed(seed)
    z0, z_known, eps1, eps2 = (torch.randn(2, 4, 8, 8, generator=g) for _ in range(4))
    hole_r = torch.zeros(2, 1, 8, 8)
    hole_r[..., 2:6, 1:5] = 1
    cond = torch.randn(2, 3, 32, generator=g)
    return z0, z_known, hole_r, eps1, eps2, cond


def grads(unet, loss):
    unet.zero_grad()
    loss.backward()
    return {n: p.grad.detach().clone() for n, p in unet.named_parameters() if p.grad is not None}


def test_with_lambda_zero_the_loss_and_its_gradients_are_the_standard_v_step(unet, abar):
    z0, z_known, hole_r, eps1, eps2, cond = batch_for_loss()
    t, tp = torch.tensor([700, 40]), torch.tensor([699, 39])
    a = abar.float()

    def model(z, steps):
        return unet(z, steps, encoder_hidden_states=cond).sample

    mine = two_step_loss(model, z0, z_known, hole_r, t, tp, eps1, eps2, a, lam=0.0)
    g_mine = grads(unet, mine.loss)
    a_t = a[t].view(-1, 1, 1, 1)
    z_t = a_t.sqrt() * z0 + (1 - a_t).sqrt() * eps1  # the standard v-prediction step, written out
    standard = (model(z_t, t) - (a_t.sqrt() * eps1 - (1 - a_t).sqrt() * z0)).pow(2).mean()
    g_std = grads(unet, standard)
    assert_close(mine.loss.detach(), standard.detach(), SHALLOW_RTOL, "loss")
    assert g_mine.keys() == g_std.keys()
    for name in g_std:
        assert_close(g_mine[name], g_std[name], SHALLOW_RTOL, name)


def test_the_second_steps_gradient_treats_its_state_and_target_as_constants(unet, abar):
    z0, z_known, hole_r, eps1, eps2, cond = batch_for_loss(1)
    t, tp = torch.tensor([300, 120]), torch.tensor([299, 119])
    a = abar.float()

    def model(z, steps):
        return unet(z, steps, encoder_hidden_states=cond).sample

    mine = two_step_loss(model, z0, z_known, hole_r, t, tp, eps1, eps2, a, lam=0.5)
    g_mine = grads(unet, mine.loss)
    with torch.no_grad():  # hand-detached: z_hat_t' and v2 computed once, as constants
        a_t = a[t].view(-1, 1, 1, 1)
        z_t = a_t.sqrt() * z0 + (1 - a_t).sqrt() * eps1
        fixed = two_step_targets(z0, z_known, hole_r, z_t, model(z_t, t), eps2, a_t, a[tp].view(-1, 1, 1, 1))
    first = (model(z_t, t) - (a_t.sqrt() * eps1 - (1 - a_t).sqrt() * z0)).pow(2).mean()
    second = (model(fixed.z_tp, tp) - fixed.v2).pow(2).mean()
    g_ref = grads(unet, first + 0.5 * second)
    assert_close(mine.second.detach(), second.detach(), SHALLOW_RTOL, "L2")
    for name in g_ref:
        assert_close(g_mine[name], g_ref[name], SHALLOW_RTOL, name)
    kept = two_step_loss(model, z0, z_known, hole_r, t, tp, eps1, eps2, a, lam=0.5, detach=False)
    g_kept = grads(unet, kept.loss)
    assert any(not torch.allclose(g_kept[n], g_ref[n]) for n in g_ref)  # the option does what it says
