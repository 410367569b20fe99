"""ASUKA's sampling (notes 2.2.4): a frozen SD-inpainting UNet conditioned on ``c`` instead of text, no guidance.

The loop is diffusers' SD-inpainting denoising loop written out, so each sample's trajectory
draws from its own generator and the latents stay ours to decode (ASUKA decodes with its own
decoder, which diffusers' pipeline would not accept): ``z_T ~ N(0, I) sigma_init``; at every
timestep of the scheduler ``eps = UNet([scale(z_t), hole_r, z_known], t, c)`` and
``z <- scheduler.step(eps, t, z)``. The UNet sees diffusers' channel order
``[latents, mask, masked_image_latents]``; ``z_known`` is ``s E(x (1 - hole))`` (grey holes in
model space, notes section 0 item 2), sampled from the posterior with the sample's generator as
diffusers' ``_encode_vae_image`` does; the latent hole is the any-pixel max-pool (notes 0.3).
Only deterministic schedulers are accepted: a stochastic step would draw from one generator for
the whole batch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch

from ...errors import InpaintlabError
from ...inpainters.blended import latent_hole, masked_model_input

#: schedulers whose ``step`` draws nothing (the trajectory is a function of z_T)
DETERMINISTIC = ("DDIMScheduler", "PNDMScheduler", "DPMSolverMultistepScheduler", "EulerDiscreteScheduler",
                 "LMSDiscreteScheduler", "HeunDiscreteScheduler", "UniPCMultistepScheduler")
#: SD-1.5's training noise schedule (what a base without a scheduler folder gets)
SD_BETAS = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)


def base_scheduler(base: str | None, kind: str = "base"):
    """The sampling scheduler: the base pipeline's own (``kind="base"``, the notes' default) or DDIM on SD's betas."""
    import diffusers

    config = None
    if base and kind == "base":
        path = Path(base).expanduser() / "scheduler" / "scheduler_config.json"
        if path.is_file():
            config = json.loads(path.read_text())
    if config is None:
        return diffusers.DDIMScheduler(**SD_BETAS, clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    name = config.get("_class_name", "")
    if name not in DETERMINISTIC:
        raise InpaintlabError(f"{base}'s scheduler {name or '?'} draws noise at every step; use --option "
                              f"scheduler=ddim")
    return getattr(diffusers, name).from_config(config)


def known_latents(vae, images: torch.Tensor, hole: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """``s E(x (1 - hole))``, a posterior sample per image from its generator (diffusers' ``_encode_vae_image``)."""
    x = masked_model_input(images, hole).to(vae.device, vae.dtype)
    zs = [vae.encode(x[i:i + 1]).latent_dist.sample(generator=g) for i, g in enumerate(generators)]
    return torch.cat(zs) * vae.config.scaling_factor


def initial_noise(shape: tuple[int, ...], generators: Sequence[torch.Generator], device, dtype) -> torch.Tensor:
    """z_T: row i from generator i (on the generator's device, then moved), as diffusers' ``randn_tensor``."""
    rows = [torch.randn(shape[1:], generator=g, device=g.device, dtype=dtype) for g in generators]
    return torch.stack(rows).to(device)


def asuka_sample(unet, vae, scheduler, images: torch.Tensor, hole: torch.Tensor, condition: torch.Tensor,
                 generators: Sequence[torch.Generator], steps: int) -> torch.Tensor:
    """The final latents ``z_0`` (scaled, N x 4 x h x w) of SD-inpainting sampling conditioned on ``condition``."""
    if len(generators) != images.shape[0]:
        raise InpaintlabError(f"{len(generators)} generators for {images.shape[0]} images")
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    n, _, height, width = images.shape
    shape = (n, int(unet.config.out_channels), height // factor, width // factor)
    # diffusers' order of draws per generator: z_T first (prepare_latents), then the posterior sample
    z = initial_noise(shape, generators, unet.device, unet.dtype)
    z_known = known_latents(vae, images, hole, generators).to(unet.dtype)
    hole_r = latent_hole(hole.to(unet.device), factor).to(unet.dtype)
    scheduler.set_timesteps(steps, device=unet.device)
    z = z * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        zin = torch.cat([scheduler.scale_model_input(z, t), hole_r, z_known], dim=1)
        eps = unet(zin, t, encoder_hidden_states=condition.to(unet.dtype)).sample
        z = scheduler.step(eps, t, z).prev_sample
    return z


__all__ = ["asuka_sample", "base_scheduler", "known_latents", "initial_noise", "DETERMINISTIC", "SD_BETAS"]
