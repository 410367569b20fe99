"""LPIPS v0.1 (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric").

Eq. 1 of the paper: ``d(x, y) = sum_l 1/(H_l W_l) sum_{h,w} || w_l * (f^l_x - f^l_y)_{hw} ||^2``,
with ``f^l`` the channel-unit-normalised activations of layer ``l`` of a frozen ImageNet
backbone (AlexNet, SqueezeNet 1.1 or VGG16) and ``w_l`` the learned v0.1 linear heads.

Images follow the library convention (float ``(N, 3, H, W)`` in ``[0, 1]``); they are mapped to
``[-1, 1]`` and through lpips' ScalingLayer inside. Weights are found by :mod:`inpaintlab.weights`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .. import weights as _weights
from ..errors import BadImageError, InpaintlabError, MissingWeightsError
from .backbones import BACKBONES, Backbone

__all__ = ["LPIPS", "load_lpips", "NETS", "HEAD_FILES", "normalize_channels"]

NETS = tuple(BACKBONES)  # ("alex", "squeeze", "vgg")
HEAD_FILES = {net: f"{net}.pth" for net in NETS}

_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10


def normalize_channels(x: torch.Tensor, eps: float = _EPS) -> torch.Tensor:
    """Unit-normalise each feature vector over channels, ``x / (||x||_2 + eps)`` (LPIPS, Eq. 1)."""
    # vector_norm's backward is 0 (not NaN) where the whole feature vector is 0.
    return x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + eps)


class NetLinLayer(nn.Module):
    """The 1x1 linear head ``w_l`` of one layer (LPIPS, Eq. 1); keys ``model.1.weight`` as in lpips."""

    def __init__(self, channels: int):
        super().__init__()
        # lpips has Dropout at index 0 (only active in training); Identity keeps the key layout.
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, kernel_size=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPS(nn.Module):
    """Learned Perceptual Image Patch Similarity v0.1 (Zhang et al. 2018, Eq. 1); lower is more similar."""

    def __init__(self, net: str = "alex"):
        super().__init__()
        if net not in BACKBONES:
            raise InpaintlabError(f"unknown LPIPS network {net!r}; choose one of: {', '.join(NETS)}")
        self.net_name = net
        self.net: Backbone = BACKBONES[net]()
        self.lins = nn.ModuleList(NetLinLayer(c) for c in self.net.channels)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)  # a frozen metric; gradients still flow to the inputs
        self.eval()

    # ---- weights ---------------------------------------------------------------------------

    @property
    def backbone_file(self) -> str:
        return self.net.file_name

    @property
    def head_file(self) -> str:
        return HEAD_FILES[self.net_name]

    def load_weights(self, backbone_path: str | Path, head_path: str | Path) -> "LPIPS":
        """Load a torchvision backbone checkpoint and an lpips v0.1 head file (``lin{k}.model.1.weight``)."""
        self.net.load_weights(backbone_path)
        head_path = Path(head_path)
        state = _weights.read_checkpoint(head_path, "LPIPS head file", self.head_file)
        want = {f"lin{k}.model.1.weight": (1, c, 1, 1) for k, c in enumerate(self.net.channels)}
        got = {k: v for k, v in state.items() if k.startswith("lin")} if isinstance(state, dict) else {}
        bad = sorted(set(want) ^ set(got)) + [
            k for k in sorted(set(want) & set(got)) if tuple(got[k].shape) != want[k]
        ]
        if bad:
            raise MissingWeightsError(
                f"{head_path} is not an LPIPS-{self.net_name} v0.1 head file ({len(bad)} missing, extra or "
                f"mis-shaped keys, e.g. {bad[0]}); expected {self.head_file}"
            )
        with torch.no_grad():
            for k, lin in enumerate(self.lins):
                lin.model[1].weight.copy_(got[f"lin{k}.model.1.weight"].float())
        return self

    @classmethod
    def from_pretrained(
        cls,
        net: str = "alex",
        *,
        device: str | torch.device | None = None,
        backbone_path: str | Path | None = None,
        head_path: str | Path | None = None,
        download: bool = True,
    ) -> "LPIPS":
        """Build LPIPS-``net`` and load its backbone and v0.1 heads through :func:`inpaintlab.weights.resolve`."""
        model = cls(net)
        backbone = _weights.resolve(model.backbone_file, path=backbone_path, download=download)
        head = _weights.resolve(model.head_file, path=head_path, download=download)
        model.load_weights(backbone, head)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        return model.to(device)

    # ---- the metric ------------------------------------------------------------------------

    def _check(self, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise BadImageError(f"LPIPS expects images of shape (N, 3, H, W), got {shape}")
        if not images.is_floating_point():
            raise BadImageError(f"LPIPS expects float images in [0, 1], got dtype {images.dtype}")
        m = self.net.min_size
        if images.shape[2] < m or images.shape[3] < m:
            raise BadImageError(
                f"LPIPS-{self.net_name} needs images of at least {m}x{m}, got {images.shape[2]}x{images.shape[3]}"
            )
        if images.numel() and (images.min() < 0 or images.max() > 1):
            raise BadImageError(
                f"LPIPS expects images in [0, 1], got values in [{images.min().item():.3g}, "
                f"{images.max().item():.3g}]; convert a [-1, 1] image with (x + 1) / 2 or clamp"
            )
        return images.to(device=self.shift.device, dtype=torch.float32)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Channel-normalised backbone activations ``f^l`` of images in [0, 1] (LPIPS, Eq. 1)."""
        return self._features(self._check(images))

    def _features(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = (images * 2 - 1 - self.shift) / self.scale
        return [normalize_channels(f) for f in self.net(x)]

    def distance_from_features(self, f0: list[torch.Tensor], f1: list[torch.Tensor]) -> torch.Tensor:
        """``sum_l mean_hw (w_l * (f0_l - f1_l)^2)``, shape ``(N,)`` (LPIPS, Eq. 1)."""
        if len(f0) != len(self.lins) or len(f1) != len(self.lins):
            raise InpaintlabError(f"LPIPS-{self.net_name} expects {len(self.lins)} feature maps per image set")
        total = None
        for lin, a, b in zip(self.lins, f0, f1):
            d = lin((a - b) ** 2).mean(dim=(1, 2, 3))
            total = d if total is None else total + d
        return total

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """LPIPS distance between matching images of two batches in [0, 1], shape ``(N,)`` (LPIPS, Eq. 1)."""
        if x.shape != y.shape:
            raise BadImageError(f"LPIPS compares images of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        n = x.shape[0]
        feats = self._features(torch.cat([self._check(x), self._check(y)], dim=0))
        return self.distance_from_features([f[:n] for f in feats], [f[n:] for f in feats])

    def extra_repr(self) -> str:
        return f"net={self.net_name!r}, version='0.1'"


def load_lpips(
    net: str = "alex",
    *,
    device: str | torch.device | None = None,
    backbone_path: str | Path | None = None,
    head_path: str | Path | None = None,
    download: bool = True,
) -> LPIPS:
    """Pretrained LPIPS v0.1 with the ``net`` backbone (Zhang et al. 2018, Eq. 1); see :meth:`LPIPS.from_pretrained`."""
    return LPIPS.from_pretrained(
        net, device=device, backbone_path=backbone_path, head_path=head_path, download=download
    )
