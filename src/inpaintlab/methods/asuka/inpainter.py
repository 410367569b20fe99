"""The ``asuka`` inpainter (notes 2.2.4): the MAE prior, aligned, conditions a frozen SD-inpainting model; ASUKA's decoder decodes.

``--option align=RUN`` takes an ``asuka-align`` run (or export); the SD-inpainting pipeline and the
MAE are the ones it was trained with (recorded; a trained MAE is checked by its SHA-256), or
``base=`` / ``mae=`` for others. ``decoder=RUN`` takes an ``asuka-decoder`` run; ``decoder=kl``
(the default) decodes with the pipeline's own KL decoder. The paper's baselines are the same
pipeline with another condition: ``condition=empty`` (SD: the empty prompt, no guidance),
``condition=text`` (SD-text: ``prompt``, "background" by default), and an ``asuka-align`` run of
``variant=prompt`` (SD-prompt: learned tokens). No classifier-free guidance (the paper's SD
version); ``condition_scale`` w blends the condition with the empty prompt's as the released code
does, ``null + w (c - null)`` (towards zero for a 256-token condition: SD-1.5's empty prompt has 77). Sampling: the pipeline's own scheduler, 50 steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ...errors import InpaintlabError
from ...inpainters.base import INPAINTERS, Backend, Generators, Requirements, per_sample_generators
from ...options import option
from .names import ALIGN_METHOD, ASUKA, DECODER_METHOD


@dataclass(frozen=True)
class AsukaOptions:
    """The options of the ``asuka`` inpainter."""

    align: str = option("", f"an `inpaintlab train {ALIGN_METHOD}` run or its export (needed for condition=align)")
    condition: Literal["align", "empty", "text"] = option(
        "align", "align: the alignment module's MAE condition (ASUKA; SD-prompt for a variant=prompt run); empty: "
                 "the empty prompt (the SD baseline); text: the prompt (SD-text)")
    base: str = option("", "the SD-inpainting pipeline (default: the alignment run's; without one, "
                           "stable-diffusion-v1-5/stable-diffusion-inpainting)")
    mae: str = option("", "the MAE (default: the alignment run's): an asuka-mae run, a ViTMAE folder or hub id")
    decoder: str = option("kl", f"an `inpaintlab train {DECODER_METHOD}` run, or kl for the pipeline's KL decoder")
    prompt: str = option("background", "condition=text: the prompt (the paper's SD-text: background)")
    condition_scale: float = option(1.0, "w in null + w (c - null) (the released FLUX code: 0.5; the SD paper: 1)")
    steps: int = option(50, "sampling steps (ours: 50; the paper does not say)", ge=1)
    scheduler: Literal["base", "ddim"] = option("base", "the pipeline's own scheduler, or DDIM on SD's schedule")
    device: str = option("auto", "torch device: auto (CUDA when available), cpu, cuda, cuda:N")


@INPAINTERS.register(ASUKA)
class AsukaInpainter(Backend):
    """ASUKA (Wang et al. 2024): an aligned MAE prior in place of text, and a decoder conditioned on the kept pixels."""

    Options = AsukaOptions
    needs_weights = True

    def __init__(self, options: AsukaOptions | None = None, **values):
        super().__init__(options, **values)
        from ...devices import resolve_device
        from ...train.export import read_trained_as
        from ..seamless.models import load_state
        from .align import build_alignment
        from .method import SD15_INPAINTING, frozen_prior, load_base, load_decoder_run, load_prior
        from .sampler import base_scheduler

        o = self.options
        self.device = resolve_device(o.device, allow_auto=True)
        gen = None
        if o.condition == "align":
            if not o.align:
                raise InpaintlabError(f"asuka needs --option align=RUN (a run of `inpaintlab train {ALIGN_METHOD}`), "
                                      f"or condition=empty / condition=text for the SD baselines")
            meta, state = read_trained_as(o.align, ALIGN_METHOD, flag="align")
            gen = meta["generator"]
        base = o.base or (gen["base"] if gen else SD15_INPAINTING)
        unet, vae, text = load_base(base)
        self.unet, self.vae = unet.to(self.device), vae.to(self.device)
        self.null = text([""]).to(self.device)
        self.text_condition = text([o.prompt]).to(self.device) if o.condition == "text" else None
        self.align = self.prior = None
        if gen is not None:
            self.align = load_state(build_alignment(gen["alignment"]), state, "alignment").eval().to(self.device)
            if gen["kind"] == "alignment":
                prior = load_prior(o.mae, int(gen["mae"]["image_size"]))[0] if o.mae else frozen_prior(gen["mae"])
                self.prior = prior.to(self.device)
        self.decoder = None
        if o.decoder != "kl":
            self.decoder = load_decoder_run(o.decoder)[0].eval().to(self.device)
        self.scheduler = base_scheduler(base, o.scheduler)
        factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        levels = 2 ** (len(self.unet.config.block_out_channels) - 1)
        self.requirements = Requirements(size_multiple=factor * levels, device=str(self.device))

    def condition(self, images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """The UNet's condition (N, M, c): Align(MAE prior), the learned prompt, or a prompt's embedding; then scaled."""
        from .align import scale_condition

        n = images.shape[0]
        if self.align is None:
            cond = self.text_condition if self.text_condition is not None else self.null
            return cond.expand(n, -1, -1)
        features = self.prior.features(images, hole) if self.prior is not None else images.new_zeros(n, 1, 1)
        cond = self.align(features)
        # the empty prompt is SD's null only where it has the condition's token count (77: cross4, SD-prompt); a
        # 256-token MAE condition has no empty counterpart in SD-1.5 (FLUX's release pads T5's to 256), so it
        # is scaled towards zero
        null = self.null if self.null.shape[1] == cond.shape[1] else None
        return scale_condition(cond, null, self.options.condition_scale)

    def decode(self, z: torch.Tensor, images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """Latents (scaled) to images in [0, 1]: ASUKA's decoder given the kept pixels, or the KL decoder."""
        z = z / self.vae.config.scaling_factor
        if self.decoder is None:
            x = self.vae.decode(z).sample
        else:
            x = self.decoder.decode_hole(z.to(self.decoder.dtype), images, hole)
        return ((x.float() + 1) / 2).clamp(0, 1)

    @torch.no_grad()
    def inpaint(self, images: torch.Tensor, hole: torch.Tensor, *, generator: Generators) -> torch.Tensor:
        """SD-inpainting sampling with ASUKA's condition, decoded (the wrapper pastes the kept pixels back)."""
        from .sampler import asuka_sample

        images, hole = images.to(self.device), hole.to(self.device)
        gens = per_sample_generators(generator, images.shape[0])
        z = asuka_sample(self.unet, self.vae, self.scheduler, images, hole, self.condition(images, hole), gens,
                         self.options.steps)
        return self.decode(z, images, hole)


__all__ = ["AsukaInpainter", "AsukaOptions"]
