"""Hand-written AlexNet / SqueezeNet 1.1 / VGG16 feature extractors for LPIPS (no torchvision).

Each backbone holds a ``features`` ``nn.Sequential`` laid out exactly as torchvision's, so its
``state_dict`` keys are torchvision's ``features.*`` keys and the official checkpoint files
(``alexnet-owt-7be5be79.pth``, ``squeezenet1_1-b8a52dc0.pth``, ``vgg16-397923af.pth``) load
into it. ``forward`` returns the activations at the tap points of the lpips package
(``lpips/pretrained_networks.py``). ReLUs are not in-place, so the taps stay intact.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from ..errors import MissingWeightsError
from ..weights import read_checkpoint

__all__ = ["Backbone", "AlexNetFeatures", "SqueezeNet11Features", "VGG16Features", "Fire", "BACKBONES"]


class Fire(nn.Module):
    """SqueezeNet Fire module (Iandola et al. 2016): squeeze 1x1, then expand 1x1 and 3x3, concatenated."""

    def __init__(self, inplanes: int, squeeze_planes: int, expand1x1_planes: int, expand3x3_planes: int):
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1)
        self.squeeze_activation = nn.ReLU()
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
        self.expand1x1_activation = nn.ReLU()
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], dim=1
        )


class Backbone(nn.Module):
    """A torchvision-keyed ``features`` stack that returns the LPIPS tap activations."""

    net: ClassVar[str]
    file_name: ClassVar[str]  # the official torchvision checkpoint file
    channels: ClassVar[tuple[int, ...]]  # channels of each tap
    slices: ClassVar[tuple[tuple[int, int], ...]]  # lpips' [start, stop) slices of ``features``
    min_size: ClassVar[int]  # smallest H and W the taps are defined for

    features: nn.Sequential

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for start, stop in self.slices:
            for i in range(start, stop):
                x = self.features[i](x)
            outs.append(x)
        return outs

    def load_weights(self, path: str | Path) -> None:
        """Load the ``features.*`` tensors of a torchvision checkpoint strictly; ignore ``classifier.*``."""
        path = Path(path)
        state = read_checkpoint(path, f"{self.net} checkpoint", self.file_name)
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise MissingWeightsError(f"{path} does not hold a state dict; expected torchvision's {self.file_name}")
        load_features_strict(self.features, state, path=path, what=f"{self.net} backbone ({self.file_name})")


def load_features_strict(features: nn.Module, state: dict, *, path: Path, what: str) -> None:
    """Copy ``features.<k>`` entries of ``state`` into ``features``; any missing/extra/mis-shaped key is an error."""
    from ..weights import state_dict_problems

    want = {f"features.{k}": v.shape for k, v in features.state_dict().items()}
    got = {k: v for k, v in state.items() if isinstance(k, str) and k.startswith("features.")}
    problems = state_dict_problems(want, got)
    if problems:
        raise MissingWeightsError(f"{path} is not a {what} checkpoint: " + "; ".join(problems))
    got = {k[len("features."):]: v for k, v in got.items()}
    features.load_state_dict({k: v.float() for k, v in got.items()}, strict=True)


class AlexNetFeatures(Backbone):
    """torchvision AlexNet ``features`` (Krizhevsky 2014 'one weird trick' variant, 64 first filters)."""

    net = "alex"
    file_name = "alexnet-owt-7be5be79.pth"
    channels = (64, 192, 384, 256, 256)
    slices = ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12))
    min_size = 31

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )


VGG16_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG16Features(Backbone):
    """torchvision VGG16 ``features`` (Simonyan & Zisserman 2015, configuration D, no batch norm)."""

    net = "vgg"
    file_name = "vgg16-397923af.pth"
    channels = (64, 128, 256, 512, 512)
    slices = ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30))
    min_size = 16

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(cin, int(v), kernel_size=3, padding=1), nn.ReLU()]
                cin = int(v)
        self.features = nn.Sequential(*layers)


class SqueezeNet11Features(Backbone):
    """torchvision SqueezeNet 1.1 ``features`` (Iandola et al. 2016, v1.1 layout)."""

    net = "squeeze"
    file_name = "squeezenet1_1-b8a52dc0.pth"
    channels = (64, 128, 256, 384, 384, 512, 512)
    slices = ((0, 2), (2, 5), (5, 8), (8, 10), (10, 11), (11, 12), (12, 13))
    min_size = 17

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=3, stride=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(64, 16, 64, 64),
            Fire(128, 16, 64, 64),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(128, 32, 128, 128),
            Fire(256, 32, 128, 128),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(256, 48, 192, 192),
            Fire(384, 48, 192, 192),
            Fire(384, 64, 256, 256),
            Fire(512, 64, 256, 256),
        )


BACKBONES: dict[str, type[Backbone]] = {
    "alex": AlexNetFeatures,
    "squeeze": SqueezeNet11Features,
    "vgg": VGG16Features,
}
