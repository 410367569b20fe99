"""LaMa's Fast-Fourier-Convolution generator (``FFCResNetGenerator``), written to match LaMa's code.

Reference: ``advimman/lama``, ``saicinpainting/training/modules/ffc.py`` (classes of the same names)
and ``configs/training/{big-lama.yaml, generator/ffc_resnet_075.yaml}``. The module tree mirrors
LaMa's, so a state dict has exactly LaMa's keys (``model.5.conv1.ffc.convg2g.fu.conv_layer.weight``)
and LaMa's ``generator.*`` checkpoint entries load with the prefix stripped (:mod:`.checkpoint`).

What LaMa does and this keeps (each checked against ``ffc.py``):

- :class:`FourierUnit`: ``rfftn`` over (H, W) with ``norm="ortho"``; real and imaginary parts
  INTERLEAVED as channels ``[Re c0, Im c0, Re c1, Im c1, ...]``; 1x1 conv (no bias) -> BatchNorm ->
  ReLU on the spectrum; back with ``irfftn(s=(H, W))``.
- :class:`SpectralTransform`: AvgPool 2x2 when stride 2; 1x1 conv (no bias) to ``out/2`` + BN +
  ReLU; ``conv2(x + fu(x) [+ lfu(x)])`` with a 1x1 conv (no bias); LaMa's local Fourier unit
  (LFU) split as LaMa codes it (it splits the width with the height's half, so LFU needs square
  feature maps).
- :class:`FFC`: ``in_cg = int(in * ratio_gin)``, ``out_cg = int(out * ratio_gout)``; l2l, l2g, g2l
  are ``k x k`` convs without bias and with ``padding_mode`` reflect; a branch with zero width is an
  ``nn.Identity`` (no parameters, so no state-dict keys); g2g is a :class:`SpectralTransform`;
  a missing global branch travels as the integer 0, exactly as in LaMa.
- :class:`FFC_BN_ACT`: BN + activation per branch (Identity on a zero-width branch).
- :class:`FFCResNetGenerator`: ``ReflectionPad2d(3)`` + 7x7 stem (padding 0), ``n_downsampling``
  3x3 stride-2 FFCs (the last one switches to the resnet blocks' global ratio), ``n_blocks``
  :class:`FFCResnetBlock`, :class:`ConcatTupleLayer`, ``ConvTranspose2d(3, s2, p1,
  output_padding=1)`` + BN + ReLU per upsampling (with bias), ``ReflectionPad2d(3)`` + 7x7 conv
  (with bias), and the ``add_out_act`` activation (``"sigmoid"`` in LaMa's configs: output in
  [0, 1]). Channel widths are clamped at ``max_features`` (1024).

Input: ``cat([image * (1 - hole), hole], 1)`` (4 channels, H and W multiples of ``2**n_downsampling``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch
import torch.nn as nn

__all__ = [
    "FourierUnit",
    "SpectralTransform",
    "FFC",
    "FFC_BN_ACT",
    "FFCResnetBlock",
    "ConcatTupleLayer",
    "FFCResNetGenerator",
    "FFCConvConfig",
    "GeneratorConfig",
    "GENERATOR_PRESETS",
    "build_generator",
    "config_to_dict",
    "config_from_dict",
]


def _refuse(what: str, unsupported: Mapping[str, Any]) -> None:
    if unsupported:
        names = ", ".join(f"{k}={v!r}" for k, v in sorted(unsupported.items()))
        raise ValueError(f"{what}: unsupported option(s) {names} (inpaintlab supports what Big-LaMa and "
                         "lama-fourier use)")


def _output_activation(kind: Any) -> nn.Module:
    """LaMa's ``get_activation('tanh' if add_out_act is True else add_out_act)``."""
    if kind is True or kind == "tanh":
        return nn.Tanh()
    if kind == "sigmoid":
        return nn.Sigmoid()
    raise ValueError(f"add_out_act must be 'sigmoid', 'tanh', True (tanh) or False (none), got {kind!r}")


class FourierUnit(nn.Module):
    """A 1x1 conv + BN + ReLU applied to the real FFT of the input (LaMa's ``FourierUnit``)."""

    def __init__(self, in_channels: int, out_channels: int, groups: int = 1, fft_norm: str = "ortho",
                 **unsupported: Any):
        super().__init__()
        # LaMa's spatial_scale_factor / spectral_pos_encoding / use_se / ffc3d are off in its configs
        _refuse("FourierUnit", {k: v for k, v in unsupported.items() if v not in (None, False)})
        self.groups = groups
        self.conv_layer = nn.Conv2d(in_channels * 2, out_channels * 2, kernel_size=1, stride=1, padding=0,
                                    groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels * 2)
        self.relu = nn.ReLU(inplace=True)
        self.fft_norm = fft_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        spec = torch.fft.rfftn(x, dim=(-2, -1), norm=self.fft_norm)  # (N, C, H, W//2+1) complex
        # interleave: channel 2c is Re of channel c, 2c+1 its Im
        spec = torch.stack((spec.real, spec.imag), dim=2)  # (N, C, 2, H, Wf)
        spec = spec.reshape(n, -1, *spec.shape[3:])  # (N, 2C, H, Wf)
        spec = self.relu(self.bn(self.conv_layer(spec)))
        spec = spec.reshape(n, -1, 2, *spec.shape[2:])  # (N, C', 2, H, Wf)
        spec = torch.complex(spec[:, :, 0].contiguous(), spec[:, :, 1].contiguous())
        return torch.fft.irfftn(spec, s=x.shape[-2:], dim=(-2, -1), norm=self.fft_norm)


class SpectralTransform(nn.Module):
    """LaMa's ``SpectralTransform``: the global-to-global path of an FFC."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, groups: int = 1,
                 enable_lfu: bool = True, **fu_kwargs: Any):
        super().__init__()
        self.enable_lfu = enable_lfu
        self.stride = stride
        self.downsample = nn.AvgPool2d(kernel_size=(2, 2), stride=2) if stride == 2 else nn.Identity()
        half = out_channels // 2
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, half, kernel_size=1, groups=groups, bias=False),
            nn.BatchNorm2d(half),
            nn.ReLU(inplace=True),
        )
        self.fu = FourierUnit(half, half, groups, **fu_kwargs)
        if self.enable_lfu:
            self.lfu = FourierUnit(half, half, groups)  # LaMa passes no fu_kwargs to the LFU
        self.conv2 = nn.Conv2d(half, out_channels, kernel_size=1, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        x = self.conv1(x)
        output = self.fu(x)
        if self.enable_lfu:
            # LaMa's local Fourier unit: a quarter of the channels, cut into 2x2 tiles stacked as
            # channels, transformed, and tiled back; both cuts use the height's half (as in LaMa)
            _, c, h, _ = x.shape
            split_s = h // 2
            xs = torch.cat(torch.split(x[:, : c // 4], split_s, dim=-2), dim=1).contiguous()
            xs = torch.cat(torch.split(xs, split_s, dim=-1), dim=1).contiguous()
            xs = self.lfu(xs)
            xs = xs.repeat(1, 1, 2, 2).contiguous()
        else:
            xs = 0
        return self.conv2(x + output + xs)


class FFC(nn.Module):
    """LaMa's Fast Fourier Convolution: (local, global) -> (local, global)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, ratio_gin: float, ratio_gout: float,
                 stride: int = 1, padding: int = 0, dilation: int = 1, groups: int = 1, bias: bool = False,
                 enable_lfu: bool = True, padding_type: str = "reflect", gated: bool = False, **spectral_kwargs: Any):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"FFC stride must be 1 or 2, got {stride}")
        self.stride = stride
        in_cg = int(in_channels * ratio_gin)
        in_cl = in_channels - in_cg
        out_cg = int(out_channels * ratio_gout)
        out_cl = out_channels - out_cg
        self.ratio_gin = ratio_gin
        self.ratio_gout = ratio_gout
        self.global_in_num = in_cg

        def conv(cin: int, cout: int) -> nn.Module:
            if cin == 0 or cout == 0:
                return nn.Identity()
            return nn.Conv2d(cin, cout, kernel_size, stride, padding, dilation, groups, bias, padding_mode=padding_type)

        self.convl2l = conv(in_cl, out_cl)
        self.convl2g = conv(in_cl, out_cg)
        self.convg2l = conv(in_cg, out_cl)
        if in_cg == 0 or out_cg == 0:
            self.convg2g: nn.Module = nn.Identity()
        else:
            self.convg2g = SpectralTransform(in_cg, out_cg, stride, 1 if groups == 1 else groups // 2, enable_lfu,
                                             **spectral_kwargs)
        self.gated = gated
        # LaMa: a 1x1 conv (with bias) from all input channels to 2 gates, else an Identity
        if in_cg == 0 or out_cl == 0 or not gated:
            self.gate: nn.Module = nn.Identity()
        else:
            self.gate = nn.Conv2d(in_channels, 2, 1)

    def forward(self, x):
        x_l, x_g = x if type(x) is tuple else (x, 0)
        out_xl, out_xg = 0, 0
        if self.gated:
            parts = [x_l]
            if torch.is_tensor(x_g):
                parts.append(x_g)
            gates = torch.sigmoid(self.gate(torch.cat(parts, dim=1)))
            g2l_gate, l2g_gate = gates.chunk(2, dim=1)
        else:
            g2l_gate, l2g_gate = 1, 1
        if self.ratio_gout != 1:
            out_xl = self.convl2l(x_l) + self.convg2l(x_g) * g2l_gate
        if self.ratio_gout != 0:
            out_xg = self.convl2g(x_l) * l2g_gate + self.convg2g(x_g)
        return out_xl, out_xg


class FFC_BN_ACT(nn.Module):  # noqa: N801 (LaMa's name, kept for the state-dict keys' sake)
    """An :class:`FFC` followed by a norm and an activation on each branch."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, ratio_gin: float, ratio_gout: float,
                 stride: int = 1, padding: int = 0, dilation: int = 1, groups: int = 1, bias: bool = False,
                 norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d,
                 activation_layer: Callable[..., nn.Module] = nn.Identity,
                 padding_type: str = "reflect", enable_lfu: bool = True, **kwargs: Any):
        super().__init__()
        self.ffc = FFC(in_channels, out_channels, kernel_size, ratio_gin, ratio_gout, stride, padding, dilation,
                       groups, bias, enable_lfu, padding_type=padding_type, **kwargs)
        lnorm = nn.Identity if ratio_gout == 1 else norm_layer
        gnorm = nn.Identity if ratio_gout == 0 else norm_layer
        global_channels = int(out_channels * ratio_gout)
        self.bn_l = lnorm(out_channels - global_channels)
        self.bn_g = gnorm(global_channels)
        lact = nn.Identity if ratio_gout == 1 else activation_layer
        gact = nn.Identity if ratio_gout == 0 else activation_layer
        self.act_l = lact(inplace=True)
        self.act_g = gact(inplace=True)

    def forward(self, x):
        x_l, x_g = self.ffc(x)
        x_l = self.act_l(self.bn_l(x_l))
        x_g = self.act_g(self.bn_g(x_g))
        return x_l, x_g


class FFCResnetBlock(nn.Module):
    """Two 3x3 :class:`FFC_BN_ACT` and an identity shortcut on both branches."""

    def __init__(self, dim: int, padding_type: str, norm_layer: Callable[..., nn.Module],
                 activation_layer: Callable[..., nn.Module] = nn.ReLU, dilation: int = 1,
                 spatial_transform_kwargs: Mapping[str, Any] | None = None, inline: bool = False,
                 **conv_kwargs: Any):
        super().__init__()
        if spatial_transform_kwargs is not None:
            _refuse("FFCResnetBlock", {"spatial_transform_kwargs": spatial_transform_kwargs})
        self.conv1 = FFC_BN_ACT(dim, dim, kernel_size=3, padding=dilation, dilation=dilation, norm_layer=norm_layer,
                                activation_layer=activation_layer, padding_type=padding_type, **conv_kwargs)
        self.conv2 = FFC_BN_ACT(dim, dim, kernel_size=3, padding=dilation, dilation=dilation, norm_layer=norm_layer,
                                activation_layer=activation_layer, padding_type=padding_type, **conv_kwargs)
        self.inline = inline

    def forward(self, x):
        if self.inline:
            g = self.conv1.ffc.global_in_num
            x_l, x_g = x[:, :-g], x[:, -g:]
        else:
            x_l, x_g = x if type(x) is tuple else (x, 0)
        id_l, id_g = x_l, x_g
        x_l, x_g = self.conv1((x_l, x_g))
        x_l, x_g = self.conv2((x_l, x_g))
        out = id_l + x_l, id_g + x_g
        if self.inline:
            return torch.cat(out, dim=1)
        return out


class ConcatTupleLayer(nn.Module):
    """(local, global) -> one tensor (the local one alone when there is no global branch)."""

    def forward(self, x):
        if not isinstance(x, tuple):
            raise TypeError(f"ConcatTupleLayer expects a (local, global) tuple, got {type(x).__name__}")
        x_l, x_g = x
        if not (torch.is_tensor(x_l) or torch.is_tensor(x_g)):
            raise TypeError("ConcatTupleLayer got a tuple without tensors")
        if not torch.is_tensor(x_g):
            return x_l
        return torch.cat(x, dim=1)


_CONV_KWARG_KEYS = frozenset({"ratio_gin", "ratio_gout", "enable_lfu", "gated"})


def _conv_kwargs(what: str, kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    kwargs = dict(kwargs or {})
    _refuse(what, {k: v for k, v in kwargs.items() if k not in _CONV_KWARG_KEYS})
    return kwargs


class FFCResNetGenerator(nn.Module):
    """LaMa's generator; ``self.model`` is one ``nn.Sequential`` so the keys are LaMa's ``model.N...``.

    Keyword names are LaMa's. Options Big-LaMa / lama-fourier do not use (spatial transforms, an
    output FFC block, Fourier-unit extras) raise ``ValueError``.
    """

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, n_downsampling: int = 3, n_blocks: int = 9,
                 norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d, padding_type: str = "reflect",
                 activation_layer: Callable[..., nn.Module] = nn.ReLU,
                 up_norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d, up_activation: nn.Module | None = None,
                 init_conv_kwargs: Mapping[str, Any] | None = None,
                 downsample_conv_kwargs: Mapping[str, Any] | None = None,
                 resnet_conv_kwargs: Mapping[str, Any] | None = None,
                 spatial_transform_layers: Any = None, spatial_transform_kwargs: Mapping[str, Any] | None = None,
                 add_out_act: Any = True, max_features: int = 1024, out_ffc: bool = False,
                 out_ffc_kwargs: Mapping[str, Any] | None = None):
        super().__init__()
        if n_blocks < 0 or n_downsampling < 0:
            raise ValueError(f"n_blocks and n_downsampling must be >= 0, got {n_blocks}, {n_downsampling}")
        _refuse("FFCResNetGenerator", {k: v for k, v in {
            "spatial_transform_layers": spatial_transform_layers, "spatial_transform_kwargs": spatial_transform_kwargs,
            "out_ffc": out_ffc, "out_ffc_kwargs": out_ffc_kwargs}.items() if v})
        if padding_type not in ("reflect", "zeros", "replicate", "circular"):
            raise ValueError(f"padding_type must be a Conv2d padding_mode (reflect, ...), got {padding_type!r}")
        init_conv_kwargs = _conv_kwargs("init_conv_kwargs", init_conv_kwargs)
        downsample_conv_kwargs = _conv_kwargs("downsample_conv_kwargs", downsample_conv_kwargs)
        resnet_conv_kwargs = _conv_kwargs("resnet_conv_kwargs", resnet_conv_kwargs)
        if up_activation is None:
            up_activation = nn.ReLU(True)  # LaMa's default: one ReLU(True) instance, shared by every stage

        model: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            FFC_BN_ACT(input_nc, ngf, kernel_size=7, padding=0, norm_layer=norm_layer,
                       activation_layer=activation_layer, **init_conv_kwargs),
        ]
        # downsampling (LaMa does not pass padding_type here: the FFC default, reflect)
        for i in range(n_downsampling):
            mult = 2 ** i
            cur = dict(downsample_conv_kwargs)
            if i == n_downsampling - 1:
                cur["ratio_gout"] = resnet_conv_kwargs.get("ratio_gin", 0)
            model.append(FFC_BN_ACT(min(max_features, ngf * mult), min(max_features, ngf * mult * 2), kernel_size=3,
                                    stride=2, padding=1, norm_layer=norm_layer, activation_layer=activation_layer,
                                    **cur))
        feats = min(max_features, ngf * 2 ** n_downsampling)
        for _ in range(n_blocks):
            model.append(FFCResnetBlock(feats, padding_type=padding_type, activation_layer=activation_layer,
                                        norm_layer=norm_layer, **resnet_conv_kwargs))
        model.append(ConcatTupleLayer())
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            cout = min(max_features, int(ngf * mult / 2))
            model += [nn.ConvTranspose2d(min(max_features, ngf * mult), cout, kernel_size=3, stride=2, padding=1,
                                         output_padding=1),
                      up_norm_layer(cout),
                      up_activation]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0)]
        if add_out_act:
            model.append(_output_activation(add_out_act))
        self.model = nn.Sequential(*model)

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 (LaMa's name)
        return self.model(input)


# -- typed configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FFCConvConfig:
    """The ``*_conv_kwargs`` of LaMa's generator config (one group of FFC layers)."""

    ratio_gin: float = 0.0
    ratio_gout: float = 0.0
    enable_lfu: bool = False
    gated: bool = False

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ratio_gin": self.ratio_gin, "ratio_gout": self.ratio_gout,
                               "enable_lfu": self.enable_lfu}
        if self.gated:
            out["gated"] = True
        return out


@dataclass(frozen=True)
class GeneratorConfig:
    """LaMa's ``generator:`` config section; the defaults are ``ffc_resnet_075.yaml`` (lama-fourier).

    Field names are LaMa's YAML keys, so a LaMa ``generator`` section (minus ``kind``) is a valid
    :func:`config_from_dict` input once its ``${...}`` references are resolved.
    """

    input_nc: int = 4
    output_nc: int = 3
    ngf: int = 64
    n_downsampling: int = 3
    n_blocks: int = 9
    add_out_act: str | bool = "sigmoid"
    max_features: int = 1024
    padding_type: str = "reflect"
    init_conv_kwargs: FFCConvConfig = field(default_factory=FFCConvConfig)
    downsample_conv_kwargs: FFCConvConfig = field(default_factory=FFCConvConfig)
    resnet_conv_kwargs: FFCConvConfig = field(default_factory=lambda: FFCConvConfig(0.75, 0.75))

    def __post_init__(self) -> None:
        for name in ("input_nc", "output_nc", "ngf"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"GeneratorConfig.{name} must be a positive int, got {v!r}")
        for name in ("n_downsampling", "n_blocks"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"GeneratorConfig.{name} must be an int >= 0, got {v!r}")
        if self.add_out_act not in (True, False, "sigmoid", "tanh"):
            raise ValueError(f"GeneratorConfig.add_out_act must be 'sigmoid', 'tanh', True or False, "
                             f"got {self.add_out_act!r}")
        for name in ("init_conv_kwargs", "downsample_conv_kwargs", "resnet_conv_kwargs"):
            c = getattr(self, name)
            if not isinstance(c, FFCConvConfig):
                raise ValueError(f"GeneratorConfig.{name} must be an FFCConvConfig, got {type(c).__name__}")
            if not (0 <= c.ratio_gin <= 1 and 0 <= c.ratio_gout <= 1):
                raise ValueError(f"GeneratorConfig.{name}: ratios must be in [0, 1], got {c}")

    @property
    def downscale(self) -> int:
        """H and W must be multiples of this."""
        return 2 ** self.n_downsampling


GENERATOR_PRESETS: dict[str, GeneratorConfig] = {
    # configs/training/big-lama.yaml: ffc_resnet_075 with 18 blocks
    "big-lama": GeneratorConfig(n_blocks=18),
    # configs/training/lama-fourier.yaml -> generator/ffc_resnet_075.yaml
    "lama-fourier": GeneratorConfig(),
    # ours: trains on a 2-core CPU at 128x128 (widths 16/32/64/128, 32 local + 96 global at H/8)
    "small": GeneratorConfig(ngf=16, n_blocks=4),
}


def build_generator(cfg: GeneratorConfig | str) -> FFCResNetGenerator:
    """The generator for a config (or a preset name)."""
    if isinstance(cfg, str):
        if cfg not in GENERATOR_PRESETS:
            raise ValueError(f"unknown LaMa generator preset {cfg!r}; choose from {', '.join(GENERATOR_PRESETS)}")
        cfg = GENERATOR_PRESETS[cfg]
    if not isinstance(cfg, GeneratorConfig):
        raise TypeError(f"build_generator takes a GeneratorConfig or a preset name, got {type(cfg).__name__}")
    return FFCResNetGenerator(
        cfg.input_nc, cfg.output_nc, ngf=cfg.ngf, n_downsampling=cfg.n_downsampling, n_blocks=cfg.n_blocks,
        padding_type=cfg.padding_type, add_out_act=cfg.add_out_act, max_features=cfg.max_features,
        init_conv_kwargs=cfg.init_conv_kwargs.kwargs(), downsample_conv_kwargs=cfg.downsample_conv_kwargs.kwargs(),
        resnet_conv_kwargs=cfg.resnet_conv_kwargs.kwargs(),
    )


def config_to_dict(cfg: GeneratorConfig) -> dict[str, Any]:
    """Plain JSON values (nested dicts for the ``*_conv_kwargs``)."""
    return dataclasses.asdict(cfg)


_NESTED = {f.name for f in dataclasses.fields(GeneratorConfig)} - {
    "input_nc", "output_nc", "ngf", "n_downsampling", "n_blocks", "add_out_act", "max_features", "padding_type"}


def config_from_dict(data: Mapping[str, Any]) -> GeneratorConfig:
    """Inverse of :func:`config_to_dict`; missing keys take the defaults, unknown keys raise ValueError."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a LaMa generator config must be a mapping, got {type(data).__name__}")
    fields = {f.name for f in dataclasses.fields(GeneratorConfig)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"unknown LaMa generator config key(s) {', '.join(map(str, unknown))}; "
                         f"known: {', '.join(sorted(fields))}")
    kwargs: dict[str, Any] = {}
    conv_fields = {f.name for f in dataclasses.fields(FFCConvConfig)}
    for key, value in data.items():
        if key in _NESTED:
            if isinstance(value, FFCConvConfig):
                kwargs[key] = value
                continue
            if not isinstance(value, Mapping):
                raise ValueError(f"{key} must be a mapping of {', '.join(sorted(conv_fields))}, got {value!r}")
            bad = sorted(set(value) - conv_fields)
            if bad:
                raise ValueError(f"{key}: unsupported key(s) {', '.join(map(str, bad))} (supported: "
                                 f"{', '.join(sorted(conv_fields))})")
            conv = {k: (float(v) if k.startswith("ratio") else bool(v)) for k, v in value.items()}
            kwargs[key] = FFCConvConfig(**conv)
        else:
            kwargs[key] = value
    return GeneratorConfig(**kwargs)
