"""The ``seamless`` inpainter: a ``seamless-denoiser`` run with its VAE, sampled as the paper evaluates.

``--option checkpoint=RUN`` takes the denoiser's run or export; its VAE is the ``seamless-vae`` run
it was trained on (recorded with a SHA-256: a changed file is refused), or ``vae=PATH`` for another
(``vae=original`` for the pretrained pipeline's). Defaults are the paper's evaluation: 50 DDIM steps,
"leading" spacing, guidance 3, prompt "scenery"; the known latents are the masked image's.
Exports are safetensors; loading runs no code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...errors import InpaintlabError
from ...inpainters.base import INPAINTERS, Backend, Generators, Requirements, per_sample_generators
from ...options import option
from ...train.export import state_fingerprint
from .models import PromptEncoder, build_unet, load_pretrained, load_state, load_vae_run
from .names import DENOISER_METHOD, SEAMLESS


@dataclass(frozen=True)
class SeamlessOptions:
    """The options of the ``seamless`` inpainter."""

    checkpoint: str = option("", f"a `train {DENOISER_METHOD}` run or its export")
    vae: str = option("", "the VAE: a seamless-vae run (default: the one the denoiser trained on), or 'original' "
                          "for the pretrained pipeline's")
    prompt: str = option("scenery", "text prompt (the paper's evaluation: scenery; tiny unconditional models "
                                    "ignore it)")
    guidance_scale: float = option(3.0, "classifier-free guidance (the paper: 3)", ge=0)
    steps: int = option(50, "DDIM steps, leading spacing (the paper: 50, stride 20)", ge=1)
    device: str = option("auto", "torch device: auto (CUDA when available), cpu, cuda, cuda:N")


def _load_vae(option_vae: str, meta: dict):
    """The VAE named by the option, else the denoiser's recorded one (checked), else the pretrained pipeline's."""
    gen = meta["generator"]
    if option_vae == "original":
        if not gen.get("pretrained"):
            raise InpaintlabError("vae=original needs a denoiser fine-tuned from a pretrained pipeline; this one "
                                  "was trained on a seamless-vae run")
        return load_pretrained("vae", gen["pretrained"])
    if option_vae:
        return load_vae_run(option_vae)[0]
    record = gen.get("vae")
    if record:
        vae, _, state = load_vae_run(record["path"])
        if state_fingerprint(state) != record["sha256"]:
            raise InpaintlabError(f"the VAE at {record['path']} changed since the denoiser was trained on it; pass "
                                  f"--option vae=PATH to use it anyway")
        return vae
    return load_pretrained("vae", gen["pretrained"])


@INPAINTERS.register(SEAMLESS)
class SeamlessInpainter(Backend):
    """Seamless Borders (Hou et al. 2025): BLD on the masked image's latents with a two-step-trained v model."""

    Options = SeamlessOptions
    needs_weights = True

    def __init__(self, options: SeamlessOptions | None = None, **values):
        super().__init__(options, **values)
        from ...devices import resolve_device
        from ...train.export import read_trained_as

        o = self.options
        if not o.checkpoint:
            raise InpaintlabError(f"seamless needs --option checkpoint=RUN: a run of `inpaintlab train "
                                  f"{DENOISER_METHOD}`")
        meta, state = read_trained_as(o.checkpoint, DENOISER_METHOD)
        gen = meta["generator"]
        self.device = resolve_device(o.device, allow_auto=True)
        self.unet = load_state(build_unet(gen["unet"]), state, "UNet").eval().to(self.device)
        self.unet_kind = gen["unet_kind"]
        self.vae = _load_vae(o.vae, meta).eval().to(self.device)
        self.text = PromptEncoder(gen["pretrained"]).to(self.device) if gen.get("pretrained") else None
        factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        levels = 2 ** (len(self.unet.config.block_out_channels) - 1)
        self.requirements = Requirements(size_multiple=factor * levels, device=str(self.device))

    def conditions(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(cond, uncond): the prompt's and the empty prompt's CLIP embeddings, or a zero context (tiny)."""
        if self.text is None:
            return torch.zeros(n, 1, self.unet.config.cross_attention_dim, device=self.device), None
        cond, uncond = self.text([self.options.prompt]), self.text([""])
        return cond.expand(n, -1, -1), uncond.expand(n, -1, -1)

    @torch.no_grad()
    def inpaint(self, images: torch.Tensor, hole: torch.Tensor, *, generator: Generators) -> torch.Tensor:
        """Blended DDIM in latent space from the masked image's latents; the VAE's decoding (the wrapper pastes)."""
        from .sampler import seamless_sample

        cond, uncond = self.conditions(images.shape[0])
        gens = per_sample_generators(generator, images.shape[0])
        return seamless_sample(self.unet, self.vae, images, hole, gens, cond=cond, uncond=uncond,
                               guidance_scale=self.options.guidance_scale, steps=self.options.steps,
                               unet_kind=self.unet_kind)


__all__ = ["SeamlessInpainter", "SeamlessOptions"]
