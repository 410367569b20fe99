"""LaMa's ADE20k ResNet50-dilated encoder (the feature extractor of its ResNetPL perceptual loss).

LaMa (``models/ade20k/{resnet,base}.py``, from CSAIL's semantic-segmentation-pytorch) builds a
"deep-stem" ResNet50 (three 3x3 convolutions instead of one 7x7: 3->64 stride 2, 64->64, 64->128,
then a 3x3/2 max pool), the torchvision-style bottleneck stack [3, 4, 6, 3] with the stride on the
3x3 convolution, and turns it into a stride-8 network with ``ResnetDilated(dilate_scale=8)``:
in ``layer3`` the stride-2 convolutions get stride 1 (the first 3x3 dilation 1, the others
dilation 2), in ``layer4`` likewise with dilation 2 for the first 3x3 and 4 for the others; the
1x1 downsample convolutions just lose their stride. The encoder returns the outputs of
``layer1..layer4`` (256, 512, 1024, 2048 channels at 1/4, 1/8, 1/8, 1/8 of the input).

The pretrained weights are the ``encoder_epoch_20.pth`` of CSAIL's ``ade20k-resnet50dilated-ppm_deepsup``
scene parser, which LaMa reads from ``$TORCH_HOME/ade20k/ade20k-resnet50dilated-ppm_deepsup/``.
Here the file is found through :mod:`inpaintlab.weights` under the name
``ade20k-resnet50dilated-ppm_deepsup/encoder_epoch_20.pth`` (the URL's last two parts), and also at
LaMa's own location. Inputs to the encoder are ImageNet-normalised, as LaMa's ResNetPL does.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ... import weights as _weights
from ...errors import MissingWeightsError

__all__ = ["ENCODER_FILE", "IMAGENET_MEAN", "IMAGENET_STD", "ResNet50Dilated", "lama_layout_path",
           "resolve_encoder_file", "load_encoder_weights", "load_ade20k_encoder"]

ENCODER_FILE = "ade20k-resnet50dilated-ppm_deepsup/encoder_epoch_20.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c)


class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1, 3x3 with the stride and dilation, 1x1 x4) as in LaMa's ``ade20k/resnet.py``."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1, downsample: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = _bn(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = _bn(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = _bn(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
                                         _bn(planes * 4)) if downsample else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


def _layer(inplanes: int, planes: int, blocks: int, stride: int, first_dilation: int, dilation: int) -> nn.Sequential:
    down = stride != 1 or inplanes != planes * 4
    layers = [Bottleneck(inplanes, planes, stride, first_dilation, down)]
    layers += [Bottleneck(planes * 4, planes, 1, dilation) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class ResNet50Dilated(nn.Module):
    """LaMa's ``ResnetDilated(resnet50, dilate_scale=8)``: deep-stem ResNet50 at stride 8; returns layer1..layer4."""

    channels = (256, 512, 1024, 2048)

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, stride=2, padding=1, bias=False)
        self.bn1 = _bn(64)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
        self.bn2 = _bn(64)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1, bias=False)
        self.bn3 = _bn(128)
        self.relu3 = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        # (planes, blocks, stride, dilation of the first block's 3x3, of the others') after _nostride_dilate
        self.layer1 = _layer(128, 64, 3, 1, 1, 1)
        self.layer2 = _layer(256, 128, 4, 2, 1, 1)
        self.layer3 = _layer(512, 256, 6, 1, 1, 2)
        self.layer4 = _layer(1024, 512, 3, 1, 2, 4)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four stage outputs of an ImageNet-normalised batch (LaMa: ``return_feature_maps=True``)."""
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.relu3(self.bn3(self.conv3(x)))
        x = self.maxpool(x)
        feats = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            feats.append(x)
        return feats


def lama_layout_path() -> Path:
    """Where LaMa itself expects the file: ``$TORCH_HOME/ade20k/<ENCODER_FILE>``."""
    return _weights.torch_hub_dir().parent.parent / "ade20k" / ENCODER_FILE


def resolve_encoder_file(*, path: str | Path | None = None, download: bool = True) -> Path:
    """The encoder file: explicit path, the inpaintlab folders, LaMa's ``$TORCH_HOME/ade20k/``, then a download."""
    if path is None and _weights.find(ENCODER_FILE)[0] is None and lama_layout_path().is_file() \
            and lama_layout_path().stat().st_size > 0:
        path = lama_layout_path()
    return _weights.resolve(ENCODER_FILE, path=path, download=download)  # no published hash: never downloaded


def load_encoder_weights(encoder: ResNet50Dilated, path: str | Path) -> ResNet50Dilated:
    """Load CSAIL's encoder state dict: every weight and running statistic must be there with its shape.

    Extra entries are ignored, as LaMa's ``load_state_dict(strict=False)`` does (the official file
    also holds sync-BN ``_tmp_running_mean/var`` buffers); ``num_batches_tracked`` may be absent.
    """
    state = _weights.read_checkpoint(path, "ADE20k ResNet50-dilated encoder", ENCODER_FILE)
    if not isinstance(state, dict):
        raise MissingWeightsError(f"{path} does not hold a state dict; expected {ENCODER_FILE}")
    want = {k: tuple(v.shape) for k, v in encoder.state_dict().items()}
    problems = _weights.state_dict_problems(want, state, optional=lambda k: k.endswith("num_batches_tracked"),
                                            allow_extra=True)
    if problems:
        raise MissingWeightsError(f"{path} is not the ADE20k ResNet50-dilated encoder ({ENCODER_FILE}): "
                                  + "; ".join(problems))
    encoder.load_state_dict({k: state[k] for k in want if k in state}, strict=False)
    return encoder


def load_ade20k_encoder(*, device: str | torch.device | None = None, path: str | Path | None = None,
                        download: bool = True) -> ResNet50Dilated:
    """The pretrained, frozen encoder in eval mode, its file found by :func:`resolve_encoder_file`."""
    encoder = load_encoder_weights(ResNet50Dilated(), resolve_encoder_file(path=path, download=download))
    encoder.requires_grad_(False)
    return encoder.eval().to(device if device is not None else "cpu")
