"""LaMa's discriminator: the pix2pixHD PatchGAN ``NLayerDiscriminator``, written to match LaMa's code.

Reference: ``advimman/lama``, ``saicinpainting/training/modules/pix2pixhd.py::NLayerDiscriminator``
and ``configs/training/discriminator/pix2pixhd_nlayer.yaml`` (input_nc 3, ndf 64, n_layers 4).

Layout (``modelN`` attributes, as in LaMa, so the state-dict keys are LaMa's ``model0.0.weight`` ...):
``model0`` = Conv(k4, s2) + LeakyReLU(0.2) (no norm); ``model1 .. model{n_layers-1}`` = Conv(k4, s2) +
BatchNorm + LeakyReLU(0.2), widths doubling up to 512; ``model{n_layers}`` = Conv(k4, s1) + BatchNorm +
LeakyReLU(0.2); ``model{n_layers+1}`` = Conv(k4, s1) to one logit channel. Every conv has a bias and
zero padding ``ceil((4 - 1) / 2) = 2``. ``forward`` returns ``(logits, [the n_layers + 1 intermediate
activations])``; LaMa's feature-matching loss uses the list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn

__all__ = ["NLayerDiscriminator", "DiscriminatorConfig", "build_discriminator"]


class NLayerDiscriminator(nn.Module):
    """pix2pixHD's PatchGAN as LaMa codes it; ``forward(x) -> (logits, activations)``."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3,
                 norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.n_layers = n_layers
        kw = 4
        padw = int(math.ceil((kw - 1.0) / 2))  # 2
        sequence: list[list[nn.Module]] = [[nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw),
                                            nn.LeakyReLU(0.2, True)]]
        nf = ndf
        for _ in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, 512)
            sequence.append([nn.Conv2d(nf_prev, nf, kernel_size=kw, stride=2, padding=padw),
                             norm_layer(nf), nn.LeakyReLU(0.2, True)])
        nf_prev, nf = nf, min(nf * 2, 512)
        sequence.append([nn.Conv2d(nf_prev, nf, kernel_size=kw, stride=1, padding=padw),
                         norm_layer(nf), nn.LeakyReLU(0.2, True)])
        sequence.append([nn.Conv2d(nf, 1, kernel_size=kw, stride=1, padding=padw)])
        for n, layers in enumerate(sequence):
            setattr(self, f"model{n}", nn.Sequential(*layers))

    def get_all_activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        res = [x]
        for n in range(self.n_layers + 2):
            res.append(getattr(self, f"model{n}")(res[-1]))
        return res[1:]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        act = self.get_all_activations(x)
        return act[-1], act[:-1]


@dataclass(frozen=True)
class DiscriminatorConfig:
    """LaMa's ``discriminator: pix2pixhd_nlayer`` section (its defaults)."""

    input_nc: int = 3
    ndf: int = 64
    n_layers: int = 4

    def __post_init__(self) -> None:
        for name in ("input_nc", "ndf", "n_layers"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"DiscriminatorConfig.{name} must be a positive int, got {v!r}")


def build_discriminator(cfg: DiscriminatorConfig | None = None) -> NLayerDiscriminator:
    cfg = cfg or DiscriminatorConfig()
    return NLayerDiscriminator(cfg.input_nc, ndf=cfg.ndf, n_layers=cfg.n_layers)
