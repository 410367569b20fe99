"""LaMa's FFC generator split into encoder, refiner and decoder, with the thesis's mask control.

Babin 2024 (``../shared/papers/latent-inpainting-thesis.txt``, §4.1) on LaMa's generator
(:mod:`inpaintlab.methods.lama.ffc`), split as the public code splits it
(``igor185/latent-inpainting``, ``trainers/default.py::forward``): ``encoder = model[:5]`` (reflect
pad, 7x7 stem, three stride-2 FFCs to H/8, the last one opening the global branch),
``refiner = model[5:-13]`` (the FFC ResNet blocks) and ``decoder = model[-13:]`` (concatenation of
the local and global branches, three upsamplings, 7x7 conv, sigmoid). The latent is the tuple
(local, global) at H/8: 8 ngf channels, ``int(0.75 * 8 ngf)`` of them global (16 + 48 for the
thesis's ngf 8).

Mask control (thesis §4.1.1 and Fig. 4.2; code ``mask_encoder == "control"``): a mask encoder
``Conv1x1(1 -> ngf)`` then one stride-2 ``Conv3x3`` per downsampling (doubling the width), each with
BatchNorm + ReLU, whose features are added to the image encoder's after the stem and after each
downsampling through zero-initialised, bias-free 1x1 convolutions; the last one is split between
the local and global branches. At initialisation the control branch adds exact zeros.

Besides the three parts, an inpainting network carries ``reference``: a frozen copy of the
pre-trained autoencoder's encoder (3 channels, no control), the ``E`` of the latent loss's target
``E(I_gt)`` and of the thesis's visualisation ``D[E(I_gt) - E(I_masked)]`` (Eq. 4.1). Keeping it in
the network makes every export self-contained.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, Mapping

import torch
import torch.nn as nn

from ..lama.ffc import FFCConvConfig, GeneratorConfig, build_generator

Latent = tuple[torch.Tensor, torch.Tensor]

__all__ = ["LatentNetConfig", "LatentInpaintingNet", "MaskEncoder", "zero_conv", "split_lama_state",
           "join_lama_state", "config_to_dict", "config_from_dict", "latent_l1", "inject"]


@dataclass(frozen=True)
class LatentNetConfig:
    """The architecture of a split LaMa generator (defaults: the thesis's ngf 8, 9 blocks, ratio 0.75)."""

    ngf: int = 8
    n_downsampling: int = 3
    n_blocks: int = 9
    global_ratio: float = 0.75
    max_features: int = 1024
    #: encoder input: ``masked`` = image * (1 - hole) (3 channels), ``alpha`` = [masked, hole] (4 channels)
    input: Literal["masked", "alpha"] = "masked"
    #: the mask encoder and zero convolutions of §4.1.1
    control: bool = False
    #: ``ffc``: the stem FFC takes the input; ``mask_conv``: the public code's preset-3 ``mask_conv``
    #: (a bias-free 4->ngf 7x7 conv replacing the stem and bypassing its BatchNorm and ReLU)
    stem: Literal["ffc", "mask_conv"] = "ffc"
    #: carry a frozen copy of the autoencoder's encoder (``E`` of the latent loss); False for the autoencoder
    reference: bool = True

    def __post_init__(self) -> None:
        for name in ("ngf", "n_downsampling", "max_features"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"LatentNetConfig.{name} must be a positive int, got {v!r}")
        if isinstance(self.n_blocks, bool) or not isinstance(self.n_blocks, int) or self.n_blocks < 0:
            raise ValueError(f"LatentNetConfig.n_blocks must be an int >= 0, got {self.n_blocks!r}")
        if not 0 < self.global_ratio < 1:
            raise ValueError(f"LatentNetConfig.global_ratio must be in (0, 1), got {self.global_ratio}")
        if self.input not in ("masked", "alpha") or self.stem not in ("ffc", "mask_conv"):
            raise ValueError(f"LatentNetConfig: input must be masked|alpha and stem ffc|mask_conv, got "
                             f"{self.input!r}, {self.stem!r}")
        if self.stem == "mask_conv" and self.input != "alpha":
            raise ValueError("LatentNetConfig: stem 'mask_conv' takes the 4-channel input (input='alpha')")

    @property
    def downscale(self) -> int:
        """H and W must be multiples of this."""
        return 2 ** self.n_downsampling

    @property
    def widths(self) -> tuple[int, ...]:
        """Encoder widths after the stem and after each downsampling (8, 16, 32, 64 for ngf 8)."""
        return tuple(min(self.max_features, self.ngf * 2 ** i) for i in range(self.n_downsampling + 1))

    @property
    def latent_split(self) -> tuple[int, int]:
        """(local, global) channels of the latent."""
        c = self.widths[-1]
        g = int(c * self.global_ratio)
        return c - g, g

    def lama(self, input_nc: int) -> GeneratorConfig:
        """LaMa's generator config of the same architecture (``ffc_resnet_075`` at this width)."""
        return GeneratorConfig(input_nc=input_nc, ngf=self.ngf, n_downsampling=self.n_downsampling,
                               n_blocks=self.n_blocks, max_features=self.max_features,
                               resnet_conv_kwargs=FFCConvConfig(self.global_ratio, self.global_ratio))


def config_to_dict(cfg: LatentNetConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def config_from_dict(data: Mapping[str, Any]) -> LatentNetConfig:
    """Inverse of :func:`config_to_dict`; unknown keys raise ValueError."""
    fields = {f.name for f in dataclasses.fields(LatentNetConfig)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"unknown latent-network config key(s) {', '.join(unknown)}")
    return LatentNetConfig(**dict(data))


def zero_conv(channels: int) -> nn.Conv2d:
    """A bias-free 1x1 conv with zero weights (ControlNet's zero convolution)."""
    conv = nn.Conv2d(channels, channels, kernel_size=1, bias=False)
    nn.init.zeros_(conv.weight)
    return conv


class MaskEncoder(nn.Module):
    """Conv1x1(1 -> w0) then stride-2 Conv3x3 (w_{i-1} -> w_i), each + BatchNorm + ReLU (thesis Fig. 4.2)."""

    def __init__(self, widths: tuple[int, ...]):
        super().__init__()
        stages = [nn.Sequential(nn.Conv2d(1, widths[0], kernel_size=1), nn.BatchNorm2d(widths[0]), nn.ReLU())]
        for cin, cout in zip(widths, widths[1:]):
            stages.append(nn.Sequential(nn.Conv2d(cin, cout, kernel_size=3, stride=2, padding=1),
                                        nn.BatchNorm2d(cout), nn.ReLU()))
        self.stages = nn.ModuleList(stages)

    def forward(self, hole: torch.Tensor) -> list[torch.Tensor]:
        features, m = [], hole.float()
        for stage in self.stages:
            m = stage(m)
            features.append(m)
        return features


def inject(feature: Any, control: torch.Tensor) -> tuple[Any, Any]:
    """Add a control feature to an FFC (local, global) pair: its first channels to local, the rest to global."""
    x_l, x_g = feature if isinstance(feature, tuple) else (feature, 0)
    c_l = x_l.shape[1]
    if torch.is_tensor(x_g):
        return x_l + control[:, :c_l], x_g + control[:, c_l:]
    return x_l + control, x_g


def latent_l1(refined: Latent, target: Latent) -> torch.Tensor:
    """The latent loss: mean |cat(refined_l, refined_g) - cat(E(gt)_l, E(gt)_g)| (thesis §4.1.3, App. B.2)."""
    return torch.nn.functional.l1_loss(torch.cat(refined, dim=1), torch.cat(target, dim=1))


class LatentInpaintingNet(nn.Module):
    """Encoder, refiner, decoder of LaMa's generator; optional mask control, ``mask_conv`` stem and reference E."""

    def __init__(self, cfg: LatentNetConfig):
        super().__init__()
        self.cfg = cfg
        stem_in = 4 if cfg.input == "alpha" and cfg.stem == "ffc" else 3
        layers = list(build_generator(cfg.lama(stem_in)).model)  # not children(): it drops the shared ReLU's repeats
        e = 2 + cfg.n_downsampling
        self.encoder = nn.Sequential(*layers[:e])
        self.refiner = nn.Sequential(*layers[e:e + cfg.n_blocks])
        self.decoder = nn.Sequential(*layers[e + cfg.n_blocks:])
        self.mask_encoder = MaskEncoder(cfg.widths) if cfg.control else None
        self.zero_convs = nn.ModuleList(zero_conv(c) for c in cfg.widths) if cfg.control else None
        self.mask_conv = nn.Conv2d(4, cfg.ngf, kernel_size=7, bias=False) if cfg.stem == "mask_conv" else None
        if cfg.reference:
            self.reference = nn.Sequential(*list(build_generator(cfg.lama(3)).model)[:e])
            self.reference.requires_grad_(False)
        else:
            self.reference = None

    # -- the parts ---------------------------------------------------------------------------------
    def encoder_input(self, images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """``image * (1 - hole)``, with the hole as a fourth channel when the encoder takes it."""
        masked = images * (1 - hole)
        return torch.cat([masked, hole], dim=1) if self.cfg.input == "alpha" else masked

    def encode(self, x: torch.Tensor, hole: torch.Tensor | None = None) -> Latent:
        """E: the encoder on ``x``, with the mask encoder's features added after the stem and each downsampling."""
        pad, stem, *downs = self.encoder
        feature = (self.mask_conv(pad(x)), 0) if self.mask_conv is not None else stem(pad(x))
        controls = None
        if self.mask_encoder is not None:
            if hole is None:
                raise ValueError("a mask-controlled encoder needs the hole")
            controls = [z(m) for z, m in zip(self.zero_convs, self.mask_encoder(hole))]
            feature = inject(feature, controls[0])
        for i, down in enumerate(downs):
            feature = down(feature)
            if controls is not None:
                feature = inject(feature, controls[i + 1])
        return feature

    def refine(self, latent: Latent) -> Latent:
        """R: the FFC ResNet blocks on the latent (the identity for an autoencoder)."""
        return self.refiner(latent) if len(self.refiner) else latent

    def decode(self, latent: Latent) -> torch.Tensor:
        """D: concatenate the branches, upsample to full size, sigmoid."""
        return self.decoder(latent)

    def reference_latent(self, images: torch.Tensor) -> Latent:
        """E(I): the frozen autoencoder encoder on a full image (the latent loss's target)."""
        encoder = self.reference if self.reference is not None else self.encoder
        return encoder(images)

    def forward(self, images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """D(R(E(input, hole))) in [0, 1]."""
        return self.decode(self.refine(self.encode(self.encoder_input(images, hole), hole)))


# -- LaMa state-dict names ------------------------------------------------------------------------------


def _part_of(index: int, cfg: LatentNetConfig) -> tuple[str, int]:
    e = 2 + cfg.n_downsampling
    if index < e:
        return "encoder", index
    if index < e + cfg.n_blocks:
        return "refiner", index - e
    return "decoder", index - e - cfg.n_blocks


def split_lama_state(state: Mapping[str, torch.Tensor], cfg: LatentNetConfig) -> dict[str, torch.Tensor]:
    """LaMa's ``model.N.*`` keys as ``encoder.N.*`` / ``refiner.M.*`` / ``decoder.K.*`` (the code's split)."""
    out = {}
    for key, value in state.items():
        head, index, rest = key.split(".", 2)
        if head != "model":
            raise ValueError(f"not a LaMa generator key: {key!r}")
        part, i = _part_of(int(index), cfg)
        out[f"{part}.{i}.{rest}"] = value
    return out


def join_lama_state(state: Mapping[str, torch.Tensor], cfg: LatentNetConfig) -> dict[str, torch.Tensor]:
    """Inverse of :func:`split_lama_state` for the three parts (control, ``mask_conv`` and reference dropped)."""
    offset = {"encoder": 0, "refiner": 2 + cfg.n_downsampling, "decoder": 2 + cfg.n_downsampling + cfg.n_blocks}
    out = {}
    for key, value in state.items():
        part, index, rest = key.split(".", 2)
        if part in offset:
            out[f"model.{int(index) + offset[part]}.{rest}"] = value
    return out
