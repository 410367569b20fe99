"""LaMa training (Suvorov et al. 2022; advimman/lama ``DefaultInpaintingTrainingModule``), on the shared loop.

One step, LaMa's two-player update with manual optimisation:

1. generator: ``pred = G([image * (1 - hole), hole])``; loss = masked L1 (known x10, missing x0)
   + non-saturating adversarial x10 + discriminator feature matching x100 + perceptual x30
   (LaMa's ResNetPL on ADE20k features, or LPIPS-VGG when that encoder's weights are absent: the
   term used is recorded in the run's ``config.json``); the discriminator is frozen meanwhile;
2. discriminator, on the updated generator's output (LaMa ran its generator again for this step):
   softplus on real and fake logits, the hole of a fake counted as fake and its known region as
   real (``mask_as_fake_target``), plus the R1 penalty (gamma 0.001) on the real.

Adam 1e-3 (generator) and 1e-4 (discriminator), LaMa's ``default_optimizers.yaml``. The generator
presets are :data:`~.ffc.GENERATOR_PRESETS`: ``big-lama`` (the paper's, default), ``lama-fourier``
and ``small`` (trains on a 2-core CPU at 128x128).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from ...errors import InpaintlabError, MissingWeightsError
from ...options import option
from ...train.method import METHODS, TrainableMethod
from .discriminator import DiscriminatorConfig, build_discriminator
from .ffc import GENERATOR_PRESETS, build_generator, config_to_dict
from .losses import (LAMA_LOSS_WEIGHTS, discriminator_fake_loss, discriminator_real_loss, feature_matching_loss,
                     generator_adversarial_loss, masked_l1, perceptual_loss_for)

W = LAMA_LOSS_WEIGHTS


@dataclass(frozen=True)
class LaMaOptions:
    """LaMa's training options (defaults: ``configs/training/big-lama.yaml`` and ``lama-fourier.yaml``)."""

    generator: Literal["big-lama", "lama-fourier", "small"] = option(
        "big-lama", "generator preset: big-lama (18 FFC blocks, the paper's), lama-fourier (9), small (CPU)")
    lr_g: float = option(1e-3, "generator learning rate (Adam)", gt=0)
    lr_d: float = option(1e-4, "discriminator learning rate (Adam)", gt=0)
    l1_known: float = option(W["l1_weight_known"], "masked L1 weight on the known pixels", ge=0)
    l1_missing: float = option(W["l1_weight_missing"], "masked L1 weight in the hole", ge=0)
    adversarial: float = option(W["adversarial"], "non-saturating adversarial weight (0: no discriminator)", ge=0)
    gp_coef: float = option(W["gp_coef"], "R1 gradient penalty gamma on real images", ge=0)
    feature_matching: float = option(W["feature_matching"], "discriminator feature matching weight", ge=0)
    perceptual: float = option(W["resnet_pl"], "perceptual loss weight", ge=0)
    perceptual_term: Literal["auto", "resnet_pl", "lpips_vgg", "none"] = option(
        "auto", "auto: LaMa's ResNetPL when its ADE20k weights are present, else LPIPS-VGG; or name one")


def build_perceptual(weight: float, term: str, note) -> tuple[torch.nn.Module | None, str]:
    """The perceptual loss module (LaMa's ResNetPL, or LPIPS-VGG, times ``weight``) and its name."""
    if weight == 0 or term == "none":
        return None, "none"
    if term == "lpips_vgg":
        from ...metrics.lpips import load_lpips
        from .losses import LPIPSPerceptual

        module = LPIPSPerceptual(load_lpips("vgg"), weight)
        return module, module.name
    try:
        module, name = perceptual_loss_for("cpu", log=note, weight=weight)
    except MissingWeightsError as e:
        raise InpaintlabError(f"the perceptual loss has no weights: {e}; run `inpaintlab weights fetch` for "
                              f"LPIPS-VGG, or train without it: --set perceptual_term=none") from None
    if term == "resnet_pl" and name != "resnet_pl":
        raise InpaintlabError("--set perceptual_term=resnet_pl, but LaMa's ADE20k encoder weights are absent "
                              "(see `inpaintlab weights list`)")
    return module, name


def adversarial_terms(net_d: torch.nn.Module, pred: torch.Tensor, image: torch.Tensor, hole: torch.Tensor,
                      adversarial: float, feature_matching: float) -> dict[str, torch.Tensor]:
    """LaMa's generator-side terms: non-saturating adversarial (hole as fake) and feature matching; D frozen."""
    net_d.requires_grad_(False)
    fake_logits, fake_features = net_d(pred)
    with torch.no_grad():
        _, real_features = net_d(image)
    net_d.requires_grad_(True)
    return {"train/adv_g": generator_adversarial_loss(fake_logits, hole, weight=adversarial),
            "train/fm": feature_matching_loss(fake_features, real_features) * feature_matching}


def discriminator_loss(net_d: torch.nn.Module, fake: torch.Tensor, image: torch.Tensor, hole: torch.Tensor,
                       gp_coef: float) -> torch.Tensor:
    """LaMa's discriminator loss: softplus on real (+ R1 penalty) and fake logits, ``mask_as_fake_target``."""
    real = image.detach().requires_grad_(True)  # for the R1 penalty
    real_logits, _ = net_d(real)
    fake_logits, _ = net_d(fake)
    return discriminator_real_loss(real_logits, real, gp_coef) + discriminator_fake_loss(fake_logits, hole)


class TwoPlayerStep:
    """LaMa's training step with manual optimisation, around a method's ``generator_losses``.

    The method provides ``generator_losses(image, hole) -> (prediction or None, {name: loss})``,
    ``net_d`` (None: no discriminator), ``_perceptual`` (None: no perceptual term) and options
    ``adversarial``, ``feature_matching`` and ``gp_coef``. One step: (1) the generator on its losses
    plus, with a discriminator, the adversarial and feature-matching terms (the discriminator frozen
    meanwhile) and the perceptual term; (2) the discriminator on the updated generator's output
    (LaMa's Lightning 1.x loop called its training step once per optimiser, and the discriminator's
    call ran the generator again).
    """

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        o = self.options
        self.count_batch(batch)
        last = self.steps_done % self.train_cfg.accumulate == 0
        optimizers = self.optimizers()
        opt_g = optimizers[0] if isinstance(optimizers, (list, tuple)) else optimizers
        image, hole = batch["image"], batch["hole"]
        pred, losses = self.generator_losses(image, hole)
        if self.net_d is not None:
            losses |= adversarial_terms(self.net_d, pred, image, hole, o.adversarial, o.feature_matching)
        if self._perceptual is not None:
            losses["train/perceptual"] = self._perceptual(pred, image)
        loss_g = torch.stack(list(losses.values())).sum()
        self.manual_update(opt_g, loss_g, last)
        losses["train/loss_g"] = loss_g.detach()
        if self.net_d is not None:
            with torch.no_grad():
                fake = self.inpaint(image, hole) if last else pred.detach()
            loss_d = discriminator_loss(self.net_d, fake, image, hole, o.gp_coef)
            self.manual_update(optimizers[1], loss_d, last)
            losses["train/loss_d"] = loss_d.detach()
        self.log_losses({k: v.detach() for k, v in losses.items()})


@METHODS.register("lama")
class LaMaMethod(TwoPlayerStep, TrainableMethod):
    """LaMa: an FFC ResNet generator trained adversarially with LaMa's losses (Suvorov et al. 2022)."""

    Config = LaMaOptions
    inpainter = "lama"

    def __init__(self, train, options: LaMaOptions, *, log=print):
        super().__init__(train, options, log=log)
        self.automatic_optimization = False
        self.gen_config = GENERATOR_PRESETS[options.generator]
        self.net_g = build_generator(self.gen_config)
        self.adversarial_on = options.adversarial > 0 or options.feature_matching > 0
        self.net_d = build_discriminator(DiscriminatorConfig()) if self.adversarial_on else None
        term, self.perceptual_name = build_perceptual(options.perceptual, options.perceptual_term, self.note)
        # not a registered submodule: frozen weights (LPIPS-VGG 58 MB, the ADE20k encoder 90 MB) stay out of
        # every checkpoint, and Lightning's train() never switches their BatchNorms to batch statistics
        object.__setattr__(self, "_perceptual", term)

    # -- what the loop needs --------------------------------------------------------------------------
    def generator_config(self) -> dict[str, Any]:
        return config_to_dict(self.gen_config)

    def extra_record(self) -> dict[str, Any]:
        return {"perceptual_term": self.perceptual_name}

    def inpaint(self, images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        return self.net_g(torch.cat([images * (1 - hole), hole], dim=1))

    def configure_optimizers(self):
        o = self.options
        opt_g = torch.optim.Adam(self.net_g.parameters(), lr=o.lr_g)
        if self.net_d is None:
            return opt_g
        return opt_g, torch.optim.Adam(self.net_d.parameters(), lr=o.lr_d)

    def on_fit_start(self) -> None:
        if self._perceptual is not None:
            self._perceptual.to(self.device)

    # -- one step ---------------------------------------------------------------------------------------
    def generator_losses(self, image: torch.Tensor, hole: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The prediction and LaMa's masked L1 (known x10, hole x0 by default)."""
        o = self.options
        pred = self.inpaint(image, hole)
        return pred, {"train/l1": masked_l1(pred, image, hole, o.l1_known, o.l1_missing)}


__all__ = ["LaMaMethod", "LaMaOptions", "build_perceptual", "adversarial_terms", "discriminator_loss", "TwoPlayerStep"]
