"""Blended Latent Diffusion: inpainting with a plain 4-channel (text-to-image) latent diffusion model.

Avrahami, Fried & Lischinski 2023, "Blended Latent Diffusion", Algorithm 1; restated in Seamless
Borders, Section 3.2: after every denoising step the known region is replaced by the known
latents noised to the step's level,

    z = z * hole + noised(z_known, t) * (1 - hole),

with the hole downsampled to the latent grid. At the last step the known latents are pasted
un-noised, so the returned latents equal ``z_known`` outside the latent hole exactly.

Two known latents: the original BLD encodes the full image, ``E(x)``; Seamless Borders (Sec. 3.2,
Eq. 6, Algorithm 1) encodes the masked image, ``E(x * m)`` with grey holes in the model's [-1, 1]
space (:func:`masked_model_input`), so that no hole content reaches the known latents.

The functions here are pure samplers over diffusers components (UNet, scheduler, VAE); they
import nothing from diffusers at module import time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class BlendedSample:
    """What the sampler returns: final latents, the known latents and the latent-grid hole."""

    z0: torch.Tensor  # (N,C,h,w) final latents, before decoding
    z_known: torch.Tensor  # (N,C,h,w) encoder latents of the input image (scaled)
    hole: torch.Tensor  # (N,1,h,w) 1 = hole on the latent grid


def latent_hole(hole: torch.Tensor, factor: int) -> torch.Tensor:
    """The pixel hole (N,1,H,W) on the latent grid: a latent cell is hole if any of its pixels is (max-pool).

    Max-pooling rather than nearest sampling: a latent cell that touches the hole must be
    generated, otherwise the decoder would paint the hole's border from the content being removed.
    """
    return F.max_pool2d((hole > 0.5).float(), kernel_size=factor, stride=factor)


def masked_model_input(images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """x_known = (2x - 1)(1 - hole): the image in the model's [-1, 1] space with grey (0) holes (Seamless Eq. 6)."""
    return (images * 2.0 - 1.0) * (1.0 - hole)


def encode_known(vae, images: torch.Tensor, hole: torch.Tensor | None = None) -> torch.Tensor:
    """z_known = s E(x) (BLD), or s E(x_known) with ``hole`` (Seamless Sec. 3.2): the posterior mean times s."""
    x = images * 2.0 - 1.0 if hole is None else masked_model_input(images, hole)
    z = vae.encode(x.to(vae.device, vae.dtype)).latent_dist.mode()
    return z * vae.config.scaling_factor


def blend_known(z: torch.Tensor, z_known_t: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """BLD Algorithm 1 / Seamless Borders Sec. 3.2: z = z * hole + noised(z_known, t) * (1 - hole)."""
    return z * hole + z_known_t * (1.0 - hole)


def sample_blended(
    model_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    scheduler,
    z_known: torch.Tensor,
    hole: torch.Tensor,
    generators: Sequence[torch.Generator],
    *,
    steps: int,
    strength: float = 1.0,
    step_kwargs: dict | None = None,
) -> torch.Tensor:
    """Blended latent sampling (BLD Algorithm 1) with any diffusers scheduler.

    ``model_fn(z_in, t)`` is the (guided) model output for the scaled input, in whatever the
    scheduler's ``prediction_type`` says (epsilon, or v for a v-prediction model); ``generators`` has
    one generator per sample, drawn from in a fixed order, so sample i depends on generator i only.
    """
    from diffusers.utils.torch_utils import randn_tensor

    device, dtype = z_known.device, z_known.dtype
    gens = list(generators)
    scheduler.set_timesteps(steps, device=device)
    timesteps = scheduler.timesteps
    # img2img-style start (strength < 1): skip the first (1 - strength) of the schedule.
    n_run = min(int(steps * strength), steps)
    if n_run < 1:
        raise ValueError(f"strength {strength} with {steps} steps leaves no denoising step")
    t_start = (steps - n_run) * scheduler.order
    timesteps = timesteps[t_start:]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(t_start)
    noise = randn_tensor(tuple(z_known.shape), generator=gens, device=device, dtype=dtype)
    if strength >= 1.0:
        z = noise * scheduler.init_noise_sigma
    else:
        z = scheduler.add_noise(z_known, noise, timesteps[:1].repeat(z_known.shape[0]))
    for i, t in enumerate(timesteps):
        out = model_fn(scheduler.scale_model_input(z, t), t)
        z = scheduler.step(out, t, z, **(step_kwargs or {}), return_dict=False)[0]
        if i < len(timesteps) - 1:
            # Fresh noise every step, as in BLD Algorithm 1 (z_bg ~ noise(z_init, t)).
            n = randn_tensor(tuple(z_known.shape), generator=gens, device=device, dtype=dtype)
            known_t = scheduler.add_noise(z_known, n, timesteps[i + 1:i + 2].repeat(z_known.shape[0]))
        else:
            known_t = z_known
        z = blend_known(z, known_t, hole)
    return z


__all__ = ["BlendedSample", "blend_known", "encode_known", "latent_hole", "masked_model_input", "sample_blended"]
