"""Training ASUKA's three parts on the shared loop: the MAE prior, the alignment module, the decoder.

``inpaintlab train asuka-mae`` fine-tunes (or, on a CPU, trains from scratch) a ViTMAE with ASUKA's
adaptive masking: every hole token of a training mask (ASUKA's mixture, ``--masks misato``) is
removed and random visible tokens until 75 % are, the loss is the MSE over ``irr_mask`` (notes
2.2.1); ``masking=random`` is plain MAE pre-training (the "p.t. MAE" of Table 2). Masks whose hole
covers more than 75 % of the tokens are redrawn.

``inpaintlab train asuka-align`` trains the alignment module (Linear + 4 self-attention blocks +
LayerNorm, or an ablation variant, or the SD-prompt baseline's learned tokens) with the frozen
SD-inpainting UNet's own eps loss, gradients flowing through the frozen UNet; the MAE sees the full
image with probability p, warmed from 1.0 to 0.1 over the first 2k steps (notes 2.2.2).

``inpaintlab train asuka-decoder`` trains the mask-unmask consistent decoder (an
``AsymmetricAutoencoderKL`` whose condition encoder also takes the hole; encoder frozen) with
Asymmetric VQGAN's loss, colour augmentation of the encoded image and latent augmentation by the
frozen UNet's one-step estimate (notes 2.2.3).

The frozen parts (SD-inpainting pipeline, MAE) are recorded by path, and a trained MAE also by a
SHA-256 of its weights; they are not in the checkpoints. Per-sample draws (adaptive masking,
the full-image prior, jitter, latent augmentation) come from generators keyed by (seed, sample
position), so they do not depend on the batch they fall in; t and the diffusion noise come from
torch's global generator, which the loop seeds and checkpoints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import InpaintlabError
from ...inpainters.blended import latent_hole, masked_model_input
from ...options import option
from ...train.method import METHODS, TrainableMethod
from .names import ALIGN_METHOD, ASUKA, DECODER_METHOD, MAE_METHOD

#: the hub id of the frozen base (SD-1.5 inpainting)
SD15_INPAINTING = "stable-diffusion-v1-5/stable-diffusion-inpainting"
# tags that keep the per-sample generators of different purposes apart
_REDRAW, _MASKING, _PRIOR, _JITTER, _LATENT = 11, 12, 13, 14, 15


# ---- shared helpers ------------------------------------------------------------------------------

def sample_generators(seed: int, first: int, n: int, tag: int) -> list[torch.Generator]:
    """One CPU generator per sample ``first .. first+n-1``, keyed by (seed, tag, position): batch-independent draws."""
    gens = []
    for k in range(first, first + n):
        state = np.random.SeedSequence([seed, tag, k]).generate_state(2, np.uint32)
        gens.append(torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1])))
    return gens


def warmup_cosine(step: int, total: int, warmup: int = 0) -> float:
    """The learning-rate factor: linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / span)))


def to_mae_size(images: torch.Tensor, hole: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images area-resized to the MAE's side and the hole by any-pixel cover, so no hole pixel leaks into the prior.

    The official code resizes the mask with nearest ([C] ``prepare_data``); a hole pixel it misses
    would then reach the MAE through the area-averaged image. Any-pixel cover keeps the prior a
    function of the kept pixels only (a deviation, documented in docs/asuka.md).
    """
    if images.shape[-1] == size and images.shape[-2] == size:
        return images, (hole > 0.5).to(images.dtype)
    small = F.interpolate(images, size=(size, size), mode="area")
    cover = F.interpolate((hole > 0.5).to(images.dtype), size=(size, size), mode="area") > 0
    return small, cover.to(images.dtype)


class MAEPrior(nn.Module):
    """A ViTMAE and, optionally, the official fine-tuned MAE's partial-token embedding: ASUKA's prior F."""

    def __init__(self, mae: nn.Module, partial: nn.Module | None = None):
        super().__init__()
        self.mae, self.partial = mae, partial

    @property
    def image_size(self) -> int:
        from .mae import _side

        return _side(self.mae.config.image_size, "image_size")

    @property
    def patch(self) -> int:
        from .mae import _side

        return _side(self.mae.config.patch_size, "patch_size")

    @property
    def width(self) -> int:
        return int(self.mae.config.decoder_hidden_size)

    def features(self, images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """F (N, L, d): decoder tokens after block 6 of the prior, for images of any size (resized to the MAE's)."""
        from .mae import prior_features

        x, h = to_mae_size(images, hole, self.image_size)
        return prior_features(self.mae, x, h, partial=self.partial)

    def reconstruct(self, images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """The MAE's pixel prediction from the kept tokens, in [0, 1] at the MAE's size (what validation scores)."""
        from .mae import IMAGENET_MEAN, IMAGENET_STD, decoder_layers, prior_features, unpatchify

        x, h = to_mae_size(images, hole, self.image_size)
        hidden = prior_features(self.mae, x, h, layer=len(decoder_layers(self.mae)), partial=self.partial)
        decoder = self.mae.decoder
        pixels = unpatchify(decoder.decoder_pred(decoder.decoder_norm(hidden)), self.patch, tuple(x.shape[-2:]), 3)
        mean, std = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1), x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return (pixels * std + mean).clamp(0, 1)

    def record(self) -> dict[str, Any]:
        """The architecture as plain JSON values (:func:`build_prior` rebuilds it)."""
        return {"mae": self.mae.config.to_dict(), "partial": self.partial is not None}


def build_prior(record: dict[str, Any], state: dict[str, torch.Tensor] | None = None) -> MAEPrior:
    """A :class:`MAEPrior` from :meth:`MAEPrior.record` (and its weights), position tables rewritten."""
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    from ...hub import quiet_transformers
    from ..seamless.models import load_state
    from .mae import PartialTokenEmbed, write_position_embeddings

    with quiet_transformers():
        mae = ViTMAEForPreTraining(ViTMAEConfig.from_dict(dict(record["mae"])))
    prior = MAEPrior(mae, PartialTokenEmbed.for_model(mae) if record.get("partial") else None)
    if state is not None:
        load_state(prior, state, "MAE prior")
    write_position_embeddings(mae)
    return prior.eval()


def is_run(path: str) -> bool:
    """Whether ``path`` is an inpaintlab run or export (not a transformers / diffusers folder or a hub id)."""
    p = Path(path).expanduser()
    return any((p / name).is_file() for name in ("generator.json", "export/generator.json", "checkpoints/last.ckpt")) \
        or (p.is_file() and p.suffix in (".ckpt", ".safetensors", ".json"))


def load_prior(path: str, image_size: int) -> tuple[MAEPrior, dict[str, Any]]:
    """The MAE prior of an ``asuka-mae`` run, or a pretrained ViTMAE (folder or hub id) at ``image_size``; and its record."""
    from ...train.export import read_trained_as, state_fingerprint
    from .mae import load_mae

    if is_run(path):
        meta, state = read_trained_as(path, MAE_METHOD, flag="--set mae")
        return build_prior(meta["generator"], state), {
            "path": str(Path(path).expanduser().resolve()), "run": True, "steps": meta.get("steps"),
            "sha256": state_fingerprint(state)}
    return MAEPrior(load_mae(path, image_size)), {"path": path, "run": False, "image_size": image_size}


def frozen_prior(record: dict[str, Any]) -> MAEPrior:
    """The MAE recorded by an alignment run, checked against its SHA-256 when it was a trained run."""
    from ...train.export import read_trained_as, state_fingerprint

    if not record.get("run"):
        return load_prior(record["path"], int(record["image_size"]))[0]
    meta, state = read_trained_as(record["path"], MAE_METHOD)
    if state_fingerprint(state) != record["sha256"]:
        raise InpaintlabError(f"the MAE at {record['path']} changed since the alignment module was trained on it; "
                              f"pass --option mae=PATH to use it anyway")
    return build_prior(meta["generator"], state)


def load_base(base: str, *, unet: bool = True, text: bool = True):
    """The frozen SD-inpainting parts of a pipeline folder or hub id: (UNet with 9 input channels, VAE, prompt encoder).

    ``unet=False`` or ``text=False`` skip those parts (None in their place).
    """
    from ..seamless.models import PromptEncoder, frozen, load_pretrained

    vae = frozen(load_pretrained("vae", base))
    if not unet:
        return None, vae, PromptEncoder(base) if text else None
    unet = frozen(load_pretrained("unet", base))
    if unet.config.in_channels != 9:
        raise InpaintlabError(f"{base} is not an inpainting UNet ({unet.config.in_channels} input channels, not 9): "
                              f"ASUKA needs an SD-inpainting pipeline such as {SD15_INPAINTING}")
    return unet, vae, PromptEncoder(base) if text else None


def noise_schedule(base: str) -> torch.Tensor:
    """alphas_cumprod of the base's training schedule (its scheduler folder, else SD-1.5's)."""
    from diffusers import DDPMScheduler

    from .sampler import SD_BETAS

    path = Path(base).expanduser() / "scheduler" / "scheduler_config.json"
    if path.is_file():
        import json

        config = {k: v for k, v in json.loads(path.read_text()).items()
                  if k in ("beta_start", "beta_end", "beta_schedule", "num_train_timesteps", "trained_betas")}
        return DDPMScheduler(**config).alphas_cumprod
    return DDPMScheduler(**SD_BETAS).alphas_cumprod


def vae_factor(vae) -> int:
    return 2 ** (len(vae.config.block_out_channels) - 1)


# ---- asuka-mae -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class MAEOptions:
    """asuka-mae: the MAE prior's fine-tuning with ASUKA's adaptive masking (or plain MAE pre-training)."""

    pretrained: str = option("", "the MAE to start from: a ViTMAE folder or hub id (facebook/vit-mae-base, the hub "
                                 "substitute for MAE-FAR's Places2 MAE), or an asuka-mae run; empty: a new MAE "
                                 "of the preset")
    preset: Literal["tiny", "vit-b16"] = option("tiny", "from scratch: the MAE's size (vit-b16: ASUKA's ViT-B/16, "
                                                        "decoder 512 x 8)")
    patch_size: int = option(0, "from scratch: patch side (0: the preset's)", ge=0)
    hidden_size: int = option(0, "from scratch: encoder width (0: the preset's)", ge=0)
    num_hidden_layers: int = option(0, "from scratch: encoder blocks (0: the preset's)", ge=0)
    decoder_hidden_size: int = option(0, "from scratch: decoder width (0: the preset's)", ge=0)
    masking: Literal["adaptive", "random"] = option(
        "adaptive", "adaptive: ASUKA's fine-tuning (hole tokens removed, raised to 75 %, loss over irr_mask); random: "
                    "plain MAE pre-training (random 75 %, the p.t. MAE)")
    ratio: float = option(0.75, "share of tokens removed (MAE and ASUKA: 0.75)", gt=0, lt=1)
    partial: bool = option(True, "the official fine-tuned MAE's partial-token embedding (a no-op at init)")
    base_lr: float = option(1.5e-4, "MAE's base learning rate; lr = base_lr x batch x accumulate x devices / 256 "
                                    "(AdamW (0.9, 0.95), weight decay 0.05, 5 % warm-up, cosine)", gt=0)
    redraw_tries: int = option(50, "redraws of a mask whose hole covers more than the removed share of tokens", ge=1)


@METHODS.register(MAE_METHOD)
class AsukaMAEMethod(TrainableMethod):
    """ASUKA's MAE prior (notes 2.2.1): fine-tuning with adaptive masking, MSE over the removed hole pixels."""

    Config = MAEOptions
    val_metrics = ("psnr", "ssim")
    # ASUKA: 256 crops, batch 1024 (use --accumulate), its mask mixture
    train_defaults = {"size": 256, "masks": "misato"}

    def __init__(self, train, options: MAEOptions, *, log=print):
        super().__init__(train, options, log=log)
        from .mae import PartialTokenEmbed, build_mae, grid_size, mae_config

        o = options
        if o.pretrained and is_run(o.pretrained):
            self.net_g, _ = load_prior(o.pretrained, train.size)
            if self.net_g.image_size != train.size:
                raise InpaintlabError(f"{o.pretrained} is an MAE at {self.net_g.image_size} px; train it with "
                                      f"--size {self.net_g.image_size}")
        elif o.pretrained:
            self.net_g, _ = load_prior(o.pretrained, train.size)
        else:
            overrides = {k: getattr(o, k) for k in ("patch_size", "hidden_size", "num_hidden_layers",
                                                    "decoder_hidden_size") if getattr(o, k)}
            config = mae_config(o.preset, image_size=train.size, **overrides)
            grid_size(config)
            gen = torch.Generator().manual_seed(train.seed)
            self.net_g = MAEPrior(build_mae(config, generator=gen))
        if o.partial and self.net_g.partial is None:
            self.net_g.partial = PartialTokenEmbed.for_model(self.net_g.mae,
                                                             generator=torch.Generator().manual_seed(train.seed + 1))
        elif not o.partial:
            self.net_g.partial = None
        self.net_g.train()
        self._masks = None

    def generator_config(self) -> dict[str, Any]:
        return self.net_g.record()

    def usage_hint(self, out) -> str:
        return f"train the alignment module on it with `inpaintlab train {ALIGN_METHOD} --set mae={out}`"

    def inpaint(self, images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """The MAE's reconstruction from the kept tokens (resized back to the images' size)."""
        out = self.net_g.reconstruct(images, hole)
        return out if out.shape[-2:] == images.shape[-2:] else F.interpolate(out, size=images.shape[-2:],
                                                                             mode="bicubic").clamp(0, 1)

    def fitting_holes(self, hole: torch.Tensor, first: int) -> torch.Tensor:
        """The batch's holes, each one that covers more tokens than masking removes redrawn (notes 2.2.1, [D])."""
        from ...masks.base import make_generator
        from ...train.data import draw_hole
        from .mae import masking_fits, token_hole

        cfg, ratio = self.train_cfg, self.options.ratio
        fits = masking_fits(token_hole(hole, self.net_g.patch), ratio)
        if bool(fits.all()):
            return hole
        if self._masks is None:
            self._masks = make_generator(cfg.masks, **cfg.mask_params)
        hole = hole.clone()
        for i in (~fits).nonzero()[:, 0].tolist():
            for attempt in range(self.options.redraw_tries):
                rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, _REDRAW, first + i, attempt]))
                new = draw_hole(self._masks, cfg.size, cfg.mask_size, rng).to(hole)
                if bool(masking_fits(token_hole(new[None], self.net_g.patch), ratio).all()):
                    hole[i] = new
                    break
            else:
                raise InpaintlabError(f"--masks {cfg.masks} drew {self.options.redraw_tries} holes in a row covering "
                                      f"more than {ratio:.0%} of the MAE's tokens; give smaller masks (e.g. "
                                      f"--mask-param hi=0.5)")
        return hole

    def training_step(self, batch, batch_idx):
        from .mae import finetune_loss

        o = self.options
        first = self.first_sample_key(batch)
        self.count_batch(batch)
        images, hole = batch["image"], batch["hole"]
        if o.masking == "random":  # an empty hole: adaptive masking is MAE's random masking, irr_mask the removed patches
            hole = torch.zeros_like(hole)
        else:
            hole = self.fitting_holes(hole, first)
        gens = sample_generators(self.train_cfg.seed, first, images.shape[0], _MASKING)
        loss, masking = finetune_loss(self.net_g.mae, images, hole, gens, partial=self.net_g.partial, ratio=o.ratio)
        logs = {"train/loss": loss.detach(), "train/removed": masking.removed.float().mean()}
        if self.net_g.partial is not None:
            logs["train/alpha"] = self.net_g.partial.alpha.detach().clamp(0, 1)
        self.log_losses(logs)
        return loss

    def learning_rate(self) -> float:
        """MAE's scaling: base_lr x effective batch / 256."""
        c = self.train_cfg
        return self.options.base_lr * c.batch_size * c.accumulate * c.devices * c.num_nodes / 256

    def configure_optimizers(self):
        decay, no_decay = [], []
        for name, p in self.net_g.named_parameters():
            if p.requires_grad:  # MAE's param groups: no weight decay on biases and norms
                (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                                lr=self.learning_rate(), betas=(0.9, 0.95))
        total = self.train_cfg.steps // self.train_cfg.accumulate
        warmup = max(1, total // 20)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, total, warmup))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


# ---- asuka-align ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class AlignOptions:
    """asuka-align: the alignment module trained through the frozen SD-inpainting UNet (notes 2.2.2)."""

    base: str = option(SD15_INPAINTING, "the frozen SD-inpainting pipeline: a folder written by save_pretrained or "
                                        "a hub id (its unet/, vae/, text_encoder/ for the empty prompt)")
    mae: str = option("facebook/vit-mae-base", "the frozen MAE: an asuka-mae run (ASUKA's fine-tuned MAE), or a "
                                               "ViTMAE folder or hub id (a pre-trained MAE)")
    mae_size: int = option(256, "the side a pretrained ViTMAE runs at (an asuka-mae run keeps its own)", ge=8)
    variant: Literal["asuka", "attn", "linear", "cross4", "prompt"] = option(
        "asuka", "asuka: Linear + 4 self-attention blocks + LN; attn: 1 block; linear: Linear only; cross4: 77 "
                 "learnable queries and 4 cross-attention blocks; prompt: the SD-prompt baseline (learned tokens)")
    lr: float = option(5e-2, "AdamW learning rate (the paper prints 5e-2; 5e-5 is usual for attention blocks)", gt=0)
    weight_decay: float = option(1e-2, "AdamW weight decay (torch's default; the paper is silent)", ge=0)
    p_start: float = option(1.0, "probability that the MAE sees the full image, at step 0 (ours: 1.0)", ge=0, le=1)
    p_end: float = option(0.1, "... after the warm-up (ours: 0.1)", ge=0, le=1)
    p_warmup: int = option(2000, "steps over which p goes linearly from p_start to p_end (the paper: 2k)", ge=0)
    val_steps: int = option(10, "sampling steps of the validation samples", ge=1)


@METHODS.register(ALIGN_METHOD)
class AsukaAlignMethod(TrainableMethod):
    """ASUKA's alignment module (notes 2.2.2): the MAE prior mapped to the frozen SD-inpainting UNet's condition."""

    Config = AlignOptions
    inpainter = ASUKA
    val_metrics = ("psnr", "ssim", "lpips-alex")
    # the paper: 23K steps of batch 64 at 512 (the MAE at 256), its mask mixture
    train_defaults = {"size": 512, "batch_size": 64, "steps": 23000, "masks": "misato"}

    def __init__(self, train, options: AlignOptions, *, log=print):
        super().__init__(train, options, log=log)
        from .align import Alignment, LearnedPrompt

        o = options
        if o.p_start < o.p_end:
            self.note(f"p rises from {o.p_start} to {o.p_end} (the paper's warm-up lowers it)")
        unet, vae, text = load_base(o.base)
        prior, self.mae_record = load_prior(o.mae, o.mae_size)
        self.mae_record["image_size"] = prior.image_size
        self.null = text([""]).detach()  # the empty prompt's embedding (1, 77, c)
        width = int(unet.config.cross_attention_dim)
        if o.variant == "prompt":
            self.net_g = LearnedPrompt(self.null[0])
        else:
            self.net_g = Alignment(prior.width, width, variant=o.variant,
                                   generator=torch.Generator().manual_seed(train.seed))
        for name, module in (("_unet", unet), ("_vae", vae), ("_prior", prior.requires_grad_(False).eval())):
            object.__setattr__(self, name, module)  # frozen and out of the checkpoints (recorded by path)
        self.register_buffer("alphas_cumprod", noise_schedule(o.base).float(), persistent=False)

    def generator_config(self) -> dict[str, Any]:
        kind = "prompt" if self.options.variant == "prompt" else "alignment"
        return {"kind": kind, "alignment": self.net_g.config(), "base": self.options.base, "mae": self.mae_record}

    def usage_hint(self, out) -> str:
        return f"use it with --model {ASUKA} --option align={out} (and --option decoder=RUN for ASUKA's decoder)"

    def extra_record(self) -> dict[str, Any]:
        record = {"mae": self.mae_record}
        if self.mae_record.get("sha256"):
            record["fingerprints"] = {"mae.sha256": self.mae_record["sha256"]}
        return record

    def on_fit_start(self) -> None:
        for module in (self._unet, self._vae, self._prior):
            module.to(self.device)
        self.null = self.null.to(self.device)

    def p_full(self, step: int) -> float:
        from .align import full_prior_probability

        o = self.options
        return full_prior_probability(step, o.p_warmup, o.p_start, o.p_end)

    def condition(self, images: torch.Tensor, mae_hole: torch.Tensor) -> torch.Tensor:
        """c = Align(F): the prior of the images with ``mae_hole``, mapped to the UNet's condition."""
        with torch.no_grad():
            features = self._prior.features(images, mae_hole)
        return self.net_g(features)

    def training_step(self, batch, batch_idx):
        from .align import alignment_loss, draw_full_prior, mae_hole

        first = self.first_sample_key(batch)
        step = self.steps_done
        self.count_batch(batch)
        images, hole = batch["image"], batch["hole"]
        n = images.shape[0]
        p = self.p_full(step)
        full = draw_full_prior(n, p, sample_generators(self.train_cfg.seed, first, n, _PRIOR)).to(self.device)
        cond = self.condition(images, mae_hole(hole, full))
        vae, s = self._vae, self._vae.config.scaling_factor
        with torch.no_grad():
            z0 = vae.encode(images * 2 - 1).latent_dist.sample() * s
            z_known = vae.encode(masked_model_input(images, hole)).latent_dist.sample() * s
        hole_r = latent_hole(hole, vae_factor(vae)).to(z0.dtype)
        t = torch.randint(0, len(self.alphas_cumprod), (n,), device=self.device)
        eps = torch.randn_like(z0)
        loss = alignment_loss(self._unet, z0, hole_r, z_known, t, eps, cond, self.alphas_cumprod)
        self.log_losses({"train/loss": loss.detach(), "train/p_full": p})
        return loss

    def inpaint(self, images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """ASUKA's sampling with this module (DDIM ``val_steps``), decoded by the base's KL decoder."""
        from .sampler import asuka_sample, base_scheduler

        gens = [torch.Generator().manual_seed(i) for i in range(images.shape[0])]
        cond = self.condition(images, hole)
        z = asuka_sample(self._unet, self._vae, base_scheduler(None, "ddim"), images, hole, cond, gens,
                         self.options.val_steps)
        return ((self._vae.decode(z / self._vae.config.scaling_factor).sample + 1) / 2).clamp(0, 1)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.net_g.parameters(), lr=self.options.lr, weight_decay=self.options.weight_decay)


# ---- asuka-decoder -------------------------------------------------------------------------------

@dataclass(frozen=True)
class DecoderOptions:
    """asuka-decoder: the mask-unmask consistent decoder (notes 2.2.3)."""

    base: str = option(SD15_INPAINTING, "the SD-inpainting pipeline: its VAE's latents are decoded, its UNet makes "
                                        "the latent augmentation")
    pretrained: str = option("", "the decoder to start from: an AsymmetricAutoencoderKL folder or hub id "
                                 "(cross-attention/asymmetric-autoencoder-kl-x-1-5, the paper's), or an asuka-decoder "
                                 "run; empty: the base's KL decoder plus a new condition encoder")
    downsample: Literal["any", "nearest"] = option("any", "how the hole reaches each decoder scale: any pixel "
                                                          "(ASUKA's code) or nearest (diffusers')")
    jitter: Literal["latent_only", "all", "none"] = option(
        "latent_only", "colour augmentation: of the encoded image only (ours: the decoder learns to restore the "
                       "kept pixels' colours), of image, condition and target together, or off")
    brightness: float = option(0.15, "ColorJitter brightness (the paper: 0.15)", ge=0)
    contrast: float = option(0.2, "ColorJitter contrast (the paper: 0.2)", ge=0)
    saturation: float = option(0.1, "ColorJitter saturation (the paper: 0.1)", ge=0)
    hue: float = option(0.03, "ColorJitter hue (the paper: 0.03)", ge=0, le=0.5)
    latent_aug: float = option(0.5, "share of samples whose latent is the frozen UNet's one-step estimate (the "
                                    "paper: 0.5; 0: off)", ge=0, le=1)
    t_min: int = option(0, "latent augmentation: smallest t (ours)", ge=0)
    t_max: int = option(999, "latent augmentation: largest t (ours)", ge=0)
    reencode: bool = option(False, "latent augmentation: decode the estimate with the KL decoder and encode it "
                                   "again (the paper's \"two-round encoding\"; ours: off)")
    lr: float = option(8e-5, "Adam (0.5, 0.9) learning rate, cosine decay (the paper: 8e-5)", gt=0)
    perceptual: Literal["lpips-vgg", "lpips-alex", "none"] = option(
        "lpips-vgg", "the perceptual term (Asymmetric VQGAN: LPIPS-VGG, weight 1; alex: cheaper, for small runs)")
    disc_start: int = option(50001, "step from which the PatchGAN term is on (Asymmetric VQGAN's config: 50001, so "
                                    "never within the paper's 50K steps)", ge=0)
    disc_weight: float = option(0.8, "weight of the adaptive-weighted GAN term (Asymmetric VQGAN: 0.8)", ge=0)


@METHODS.register(DECODER_METHOD)
class AsukaDecoderMethod(TrainableMethod):
    """ASUKA's mask-unmask consistent decoder (notes 2.2.3): Asymmetric VQGAN + the hole, colour and latent augmentation."""

    Config = DecoderOptions
    val_metrics = ("psnr", "ssim", "cd")
    train_defaults = {"size": 256, "batch_size": 40, "steps": 50000, "masks": "misato"}

    def __init__(self, train, options: DecoderOptions, *, log=print):
        super().__init__(train, options, log=log)
        from ..seamless.vae_loss import LDMVAELoss, VAELossConfig, load_vae_perceptual
        from .augment import ColorJitter
        from .decoder import encoder_frozen

        o = options
        if o.t_min > o.t_max:
            raise InpaintlabError(f"t_min {o.t_min} > t_max {o.t_max}")
        self.automatic_optimization = False
        # the UNet and the empty prompt only make the latent augmentation
        unet, vae, text = load_base(o.base, unet=o.latent_aug > 0, text=o.latent_aug > 0)
        if o.t_max >= len(noise_schedule(o.base)):
            raise InpaintlabError(f"t_max {o.t_max} is beyond the base's {len(noise_schedule(o.base))} timesteps")
        self.net_g = encoder_frozen(starting_decoder(o.pretrained, vae, o.downsample))
        if not same_encoder(self.net_g, vae):
            self.note(f"the decoder's encoder is not {o.base}'s: it decodes the latents of its own encoder, which the "
                      f"base's UNet may not share (latent augmentation, and ASUKA's sampling, use the base's)")
        self.null = text([""]).detach() if text is not None else None
        object.__setattr__(self, "_unet", unet)
        object.__setattr__(self, "_vae", vae)
        self.register_buffer("alphas_cumprod", noise_schedule(o.base).float(), persistent=False)
        self.jitter = ColorJitter(o.brightness, o.contrast, o.saturation, o.hue)
        weight = 1.0 if o.perceptual != "none" else 0.0
        perceptual = load_vae_perceptual(o.perceptual.removeprefix("lpips-")) if weight else None
        self.loss = LDMVAELoss(VAELossConfig(disc_start=o.disc_start, kl_weight=0.0, disc_weight=o.disc_weight,
                                             perceptual_weight=weight), perceptual)

    def generator_config(self) -> dict[str, Any]:
        from .decoder import decoder_config

        return {"decoder": decoder_config(self.net_g), "base": self.options.base}

    def on_fit_start(self) -> None:
        for module in (self._unet, self._vae):
            if module is not None:
                module.to(self.device)
        if self.null is not None:
            self.null = self.null.to(self.device)

    def usage_hint(self, out) -> str:
        return f"use it with --model {ASUKA} --option decoder={out}"

    def inpaint(self, images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """The decoding of the images' own latents (posterior mean) given the kept pixels: what validation scores."""
        z = self.net_g.encode(images * 2 - 1).latent_dist.mode()
        return ((self.net_g.decode_hole(z, images, hole) + 1) / 2).clamp(0, 1)

    def training_latents(self, images: torch.Tensor, first: int) -> tuple[torch.Tensor, dict[str, Any]]:
        """z (unscaled) of the jittered image, replaced by the one-step estimate for the latent-augmented share."""
        from .decoder import latent_augmentation

        o, seed, n = self.options, self.train_cfg.seed, images.shape[0]
        with torch.no_grad():
            z = self.net_g.encode(images * 2 - 1).latent_dist.sample()
            logs: dict[str, Any] = {}
            if o.latent_aug > 0:
                s = self._vae.config.scaling_factor
                gens = sample_generators(seed, first, n, _LATENT)
                aug = latent_augmentation(self._unet, z * s, self.null.expand(n, -1, -1), self.alphas_cumprod, gens,
                                          p=o.latent_aug, t_range=(o.t_min, o.t_max))
                z = aug.latents / s
                if o.reencode and bool(aug.applied.any()):
                    again = self._vae.encode(self._vae.decode(z).sample.clamp(-1, 1)).latent_dist.sample()
                    z = torch.where(aug.applied.view(-1, 1, 1, 1).to(z.device), again, z)
                logs["train/latent_aug"] = aug.applied.float().mean()
        return z, logs

    def training_step(self, batch, batch_idx):
        o = self.options
        first = self.first_sample_key(batch)
        self.count_batch(batch)
        step = self.steps_done - 1
        last = self.steps_done % self.train_cfg.accumulate == 0
        opt_g, opt_d = self.optimizers()
        factor = warmup_cosine(step // self.train_cfg.accumulate, max(1, self.train_cfg.steps // self.train_cfg.accumulate))
        for opt in (opt_g, opt_d):  # the cosine decay of both players, set here: the discriminator may not step yet
            for group in opt.optimizer.param_groups:
                group["lr"] = o.lr * factor
        images, hole = batch["image"], batch["hole"]
        jittered = images if o.jitter == "none" else \
            self.jitter(images, sample_generators(self.train_cfg.seed, first, images.shape[0], _JITTER))
        encoded, kept, target = decoder_inputs(images, jittered, o.jitter)
        z, logs = self.training_latents(encoded, first)
        x = target * 2 - 1
        x_hat = self.net_g.decode_hole(z, kept, hole)
        kl = torch.zeros(images.shape[0], device=self.device)
        loss_g, logs_g = self.loss.generator_loss(x, x_hat, kl, step, self.net_g.decoder.conv_out.weight)
        self.manual_update(opt_g, loss_g, last)
        values = logs | {f"train/{k}": v for k, v in logs_g.items() if k != "kl"}
        if step >= o.disc_start:
            loss_d, logs_d = self.loss.discriminator_loss(x, x_hat.detach(), step)
            self.manual_update(opt_d, loss_d, last)
            values |= {f"train/{k}": v for k, v in logs_d.items()}
        values["train/lr"] = o.lr * factor
        self.log_losses({k: (v.detach() if torch.is_tensor(v) else v) for k, v in values.items()})

    def configure_optimizers(self):
        o = self.options
        params = [p for p in self.net_g.parameters() if p.requires_grad]
        opt_g = torch.optim.Adam(params, lr=o.lr, betas=(0.5, 0.9))
        opt_d = torch.optim.Adam(self.loss.discriminator.parameters(), lr=o.lr, betas=(0.5, 0.9))
        return [opt_g, opt_d]


def same_encoder(decoder, vae) -> bool:
    """Whether the decoder's encoder side (encoder, quant_conv) holds the VAE's weights."""
    mine, theirs = decoder.state_dict(), vae.state_dict()
    keys = [k for k in theirs if k.startswith(("encoder.", "quant_conv."))]
    return all(k in mine and mine[k].shape == theirs[k].shape and torch.equal(mine[k].cpu(), theirs[k].cpu())
               for k in keys)


def decoder_inputs(images: torch.Tensor, jittered: torch.Tensor, jitter: str
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(encoded image, kept-pixel condition, target) of a decoder step under ``jitter`` (notes 2.2.3 step 1, 2.6 #6).

    ``latent_only``: only the latents' source is jittered, so the decoder learns to bring the hole's
    colours back to the kept pixels' ([D]); ``all``: ordinary augmentation of all three; ``none``.
    """
    if jitter == "latent_only":
        return jittered, images, images
    if jitter == "all":
        return jittered, jittered, jittered
    return images, images, images


def starting_decoder(pretrained: str, vae, downsample: str):
    """The decoder to train: an asuka-decoder run, an AsymmetricAutoencoderKL (mask channel added, zero), or the KL VAE's."""
    from .decoder import from_asymmetric, from_kl, load_asymmetric

    if not pretrained:
        return from_kl(vae, downsample=downsample, generator=torch.Generator().manual_seed(0))
    if is_run(pretrained):
        return load_decoder_run(pretrained)[0]
    return from_asymmetric(load_asymmetric(pretrained), downsample=downsample)


def load_decoder_run(path: str):
    """The decoder of an ``asuka-decoder`` run or export: (AsukaDecoder, meta, state)."""
    from ...train.export import read_trained_as
    from ..seamless.models import load_state
    from .decoder import build_asuka_decoder

    meta, state = read_trained_as(path, DECODER_METHOD, flag="decoder")
    return load_state(build_asuka_decoder(meta["generator"]["decoder"]), state, "decoder"), meta, state


__all__ = ["AsukaMAEMethod", "AsukaAlignMethod", "AsukaDecoderMethod", "MAEPrior", "build_prior", "load_prior",
           "frozen_prior", "load_base", "load_decoder_run", "sample_generators", "warmup_cosine", "to_mae_size",
           "SD15_INPAINTING"]
