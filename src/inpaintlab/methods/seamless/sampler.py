"""Seamless Borders' inference (Sec. 4): BLD with the masked image's latents, a v-prediction UNet, DDIM.

The paper evaluates with 50 steps at stride 20 over SD's 1000 ("leading" spacing, SD's
``steps_offset`` 1: timesteps 981 ... 1), classifier-free guidance 3 and the prompt "scenery", then
decodes with the fine-tuned VAE; the caller pastes the known pixels back.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ...inpainters.blended import latent_hole, sample_blended
from .blend import known_latent, vae_factor


def sd_ddim(steps_offset: int = 1):
    """SD-1.5's scheduler as DDIM for a v-prediction model, leading spacing (the paper's stride-20 schedule)."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                         set_alpha_to_one=False, steps_offset=steps_offset, prediction_type="v_prediction",
                         timestep_spacing="leading")


@torch.no_grad()
def seamless_sample(unet, vae, images: torch.Tensor, hole: torch.Tensor, generators: Sequence[torch.Generator], *,
                    cond: torch.Tensor, uncond: torch.Tensor | None, guidance_scale: float, steps: int,
                    unet_kind: str = "t2i4") -> torch.Tensor:
    """Inpaint ``images`` (N,3,H,W in [0,1]) in ``hole``: blended DDIM sampling, then the VAE's decoding, in [0,1].

    ``cond``/``uncond`` are the cross-attention conditions (N, L, D); with ``uncond`` and a guidance
    scale other than 1, classifier-free guidance v_u + w (v_c - v_u).
    """
    z_known = known_latent(vae, images, hole)
    hole_r = latent_hole(hole, vae_factor(vae)).to(z_known.dtype)
    guided = uncond is not None and guidance_scale != 1.0
    emb = torch.cat([uncond, cond]) if guided else cond

    def model_fn(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        zin = torch.cat([z, hole_r, z_known], 1) if unet_kind == "inpaint9" else z
        if guided:
            zin = torch.cat([zin, zin])
        out = unet(zin, t, encoder_hidden_states=emb).sample
        if not guided:
            return out
        v_u, v_c = out.chunk(2)
        return v_u + guidance_scale * (v_c - v_u)

    z0 = sample_blended(model_fn, sd_ddim(), z_known, hole_r, generators, steps=steps)
    return ((vae.decode(z0 / vae.config.scaling_factor).sample + 1) / 2).clamp(0, 1)


__all__ = ["seamless_sample", "sd_ddim"]
