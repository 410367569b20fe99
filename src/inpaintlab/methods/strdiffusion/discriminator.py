"""StrDiffusion's time-dependent discriminator and its training loss (adversarial + triplet).

References (Liu et al., CVPR 2024, public code ``htyjers/StrDiffusion``):

* network: ``train/discriminator/config/inpainting/models/networks.py::Discriminator``, itself NVIDIA's
  Denoising-Diffusion-GAN ``score_sde/models/discriminator.py::Discriminator_small`` (with its helpers
  ``dense_layer.py``, ``layers.py::get_timestep_embedding`` and ``up_or_down_sampling.py::downsample_2d``),
  built there as ``Discriminator(nc=4, ngf=64, t_emb_dim=256, act=LeakyReLU(0.2))``;
* loss: ``train/discriminator/config/inpainting/models/denoising_model.py::optimize_parameters``.

Layout (attribute names are the reference's, so its state-dict keys ``t_embed.main.0.weight``,
``start_conv.weight``, ``conv1.conv1.0.weight``, ``conv1.dense_t1.weight``, ``conv1.skip.0.weight``,
``final_conv.weight``, ``end_linear.weight`` ... load unchanged)::

    temb = LReLU(Dense(LReLU(Dense(sinusoid_256(t)))))          t: the integer SDE step (1..T), not scaled
    h    = Conv1x1(cat[y (3 ch), x (1 ch)] -> 2ngf)
    h    = DownConvBlock(2ngf -> 2ngf), (2ngf -> 4ngf, down), (4ngf -> 8ngf, down), (8ngf -> 8ngf, down)
    h    = cat[h, minibatch-stddev(h)]                            group = min(B, 4), one feature
    out  = Linear(sum_{H,W} LReLU(Conv3x3(8ngf + 1 -> 8ngf)(h)))  one logit per image

The minibatch-stddev channel makes a logit depend on the other images of its group. Training keeps
that (``forward``, group ``min(B, 4)``); inference uses :meth:`TimeDiscriminator.score` (group 1: the
channel is the constant ``sqrt(1e-8) = 1e-4`` and every image is scored alone), so that a result does
not depend on the batch size. The reference samples with batch 1, which is the same thing.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["DiscriminatorConfig", "TimeDiscriminator", "TimestepEmbedding", "DownConvBlock",
           "timestep_embedding", "fir_downsample", "minibatch_stddev", "variance_scaling_uniform_",
           "dense", "conv2d", "adversarial_loss", "triplet_loss", "discriminator_loss",
           "load_reference_state_dict", "STDDEV_GROUP", "STDDEV_EPS", "FIR_KERNEL"]

#: the reference's ``stddev_group``: images per minibatch-stddev group in training (``min(B, 4)``)
STDDEV_GROUP = 4
#: added to the variance before the square root (StyleGAN2's value, kept by the reference)
STDDEV_EPS = 1e-8
#: the FIR low-pass of every downsampling (StyleGAN2's ``[1, 3, 3, 1]``)
FIR_KERNEL = (1.0, 3.0, 3.0, 1.0)
#: LeakyReLU slope everywhere (the reference's ``act``)
LRELU_SLOPE = 0.2


@dataclass(frozen=True)
class DiscriminatorConfig:
    """The discriminator's architecture (defaults: StrDiffusion's ``nc=4, ngf=64, t_emb_dim=256``)."""

    #: input channels: the RGB state y (3) and the grayscale structure x (1)
    nc: int = 4
    ngf: int = 64
    t_emb_dim: int = 256

    def __post_init__(self) -> None:
        for name in ("nc", "ngf", "t_emb_dim"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"DiscriminatorConfig.{name} must be a positive int, got {v!r}")
        if self.t_emb_dim < 4:
            # the sinusoid divides by (t_emb_dim // 2 - 1)
            raise ValueError(f"DiscriminatorConfig.t_emb_dim must be >= 4, got {self.t_emb_dim}")

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain dict (for checkpoint metadata)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DiscriminatorConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError."""
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown discriminator config key(s) {', '.join(unknown)}")
        return cls(**dict(data))


# ---------------------------------------------------------------------------------------------
# initialisation and layers (dense_layer.py)


def variance_scaling_uniform_(weight: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """DDGAN ``dense_layer.variance_scaling_init_``: U(-b, b), b = sqrt(3 scale / max(1, fan_out))."""
    # The reference asks for mode 'fan_avg', but its _calculate_correct_fan returns fan_out for anything
    # other than 'fan_in': the fan actually used is fan_out (out_channels * kernel area). Kept as coded.
    # scale 0 ("zero init") becomes 1e-10 there, so the weights are tiny but not exactly zero.
    scale = 1e-10 if scale == 0 else scale
    _, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
    bound = math.sqrt(3.0 * scale / max(1.0, fan_out))
    with torch.no_grad():
        return weight.uniform_(-bound, bound)


def dense(cin: int, cout: int, init_scale: float = 1.0) -> nn.Linear:
    """DDGAN ``dense_layer.dense``: a Linear with variance-scaling weights and a zero bias."""
    lin = nn.Linear(cin, cout)
    variance_scaling_uniform_(lin.weight, init_scale)
    nn.init.zeros_(lin.bias)
    return lin


def conv2d(cin: int, cout: int, kernel_size: int, padding: int, bias: bool = True,
           init_scale: float = 1.0) -> nn.Conv2d:
    """DDGAN ``dense_layer.conv2d``: a Conv2d with variance-scaling weights and a zero bias."""
    conv = nn.Conv2d(cin, cout, kernel_size, padding=padding, bias=bias)
    variance_scaling_uniform_(conv.weight, init_scale)
    if bias:
        nn.init.zeros_(conv.bias)
    return conv


# ---------------------------------------------------------------------------------------------
# time embedding (layers.py::get_timestep_embedding) and the DDGAN TimestepEmbedding


def timestep_embedding(t: torch.Tensor, dim: int, max_positions: float = 10000.0) -> torch.Tensor:
    """Score-SDE ``get_timestep_embedding``: ``[sin(t w_i), cos(t w_i)]``, w_i = max_positions^(-i/(dim/2 - 1))."""
    if t.ndim != 1:
        raise ValueError(f"timestep_embedding expects t of shape (N,), got {tuple(t.shape)}")
    half = dim // 2
    # float32 as in the reference: t are integer steps <= T (exact in float32), so only sin/cos round
    step = math.log(max_positions) / (half - 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=t.device) * -step)
    args = t.float()[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    if dim % 2 == 1:  # an odd width gets one zero column, as in the reference
        emb = F.pad(emb, (0, 1))
    return emb


class TimestepEmbedding(nn.Module):
    """DDGAN ``TimestepEmbedding``: sinusoid(t) -> Dense -> LReLU -> Dense (``main.0``, ``main.2``)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.main = nn.Sequential(dense(dim, dim), nn.LeakyReLU(LRELU_SLOPE), dense(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        # the sinusoid is computed in float32 as in the reference, then follows the weights' dtype
        return self.main(timestep_embedding(t, self.dim).to(self.main[0].weight.dtype))


# ---------------------------------------------------------------------------------------------
# FIR downsampling (up_or_down_sampling.py::downsample_2d)


def _fir_kernel_2d(k: Sequence[float], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """StyleGAN2 ``_setup_kernel``: the outer product of a 1-D FIR, normalised to sum 1."""
    k1 = torch.as_tensor(k, dtype=torch.float64)
    k2 = torch.outer(k1, k1)
    return (k2 / k2.sum()).to(dtype=dtype, device=device)


def fir_downsample(x: torch.Tensor, kernel: Sequence[float] = FIR_KERNEL) -> torch.Tensor:
    """StyleGAN2/DDGAN ``downsample_2d(x, k, factor=2)``: FIR low-pass then keep every other pixel.

    The reference runs ``upfirdn2d`` (a CUDA extension, with a slower PyTorch fallback for CPU tensors
    in DDGAN); for down=2, up=1 it is only a linear filter: zero padding ``((p + 1) // 2, p // 2)`` with
    ``p = len(k) - 2``, a true 2-D convolution with the normalised outer product of ``k``, and stride 2.
    A depthwise ``conv2d`` computes exactly that on any device without compiling anything.
    """
    n, c, h, w = x.shape
    k = len(kernel)
    if k < 2:
        raise ValueError(f"fir_downsample needs a kernel of length >= 2, got {len(kernel)}")
    p = k - 2
    pad0, pad1 = (p + 1) // 2, p // 2  # (1, 1) for [1, 3, 3, 1]
    # upfirdn2d convolves (flips the kernel); conv2d correlates: flip so asymmetric kernels match too
    weight = _fir_kernel_2d(kernel, x.dtype, x.device).flip(0, 1)
    weight = weight[None, None].expand(c, 1, k, k)
    x = F.pad(x, (pad0, pad1, pad0, pad1))
    return F.conv2d(x, weight, stride=2, groups=c)


# ---------------------------------------------------------------------------------------------
# blocks


class DownConvBlock(nn.Module):
    """DDGAN ``DownConvBlock``: a pre-activation residual block with a time bias and optional FIR downsampling."""

    def __init__(self, cin: int, cout: int, t_emb_dim: int, downsample: bool = False):
        super().__init__()
        self.downsample = downsample
        # nn.Sequential wrappers only to keep the reference's keys (conv1.0.weight, conv2.0.weight, skip.0.weight)
        self.conv1 = nn.Sequential(conv2d(cin, cout, 3, padding=1))
        # init scale 0: at initialisation the block is (almost exactly) its skip path
        self.conv2 = nn.Sequential(conv2d(cout, cout, 3, padding=1, init_scale=0.0))
        self.dense_t1 = dense(t_emb_dim, cout)
        self.skip = nn.Sequential(conv2d(cin, cout, 1, padding=0, bias=False))
        self.act = nn.LeakyReLU(LRELU_SLOPE)

    def forward(self, inp: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.act(inp))
        out = out + self.dense_t1(temb)[..., None, None]
        out = self.act(out)
        if self.downsample:
            # both paths are low-passed before subsampling; the skip takes the raw (pre-activation) input
            out = fir_downsample(out)
            inp = fir_downsample(inp)
        out = self.conv2(out)
        # / sqrt(2) keeps the variance of the sum of two roughly independent paths
        return (out + self.skip(inp)) / math.sqrt(2.0)


def minibatch_stddev(h: torch.Tensor, group: int, eps: float = STDDEV_EPS) -> torch.Tensor:
    """StyleGAN2 minibatch-stddev (one feature): append the group's mean per-pixel std as a channel.

    As in the reference, the groups are strided, not contiguous: image ``b`` of a batch of ``B`` is
    grouped with ``b mod (B/group) + g (B/group)``, g = 0 .. group-1 (a ``view(group, -1, ...)``).
    For group 1 the appended channel is the constant ``sqrt(eps)``.
    """
    b, c, hh, ww = h.shape
    if group < 1 or b % group:
        # the reference's view() fails here too; say why
        raise ValueError(f"minibatch_stddev: batch {b} is not a multiple of the group size {group}")
    s = h.view(group, -1, 1, c, hh, ww)  # (group, B/group, features=1, C, H, W)
    s = torch.sqrt(s.var(0, unbiased=False) + eps)
    s = s.mean([2, 3, 4], keepdim=True).squeeze(2)  # (B/group, 1, 1, 1): std averaged over C, H, W
    s = s.repeat(group, 1, hh, ww)
    return torch.cat([h, s], 1)


class TimeDiscriminator(nn.Module):
    """StrDiffusion's discriminator D(t, y, x) -> one logit per image (DDGAN's small discriminator)."""

    def __init__(self, cfg: DiscriminatorConfig = DiscriminatorConfig()):
        super().__init__()
        self.cfg = cfg
        ngf, td = cfg.ngf, cfg.t_emb_dim
        self.act = nn.LeakyReLU(LRELU_SLOPE)
        self.t_embed = TimestepEmbedding(td)
        self.start_conv = conv2d(cfg.nc, 2 * ngf, 1, padding=0)
        self.conv1 = DownConvBlock(2 * ngf, 2 * ngf, td)
        self.conv2 = DownConvBlock(2 * ngf, 4 * ngf, td, downsample=True)
        self.conv3 = DownConvBlock(4 * ngf, 8 * ngf, td, downsample=True)
        self.conv4 = DownConvBlock(8 * ngf, 8 * ngf, td, downsample=True)
        self.final_conv = conv2d(8 * ngf + 1, 8 * ngf, 3, padding=1, init_scale=0.0)
        self.end_linear = dense(8 * ngf, 1)

    def _steps(self, t: torch.Tensor | int | float, n: int, device: torch.device) -> torch.Tensor:
        """t as an (N,) tensor: a scalar (int, float or 0-d / 1-element tensor) is shared by the batch."""
        t = torch.as_tensor(t, device=device).reshape(-1)
        if t.numel() == 1:
            t = t.expand(n)
        if t.shape != (n,):
            raise ValueError(f"t must be a scalar or have shape ({n},), got {tuple(t.shape)}")
        return t

    def forward(self, t: torch.Tensor | int | float, y: torch.Tensor, x: torch.Tensor, *,
                stddev_group: int | None = None) -> torch.Tensor:
        """Logits (N,) for states y (N, 3, H, W) and structures x (N, 1, H, W) at integer steps t.

        ``stddev_group=None`` is the training behaviour ``min(N, 4)`` (the logits depend on the other
        images of the batch); 1 scores every image alone (see :meth:`score`).
        """
        n = y.shape[0]
        if x.shape[0] != n or x.shape[2:] != y.shape[2:]:
            raise ValueError(f"y {tuple(y.shape)} and x {tuple(x.shape)} must share N, H and W")
        if y.shape[1] + x.shape[1] != self.cfg.nc:
            raise ValueError(f"y and x have {y.shape[1]} + {x.shape[1]} channels, the network takes {self.cfg.nc}")
        group = min(n, STDDEV_GROUP) if stddev_group is None else stddev_group
        # the reference applies the activation once more to the MLP's output, then every block adds
        # its own Dense of that (no further activation inside the blocks)
        temb = self.act(self.t_embed(self._steps(t, n, y.device)))
        h = self.start_conv(torch.cat([y, x], 1))
        for block in (self.conv1, self.conv2, self.conv3, self.conv4):
            h = block(h, temb)
        h = minibatch_stddev(h, group)
        h = self.act(self.final_conv(h))
        # a sum (not a mean) over positions, as in the reference: the logit scale grows with H * W
        return self.end_linear(h.sum((2, 3))).view(-1)

    def score(self, t: torch.Tensor | int | float, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-image logits for inference: group 1, the same as calling ``forward`` on each image alone."""
        return self.forward(t, y, x, stddev_group=1)


def load_reference_state_dict(model: TimeDiscriminator, state: Mapping[str, torch.Tensor],
                              strict: bool = True):
    """Load a reference discriminator state dict, dropping ``DataParallel``'s ``module.`` prefix if present."""
    # the reference wraps D in DataParallel; a state dict saved from the wrapper carries "module."
    clean = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}
    return model.load_state_dict(clean, strict=strict)


# ---------------------------------------------------------------------------------------------
# losses (denoising_model.py::optimize_parameters)


def adversarial_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-saturating GAN loss for D on logits: ``(mean softplus(-real), mean softplus(fake))``.

    ``softplus(-l) = -log sigmoid(l)`` and ``softplus(l) = -log(1 - sigmoid(l))``: the paper's Eq. 14
    with D = sigmoid(logit), i.e. binary cross-entropy with targets 1 (real) and 0 (fake), each term a mean.
    """
    return F.softplus(-d_real.reshape(-1)).mean(), F.softplus(d_fake.reshape(-1)).mean()


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                 margin: float = 1.0, eps: float = 1e-6) -> torch.Tensor:
    """``nn.TripletMarginLoss()`` on (N, 1) logits: ``mean max(|a - p + eps| - |a - n + eps| + margin, 0)``."""
    # The reference feeds D's (N, 1) output, so each distance is a 2-norm over one value. Flattening
    # to (N, 1) here matters: TripletMarginLoss on (N,) tensors would take one norm over the whole batch.
    a, p, n = (v.reshape(-1, 1) for v in (anchor, positive, negative))
    d_ap = torch.linalg.vector_norm(a - p + eps, ord=2, dim=1)
    d_an = torch.linalg.vector_norm(a - n + eps, ord=2, dim=1)
    return torch.clamp_min(d_ap - d_an + margin, 0.0).mean()


def discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor, d_anchor: torch.Tensor,
                       margin: float = 1.0, triplet_weight: float = 1.0
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """StrDiffusion's D loss: ``mean sp(-real) + mean sp(fake) + triplet_weight * triplet(anchor, real, fake)``.

    ``d_real = D(t, y*_{t-1}, x*_{t-1})``, ``d_fake = D(t, y_t, x*_{t-1})``,
    ``d_anchor = D(t, y*_{t-1} * keep + y_t * (1 - keep), x*_{t-1})`` (keep = 1 on known pixels).
    The reference's weight is 1 and its margin ``nn.TripletMarginLoss``'s default 1.
    """
    real, fake = adversarial_loss(d_real, d_fake)
    tri = triplet_loss(d_anchor, d_real, d_fake, margin=margin)
    total = real + fake + triplet_weight * tri
    return total, {"real": real.detach(), "fake": fake.detach(), "adversarial": (real + fake).detach(),
                   "triplet": tri.detach()}
