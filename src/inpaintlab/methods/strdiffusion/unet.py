"""The IR-SDE noise-prediction UNet and StrDiffusion's SPADE-guided texture variant, written to match their code.

References: IR-SDE (``Algolzw/image-restoration-sde``, ``codes/config/inpainting/models/modules/
{DenoisingUNet_arch.py, module_util.py}``) and StrDiffusion (``htyjers/StrDiffusion``,
``{train,test}/texture/config/inpainting/models/modules/DenoisingUNet_arch.py``, which also hold its
``PositionalNorm2d`` / ``SPADE`` / ``SPADEBlock``). The module tree mirrors theirs, so a state dict has exactly
their keys (``downs.0.2.fn.fn.to_qkv.weight``, ``downs.0.4.norm_0.mlp_shared.0.weight``,
``downs.0.4.conv_0.weight_orig``) and the published checkpoints load with ``load_state_dict(strict=True)``.

What the reference does and this keeps (each checked against the code):

- input ``cat([xt - cond, cond])``, reflect-padded at the bottom/right to a multiple of ``2**depth`` (although
  only ``depth - 1`` levels halve), output cropped back to (H, W);
- ``init_conv`` 7x7 without bias; time ``SinusoidalPosEmb(nf) -> Linear(nf, 4nf) -> GELU -> Linear(4nf, 4nf)``;
- per down level ``i``: two :class:`ResBlock` (``nf*2**i`` channels), ``Residual(PreNorm(LinearAttention))``, then
  a 4x4 stride-2 conv with bias (a 3x3 conv without bias, no stride, on the last level) to ``nf*2**(i+1)``;
  the texture UNet appends a :class:`SPADEBlock` applied *after* that conv;
- mid: ResBlock, ``Residual(PreNorm(LinearAttention))``, ResBlock at ``nf*2**depth`` channels;
- per up level (deepest first): ResBlocks on ``cat([x, skip])``, attention, then nearest x2 + 3x3 conv with bias
  (a 3x3 conv without bias and no upsampling on the outermost level);
- ``final_res_block`` on ``cat([x, init_conv output])`` (2nf -> nf) and a 3x3 ``final_conv`` with bias.

All convolutions built by the reference's ``default_conv`` have ``bias=False``; there is no GroupNorm.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "UNetConfig",
    "unet_config_to_dict",
    "unet_config_from_dict",
    "sinusoidal_embedding",
    "SinusoidalPosEmb",
    "LayerNorm",
    "PreNorm",
    "Residual",
    "LinearAttention",
    "Block",
    "ResBlock",
    "PositionalNorm2d",
    "SPADE",
    "SPADEBlock",
    "ConditionalUNet",
    "reflect_pad_to_multiple",
]


# -- configuration --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UNetConfig:
    """The ``network_G.setting`` of IR-SDE / StrDiffusion (``in_nc, out_nc, nf, depth``) plus the SPADE switch.

    The defaults are StrDiffusion's texture network without its guide (``nf: 64, depth: 4``, RGB); its
    structure network is ``in_nc=out_nc=1``, its texture network ``spade=True``.
    """

    in_nc: int = 3
    out_nc: int = 3
    nf: int = 64
    depth: int = 4
    spade: bool = False

    def __post_init__(self) -> None:
        for name in ("in_nc", "out_nc", "nf", "depth"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"UNetConfig.{name} must be a positive int, got {v!r}")
        # the sinusoidal embedding divides by nf/2 - 1 and splits nf into sin and cos halves
        if self.nf < 4 or self.nf % 2:
            raise ValueError(f"UNetConfig.nf must be even and >= 4, got {self.nf}")
        if not isinstance(self.spade, bool):
            raise ValueError(f"UNetConfig.spade must be a bool, got {self.spade!r}")

    @property
    def pad_multiple(self) -> int:
        """H and W are reflect-padded to a multiple of this (the reference's ``check_image_size``)."""
        return 2 ** self.depth

    @property
    def time_dim(self) -> int:
        return 4 * self.nf


def unet_config_to_dict(cfg: UNetConfig) -> dict[str, Any]:
    """Plain JSON values."""
    return dataclasses.asdict(cfg)


def unet_config_from_dict(data: Mapping[str, Any]) -> UNetConfig:
    """Inverse of :func:`unet_config_to_dict`; missing keys take the defaults, unknown keys raise ValueError."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a UNet config must be a mapping, got {type(data).__name__}")
    fields = {f.name for f in dataclasses.fields(UNetConfig)}
    unknown = sorted(map(str, set(data) - fields))
    if unknown:
        raise ValueError(f"unknown UNet config key(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
    return UNetConfig(**dict(data))


# -- time embedding -------------------------------------------------------------------------------------------


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """``[sin(t f_k), cos(t f_k)]`` with ``f_k = 10000^(-k / (dim/2 - 1))``, k < dim/2: (N,) -> (N, dim).

    The same float32 operations as the reference's ``SinusoidalPosEmb``, so integer steps embed bit-identically.
    """
    half = dim // 2
    step = math.log(10000) / (half - 1)
    freqs = torch.exp(torch.arange(half, device=t.device) * -step)
    # integer steps promote to float32 in the reference; float64 steps are brought there too (float32 Linear)
    args = t[:, None].to(freqs.dtype) * freqs[None, :]
    return torch.cat((args.sin(), args.cos()), dim=-1)


class SinusoidalPosEmb(nn.Module):
    """The reference's ``SinusoidalPosEmb`` (no parameters): the first entry of ``time_mlp``."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return sinusoidal_embedding(t, self.dim)


# -- building blocks (module_util.py) ------------------------------------------------------------------------


def _conv(dim_in: int, dim_out: int, kernel_size: int = 3) -> nn.Conv2d:
    """The reference's ``default_conv``: 'same' padding and NO bias."""
    return nn.Conv2d(dim_in, dim_out, kernel_size, padding=kernel_size // 2, bias=False)


def _downsample(dim_in: int, dim_out: int) -> nn.Conv2d:
    """The reference's ``Downsample``: a 4x4 stride-2 conv (with bias)."""
    return nn.Conv2d(dim_in, dim_out, 4, 2, 1)


def _upsample(dim_in: int, dim_out: int) -> nn.Sequential:
    """The reference's ``Upsample``: nearest x2, then a 3x3 conv (with bias); keys ``.1.weight/.1.bias``."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(dim_in, dim_out, 3, 1, 1))


class LayerNorm(nn.Module):
    """The reference's channel ``LayerNorm``: per pixel over channels, biased variance, gain ``g``, no bias."""

    def __init__(self, dim: int):
        super().__init__()
        self.g = nn.Parameter(torch.ones(1, dim, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eps = 1e-5 if x.dtype == torch.float32 else 1e-3  # as coded: 1e-3 for every other dtype (even float64)
        var = torch.var(x, dim=1, unbiased=False, keepdim=True)
        mean = torch.mean(x, dim=1, keepdim=True)
        return (x - mean) * (var + eps).rsqrt() * self.g


class PreNorm(nn.Module):
    """The reference's ``PreNorm``: ``fn(LayerNorm(x))``."""

    def __init__(self, dim: int, fn: nn.Module):
        super().__init__()
        self.fn = fn
        self.norm = LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class Residual(nn.Module):
    """The reference's ``Residual``: ``fn(x) + x``."""

    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x) + x


class LinearAttention(nn.Module):
    """The reference's ``LinearAttention`` (4 heads x 32): linear in the number of positions.

    q is softmaxed over a head's channels, k over positions; ``context = k v^T`` (per head, d x e) is then
    read out by q. ``to_out`` is a 1x1 conv (with bias) followed by a channel :class:`LayerNorm`.
    """

    def __init__(self, dim: int, heads: int = 4, dim_head: int = 32):
        super().__init__()
        self.scale = dim_head ** -0.5
        self.heads = heads
        hidden = heads * dim_head
        self.to_qkv = nn.Conv2d(dim, hidden * 3, 1, bias=False)
        self.to_out = nn.Sequential(nn.Conv2d(hidden, dim, 1), LayerNorm(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        # 'b (h c) x y -> b h c (x y)'
        q, k, v = (z.reshape(b, self.heads, -1, h * w) for z in self.to_qkv(x).chunk(3, dim=1))
        q = q.softmax(dim=-2) * self.scale
        k = k.softmax(dim=-1)
        v = v / (h * w)
        context = torch.einsum("bhdn,bhen->bhde", k, v)
        out = torch.einsum("bhde,bhdn->bhen", context, q)
        return self.to_out(out.reshape(b, -1, h, w))


class Block(nn.Module):
    """The reference's ``Block``: 3x3 conv (no bias), optional ``x * (1 + scale) + shift``, SiLU."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = _conv(dim_in, dim_out)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, scale_shift: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        x = self.proj(x)
        if scale_shift is not None:
            scale, shift = scale_shift
            x = x * (scale + 1) + shift
        return self.act(x)


class ResBlock(nn.Module):
    """The reference's ``ResBlock``: time-modulated Block, Block, plus a 1x1 (no bias) or identity shortcut."""

    def __init__(self, dim_in: int, dim_out: int, time_emb_dim: int):
        super().__init__()
        # keys mlp.1.*: the reference's Sequential(act, Linear)
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(time_emb_dim, dim_out * 2))
        self.block1 = Block(dim_in, dim_out)
        self.block2 = Block(dim_out, dim_out)
        self.res_conv = _conv(dim_in, dim_out, 1) if dim_in != dim_out else nn.Identity()

    def forward(self, x: torch.Tensor, time_emb: torch.Tensor) -> torch.Tensor:
        scale_shift = self.mlp(time_emb)[:, :, None, None].chunk(2, dim=1)
        h = self.block2(self.block1(x, scale_shift=scale_shift))
        return h + self.res_conv(x)


# -- SPADE (StrDiffusion's texture UNet) ---------------------------------------------------------------------


class PositionalNorm2d(nn.Module):
    """StrDiffusion's ``PositionalNorm2d``: per pixel over channels, ``(x - mean) / sqrt(var + eps)``.

    The variance is torch's default, i.e. UNBIASED (divided by C - 1), as coded; no parameters.
    """

    def __init__(self, eps: float = 1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        std = x.var(dim=1, keepdim=True).add(self.eps).sqrt()
        return (x - mean) / std


class SPADE(nn.Module):
    """StrDiffusion's ``SPADE`` ('spadeposition3x3'): positional norm, then a structure-predicted affine.

    ``out = PN(x) * (1 + gamma(s)) + beta(s)`` with ``s`` the structure map resized nearest to x's size and
    ``gamma, beta = conv3x3(ReLU(conv3x3(s)))`` (16 hidden channels, hard-coded in the reference).
    """

    def __init__(self, norm_nc: int, label_nc: int = 1, hidden: int = 16, kernel_size: int = 3):
        super().__init__()
        pw = kernel_size // 2
        self.param_free_norm = PositionalNorm2d()
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, kernel_size, padding=pw), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, kernel_size, padding=pw)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, kernel_size, padding=pw)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        normalized = self.param_free_norm(x)
        segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEBlock(nn.Module):
    """StrDiffusion's ``SPADEBlock``: ``x + conv_1(lrelu(SPADE_1(conv_0(lrelu(SPADE_0(x, s))), s)))``.

    ``conv_0``/``conv_1`` are 3x3 convs (with bias) under ``torch.nn.utils.spectral_norm`` (keys ``weight_orig``,
    ``weight_u``, ``weight_v``). The reference builds its learned shortcut only when fin != fout, which never
    happens in the UNet (fin == fout), so there is no ``conv_s``/``norm_s``; it is left out here too.
    """

    def __init__(self, channels: int, semantic_nc: int = 1):
        super().__init__()
        self.conv_0 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv_1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.norm_0 = SPADE(channels, semantic_nc)
        self.norm_1 = SPADE(channels, semantic_nc)
        self._init_weights()
        # the old hook API (not parametrizations): it gives the reference's weight_orig/_u/_v keys
        self.conv_0 = nn.utils.spectral_norm(self.conv_0)
        self.conv_1 = nn.utils.spectral_norm(self.conv_1)

    def _init_weights(self, gain: float = 0.02) -> None:
        """SPADE's ``BaseNetwork.init_weights('normal', 0.02)``: every conv N(0, 0.02), biases 0.

        The reference runs it after spectral_norm, writing weight_orig through the shared storage of
        ``module.weight``; u and v are random either way, so initialising before wrapping is the same.
        """
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, gain)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return x + dx


# -- the UNet ---------------------------------------------------------------------------------------------------


def reflect_pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflect-pad the bottom and right of (N, C, H, W) to multiples of ``multiple`` (``check_image_size``)."""
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h >= h or pad_w >= w:
        # reflect padding cannot reach further than the input is wide
        raise ValueError(f"input {h}x{w} is too small to reflect-pad to a multiple of {multiple}")
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
    return x


def _down_level(i: int, cfg: UNetConfig) -> nn.ModuleList:
    """Down level i: ResBlock, ResBlock, attention, down conv [, SPADEBlock] (nf*2^i -> nf*2^(i+1))."""
    dim_in, dim_out, td = cfg.nf * 2 ** i, cfg.nf * 2 ** (i + 1), cfg.time_dim
    last = i == cfg.depth - 1
    layers = [
        ResBlock(dim_in, dim_in, td),
        ResBlock(dim_in, dim_in, td),
        Residual(PreNorm(dim_in, LinearAttention(dim_in))),
        _conv(dim_in, dim_out) if last else _downsample(dim_in, dim_out),
    ]
    if cfg.spade:
        layers.append(SPADEBlock(dim_out, semantic_nc=1))
    return nn.ModuleList(layers)


def _up_level(i: int, cfg: UNetConfig) -> nn.ModuleList:
    """Up level mirroring down level i: ResBlocks on cat(x, skip), attention, up conv (nf*2^(i+1) -> nf*2^i)."""
    dim_in, dim_out, td = cfg.nf * 2 ** i, cfg.nf * 2 ** (i + 1), cfg.time_dim
    return nn.ModuleList([
        ResBlock(dim_out + dim_in, dim_out, td),
        ResBlock(dim_out + dim_in, dim_out, td),
        Residual(PreNorm(dim_out, LinearAttention(dim_out))),
        _conv(dim_out, dim_in) if i == 0 else _upsample(dim_out, dim_in),
    ])


def _time_steps(t: Any, n: int, device: torch.device) -> torch.Tensor:
    """The step indices as a (N,) or (1,) tensor (a scalar broadcasts over the batch, as in the reference)."""
    if isinstance(t, bool):
        raise TypeError("t must be a number or a tensor of step indices, got a bool")
    if isinstance(t, (int, float)):
        t = torch.tensor([t])
    if not torch.is_tensor(t):
        raise TypeError(f"t must be a number or a tensor of step indices, got {type(t).__name__}")
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"t must hold real step indices, got dtype {t.dtype}")
    t = t.reshape(1) if t.dim() == 0 else t
    if t.dim() != 1 or t.shape[0] not in (1, n):
        raise ValueError(f"t must have shape ({n},) or (1,), got {tuple(t.shape)}")
    return t.to(device)


class ConditionalUNet(nn.Module):
    """IR-SDE's ``ConditionalUNet``; with ``cfg.spade`` StrDiffusion's structure-guided texture UNet.

    ``forward(xt, cond, t, structure=None)`` predicts the noise (N, out_nc, H, W) of state ``xt`` given the
    condition ``cond`` (both (N, in_nc, H, W)), the step indices ``t`` ((N,) or (1,), int or float) and, for the
    SPADE variant only, the structure map ``structure`` (N, 1, H, W).
    """

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        if not isinstance(cfg, UNetConfig):
            raise TypeError(f"ConditionalUNet takes a UNetConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        nf, td = cfg.nf, cfg.time_dim
        self.init_conv = _conv(2 * cfg.in_nc, nf, 7)
        self.time_mlp = nn.Sequential(SinusoidalPosEmb(nf), nn.Linear(nf, td), nn.GELU(), nn.Linear(td, td))
        self.downs = nn.ModuleList([_down_level(i, cfg) for i in range(cfg.depth)])
        # the reference inserts each up level at the front: ups[0] is the deepest
        self.ups = nn.ModuleList([_up_level(i, cfg) for i in reversed(range(cfg.depth))])
        mid = nf * 2 ** cfg.depth
        self.mid_block1 = ResBlock(mid, mid, td)
        self.mid_attn = Residual(PreNorm(mid, LinearAttention(mid)))
        self.mid_block2 = ResBlock(mid, mid, td)
        self.final_res_block = ResBlock(2 * nf, nf, td)
        self.final_conv = nn.Conv2d(nf, cfg.out_nc, 3, 1, 1)

    def _check_inputs(self, xt: torch.Tensor, cond: torch.Tensor, structure: torch.Tensor | None) -> None:
        want = (self.cfg.in_nc,)
        if xt.dim() != 4 or tuple(xt.shape[1:2]) != want:
            raise ValueError(f"xt must be (N, {self.cfg.in_nc}, H, W), got {tuple(xt.shape)}")
        if cond.shape != xt.shape:
            raise ValueError(f"cond must have xt's shape {tuple(xt.shape)}, got {tuple(cond.shape)}")
        if not self.cfg.spade:
            if structure is not None:
                raise ValueError("this UNet has no SPADE guidance (cfg.spade is False); pass structure=None")
            return
        if structure is None:
            raise ValueError("the SPADE UNet needs the structure map: pass structure of shape (N, 1, H, W)")
        n, _, h, w = xt.shape
        if tuple(structure.shape) != (n, 1, h, w):
            raise ValueError(f"structure must be ({n}, 1, {h}, {w}), got {tuple(structure.shape)}")

    def forward(self, xt: torch.Tensor, cond: torch.Tensor, t: Any,
                structure: torch.Tensor | None = None) -> torch.Tensor:
        self._check_inputs(xt, cond, structure)
        h, w = xt.shape[-2:]
        x = reflect_pad_to_multiple(torch.cat([xt - cond, cond], dim=1), self.cfg.pad_multiple)
        x = self.init_conv(x)
        x_init = x
        temb = self.time_mlp(_time_steps(t, xt.shape[0], xt.device))

        skips = []
        for level in self.downs:
            x = level[0](x, temb)
            skips.append(x)
            x = level[2](level[1](x, temb))
            skips.append(x)
            x = level[3](x)
            if self.cfg.spade:
                # as coded: the UNPADDED structure map is resized (nearest) to the padded feature size
                x = level[4](x, structure)

        x = self.mid_block2(self.mid_attn(self.mid_block1(x, temb)), temb)

        for block1, block2, attn, up in self.ups:
            x = block1(torch.cat([x, skips.pop()], dim=1), temb)
            x = block2(torch.cat([x, skips.pop()], dim=1), temb)
            x = up(attn(x))

        x = self.final_res_block(torch.cat([x, x_init], dim=1), temb)
        return self.final_conv(x)[..., :h, :w]
