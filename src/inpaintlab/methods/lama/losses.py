"""LaMa's training losses (Suvorov et al. 2022; ``saicinpainting/training/losses/``), as short pure functions.

Conventions: images ``(N, 3, H, W)`` in [0, 1], ``hole`` ``(N, 1, H, W)`` with 1 = missing. With LaMa's
big-lama / lama-fourier configs (:data:`LAMA_LOSS_WEIGHTS`) the generator loss
(``trainers/default.py::generator_loss``, on the raw generator output, not the composite) is

    masked_l1(pred, img, hole, 10, 0)                      # known x10, missing x0
    + generator_adversarial_loss(D(pred))                  # 10 * mean(softplus(-D(pred)))
    + 100 * feature_matching_loss(D_feats(pred), D_feats(img))   # no mask
    + ResNetPL(pred, img)                                  # 30 * sum of 4 stage MSEs

and the discriminator loss (NOT multiplied by the adversarial weight 10)

    discriminator_real_loss(D(img), img, 0.001) + discriminator_fake_loss(D(pred.detach()), hole)
    = mean(softplus(-D(img))) + 0.001 * mean_n ||d sum D(img) / d img_n||^2 + mean(fake term),

which equals LaMa's ``(real_loss + grad_penalty + fake_loss).mean()`` because the real and fake
logits have the same shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import MissingWeightsError
from .ade20k import (ENCODER_FILE, IMAGENET_MEAN, IMAGENET_STD, ResNet50Dilated, load_ade20k_encoder,
                     resolve_encoder_file)

__all__ = ["LAMA_LOSS_WEIGHTS", "masked_l1", "scale_mask", "generator_adversarial_loss", "r1_penalty",
           "discriminator_real_loss", "discriminator_fake_loss", "feature_matching_loss", "ResNetPL",
           "LPIPSPerceptual", "perceptual_loss_for"]

#: LaMa's configs/training/{big-lama,lama-fourier}.yaml ``losses:`` (adversarial: kind r1, mask_as_fake_target
#: true, allow_scale_mask true; mask_scale_mode 'nearest', extra_mask_weight_for_gen 0, use_unmasked_for_gen/discr
#: true by default; perceptual (VGG) weight 0)
LAMA_LOSS_WEIGHTS = {"l1_weight_known": 10.0, "l1_weight_missing": 0.0, "adversarial": 10.0, "gp_coef": 0.001,
                     "feature_matching": 100.0, "resnet_pl": 30.0}


def masked_l1(pred: torch.Tensor, target: torch.Tensor, hole: torch.Tensor,
              weight_known: float, weight_missing: float) -> torch.Tensor:
    """LaMa's ``masked_l1_loss``: mean over all elements of (hole*w_missing + (1-hole)*w_known) * |pred - target|."""
    return ((hole * weight_missing + (1 - hole) * weight_known) * (pred - target).abs()).mean()


def scale_mask(hole: torch.Tensor, size: Sequence[int], mode: str = "nearest") -> torch.Tensor:
    """LaMa's ``BaseAdversarialLoss.interpolate_mask`` (allow_scale_mask): the hole at the logits' size."""
    size = tuple(size)
    if tuple(hole.shape[-2:]) == size:
        return hole
    if mode == "maxpool":
        return F.adaptive_max_pool2d(hole, size)
    return F.interpolate(hole, size=size, mode=mode)


def generator_adversarial_loss(fake_logits: torch.Tensor, hole: torch.Tensor | None = None, *, weight: float = 10.0,
                               mask_as_fake_target: bool = True, extra_mask_weight: float = 0.0,
                               use_unmasked: bool = True, mask_scale_mode: str = "nearest") -> torch.Tensor:
    """LaMa's ``NonSaturatingWithR1.generator_loss``: weight * mean(softplus(-D(fake)) * pixel weights).

    The hole only matters when ``use_unmasked`` is False (only hole logits count) or with
    ``mask_as_fake_target`` and ``extra_mask_weight > 0`` (weights ``1 + extra * hole``); with LaMa's
    configs (True, 0, True) it is ``weight * softplus(-fake_logits).mean()``.
    """
    loss = F.softplus(-fake_logits)
    if (mask_as_fake_target and extra_mask_weight > 0) or not use_unmasked:
        m = scale_mask(hole, fake_logits.shape[-2:], mask_scale_mode)
        loss = loss * m if not use_unmasked else loss * (1 + m * extra_mask_weight)
    return loss.mean() * weight


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """LaMa's ``make_r1_gp`` (R1 penalty): mean over the batch of ||d sum(D(x)) / dx_n||^2, summed over C, H, W.

    ``real_images`` must have had ``requires_grad_(True)`` before the discriminator saw them; the
    graph is kept (``create_graph``) so the penalty trains D. Without grad mode (validation) it is 0,
    as in LaMa.
    """
    if not torch.is_grad_enabled():
        return real_logits.new_zeros(())
    if not real_images.requires_grad:
        raise ValueError("r1_penalty needs real_images.requires_grad_(True) before the discriminator's forward pass")
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()


def discriminator_real_loss(real_logits: torch.Tensor, real_images: torch.Tensor,
                            gp_coef: float = 0.001) -> torch.Tensor:
    """LaMa's ``NonSaturatingWithR1`` real part: mean(softplus(-D(real))) + gp_coef * r1_penalty (unweighted)."""
    return F.softplus(-real_logits).mean() + gp_coef * r1_penalty(real_logits, real_images)


def discriminator_fake_loss(fake_logits: torch.Tensor, hole: torch.Tensor | None = None, *,
                            mask_as_fake_target: bool = True, use_unmasked: bool = True,
                            mask_scale_mode: str = "nearest") -> torch.Tensor:
    """LaMa's ``NonSaturatingWithR1`` fake part: mean(m * softplus(D(fake)) + (1 - m) * softplus(-D(fake))).

    ``m`` is the hole resized to the logits (:func:`scale_mask`, nearest): with ``mask_as_fake_target``
    the hole of a fake counts as fake and its known region as real; without it and with
    ``use_unmasked=False`` only ``m * softplus(D(fake))``; with neither, ``softplus(D(fake))`` everywhere.
    """
    if mask_as_fake_target and not use_unmasked:
        raise ValueError("mask_as_fake_target needs use_unmasked (LaMa asserts the same)")
    loss = F.softplus(fake_logits)
    if not use_unmasked or mask_as_fake_target:
        m = scale_mask(hole, fake_logits.shape[-2:], mask_scale_mode)
        loss = loss * m
        if mask_as_fake_target:
            loss = loss + (1 - m) * F.softplus(-fake_logits)
    return loss.mean()


def feature_matching_loss(fake_features: Sequence[torch.Tensor], target_features: Sequence[torch.Tensor],
                          hole: torch.Tensor | None = None) -> torch.Tensor:
    """LaMa's ``feature_matching_loss``: the mean over layers of MSE(fake, target), known pixels only with a hole.

    With ``hole`` each layer's term is ``mean((f - t)^2 * (1 - bilinear(hole)))`` (mean over all
    elements, not over the known ones). LaMa's configs pass no mask.
    """
    if hole is None:
        return torch.stack([F.mse_loss(f, t) for f, t in zip(fake_features, target_features)]).mean()
    terms = [((f - t).pow(2) * (1 - F.interpolate(hole, size=f.shape[-2:], mode="bilinear", align_corners=False)))
             .mean() for f, t in zip(fake_features, target_features)]
    return torch.stack(terms).mean()


class ResNetPL(nn.Module):
    """LaMa's ResNetPL (``perceptual.py``): weight * sum over layer1..4 of MSE of ADE20k ResNet50-dilated features.

    Inputs in [0, 1] are ImageNet-normalised; each stage's MSE is a mean over all its elements. The
    encoder stays frozen and in eval mode even under ``.train()`` (LaMa calls ``eval()`` once; a
    Lightning ``.train()`` of the parent module would otherwise switch its BatchNorms to batch statistics).
    """

    name = "resnet_pl"

    def __init__(self, encoder: ResNet50Dilated, weight: float = 30.0):
        super().__init__()
        self.encoder = encoder.requires_grad_(False).eval()
        self.weight = weight
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.train(False)

    def train(self, mode: bool = True) -> "ResNetPL":
        return super().train(False)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pf = self.encoder((pred - self.mean) / self.std)
        tf = self.encoder((target - self.mean) / self.std)
        return torch.stack([F.mse_loss(p, t) for p, t in zip(pf, tf)]).sum() * self.weight


class LPIPSPerceptual(nn.Module):
    """Fallback perceptual term: weight * batch mean of LPIPS-VGG v0.1 (inpaintlab's frozen, differentiable LPIPS).

    Inputs are clamped to [0, 1] (LPIPS rejects values outside; a sigmoid generator stays inside).
    Weight: LaMa's ResNetPL x30 is kept by default; no measured ratio between the two terms' scales
    justifies another value (pass ``weight`` to :func:`perceptual_loss_for` to change it).
    """

    name = "lpips_vgg"

    def __init__(self, lpips: nn.Module, weight: float = 30.0):
        super().__init__()
        self.lpips = lpips.requires_grad_(False).eval()
        self.weight = weight
        self.train(False)

    def train(self, mode: bool = True) -> "LPIPSPerceptual":
        return super().train(False)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.lpips(pred.clamp(0, 1), target.clamp(0, 1)).mean() * self.weight


def perceptual_loss_for(device: str | torch.device | None = None, *, log: Callable[[str], None],
                        weight: float = 30.0, path: str | Path | None = None,
                        download: bool = True) -> tuple[nn.Module, str]:
    """ResNetPL (x30, LaMa) when its encoder file resolves, else LPIPS-VGG (same weight), with the term's name.

    Only an absent file falls back (one ``log`` line saying so, at this call; the returned term never
    logs); an explicit ``path`` that does not exist, a present but broken file, or absent LPIPS
    weights for the fallback raise :class:`~inpaintlab.errors.MissingWeightsError`.
    """
    try:
        file = resolve_encoder_file(path=path, download=download)
    except MissingWeightsError:
        if path is not None:
            raise
        from ...metrics.lpips import load_lpips

        term = LPIPSPerceptual(load_lpips("vgg", device=device or "cpu", download=download), weight)
        log(f"LaMa's ResNetPL weights ({ENCODER_FILE}) are absent: the perceptual term is LPIPS-VGG instead "
            f"(weight {weight:g}); `inpaintlab weights list` says where to get them")
        return term, term.name
    term = ResNetPL(load_ade20k_encoder(path=file), weight).to(device or "cpu")
    return term, term.name
