"""Training Seamless Borders' two parts on the shared loop: the VAE on Eq. 6, the denoiser on Algorithm 1.

``inpaintlab train seamless-vae`` fine-tunes (or, on a CPU, trains from scratch) a diffusers
``AutoencoderKL`` on the blended reconstruction of Eq. 6 with SD's VAE recipe (LDM's
``LPIPSWithDiscriminator``: L1 + LPIPS, a log-variance, KL 1e-6, a hinge PatchGAN from ``disc_start``
with the adaptive weight; Adam (0.5, 0.9), the learning rate scaled by the batch). ``inpaintlab train
seamless-denoiser`` trains a v-prediction UNet with Algorithm 1 (two steps, lambda 0.5) on the latents
of a VAE (a ``seamless-vae`` run, or a pretrained pipeline's).

Training masks (notes 1.3 item 5): the data's masks (LaMa's mix by default) for inpainting, replaced by
an ``outpaint-random`` border for ``outpaint_share`` of the samples and by no hole for
``empty_share`` (VAE only: Eq. 6 then is plain reconstruction). With ``--foreground DIR`` (per-image
foreground or saliency masks, e.g. U2Net's, computed beforehand) the data's holes avoid the
foreground, as the paper's; without it the run says so in one line and trains on unrestricted holes.

Every draw (masks, posterior samples, t, noise) comes from torch's global generator, which the loop
seeds and saves with every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from ...errors import InpaintlabError
from ...inpainters.blended import latent_hole, masked_model_input
from ...options import option
from ...train.export import state_fingerprint
from ...train.method import METHODS, TrainableMethod
from .blend import two_step_loss, vae_factor
from .models import (PromptEncoder, build_unet, build_vae, frozen, load_pretrained, load_state, load_vae_run,
                     plain_config, tiny_unet_config, tiny_vae_config)
from .names import DENOISER_METHOD, SEAMLESS, VAE_METHOD

#: t' buckets for logging the second step's loss (its target grows at small t')
SECOND_BUCKETS = (0, 50, 250, 500, 1000)


@dataclass(frozen=True)
class SeamlessMaskOptions:
    """How the training holes are drawn (shared by both parts)."""

    outpaint_share: float = option(0.5, "share of samples whose hole is an outpainting border (one model for both "
                                        "tasks; ours: 0.5)", ge=0, le=1)
    outpaint_min: float = option(0.4, "outpainting: smallest kept side ratio (ours)", gt=0, le=1)
    outpaint_max: float = option(0.8, "outpainting: largest kept side ratio (ours)", gt=0, le=1)


@dataclass(frozen=True)
class SeamlessVAEOptions(SeamlessMaskOptions):
    """seamless-vae: Eq. 6 fine-tuning with SD's VAE recipe (LDM's kl-f8 config)."""

    pretrained: str = option("", "the VAE to fine-tune: SD-1.5's pipeline folder or hub id "
                                 "(stable-diffusion-v1-5/stable-diffusion-v1-5; its vae/ is used), a diffusers VAE "
                                 "folder, or a seamless-vae run; empty: a tiny VAE from scratch")
    width: int = option(32, "tiny VAE: base width (channels w, 2w, 2w; factor 4)", ge=4)
    objective: Literal["blended", "plain"] = option(
        "blended", "blended: Eq. 6, D(E(x) hole_r + E(x_known)(1 - hole_r)); plain: D(E(x)) (the control)")
    train_encoder: bool = option(True, "train the encoder too (false: decoder only, the latent space stays the "
                                       "pretrained UNet's)")
    empty_share: float = option(0.1, "share of samples with no hole (Eq. 6 is then plain reconstruction; ours)",
                                ge=0, le=1)
    base_lr: float = option(4.5e-6, "LDM's base learning rate; lr = base_lr x batch x accumulate x devices x "
                                    "nodes", gt=0)
    perceptual: Literal["lpips-vgg", "lpips-alex", "none"] = option(
        "lpips-vgg", "the perceptual term (LDM: LPIPS-VGG, weight 1; alex: cheaper, for small runs)")
    perceptual_weight: float = option(1.0, "weight of the perceptual term", ge=0)
    kl_weight: float = option(1e-6, "weight of the KL term (LDM kl-f8: 1e-6)", ge=0)
    disc_start: int = option(50001, "step from which the PatchGAN term is on (LDM kl-f8: 50001)", ge=0)
    disc_weight: float = option(0.5, "weight of the adaptive-weighted GAN term (LDM kl-f8: 0.5)", ge=0)
    train_logvar: bool = option(False, "optimise the log-variance (LDM builds it but leaves it out of its "
                                       "optimiser, so it stays 0)")


@dataclass(frozen=True)
class SeamlessDenoiserOptions(SeamlessMaskOptions):
    """seamless-denoiser: a v-prediction UNet trained with Algorithm 1."""

    pretrained: str = option("", "SD-1.5's pipeline folder or hub id: its UNet (switched to v-prediction), text "
                                 "encoder and VAE; empty: a tiny unconditional UNet from scratch")
    vae: str = option("", "a seamless-vae run or export whose latents to train on (default: the pretrained "
                          "pipeline's VAE; required without --pretrained)")
    width: int = option(32, "tiny UNet: base width (channels w, 2w)", ge=8)
    init: str = option("", "start from the UNet of another seamless-denoiser run (e.g. branch a standard run "
                           "into two-step training)")
    unet_kind: Literal["t2i4", "inpaint9"] = option(
        "t2i4", "t2i4: a 4-channel text-to-image UNet with BLD inference (ours, the paper's baseline); inpaint9: "
                "latents + hole + known latents (SD-inpainting's input)")
    objective: Literal["two-step", "standard"] = option("two-step", "two-step: Algorithm 1; standard: the v loss")
    lam: float = option(0.5, "lambda, the weight of the second step (the paper's 0.5)", ge=0)
    second_stride: int = option(1, "t' = t - k: k = 1 (the paper's t - 1), or the inference stride (20)", ge=1)
    detach: bool = option(True, "stop the gradient through the first prediction into the second step (ours)")
    known: Literal["masked_image", "z0"] = option(
        "masked_image", "the known latent blended in: s E(x_known) (Sec. 3.2) or z0 itself")
    prompt: str = option("", "the training prompt (the data carry no captions; empty: the unconditional "
                             "embedding)")
    caption_dropout: float = option(0.1, "share of samples trained with the empty prompt (ours: 0.1)", ge=0, le=1)
    lr: float = option(1e-5, "AdamW learning rate (ours; weight decay 1e-2)", gt=0)
    val_steps: int = option(10, "DDIM steps of the validation samples", ge=1)


def torch_uniform(n: int, lo: float, hi: float, device) -> torch.Tensor:
    """n draws of U[lo, hi] from torch's global generator (saved with every checkpoint)."""
    return lo + (hi - lo) * torch.rand(n, device=device)


def training_holes(hole: torch.Tensor, o: SeamlessMaskOptions, empty_share: float = 0.0) -> torch.Tensor:
    """Per sample: no hole (``empty_share``), an outpainting border (``outpaint_share``), or the data's hole."""
    from ...masks.shapes import centred_span

    n, _, h, w = hole.shape
    u = torch.rand(n, device=hole.device)
    ratios = torch_uniform(2 * n, o.outpaint_min, o.outpaint_max, hole.device).view(n, 2)
    out = hole.clone()
    for i in range(n):
        if u[i] < empty_share:
            out[i] = 0
        elif u[i] < empty_share + o.outpaint_share:
            (y0, y1), (x0, x1) = centred_span(h, float(ratios[i, 0])), centred_span(w, float(ratios[i, 1]))
            out[i] = 1
            out[i, :, y0:y1, x0:x1] = 0
    return out


def note_unrestricted(train, note) -> None:
    """One line when the holes cannot avoid the foreground (no ``--foreground`` folder)."""
    if train.foreground is None:
        note("training holes are not restricted to the background: give --foreground DIR (per-image foreground "
             "or saliency masks, <image stem>.png) for the paper's background-only holes")


def _check_mask_options(o: SeamlessMaskOptions) -> None:
    if o.outpaint_min > o.outpaint_max:
        raise InpaintlabError(f"outpaint_min {o.outpaint_min} > outpaint_max {o.outpaint_max}")


def denoiser_state(path: str) -> dict[str, torch.Tensor]:
    """The UNet weights of a ``seamless-denoiser`` run or export."""
    from ...train.export import read_trained_as

    return read_trained_as(path, DENOISER_METHOD, flag="--init")[1]


def starting_vae(pretrained: str):
    """The VAE to fine-tune: a ``seamless-vae`` run or export, or a diffusers VAE (folder, pipeline, hub id)."""
    p = Path(pretrained).expanduser()
    if any((p / name).is_file() for name in ("generator.json", "export/generator.json", "checkpoints/last.ckpt")):
        return load_vae_run(pretrained)[0]
    return load_pretrained("vae", pretrained)


@METHODS.register(VAE_METHOD)
class SeamlessVAEMethod(TrainableMethod):
    """Seamless Borders' VAE fine-tuning (Hou et al. 2025, Eq. 6): decode blended latents without a seam."""

    Config = SeamlessVAEOptions
    val_metrics = ("psnr", "ssim", "cd")
    train_defaults = {"size": 256, "batch_size": 12}  # the paper: 256 crops; LDM's kl-f8: batch 12 per GPU

    def __init__(self, train, options: SeamlessVAEOptions, *, log=print):
        super().__init__(train, options, log=log)
        from .vae_loss import LDMVAELoss, VAELossConfig, load_vae_perceptual

        o = options
        _check_mask_options(o)
        self.automatic_optimization = False
        self.net_g = starting_vae(o.pretrained) if o.pretrained else build_vae(tiny_vae_config(o.width))
        if not o.train_encoder:  # the latent space stays the pretrained one (the UNet's)
            for part in (self.net_g.encoder, self.net_g.quant_conv):
                if part is not None:
                    frozen(part)
        weight = o.perceptual_weight if o.perceptual != "none" else 0.0
        perceptual = load_vae_perceptual(o.perceptual.removeprefix("lpips-")) if weight > 0 else None  # frozen
        self.loss = LDMVAELoss(VAELossConfig(disc_start=o.disc_start, kl_weight=o.kl_weight,
                                             disc_weight=o.disc_weight, perceptual_weight=weight), perceptual)
        note_unrestricted(train, self.note)

    def generator_config(self) -> dict[str, Any]:
        return {"vae": plain_config(self.net_g.config), "objective": self.options.objective}

    def usage_hint(self, out) -> str:
        return f"train the denoiser on it with `inpaintlab train {DENOISER_METHOD} --vae {out}`"

    def inpaint(self, images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """The blended reconstruction of Eq. 6 (posterior means), in [0, 1]: what validation scores."""
        return (self.reconstruct(images, hole, sample=False) + 1) / 2

    def reconstruct(self, images, hole, *, sample: bool) -> torch.Tensor:
        x_hat, _ = self.reconstruction_and_kl(images, hole, sample=sample)
        return x_hat

    def reconstruction_and_kl(self, images, hole, *, sample: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """x_hat (Eq. 6, or D(E(x)) for the plain objective) and the summed KL of the posteriors used (N,)."""
        vae = self.net_g
        post_image = vae.encode(images * 2 - 1).latent_dist
        z_image = post_image.sample() if sample else post_image.mode()
        kl = post_image.kl()
        if self.options.objective == "blended":
            post_known = vae.encode(masked_model_input(images, hole)).latent_dist
            z_known = post_known.sample() if sample else post_known.mode()
            hole_r = latent_hole(hole, vae_factor(vae)).to(z_image.dtype)
            z_image = z_image * hole_r + z_known * (1 - hole_r)
            kl = kl + post_known.kl()
        return vae.decode(z_image).sample, kl

    def training_step(self, batch, batch_idx):
        o = self.options
        self.count_batch(batch)
        step = self.steps_done - 1
        last = self.steps_done % self.train_cfg.accumulate == 0
        optimizers = self.optimizers()
        opt_g, opt_d = optimizers
        image = batch["image"]
        hole = training_holes(batch["hole"], o, o.empty_share)
        x = image * 2 - 1
        x_hat, kl = self.reconstruction_and_kl(image, hole, sample=True)
        last_layer = self.net_g.decoder.conv_out.weight
        loss_g, logs = self.loss.generator_loss(x, x_hat, kl, step, last_layer)
        self.manual_update(opt_g, loss_g, last)
        values = {f"train/{k}": v for k, v in logs.items()}
        if step >= o.disc_start:  # before it the discriminator's loss is multiplied by 0 (LDM's adopt_weight)
            loss_d, logs_d = self.loss.discriminator_loss(x, x_hat.detach(), step)
            self.manual_update(opt_d, loss_d, last)
            values |= {f"train/{k}": v for k, v in logs_d.items()}
        self.log_losses({k: (v.detach() if torch.is_tensor(v) else v) for k, v in values.items()})

    def learning_rate(self) -> float:
        """LDM's scaling: base_lr x batch x accumulate x devices x nodes."""
        c = self.train_cfg
        return self.options.base_lr * c.batch_size * c.accumulate * c.devices * c.num_nodes

    def configure_optimizers(self):
        lr = self.learning_rate()
        params = [p for p in self.net_g.parameters() if p.requires_grad]
        if self.options.train_logvar:
            params.append(self.loss.logvar)
        opt_g = torch.optim.Adam(params, lr=lr, betas=(0.5, 0.9))
        opt_d = torch.optim.Adam(self.loss.discriminator.parameters(), lr=lr, betas=(0.5, 0.9))
        return opt_g, opt_d

    def on_train_start(self) -> None:
        self.note(f"seamless-vae: lr {self.learning_rate():.3g} (base {self.options.base_lr:g} scaled by the batch)")


@METHODS.register(DENOISER_METHOD)
class SeamlessDenoiserMethod(TrainableMethod):
    """Seamless Borders' two-step denoiser training (Hou et al. 2025, Algorithm 1), v-prediction, BLD inference."""

    Config = SeamlessDenoiserOptions
    inpainter = SEAMLESS
    val_metrics = ("psnr", "ssim", "cd")
    train_defaults = {"size": 512}  # SD-1.5's resolution (the paper trains on LAION images >= 512)

    def __init__(self, train, options: SeamlessDenoiserOptions, *, log=print):
        super().__init__(train, options, log=log)
        from diffusers import DDPMScheduler

        o = options
        _check_mask_options(o)
        if not o.pretrained and not o.vae:
            raise InpaintlabError(f"{DENOISER_METHOD} needs latents: --vae RUN (a `{VAE_METHOD}` run) or "
                                  f"--pretrained SD-1.5's pipeline folder")
        self.vae_record: dict[str, Any] = {}
        if o.vae:
            vae, meta, state = load_vae_run(o.vae)
            self.vae_record = {"path": str(Path(o.vae).expanduser().resolve()), "steps": meta.get("steps"),
                               "sha256": state_fingerprint(state)}
        else:
            vae = load_pretrained("vae", o.pretrained)
        object.__setattr__(self, "_vae", frozen(vae))  # frozen and out of the checkpoints (its path is recorded)
        self.text = None
        if o.pretrained:
            self.net_g = load_pretrained("unet", o.pretrained)
            self.text = PromptEncoder(o.pretrained)
        else:
            in_ch = 9 if o.unet_kind == "inpaint9" else 4
            self.net_g = build_unet(tiny_unet_config(o.width, in_ch))
        if o.init:
            self.net_g = load_state(self.net_g, denoiser_state(o.init), f"UNet of {o.init}")
        expected = 9 if o.unet_kind == "inpaint9" else vae.config.latent_channels
        if self.net_g.config.in_channels != expected:
            raise InpaintlabError(f"unet_kind={o.unet_kind} needs a UNet with {expected} input channels; "
                                  f"{o.pretrained or 'the tiny UNet'} has {self.net_g.config.in_channels}")
        # SD-1.5 is an eps model: the run trains it as a v-prediction model (the paper's Eq. 7)
        self.noise = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                   num_train_timesteps=1000, prediction_type="v_prediction")
        note_unrestricted(train, self.note)

    # -- what the loop needs -------------------------------------------------------------------------
    def generator_config(self) -> dict[str, Any]:
        o = self.options
        return {"unet": plain_config(self.net_g.config), "unet_kind": o.unet_kind, "vae": self.vae_record or None,
                "pretrained": o.pretrained or None, "prediction_type": "v_prediction",
                "scaling_factor": float(self._vae.config.scaling_factor)}

    def extra_record(self) -> dict[str, Any]:
        if not self.vae_record:
            return {}
        return {"vae": self.vae_record, "fingerprints": {"vae.sha256": self.vae_record["sha256"]}}

    def on_fit_start(self) -> None:
        self._vae.to(self.device)
        if self.text is not None:
            self.text.to(self.device)

    # -- conditions ------------------------------------------------------------------------------------
    def condition(self, n: int, prompts: list[str] | None = None) -> torch.Tensor:
        """The cross-attention condition: CLIP text embeddings (pretrained), or a fixed zero context (tiny)."""
        if self.text is None:
            return torch.zeros(n, 1, self.net_g.config.cross_attention_dim, device=self.device)
        return self.text(prompts if prompts is not None else [self.options.prompt] * n)

    def model_fn(self, cond: torch.Tensor, hole_r: torch.Tensor, z_known: torch.Tensor):
        """The v network with its condition bound (inpaint9: latents, hole and known latents concatenated)."""
        inpaint9 = self.options.unet_kind == "inpaint9"

        def v(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            zin = torch.cat([z, hole_r, z_known], 1) if inpaint9 else z
            return self.net_g(zin, t, encoder_hidden_states=cond).sample

        return v

    def latents(self, images: torch.Tensor, hole: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(z0, z_known, hole_r): scaled posterior samples of the image and of the masked image, the latent hole."""
        vae, s = self._vae, self._vae.config.scaling_factor
        with torch.no_grad():
            z0 = vae.encode(images * 2 - 1).latent_dist.sample() * s  # a posterior sample, as SD's training
            z_known = z0 if self.options.known == "z0" else \
                vae.encode(masked_model_input(images, hole)).latent_dist.sample() * s
        return z0, z_known, latent_hole(hole, vae_factor(vae)).to(z0.dtype)

    # -- one step --------------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        o = self.options
        self.count_batch(batch)
        image = batch["image"]
        hole = training_holes(batch["hole"], o)
        z0, z_known, hole_r = self.latents(image, hole)
        n, k = z0.shape[0], o.second_stride
        t = torch.randint(k, 1000, (n,), device=self.device)
        eps1, eps2 = torch.randn_like(z0), torch.randn_like(z0)
        prompts = None
        if self.text is not None:
            drop = torch.rand(n) < o.caption_dropout
            prompts = ["" if d else o.prompt for d in drop.tolist()]
        v = self.model_fn(self.condition(n, prompts), hole_r, z_known)
        lam = o.lam if o.objective == "two-step" else 0.0
        result = two_step_loss(v, z0, z_known, hole_r, t, t - k, eps1, eps2, self.noise.alphas_cumprod, lam,
                               o.detach)
        logs = {"train/loss": result.loss.detach(), "train/first": result.first.detach()}
        if lam:
            logs["train/second"] = result.second.detach()
            tp = t - k
            for lo, hi in zip(SECOND_BUCKETS, SECOND_BUCKETS[1:]):
                inside = (tp >= lo) & (tp < hi)
                if inside.any():
                    logs[f"train/second_t{lo}-{hi - 1}"] = result.second_each[inside].mean()
        self.log_losses(logs)
        return result.loss

    def inpaint(self, images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """BLD with the masked image's latents and DDIM (``val_steps``, leading spacing), decoded by the VAE."""
        from .sampler import seamless_sample

        gens = [torch.Generator(device="cpu").manual_seed(i) for i in range(images.shape[0])]
        return seamless_sample(self.net_g, self._vae, images, hole, gens, cond=self.condition(images.shape[0]),
                               uncond=None, guidance_scale=1.0, steps=self.options.val_steps,
                               unet_kind=self.options.unet_kind)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.net_g.parameters(), lr=self.options.lr, weight_decay=1e-2)


__all__ = ["SeamlessVAEMethod", "SeamlessDenoiserMethod", "SeamlessVAEOptions", "SeamlessDenoiserOptions",
           "training_holes", "load_vae_run", "VAE_METHOD", "DENOISER_METHOD"]
