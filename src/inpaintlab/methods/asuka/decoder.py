"""ASUKA's mask-unmask consistent decoder (notes 2.2.3) on diffusers' ``AsymmetricAutoencoderKL``.

ASUKA (Wang, Cao, Fu, arXiv 2312.04831 v1) fine-tunes the decoder of Asymmetric VQGAN (Zhu et al.;
diffusers ``AsymmetricAutoencoderKL`` / ``MaskConditionDecoder``): a condition encoder reads the
masked image and, before every up block and once more after the last one, its features replace the
decoder's features outside the hole (``sample * mask + cond * (1 - mask)``, mask 1 = hole). ASUKA
changes two things, both here:

1. **the mask is an input** [P "we concatenate the 0-1 mask as the extra input"; C
   ``Conditionencoder(concat_mask=True)``]: the condition encoder's first conv reads
   ``[masked_image, hole]`` (4 channels; the mask last, as the official ``torch.cat([x, mask])``).
   diffusers' ``MaskConditionEncoder.forward(x, mask)`` ignores ``mask``; :class:`MaskConcatConditionEncoder`
   does not. Pretrained weights load with the new input channel zero (:func:`from_asymmetric`), so the
   model starts exactly at the pretrained one.
2. **the mask reaches the decoder's scales by "any pixel"** [C ``F.interpolate(mask, mode='area')``
   then ``mask_[mask_ > 0] = 1``]: a cell is hole if any of its pixels is (= max-pool for integer
   factors, = ``inpainters.blended.latent_hole`` for binary holes). diffusers samples the mask
   ``nearest``, which misses holes that do not cover a cell's top-left pixel. ``downsample="any"`` is
   the default; ``"nearest"`` reproduces diffusers exactly (the regression test's mode).

Also here: loading (:func:`load_asymmetric` for the hub's ``cross-attention/asymmetric-autoencoder-kl-x-1-5``
/ ``-x-2`` or a ``save_pretrained`` folder, :func:`from_asymmetric` to pad it; :func:`from_kl` to build
the small-scale decoder from a KL VAE), the plain-JSON config round trip (:func:`decoder_config`,
:func:`build_asuka_decoder`), the training freeze (:func:`encoder_frozen`) and ASUKA's latent
augmentation (Eq. 1; :func:`one_step_estimate`, :func:`latent_augmentation`).

Defaults: ``downsample="any"`` (official code), zero-initialised mask channel (notes 2.2.3), the x-1-5
decoder (notes 2.6 #5), latent augmentation with p = 0.5 [P] and t ~ U{0..999} ([?] stripped -> [D]).
Conventions: images float [0, 1] NCHW in :meth:`AsukaDecoder.decode_hole` (the model works in
[-1, 1] inside and returns [-1, 1]), hole (N, 1, H, W) with 1 = hole, every random draw from an
explicit ``torch.Generator`` (one per sample where the batch must not matter).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from diffusers import AsymmetricAutoencoderKL, AutoencoderKL
from diffusers.configuration_utils import register_to_config
from diffusers.models.autoencoders.vae import MaskConditionDecoder, MaskConditionEncoder
from torch import nn

from ... import hub
from ...errors import BadMaskError, InpaintlabError, MissingWeightsError
from ...inpainters.base import per_sample_generators
from ..seamless.models import frozen, load_state, plain_config

__all__ = [
    "ASYM_HUB", "ASYM_HUB_X2", "DOWNSAMPLE_MODES", "CONDITION_WEIGHT", "downsample_hole",
    "MaskConcatConditionEncoder", "MaskConcatConditionDecoder", "AsukaDecoder",
    "decoder_config", "build_asuka_decoder", "load_asymmetric", "from_asymmetric", "from_kl", "encoder_frozen",
    "one_step_estimate", "LatentAugmentation", "latent_augmentation",
]

#: Asymmetric VQGAN's x1.5 decoder for SD-1.5 on the hub (ASUKA's base, notes 2.6 #5)
ASYM_HUB = "cross-attention/asymmetric-autoencoder-kl-x-1-5"
#: the x2 decoder (the larger option)
ASYM_HUB_X2 = "cross-attention/asymmetric-autoencoder-kl-x-2"
#: how the hole reaches the decoder's scales: ASUKA's any-pixel rule, or diffusers' nearest sampling
DOWNSAMPLE_MODES = ("any", "nearest")
#: the state-dict key of the condition encoder's first conv, the one weight that gains the mask channel
CONDITION_WEIGHT = "decoder.condition_encoder.layers.0.weight"


# the mask on the decoder's grid ----------------------------------------------------------------------

def downsample_hole(mask: torch.Tensor, size: Sequence[int], mode: str = "any") -> torch.Tensor:
    """The (N,1,H,W) mask at ``size``: ``any`` = area > 0 ([C] ASUKA, max-pool), ``nearest`` = diffusers' sampling."""
    size = tuple(int(s) for s in size)
    if mode == "nearest":
        return F.interpolate(mask, size=size, mode="nearest")
    if mode == "any":
        # the official rule, area resize then > 0: for integer factors the max-pool of a {0,1} mask, and
        # defined for any size; a cell keeps 0 only if none of its pixels is hole
        return (F.interpolate(mask, size=size, mode="area") > 0).to(mask.dtype)
    raise InpaintlabError(f"unknown mask downsampling {mode!r}; choose one of {', '.join(DOWNSAMPLE_MODES)}")


# the two modules -------------------------------------------------------------------------------------

class MaskConcatConditionEncoder(MaskConditionEncoder):
    """diffusers' condition encoder whose first conv reads ``[masked_image, mask]`` (ASUKA change 1, notes 2.2.3).

    Every layer but the first is diffusers' ``MaskConditionEncoder(in_ch, out_ch, res_ch, stride)``
    unchanged, so its weights load as they are and the first conv's with one zero input channel
    appended (channel ``in_ch``, the mask). ``stride`` is the coarsest feature scale times 2: layers 0-1
    keep the resolution, each further layer halves it (``log2(stride)`` of them).
    """

    def __init__(self, in_ch: int, out_ch: int = 192, res_ch: int = 768, stride: int = 16) -> None:
        super().__init__(in_ch + 1, out_ch=out_ch, res_ch=res_ch, stride=stride)
        self.image_channels = in_ch

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Features keyed by shape, as diffusers', of the masked image with the mask appended ([C] ``torch.cat([x, mask])``)."""
        if mask is None:
            raise InpaintlabError("the ASUKA condition encoder needs the mask (its 4th input channel)")
        return super().forward(torch.cat([x, mask.to(x.dtype)], dim=1))


class MaskConcatConditionDecoder(MaskConditionDecoder):
    """diffusers' ``MaskConditionDecoder`` with the mask-concat condition encoder and a choice of mask downsampling (notes 2.2.3).

    ``forward`` is diffusers' (0.42) with two lines changed: the mask reaches each scale through
    :func:`downsample_hole` (``downsample``), and the condition encoder gets the mask. With
    ``downsample="nearest"`` and a zero mask channel it computes what diffusers computes.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3,
                 up_block_types: tuple[str, ...] = ("UpDecoderBlock2D",), block_out_channels: tuple[int, ...] = (64,),
                 layers_per_block: int = 2, norm_num_groups: int = 32, act_fn: str = "silu",
                 downsample: str = "any", condition_stride: int = 16) -> None:
        super().__init__(in_channels=in_channels, out_channels=out_channels, up_block_types=up_block_types,
                         block_out_channels=block_out_channels, layers_per_block=layers_per_block,
                         norm_num_groups=norm_num_groups, act_fn=act_fn)
        self.downsample = downsample
        # same arguments as diffusers' (its stride is fixed at 16; a configurable one lets a factor-4 decoder
        # skip a condition layer it would never use)
        self.condition_encoder = MaskConcatConditionEncoder(in_ch=out_channels, out_ch=block_out_channels[0],
                                                            res_ch=block_out_channels[-1], stride=condition_stride)

    def _run(self, module: nn.Module, *args: Any) -> Any:
        """``module(*args)``, through gradient checkpointing when it is on and gradients are recorded (as diffusers)."""
        if torch.is_grad_enabled() and self.gradient_checkpointing:
            return self._gradient_checkpointing_func(module, *args)
        return module(*args)

    @staticmethod
    def _features(cond: Mapping[str, torch.Tensor], sample: torch.Tensor) -> torch.Tensor:
        """The condition feature map of ``sample``'s shape, or one line saying the shapes do not fit."""
        key = str(tuple(sample.shape))
        if key not in cond:
            raise InpaintlabError(f"the condition encoder has no feature map of shape {key} (it has "
                                  f"{', '.join(cond)}): the image is not the latent's size times the decoder's "
                                  f"factor, or the config's widths do not fit its condition encoder")
        return cond[key]

    def forward(self, z: torch.Tensor, image: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                latent_embeds: torch.Tensor | None = None) -> torch.Tensor:
        """Decode ``z`` (after ``post_quant_conv``) conditioned on ``image`` in [-1, 1] and ``mask`` (1 = hole): notes 2.2.3."""
        sample = self.conv_in(z)
        upscale_dtype = next(iter(self.up_blocks.parameters())).dtype
        sample = self._run(self.mid_block, sample, latent_embeds).to(upscale_dtype)
        conditioned = image is not None and mask is not None
        if conditioned:
            masked_image = (1 - mask) * image  # the decoder masks the image itself (hole pixels -> 0 = grey)
            cond = self._run(self.condition_encoder, masked_image, mask)
        for up_block in self.up_blocks:
            if conditioned:
                mask_ = downsample_hole(mask, sample.shape[-2:], self.downsample)
                sample = sample * mask_ + self._features(cond, sample) * (1 - mask_)
            sample = self._run(up_block, sample, latent_embeds)
        if conditioned:
            sample = sample * mask + self._features(cond, sample) * (1 - mask)
        sample = self.conv_norm_out(sample) if latent_embeds is None else self.conv_norm_out(sample, latent_embeds)
        return self.conv_out(self.conv_act(sample))


def _feature_scales(encoder: MaskConditionEncoder) -> set[tuple[int, int]]:
    """(channels, downscale) of every condition feature map: layers 0-1 keep the size, each later one halves it."""
    return {(conv.out_channels, 2 ** max(0, i - 1)) for i, conv in enumerate(encoder.layers)}


def _needed_scales(block_out_channels: Sequence[int]) -> set[tuple[int, int]]:
    """(channels, downscale) the decoder blends at: before each up block and after the last one."""
    widths, n = list(reversed(block_out_channels)), len(block_out_channels)
    before = {(widths[max(0, i - 1)], 2 ** (n - 1 - i)) for i in range(n)}
    return before | {(block_out_channels[0], 1)}


class AsukaDecoder(AsymmetricAutoencoderKL):
    """``AsymmetricAutoencoderKL`` with ASUKA's decoder (notes 2.2.3): mask-concat condition encoder, any-pixel mask downsampling.

    The config is diffusers' plus ``downsample`` (``"any"`` | ``"nearest"``) and ``condition_stride``
    (diffusers fixes 16: features down to 1/8, what SD's factor-8 decoder needs; a factor-f decoder
    needs ``2 f``). Built from a plain config by :func:`build_asuka_decoder` (or ``from_config``),
    saved and reloaded with ``save_pretrained`` / ``from_pretrained``.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        down_block_types: tuple[str, ...] = ("DownEncoderBlock2D",),
        down_block_out_channels: tuple[int, ...] = (64,),
        layers_per_down_block: int = 1,
        up_block_types: tuple[str, ...] = ("UpDecoderBlock2D",),
        up_block_out_channels: tuple[int, ...] = (64,),
        layers_per_up_block: int = 1,
        act_fn: str = "silu",
        latent_channels: int = 4,
        norm_num_groups: int = 32,
        sample_size: int = 32,
        scaling_factor: float = 0.18215,
        downsample: str = "any",
        condition_stride: int = 16,
    ) -> None:
        if downsample not in DOWNSAMPLE_MODES:
            raise InpaintlabError(f"unknown mask downsampling {downsample!r}; choose one of {', '.join(DOWNSAMPLE_MODES)}")
        if condition_stride < 2 or condition_stride & (condition_stride - 1):
            raise InpaintlabError(f"condition_stride must be a power of two >= 2, got {condition_stride}")
        super().__init__(in_channels=in_channels, out_channels=out_channels, down_block_types=down_block_types,
                         down_block_out_channels=down_block_out_channels, layers_per_down_block=layers_per_down_block,
                         up_block_types=up_block_types, up_block_out_channels=up_block_out_channels,
                         layers_per_up_block=layers_per_up_block, act_fn=act_fn, latent_channels=latent_channels,
                         norm_num_groups=norm_num_groups, sample_size=sample_size, scaling_factor=scaling_factor)
        # the parent built diffusers' decoder; replace it by the same one with ASUKA's condition path
        # (a second construction, which costs nothing under from_pretrained's empty-weight loading)
        self.decoder = MaskConcatConditionDecoder(
            in_channels=latent_channels, out_channels=out_channels, up_block_types=up_block_types,
            block_out_channels=up_block_out_channels, layers_per_block=layers_per_up_block,
            norm_num_groups=norm_num_groups, act_fn=act_fn, downsample=downsample, condition_stride=condition_stride)
        missing = _needed_scales(up_block_out_channels) - _feature_scales(self.decoder.condition_encoder)
        if missing:
            raise InpaintlabError(f"the condition encoder (stride {condition_stride}) gives no feature map for "
                                  f"(channels, downscale) {sorted(missing)} that up_block_out_channels "
                                  f"{list(up_block_out_channels)} blends at")

    @property
    def factor(self) -> int:
        """Pixels per latent cell: ``2 ** (len(up_block_out_channels) - 1)``."""
        return 2 ** (len(self.config.up_block_out_channels) - 1)

    def decode_hole(self, z: torch.Tensor, images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """ASUKA's decoding (notes 2.2.4 step 4): unscaled latents ``z``, images in [0, 1], hole 1 = hole -> [-1, 1] images.

        ``z`` is what ``decode`` takes (the SD latent divided by ``scaling_factor``); the images are the
        originals (the decoder masks them itself), the hole is binarised at 0.5. The output is in the
        model's [-1, 1] space, not clamped: ``(x + 1) / 2`` for [0, 1].
        """
        n, _, h, w = z.shape
        size = (h * self.factor, w * self.factor)
        if images.ndim != 4 or images.shape[0] != n or images.shape[1] != self.config.in_channels \
                or tuple(images.shape[-2:]) != size:
            raise InpaintlabError(f"latents {tuple(z.shape)} decode to images ({n}, {self.config.in_channels}, "
                                  f"{size[0]}, {size[1]}); got images {tuple(images.shape)}")
        if hole.ndim != 4 or hole.shape[0] != n or hole.shape[1] != 1 or tuple(hole.shape[-2:]) != size:
            raise BadMaskError(f"the hole must be ({n}, 1, {size[0]}, {size[1]}) like the images, got {tuple(hole.shape)}")
        mask = (hole > 0.5).to(z.dtype)
        return self.decode(z, image=images.to(z.dtype) * 2 - 1, mask=mask).sample


# config round trip -----------------------------------------------------------------------------------

def _init_keys() -> list[str]:
    """The config keys :class:`AsukaDecoder` is built from (its ``__init__`` arguments)."""
    return [name for name in inspect.signature(AsukaDecoder.__init__).parameters if name != "self"]


#: keys diffusers' ``AsymmetricAutoencoderKL`` registers besides its arguments (derived, not read back)
_DERIVED_KEYS = ("block_out_channels", "force_upcast")


def decoder_config(model: AsymmetricAutoencoderKL) -> dict[str, Any]:
    """The plain-JSON config that rebuilds ``model``'s architecture (``downsample`` included), by :func:`build_asuka_decoder`."""
    config = plain_config(model.config)
    return {k: config[k] for k in _init_keys() if k in config}


def build_asuka_decoder(config: Mapping[str, Any]) -> AsukaDecoder:
    """An :class:`AsukaDecoder` from a plain config (:func:`decoder_config`'s, or a saved ``config.json``), freshly initialised."""
    config = plain_config(config)  # drops _class_name and the other private keys of a saved config
    unknown = sorted(set(config) - set(_init_keys()) - set(_DERIVED_KEYS))
    if unknown:
        raise InpaintlabError(f"unknown ASUKA decoder config keys: {', '.join(unknown)}")
    return AsukaDecoder(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in config.items() if k in _init_keys()})


# loading ---------------------------------------------------------------------------------------------

def load_asymmetric(path_or_hub_id: str = ASYM_HUB, local_files_only: bool | None = None) -> AsymmetricAutoencoderKL:
    """A pretrained diffusers ``AsymmetricAutoencoderKL`` from a ``save_pretrained`` folder or a hub id (default x-1-5).

    A hub id follows :func:`inpaintlab.hub.from_cache_or_hub` (the cache first, then the hub when
    allowed and reachable); anything missing is one :class:`MissingWeightsError` line.
    """
    from ...inpainters.diffusion import quiet_diffusers

    name = str(path_or_hub_id)
    local = hub.is_local_path(name)
    source = str(Path(name).expanduser()) if local else name
    if local and not (Path(source) / "config.json").is_file():
        raise MissingWeightsError(f"asymmetric autoencoder folder {source} holds no config.json: give a folder "
                                  f"written by save_pretrained, or a hub id such as {ASYM_HUB}")

    def load(local_only: bool) -> AsymmetricAutoencoderKL:
        return AsymmetricAutoencoderKL.from_pretrained(source, local_files_only=local_only)

    try:
        with quiet_diffusers():
            return load(True) if local else hub.from_cache_or_hub(load, local_files_only=local_files_only)
    except hub.HubUnavailable as exc:
        raise MissingWeightsError(hub.not_cached_message("asymmetric autoencoder", name, exc)) from None
    except (OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise MissingWeightsError(f"cannot load the asymmetric autoencoder from {name}: {reason}") from None


def _padded_state(state: Mapping[str, torch.Tensor], image_channels: int) -> dict[str, torch.Tensor]:
    """``state`` with the condition encoder's first conv given a zero mask input channel (notes 2.2.3), if it has none yet."""
    state = dict(state)
    weight = state[CONDITION_WEIGHT]
    if weight.shape[1] == image_channels:
        # zero: the mask cannot change anything until training moves it, so the model starts at the pretrained one
        state[CONDITION_WEIGHT] = torch.cat([weight, weight.new_zeros(weight.shape[0], 1, *weight.shape[2:])], dim=1)
    return state


def from_asymmetric(model: AsymmetricAutoencoderKL, downsample: str = "any") -> AsukaDecoder:
    """ASUKA's decoder from a diffusers ``AsymmetricAutoencoderKL``: every weight copied, the mask channel zero (notes 2.2.3)."""
    config = decoder_config(model)
    config["downsample"] = downsample
    config.setdefault("condition_stride", 16)  # diffusers' MaskConditionDecoder always builds stride 16
    net = build_asuka_decoder(config)
    load_state(net, _padded_state(model.state_dict(), model.config.out_channels), "ASUKA decoder")
    return _placed_like(net, model)


def _placed_like(net: nn.Module, source: nn.Module) -> nn.Module:
    """``net`` on ``source``'s device and dtype, in its train/eval mode."""
    from ...inpainters.diffusion import quiet_diffusers

    param = next(source.parameters())
    net = net.to(param.device)
    if param.dtype != torch.float32:
        with quiet_diffusers():  # diffusers warns about casting a model with .to(dtype); the source was cast already
            net = net.to(param.dtype)
    return net.train(source.training)


def _reset_conv(conv: nn.Conv2d, generator: torch.Generator) -> None:
    """PyTorch's default ``Conv2d`` initialisation (Kaiming-uniform a = sqrt 5, bias U(+-1/sqrt fan_in)) drawn from ``generator``."""
    nn.init.kaiming_uniform_(conv.weight, a=math.sqrt(5), generator=generator)
    if conv.bias is not None:
        bound = 1.0 / math.sqrt(conv.weight[0].numel())
        nn.init.uniform_(conv.bias, -bound, bound, generator=generator)


def from_kl(vae: AutoencoderKL, downsample: str = "any", generator: torch.Generator | None = None) -> AsukaDecoder:
    """ASUKA's decoder for a KL VAE (notes 2.8 #4): the VAE's encoder, quant convs and decoder, a new condition encoder.

    The decoder has the KL decoder's widths and depth (``up_block_out_channels = block_out_channels``,
    ``layers_per_up_block = layers_per_block``), so its conv_in, mid block, up blocks and output layers
    are the KL decoder's weights; ``condition_stride = 2 ** len(block_out_channels)`` (twice the VAE's
    factor: exactly the scales the decoder blends at; 16 for SD's VAE, as diffusers). The condition
    encoder gets PyTorch's default initialisation drawn from ``generator`` (seed 0 when None) and a
    zero mask channel. A VAE without quant convs gets identity ones (what skipping them computes).
    """
    c = vae.config
    if not c.get("mid_block_add_attention", True):
        raise InpaintlabError("the asymmetric decoder's mid block has attention; this KL VAE's has none")
    if any(t != "UpDecoderBlock2D" for t in c.up_block_types):
        raise InpaintlabError(f"the asymmetric decoder needs UpDecoderBlock2D up blocks, got {list(c.up_block_types)}")
    blocks = list(c.block_out_channels)
    net = build_asuka_decoder(dict(
        in_channels=c.in_channels, out_channels=c.out_channels, down_block_types=list(c.down_block_types),
        down_block_out_channels=blocks, layers_per_down_block=c.layers_per_block,
        up_block_types=list(c.up_block_types), up_block_out_channels=blocks, layers_per_up_block=c.layers_per_block,
        act_fn=c.act_fn, latent_channels=c.latent_channels, norm_num_groups=c.norm_num_groups,
        sample_size=c.sample_size if isinstance(c.sample_size, int) else int(c.sample_size[0]),
        scaling_factor=float(c.scaling_factor), downsample=downsample, condition_stride=2 ** len(blocks)))
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    with torch.no_grad():
        for conv in net.decoder.condition_encoder.layers:
            _reset_conv(conv, generator)
        net.decoder.condition_encoder.layers[0].weight[:, c.out_channels:].zero_()
        for name in ("quant_conv", "post_quant_conv"):
            if getattr(vae, name, None) is None:  # use_quant_conv / use_post_quant_conv False: identity
                conv = getattr(net, name)
                conv.weight.copy_(torch.eye(conv.out_channels).view_as(conv.weight))
                conv.bias.zero_()
    state = net.state_dict()
    kl = vae.state_dict()
    foreign = sorted(set(kl) - set(state))
    if foreign:
        raise InpaintlabError(f"the KL VAE has weights the asymmetric decoder lacks: {', '.join(foreign[:4])}")
    return _placed_like(load_state(net, state | kl, "ASUKA decoder"), vae)


def encoder_frozen(model: AsymmetricAutoencoderKL, post_quant_conv: bool = True) -> AsymmetricAutoencoderKL:
    """Freeze the encoder side for decoder fine-tuning (notes 2.2.3 "encoder frozen"); the decoder, condition encoder included, trains.

    Asymmetric VQGAN's ``ldm/models/autoencoder_large.py::AutoencoderKL`` freezes ``encoder``,
    ``quant_conv`` *and* ``post_quant_conv`` and optimises ``decoder`` parameters only; ``post_quant_conv=False``
    leaves the latter trainable.
    """
    frozen(model.encoder)
    frozen(model.quant_conv)
    if post_quant_conv:
        frozen(model.post_quant_conv)
    model.decoder.requires_grad_(True)
    return model


# latent augmentation (ASUKA Eq. 1) -------------------------------------------------------------------

def _per_sample(values: torch.Tensor | int, n: int, device: torch.device) -> torch.Tensor:
    """A timestep (int or (N,) tensor) as an (N,) long tensor on ``device``."""
    t = torch.as_tensor(values, device=device).long()
    return t.expand(n) if t.ndim == 0 else t


def one_step_estimate(unet: nn.Module, z_t: torch.Tensor, t: torch.Tensor | int, z_known: torch.Tensor,
                      cond: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """ASUKA Eq. 1: ``(z_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``, eps from SD-inpainting on ``[z_t, 0 mask, z_known]``.

    The UNet input follows diffusers' SD-inpainting channel order ``[latents, mask, masked_image_latents]``
    with an all-zero mask (notes 2.2.3 step 3); ``t`` is an int or one timestep per sample; ``cond`` has
    N rows or one (shared); latents are scaled (``scaling_factor * E(x)``) as the UNet sees them.
    """
    n = z_t.shape[0]
    t = _per_sample(t, n, z_t.device)
    dtype = getattr(unet, "dtype", z_t.dtype)
    if cond.shape[0] == 1 and n > 1:  # one condition for all (e.g. the empty prompt)
        cond = cond.expand(n, *cond.shape[1:])
    mask = z_t.new_zeros(n, 1, *z_t.shape[-2:])
    x = torch.cat([z_t, mask, z_known.to(z_t.dtype)], dim=1).to(dtype)
    eps = unet(x, t, encoder_hidden_states=cond.to(dtype)).sample.to(z_t.dtype)
    abar = alphas_cumprod.to(device=z_t.device, dtype=z_t.dtype)[t].view(n, 1, 1, 1)
    return (z_t - (1 - abar) ** 0.5 * eps) / abar ** 0.5


@dataclass
class LatentAugmentation:
    """What :func:`latent_augmentation` returns: the latents, which samples were replaced and at which timestep."""

    latents: torch.Tensor  # (N,C,h,w) one-step estimates where applied, the input latents elsewhere
    applied: torch.Tensor  # (N,) bool
    t: torch.Tensor  # (N,) long: the timestep of applied samples, -1 elsewhere


@torch.no_grad()
def latent_augmentation(unet: nn.Module, z: torch.Tensor, cond: torch.Tensor, alphas_cumprod: torch.Tensor,
                        generators: Sequence[torch.Generator] | torch.Generator | None, p: float = 0.5,
                        t_range: tuple[int, int] = (0, 999)) -> LatentAugmentation:
    """ASUKA's latent augmentation (notes 2.2.3 step 3): with probability ``p``, z <- Eq. 1 at a random t.

    Per sample ``i``, from generator ``i`` and always in this order: ``u ~ U[0, 1)``, ``t ~ U{t_lo..t_hi}``,
    ``eps ~ N(0, I)`` (shape of one latent). Samples with ``u < p`` get ``z_t = sqrt(abar_t) z + sqrt(1 - abar_t) eps``
    and :func:`one_step_estimate` with the clean ``z`` as the masked-image latent and a zero mask;
    the UNet runs on those samples only. ``z`` is the scaled latent; ``cond`` (N or 1, L, D) the
    UNet's ``encoder_hidden_states`` (ASUKA: the empty prompt, notes 2.2.3). One generator per
    sample makes a sample's result independent of its batch; a single generator is split by
    :func:`inpaintlab.inpainters.base.per_sample_generators`.
    """
    n = z.shape[0]
    t_lo, t_hi = (int(v) for v in t_range)
    if not 0 <= t_lo <= t_hi < len(alphas_cumprod):
        raise InpaintlabError(f"latent augmentation t_range {t_range} must satisfy 0 <= lo <= hi < {len(alphas_cumprod)}")
    if not 0.0 <= p <= 1.0:
        raise InpaintlabError(f"latent augmentation probability {p} is not in [0, 1]")
    gens = per_sample_generators(generators, n)
    applied, ts, noise = [], [], []
    for g in gens:
        applied.append(float(torch.rand((), generator=g, device=g.device)) < p)
        ts.append(int(torch.randint(t_lo, t_hi + 1, (), generator=g, device=g.device)))
        noise.append(torch.randn(z.shape[1:], generator=g, device=g.device, dtype=torch.float32))
    applied_t = torch.tensor(applied, device=z.device)
    t = torch.where(applied_t, torch.tensor(ts, device=z.device), torch.full((n,), -1, device=z.device))
    out = z.clone()
    idx = applied_t.nonzero().flatten()
    if len(idx):
        zi, ti = z[idx], t[idx]
        eps = torch.stack(noise).to(device=z.device, dtype=z.dtype)[idx]
        abar = alphas_cumprod.to(device=z.device, dtype=z.dtype)[ti].view(-1, 1, 1, 1)
        z_t = abar ** 0.5 * zi + (1 - abar) ** 0.5 * eps
        out[idx] = one_step_estimate(unet, z_t, ti, zi, cond[idx] if cond.shape[0] == n else cond, alphas_cumprod)
    return LatentAugmentation(latents=out, applied=applied_t, t=t)
