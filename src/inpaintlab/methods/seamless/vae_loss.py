"""Stable Diffusion's VAE training loss, for the Seamless Borders VAE fine-tune (notes 1.3 item 3).

A port (our code) of CompVis latent-diffusion ``ldm/modules/losses/contperceptual.py::LPIPSWithDiscriminator``
(the same file in CompVis/stable-diffusion) and of the taming-transformers pieces it imports:
``taming/modules/losses/vqperceptual.py`` (``adopt_weight``, ``hinge_d_loss``, ``vanilla_d_loss``,
``calculate_adaptive_weight``) and ``taming/modules/discriminator/model.py`` (``NLayerDiscriminator``,
``weights_init``). Defaults: SD-1.5's VAE config, LDM ``configs/autoencoder/autoencoder_kl_32x32x4.yaml``
(``disc_start: 50001, kl_weight: 0.000001, disc_weight: 0.5``, the rest the class defaults).

Generator step (LDM's ``optimizer_idx == 0``), images in the VAE's space ``[-1, 1]``::

    rec   = |x - x_hat| + w_p * LPIPS(x, x_hat)          LPIPS (N,1,1,1) broadcast over C, H, W
    nll   = sum(rec / exp(logvar) + logvar) / N          learned scalar logvar, init logvar_init
    kl    = sum(KL) / N                                  KL per sample, (N,)
    g     = -mean(D(x_hat))
    lam   = clamp(||d nll/d W|| / (||d g/d W|| + 1e-4), 0, 1e4).detach() * disc_weight   W: decoder's last conv
    loss  = weighted_nll + kl_weight * kl + lam * adopt(disc_factor, step, disc_start) * g

Discriminator step (``optimizer_idx == 1``): ``adopt(disc_factor) * hinge(D(x.detach()), D(x_hat.detach()))``,
real and fake through ``D`` in two separate calls (separate BatchNorm batch statistics), as LDM does.

Kept from the reference on purpose: the adaptive weight is computed at every generator step, also
before ``disc_start`` (``adopt_weight`` then zeroes its term); it falls back to 0 when autograd cannot
differentiate (no graph: validation under ``no_grad``) and that is an error in training mode; the
adaptive weight uses the unweighted ``nll``. In the generator step the discriminator's parameters
are used detached (LDM's Lightning loop switches them to ``requires_grad=False`` while the
autoencoder's optimiser steps), so ``generator_loss`` never leaves gradients on them; its BatchNorm
still runs in the module's mode and updates its running statistics, as in LDM.
Not kept: the conditional discriminator (``disc_conditional``, unused by SD), ActNorm
(``use_actnorm=False`` in SD), the stored but unused ``pixelloss_weight``, and taming's LPIPS head
Dropout (taming's ``LPIPS(use_dropout=True)`` puts ``nn.Dropout`` before each v0.1 head, active
whenever Lightning puts the loss in train mode; inpaintlab's LPIPS has no dropout and the wrapper
below stays in eval mode).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...errors import InpaintlabError
from ...options import option

__all__ = ["VAELossConfig", "LDMVAELoss", "NLayerDiscriminator", "weights_init", "hinge_d_loss",
           "vanilla_d_loss", "adopt_weight", "adaptive_weight", "ModelRangeLPIPS", "load_vae_perceptual",
           "D_LOSSES", "ADAPTIVE_EPS", "ADAPTIVE_MAX"]

#: added to ||grad g|| in the adaptive weight's denominator (taming ``calculate_adaptive_weight``)
ADAPTIVE_EPS = 1e-4
#: upper clamp of the adaptive weight before ``disc_weight`` (taming: ``torch.clamp(d_weight, 0.0, 1e4)``)
ADAPTIVE_MAX = 1e4


@dataclass(frozen=True)
class VAELossConfig:
    """``LPIPSWithDiscriminator``'s options; defaults are SD-1.5's VAE config (LDM ``autoencoder_kl_32x32x4.yaml``)."""

    disc_start: int = option(50001, "step from which the GAN terms count (adopt_weight threshold)", ge=0)
    logvar_init: float = option(0.0, "initial value of the learned scalar log-variance")
    kl_weight: float = option(1e-6, "weight of the batch-mean KL", ge=0)
    perceptual_weight: float = option(1.0, "weight of LPIPS inside the per-pixel reconstruction term", ge=0)
    disc_weight: float = option(0.5, "factor on the adaptive generator-loss weight", ge=0)
    disc_factor: float = option(1.0, "GAN factor once step >= disc_start (0 switches the GAN off)", ge=0)
    disc_in_channels: int = option(3, "discriminator input channels", ge=1)
    disc_num_layers: int = option(3, "PatchGAN stride-2 conv layers", ge=1)
    disc_ndf: int = option(64, "PatchGAN width of the first conv", ge=1)
    disc_loss: Literal["hinge", "vanilla"] = option("hinge", "discriminator loss: hinge or vanilla (softplus)")

    def __post_init__(self) -> None:
        for name in ("disc_start", "disc_in_channels", "disc_num_layers", "disc_ndf"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "disc_start" else 1):
                raise InpaintlabError(f"VAELossConfig.{name} must be a whole number >= "
                                      f"{0 if name == 'disc_start' else 1}, got {v!r}")
        for name in ("kl_weight", "perceptual_weight", "disc_weight", "disc_factor"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0):
                raise InpaintlabError(f"VAELossConfig.{name} must be a number >= 0, got {v!r}")
        if self.disc_loss not in D_LOSSES:
            raise InpaintlabError(f"VAELossConfig.disc_loss must be one of {', '.join(D_LOSSES)}, "
                                  f"got {self.disc_loss!r}")


# ---- taming's functions -------------------------------------------------------------------


def adopt_weight(weight: float, global_step: int, threshold: int = 0, value: float = 0.0) -> float:
    """taming ``adopt_weight``: ``value`` while ``global_step < threshold``, else ``weight``."""
    if global_step < threshold:
        weight = value
    return weight


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Hinge discriminator loss: ``0.5 (mean relu(1 - D(x)) + mean relu(1 + D(x_hat)))``."""
    return 0.5 * (torch.mean(F.relu(1.0 - logits_real)) + torch.mean(F.relu(1.0 + logits_fake)))


def vanilla_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating GAN discriminator loss: ``0.5 (mean softplus(-D(x)) + mean softplus(D(x_hat)))``."""
    return 0.5 * (torch.mean(F.softplus(-logits_real)) + torch.mean(F.softplus(logits_fake)))


D_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "hinge": hinge_d_loss, "vanilla": vanilla_d_loss}


def adaptive_weight(nll: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor,
                    disc_weight: float) -> torch.Tensor:
    """VQGAN's adaptive weight: ``clamp(||grad_W nll|| / (||grad_W g|| + 1e-4), 0, 1e4).detach() * disc_weight``.

    ``W`` = ``last_layer`` (the decoder's last conv weight). Raises ``RuntimeError`` (autograd's) when
    either loss has no graph to ``W``; both graphs are retained for the caller's backward.
    """
    nll_grads = torch.autograd.grad(nll, last_layer, retain_graph=True)[0]
    g_grads = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    d_weight = torch.norm(nll_grads) / (torch.norm(g_grads) + ADAPTIVE_EPS)
    d_weight = torch.clamp(d_weight, 0.0, ADAPTIVE_MAX).detach()
    return d_weight * disc_weight


# ---- taming's PatchGAN ----------------------------------------------------------------------


def weights_init(m: nn.Module) -> None:
    """taming ``weights_init`` (use with ``module.apply``): conv weights N(0, 0.02); BatchNorm weight N(1, 0.02), bias 0.

    Conv biases keep PyTorch's default initialisation, as in taming. Draws from torch's global generator.
    """
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


class NLayerDiscriminator(nn.Module):
    """pix2pix PatchGAN as taming codes it; ``forward(x) -> logits (N, 1, h, w)``; keys ``main.0.weight`` ...

    ``main``: Conv(k4, s2, bias) + LReLU(0.2); ``n_layers - 1`` x [Conv(k4, s2, no bias) + BN + LReLU(0.2)];
    Conv(k4, s1, no bias) + BN + LReLU(0.2); Conv(k4, s1, bias) -> 1 channel. Padding 1; widths
    ``ndf * min(2**n, 8)``. Build only: apply :func:`weights_init` for taming's initialisation.
    """

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        if n_layers < 1:
            raise InpaintlabError(f"NLayerDiscriminator needs n_layers >= 1, got {n_layers}")
        kw, padw = 4, 1
        sequence: list[nn.Module] = [nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw),
                                     nn.LeakyReLU(0.2, True)]
        nf_mult = 1
        for n in range(1, n_layers):
            nf_mult_prev, nf_mult = nf_mult, min(2 ** n, 8)
            sequence += [nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=2, padding=padw,
                                   bias=False),
                         nn.BatchNorm2d(ndf * nf_mult), nn.LeakyReLU(0.2, True)]
        nf_mult_prev, nf_mult = nf_mult, min(2 ** n_layers, 8)
        sequence += [nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=1, padding=padw, bias=False),
                     nn.BatchNorm2d(ndf * nf_mult), nn.LeakyReLU(0.2, True),
                     nn.Conv2d(ndf * nf_mult, 1, kernel_size=kw, stride=1, padding=padw)]
        self.main = nn.Sequential(*sequence)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


# ---- the perceptual term ----------------------------------------------------------------------


class ModelRangeLPIPS(nn.Module):
    """inpaintlab's frozen LPIPS as taming's loss uses it: images in ``[-1, 1]``, not clamped, -> ``(N, 1, 1, 1)``.

    Same value as ``lpips((x + 1) / 2, (y + 1) / 2)`` for in-range images, without the range check
    (a VAE reconstruction leaves ``[-1, 1]``; taming's LPIPS neither clamps nor checks). Always in eval mode.
    """

    def __init__(self, lpips: nn.Module):
        super().__init__()
        self.lpips = lpips.requires_grad_(False).eval()
        self.train(False)

    def train(self, mode: bool = True) -> "ModelRangeLPIPS":
        return super().train(False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from ...metrics.lpips import normalize_channels

        if x.shape != y.shape or x.ndim != 4:
            raise InpaintlabError(f"LPIPS compares two (N, C, H, W) batches of one shape, got {tuple(x.shape)} "
                                  f"and {tuple(y.shape)}")
        lp, n = self.lpips, x.shape[0]
        z = torch.cat([x, y], dim=0).to(device=lp.shift.device, dtype=torch.float32)
        feats = [normalize_channels(f) for f in lp.net((z - lp.shift) / lp.scale)]  # lpips' ScalingLayer
        return lp.distance_from_features([f[:n] for f in feats], [f[n:] for f in feats]).view(n, 1, 1, 1)


def load_vae_perceptual(net: str = "vgg", **kwargs) -> ModelRangeLPIPS:
    """Pretrained LPIPS-``net`` v0.1 (taming uses VGG16) wrapped for ``[-1, 1]`` images; ``kwargs`` go to ``load_lpips``."""
    from ...metrics.lpips import load_lpips

    return ModelRangeLPIPS(load_lpips(net, **kwargs))


# ---- the loss ---------------------------------------------------------------------------------


class LDMVAELoss(nn.Module):
    """LDM's ``LPIPSWithDiscriminator``: :meth:`generator_loss` (optimizer_idx 0), :meth:`discriminator_loss` (1).

    Holds ``logvar`` (scalar parameter) and ``discriminator`` (:class:`NLayerDiscriminator`, taming's
    init), so ``state_dict`` keys are LDM's ``loss.*`` keys minus ``perceptual_loss.*``: the frozen
    ``perceptual`` module is not registered (not saved in checkpoints) but follows ``.to(...)``.
    ``perceptual(x, y)`` maps two ``[-1, 1]`` batches to per-sample distances ``(N, 1, 1, 1)``
    (:class:`ModelRangeLPIPS`); it may be None when ``perceptual_weight == 0``.
    Note: LDM's autoencoder optimiser does not include ``logvar`` (it stays at ``logvar_init``); whether
    to train it is the trainer's choice.
    """

    def __init__(self, cfg: VAELossConfig | None = None, perceptual: nn.Module | None = None):
        super().__init__()
        self.cfg = cfg = cfg if cfg is not None else VAELossConfig()
        if cfg.perceptual_weight > 0 and perceptual is None:
            raise InpaintlabError("VAELossConfig.perceptual_weight > 0 needs a perceptual module (LPIPS, e.g. "
                                  "load_vae_perceptual()); pass one, or set perceptual_weight=0")
        object.__setattr__(self, "perceptual", perceptual)  # frozen, not saved; moved by _apply
        self.logvar = nn.Parameter(torch.ones(size=()) * cfg.logvar_init)
        self.discriminator = NLayerDiscriminator(cfg.disc_in_channels, ndf=cfg.disc_ndf, n_layers=cfg.disc_num_layers)
        self.discriminator.apply(weights_init)
        self.d_loss = D_LOSSES[cfg.disc_loss]

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        if self.perceptual is not None:
            self.perceptual._apply(fn, *args, **kwargs)
        return self

    def disc_factor(self, step: int) -> float:
        """``adopt_weight(disc_factor, step, threshold=disc_start)``: 0 before ``disc_start``, ``disc_factor`` from it."""
        return adopt_weight(self.cfg.disc_factor, step, threshold=self.cfg.disc_start)

    def _check(self, inputs: torch.Tensor, reconstructions: torch.Tensor) -> None:
        if inputs.shape != reconstructions.shape or inputs.ndim != 4:
            raise InpaintlabError(f"the VAE loss needs inputs and reconstructions of one (N, C, H, W) shape, got "
                                  f"{tuple(inputs.shape)} and {tuple(reconstructions.shape)}")

    def rec_loss(self, inputs: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
        """Per-pixel ``|x - x_hat| + w_p * LPIPS(x, x_hat)`` (LPIPS broadcast over C, H, W), shape (N, C, H, W)."""
        rec = torch.abs(inputs.contiguous() - reconstructions.contiguous())
        if self.cfg.perceptual_weight > 0:
            p = self.perceptual(inputs.contiguous(), reconstructions.contiguous())
            if p.numel() != inputs.shape[0]:
                raise InpaintlabError(f"the perceptual module must give one distance per sample, got shape "
                                      f"{tuple(p.shape)} for {inputs.shape[0]} samples")
            rec = rec + self.cfg.perceptual_weight * p.reshape(-1, 1, 1, 1).to(rec.dtype)
        return rec

    def _logits_frozen_params(self, x: torch.Tensor) -> torch.Tensor:
        """``D(x)`` with the discriminator's parameters detached (gradients reach ``x`` only)."""
        params = {k: p.detach() for k, p in self.discriminator.named_parameters()}
        return torch.func.functional_call(self.discriminator, params, (x,), strict=False)

    def generator_loss(self, inputs: torch.Tensor, reconstructions: torch.Tensor, kl: torch.Tensor, step: int,
                       last_layer: torch.Tensor, weights: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """LDM's autoencoder loss (optimizer_idx 0) and its log.

        ``inputs``, ``reconstructions``: ``[-1, 1]`` (N, C, H, W); ``kl``: per-sample KL (N,) (the caller
        sums its posteriors' ``kl()``); ``step``: the global step (generator updates so far); ``last_layer``:
        the decoder's last conv weight (diffusers ``vae.decoder.conv_out.weight``); ``weights``: optional
        per-element NLL weights (LDM's ``weights``).
        """
        cfg = self.cfg
        self._check(inputs, reconstructions)
        if kl.ndim < 1 or kl.shape[0] != inputs.shape[0]:
            raise InpaintlabError(f"kl must hold the per-sample KL, shape ({inputs.shape[0]},), got {tuple(kl.shape)}")
        # 1. reconstruction NLL with the learned scalar log-variance: sum over everything / N
        rec = self.rec_loss(inputs, reconstructions)
        nll_map = rec / torch.exp(self.logvar) + self.logvar
        weighted = nll_map if weights is None else weights * nll_map
        weighted_nll = torch.sum(weighted) / weighted.shape[0]
        nll = torch.sum(nll_map) / nll_map.shape[0]
        # 2. KL: summed per sample by the caller, averaged over the batch
        kl_loss = torch.sum(kl) / kl.shape[0]
        # 3. generator GAN term (discriminator parameters detached) and its adaptive weight
        logits_fake = self._logits_frozen_params(reconstructions.contiguous())
        g_loss = -torch.mean(logits_fake)
        if cfg.disc_factor > 0.0:
            try:
                d_weight = adaptive_weight(nll, g_loss, last_layer, cfg.disc_weight)
            except RuntimeError as e:
                if self.training:
                    raise InpaintlabError(f"the adaptive GAN weight needs gradients of the loss with respect to "
                                          f"the decoder's last layer, and autograd failed in training mode: {e}"
                                          ) from e
                d_weight = torch.tensor(0.0)
        else:
            d_weight = torch.tensor(0.0)
        d_weight = d_weight.to(g_loss.device)
        disc_factor = self.disc_factor(step)
        # 4. total
        loss = weighted_nll + cfg.kl_weight * kl_loss + d_weight * disc_factor * g_loss
        log = {"total": loss.detach(), "logvar": self.logvar.detach().clone(), "kl": kl_loss.detach(),
               "nll": nll.detach(), "weighted_nll": weighted_nll.detach(), "rec": rec.detach().mean(),
               "d_weight": d_weight.detach(), "disc_factor": torch.tensor(float(disc_factor)),
               "g": g_loss.detach()}
        return loss, log

    def discriminator_loss(self, inputs: torch.Tensor, reconstructions: torch.Tensor, step: int
                           ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """LDM's discriminator loss (optimizer_idx 1): ``disc_factor(step) * d_loss(D(x), D(x_hat))`` on detached inputs."""
        self._check(inputs, reconstructions)
        logits_real = self.discriminator(inputs.contiguous().detach())
        logits_fake = self.discriminator(reconstructions.contiguous().detach())
        d_loss = self.disc_factor(step) * self.d_loss(logits_real, logits_fake)
        log = {"disc": d_loss.detach(), "logits_real": logits_real.detach().mean(),
               "logits_fake": logits_fake.detach().mean()}
        return d_loss, log
