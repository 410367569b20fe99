"""Seamless Borders' blend helpers (Hou et al. 2025, Sec. 3.2-3.3): short pure functions, each naming its equation.

Convention (notes 0 and 1.2): ``hole`` = 1 where we generate (the paper's ``m`` is 1 - hole); images
float [0, 1] NCHW; the model space is [-1, 1] with grey (0) holes; ``hole_r`` is the hole on the
latent grid (max-pool, :func:`~inpaintlab.inpainters.blended.latent_hole`). ``abar`` is the
scheduler's cumulative alpha product (SD-1.5: DDPM scaled-linear, 1000 steps), indexed by the
integer timestep. Scaled latents (``s E(x)``) in the denoiser; unscaled inside the VAE (Eq. 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ...inpainters.blended import latent_hole, masked_model_input

__all__ = ["masked_model_input", "vae_factor", "encode_posterior", "known_latent", "blended_reconstruction",
           "noised", "v_target", "x0_from_v", "eps_from_v", "TwoStepTargets", "two_step_targets",
           "TwoStepLoss", "two_step_loss", "at"]


def vae_factor(vae) -> int:
    """The VAE's spatial downsampling factor, 2 ** (levels - 1) (diffusers' ``vae_scale_factor``)."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def encode_posterior(vae, x: torch.Tensor, generators: Sequence[torch.Generator] | None = None) -> torch.Tensor:
    """Unscaled E(x) of a [-1, 1] batch: the posterior mean, or one posterior sample per generator."""
    dist = vae.encode(x).latent_dist
    return dist.mode() if generators is None else dist.sample(generator=list(generators))


def known_latent(vae, images: torch.Tensor, hole: torch.Tensor,
                 generators: Sequence[torch.Generator] | None = None) -> torch.Tensor:
    """z_known = s E(x_known), x_known = (2x - 1)(1 - hole)  (Sec. 3.2: z0^masked = E(x0 * m))."""
    return encode_posterior(vae, masked_model_input(images, hole), generators) * vae.config.scaling_factor


def blended_reconstruction(vae, images: torch.Tensor, hole: torch.Tensor,
                           generators: Sequence[torch.Generator] | None = None) -> torch.Tensor:
    """Eq. 6: x_hat = D(E(x) hole_r + E(x_known) (1 - hole_r)), in [-1, 1] (unscaled latents; two posterior draws).

    With generators, each encoding draws its own posterior sample from the same per-sample generator
    (first the image's, then the masked image's), so sample i depends on generator i only.
    """
    z_image = encode_posterior(vae, images * 2.0 - 1.0, generators)
    z_known = encode_posterior(vae, masked_model_input(images, hole), generators)
    hole_r = latent_hole(hole, vae_factor(vae)).to(z_image.dtype)
    return vae.decode(z_image * hole_r + z_known * (1.0 - hole_r)).sample


def at(abar: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """abar_t per sample, shaped to broadcast against ``like`` (N, C, h, w)."""
    return abar.to(like.device, like.dtype)[t.to(abar.device).long()].view(-1, *([1] * (like.dim() - 1)))


def noised(z0: torch.Tensor, eps: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Eq. 1: z_t = sqrt(abar_t) z0 + sqrt(1 - abar_t) eps."""
    return a.sqrt() * z0 + (1 - a).sqrt() * eps


def v_target(z0: torch.Tensor, eps: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Eq. 3: v = sqrt(abar_t) eps - sqrt(1 - abar_t) z0."""
    return a.sqrt() * eps - (1 - a).sqrt() * z0


def x0_from_v(z_t: torch.Tensor, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Eq. 4: z0_hat = sqrt(abar_t) z_t - sqrt(1 - abar_t) v."""
    return a.sqrt() * z_t - (1 - a).sqrt() * v


def eps_from_v(z_t: torch.Tensor, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The noise implied by (z_t, v): sqrt(1 - abar_t) z_t + sqrt(abar_t) v (inverse of Eq. 1 and 3)."""
    return (1 - a).sqrt() * z_t + a.sqrt() * v


@dataclass
class TwoStepTargets:
    """Algorithm 1, lines 4-8: the blended estimate, the re-noised state at t', the true noise and its v."""

    z0_hat: torch.Tensor  # line 4-5: x0 of the first prediction, blended with z_known outside the hole
    z_tp: torch.Tensor  # line 6: z_hat_{t'} = sqrt(abar') z0_hat + sqrt(1 - abar') eps2
    eps2_star: torch.Tensor  # line 7: (z_hat_{t'} - sqrt(abar') z0) / sqrt(1 - abar')
    v2: torch.Tensor  # line 8: sqrt(abar') eps2* - sqrt(1 - abar') z0


def two_step_targets(z0: torch.Tensor, z_known: torch.Tensor, hole_r: torch.Tensor, z_t: torch.Tensor,
                     v_pred: torch.Tensor, eps2: torch.Tensor, a_t: torch.Tensor, a_tp: torch.Tensor
                     ) -> TwoStepTargets:
    """Algorithm 1, lines 4-8 (ours: hole = 1): simulate BLD's blend on the first prediction, re-noise to t',
    and the "true noise" whose v points back to the real z0."""
    z0_hat = x0_from_v(z_t, v_pred, a_t)
    z0_hat = z0_hat * hole_r + z_known * (1 - hole_r)
    z_tp = noised(z0_hat, eps2, a_tp)
    eps2_star = (z_tp - a_tp.sqrt() * z0) / (1 - a_tp).sqrt()
    return TwoStepTargets(z0_hat, z_tp, eps2_star, v_target(z0, eps2_star, a_tp))


@dataclass
class TwoStepLoss:
    """L = L1 + lambda L2 and its parts (Algorithm 1, lines 3, 9 and 10), plus the first prediction."""

    loss: torch.Tensor
    first: torch.Tensor  # L1: the standard v loss at t
    second: torch.Tensor  # L2: the v loss of the blended, re-noised state at t' (per-sample mean in ``second_each``)
    second_each: torch.Tensor  # (N,) per sample, for logging by timestep bucket


def two_step_loss(model_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], z0: torch.Tensor,
                  z_known: torch.Tensor, hole_r: torch.Tensor, t: torch.Tensor, t_prev: torch.Tensor,
                  eps1: torch.Tensor, eps2: torch.Tensor, abar: torch.Tensor, lam: float = 0.5,
                  detach: bool = True) -> TwoStepLoss:
    """Algorithm 1: L1 = |v1 - v(z_t, t)|^2, then L2 = |v2 - v(z_hat_{t'}, t')|^2 on the blended estimate; L1 + lam L2.

    ``model_fn(z, t)`` is the v-prediction network (with its condition bound). ``detach`` (ours, the
    default) stops the gradient through the first prediction into z_hat_{t'} and v2, so L2 trains the
    second call only. With ``lam == 0`` the second call is skipped: the loss is the standard v loss.
    """
    a_t, a_tp = at(abar, t, z0), at(abar, t_prev, z0)
    z_t = noised(z0, eps1, a_t)
    v_pred = model_fn(z_t, t)
    first = (v_pred - v_target(z0, eps1, a_t)).pow(2).mean()
    if lam == 0:
        zero = first.new_zeros(())
        return TwoStepLoss(first, first, zero, first.new_zeros(z0.shape[0]))
    targets = two_step_targets(z0, z_known, hole_r, z_t, v_pred.detach() if detach else v_pred, eps2, a_t, a_tp)
    second_each = (model_fn(targets.z_tp, t_prev) - targets.v2).pow(2).flatten(1).mean(1)
    second = second_each.mean()
    return TwoStepLoss(first + lam * second, first, second, second_each.detach())
