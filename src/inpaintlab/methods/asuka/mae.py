"""ASUKA's MAE prior (notes 2.2.1) on transformers' ``ViTMAEForPreTraining``.

The prior ``F`` is the MAE decoder's token sequence after block 6 of 8, before the final norm:
(N, 256, 512) for the ViT-B/16 MAE at 256x256. The encoder sees the visible tokens only (a token
touched by the hole is a hole token), the decoder gets the learned mask token at every hole token.

What transformers 5.x does not do for us (notes section 0, item 6), and this module does:

* **position tables**: a freshly built ``ViTMAEForPreTraining`` has all-zero encoder and decoder
  position tables, CLS token and mask token, and a reload at a new image size
  (``ignore_mismatched_sizes=True``) leaves the encoder table *uninitialised* (garbage, NaN seen)
  and the decoder table zero. Both tables are frozen, so :func:`write_position_embeddings` writes
  the original MAE's 2-D sin-cos table (:func:`mae_sincos`) after every build and load; nothing is
  ever interpolated (HF's decoder interpolation is 1-D and scrambles the grid).
* **the decoder is run by hand** (its ``forward`` returns logits only): :func:`decoder_tokens`,
  :func:`run_decoder`, :func:`decoder_head`; layer outputs are unwrapped when they are tuples (4.x).
* **the encoder is run by hand** too (:func:`embed_patches`, :func:`encode`), through an accessor
  for its layer list (5.x ``vit.layers``, 4.x ``vit.encoder.layer``).

Conventions: images float [0, 1] NCHW at the model's image size, ``hole`` (N, 1, H, W) with
1 = hole (binarised at 0.5); tokens in row-major patch order (HF's ``patchify`` order); every
random draw from an explicit ``torch.Generator`` (one, or one per sample).
"""

from __future__ import annotations

import inspect
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ... import hub
from ...hub import quiet_transformers
from ...errors import BadMaskError, InpaintlabError, MissingWeightsError

__all__ = [
    "MAE_HUB", "MAE_PRESETS", "FEATURE_LAYER", "IMAGENET_MEAN", "IMAGENET_STD",
    "POSITION_KEYS", "mae_config", "grid_size", "mae_sincos", "write_position_embeddings", "init_linear_and_norm", "init_mae_weights", "build_mae", "load_mae",
    "encoder_layers", "decoder_layers", "mae_input", "token_hole", "partial_tokens", "patchify", "unpatchify",
    "embed_patches", "encode", "decoder_tokens", "run_decoder", "decoder_head", "prior_features",
    "PartialTokenEmbed", "masking_fits", "adaptive_noise", "mask_from_noise", "irr_mask", "AdaptiveMasking",
    "adaptive_masking", "masked_mse", "finetune_loss",
]

#: the hub substitute for MAE-FAR's Places2 MAE (ImageNet, 224, with CLS token; notes 2.2.1)
MAE_HUB = "facebook/vit-mae-base"
#: ASUKA's prior: the decoder tokens after this many of the 8 decoder blocks ([C] ``decoder_layer=6``)
FEATURE_LAYER = 6
#: the MAE's input normalisation ([C] ``datas/misato_dataset.py::prepare_data``)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: ``ViTMAEConfig`` keyword sets: ASUKA's ViT-B/16 at 256 (notes 2.2.1) and the tests' tiny model (notes 2.5)
MAE_PRESETS: dict[str, dict[str, Any]] = {
    "vit-b16": dict(image_size=256, patch_size=16, num_channels=3, hidden_size=768, num_hidden_layers=12,
                    num_attention_heads=12, intermediate_size=3072, decoder_hidden_size=512,
                    decoder_num_hidden_layers=8, decoder_num_attention_heads=16, decoder_intermediate_size=2048,
                    mask_ratio=0.75, norm_pix_loss=False, layer_norm_eps=1e-6),
    "tiny": dict(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
                 num_attention_heads=4, intermediate_size=64, decoder_hidden_size=16, decoder_num_hidden_layers=8,
                 decoder_num_attention_heads=4, decoder_intermediate_size=32, mask_ratio=0.75,
                 norm_pix_loss=False, layer_norm_eps=1e-6),
}

# configuration, position tables, construction, loading ---------------------------------------------

def mae_config(preset: str = "vit-b16", **overrides: Any):
    """A ``ViTMAEConfig`` from :data:`MAE_PRESETS` (ViT-B/16, decoder 512 x 8 blocks x 16 heads, LN eps 1e-6) plus overrides."""
    from transformers import ViTMAEConfig

    if preset not in MAE_PRESETS:
        raise InpaintlabError(f"unknown MAE preset {preset!r}; choose one of {', '.join(MAE_PRESETS)}")
    return ViTMAEConfig(**(MAE_PRESETS[preset] | overrides))


def _side(value: Any, what: str) -> int:
    """One side length from a config entry that is an int or a square pair."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            raise InpaintlabError(f"the MAE needs a square {what}, got {value}")
        value = value[0]
    return int(value)


def grid_size(config) -> int:
    """Patches per side of a square MAE: ``image_size // patch_size`` (which must divide)."""
    size, patch = _side(config.image_size, "image_size"), _side(config.patch_size, "patch_size")
    if size % patch:
        raise InpaintlabError(f"MAE image_size {size} is not a multiple of its patch_size {patch}")
    return size // patch


def mae_sincos(dim: int, grid: int, cls: bool = True) -> torch.Tensor:
    """The original MAE's 2-D sin-cos table (facebookresearch/mae ``get_2d_sincos_pos_embed``): (grid^2 [+1], dim).

    Token ``k = row * grid + col``; the first half of the channels encodes the column, the second
    the row, each as ``[sin(pos w), cos(pos w)]`` with ``w_d = 10000^(-d / (dim/4))``; the CLS
    row (first, with ``cls``) is zeros. Computed in float64, returned as float32.
    """
    if dim % 4:
        raise ValueError(f"the sin-cos table needs a width divisible by 4, got {dim}")
    omega = 1.0 / 10000.0 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))
    rows, cols = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64),
                                indexing="ij")
    by_col, by_row = cols.reshape(-1, 1) * omega, rows.reshape(-1, 1) * omega
    table = torch.cat([by_col.sin(), by_col.cos(), by_row.sin(), by_row.cos()], dim=1)
    if cls:
        table = torch.cat([table.new_zeros(1, dim), table], dim=0)
    return table.float()


def _vit(model: nn.Module) -> nn.Module:
    """The encoder (``ViTMAEModel``) of a ``ViTMAEForPreTraining``, or the model itself."""
    return model.vit if hasattr(model, "vit") else model


def write_position_embeddings(model: nn.Module) -> nn.Module:
    """Write :func:`mae_sincos` into the encoder's ``position_embeddings`` and the decoder's ``decoder_pos_embed`` (notes 0.6 (a))."""
    grid = grid_size(model.config)
    tables = [_vit(model).embeddings.position_embeddings]
    if hasattr(model, "decoder"):
        tables.append(model.decoder.decoder_pos_embed)
    with torch.no_grad():
        for table in tables:
            if table.shape[1] != grid * grid + 1:
                raise InpaintlabError(f"an MAE position table has {table.shape[1]} rows, its {grid}x{grid} grid "
                                      f"needs {grid * grid + 1}")
            table.copy_(mae_sincos(table.shape[-1], grid).to(table)[None])
    return model


def init_linear_and_norm(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Every Linear Xavier-uniform with zero bias, every LayerNorm (1, 0), from ``generator`` (the original MAE's rule)."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight, generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.LayerNorm):
                m.weight.fill_(1.0)
                m.bias.zero_()
    return module


def init_mae_weights(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """The original MAE's initialisation (``models_mae.initialize_weights``) drawn from ``generator``.

    Linear layers and the patch projection (as a linear map) Xavier-uniform with zero bias,
    LayerNorms (1, 0), CLS and mask tokens N(0, 0.02) (transformers 5.24 leaves both at zero),
    and the sin-cos position tables.
    """
    std = float(getattr(model.config, "initializer_range", 0.02))
    init_linear_and_norm(model, generator)
    with torch.no_grad():
        embeddings = _vit(model).embeddings
        projection = embeddings.patch_embeddings.projection
        nn.init.xavier_uniform_(projection.weight.view(projection.weight.shape[0], -1), generator=generator)
        projection.bias.zero_()
        nn.init.normal_(embeddings.cls_token, std=std, generator=generator)
        if hasattr(model, "decoder"):
            nn.init.normal_(model.decoder.mask_token, std=std, generator=generator)
    return write_position_embeddings(model)


def build_mae(config, *, generator: torch.Generator) -> nn.Module:
    """A ``ViTMAEForPreTraining`` from ``config``, initialised by :func:`init_mae_weights` (from scratch), in eval mode."""
    from transformers import ViTMAEForPreTraining

    return init_mae_weights(ViTMAEForPreTraining(config), generator).eval()


#: the two keys :func:`load_mae` never takes from a checkpoint (recomputed for the target grid)
POSITION_KEYS = ("vit.embeddings.position_embeddings", "decoder.decoder_pos_embed")


def _loading_problems(info: dict) -> list[str]:
    """What a ``from_pretrained`` loading report says went wrong, the position tables excepted."""
    def named(key: Any) -> str:
        return str(key[0] if isinstance(key, (tuple, list)) else key)

    problems = []
    for kind in ("missing_keys", "mismatched_keys"):
        keys = sorted(k for k in map(named, info.get(kind) or ()) if k not in POSITION_KEYS)
        if keys:
            problems.append(f"{kind.replace('_', ' ')} {', '.join(keys[:4])}" + (" ..." if len(keys) > 4 else ""))
    errors = [str(e) for e in info.get("error_msgs") or ()]
    if errors:
        problems.append(" ".join(errors[0].split())[:160])
    return problems


def load_mae(
    path_or_hub_id: str = MAE_HUB,
    image_size: int = 256,
    *,
    local_files_only: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> nn.Module:
    """A pretrained ``ViTMAEForPreTraining`` at ``image_size``: checkpoint weights, recomputed sin-cos positions (notes 2.2.1).

    ``path_or_hub_id`` is a folder written by ``save_pretrained`` or a hub id (default
    ``facebook/vit-mae-base``, 224 px); a hub id follows :func:`inpaintlab.hub.from_cache_or_hub`
    (the cache first, then the hub when allowed and reachable). The position tables of the
    checkpoint are not used (its grid may differ); every other weight must load, and the CLS and
    mask tokens are the checkpoint's. A missing model is one :class:`MissingWeightsError` line.
    """
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    if int(image_size) <= 0:
        raise InpaintlabError(f"MAE image_size must be positive, got {image_size}")
    name = str(path_or_hub_id)
    local = hub.is_local_path(name)
    source = str(Path(name).expanduser()) if local else name
    if local and not (Path(source) / "config.json").is_file():
        raise MissingWeightsError(f"MAE folder {source} holds no config.json: give a folder written by "
                                  f"save_pretrained, or a hub id such as {MAE_HUB}")

    def load(local_only: bool):
        config = ViTMAEConfig.from_pretrained(source, local_files_only=local_only, cache_dir=cache_dir)
        config.image_size = int(image_size)
        grid_size(config)  # a patch size that does not divide the image size is the user's error, said now
        return ViTMAEForPreTraining.from_pretrained(
            source, config=config, ignore_mismatched_sizes=True, output_loading_info=True,
            local_files_only=local_only, cache_dir=cache_dir, dtype=torch.float32)

    try:
        with quiet_transformers():
            model, info = load(True) if local else hub.from_cache_or_hub(load, local_files_only=local_files_only)
    except hub.HubUnavailable as exc:
        raise MissingWeightsError(hub.not_cached_message("MAE model", name, exc, cache_dir)) from None
    except (OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise MissingWeightsError(f"cannot load the MAE from {name}: {reason}") from None
    problems = _loading_problems(info)
    if problems:
        raise InpaintlabError(f"{name} is not a complete ViTMAEForPreTraining checkpoint: {'; '.join(problems)}")
    return write_position_embeddings(model).eval()


# running the model by hand -------------------------------------------------------------------------

def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The encoder's blocks: ``vit.layers`` (transformers 5.x) or ``vit.encoder.layer`` (4.x)."""
    vit = _vit(model)
    return vit.layers if hasattr(vit, "layers") else vit.encoder.layer


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder's blocks (``decoder.decoder_layers`` in 4.x and 5.x)."""
    return model.decoder.decoder_layers


def _hidden(output: Any) -> torch.Tensor:
    """A layer's hidden states: the tensor itself (5.x) or the first item of a tuple (4.x)."""
    return output[0] if isinstance(output, (tuple, list)) else output


def _binary(hole: torch.Tensor) -> torch.Tensor:
    """The hole as float {0, 1} (1 where ``hole > 0.5``)."""
    return (hole > 0.5).float()


def mae_input(images: torch.Tensor, hole: torch.Tensor | None = None) -> torch.Tensor:
    """ImageNet-normalised images with hole pixels set to 0 after normalisation ([C] ``prepare_data``; notes 2.2.1)."""
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = (images - mean) / std
    return x if hole is None else x * (1.0 - _binary(hole).to(x))


def token_hole(hole: torch.Tensor, patch: int) -> torch.Tensor:
    """(N, L) bool: a patch touched by the hole is a hole token (max-pool; [C] ``area resize > 0``)."""
    return F.max_pool2d(_binary(hole), patch, patch).flatten(1) > 0


def partial_tokens(hole: torch.Tensor, patch: int) -> torch.Tensor:
    """(N, L) bool: tokens whose patch is partly hole (0 < hole share < 1; [C] ``partial_mask``)."""
    share = F.avg_pool2d(_binary(hole), patch, patch).flatten(1)
    return (share > 0) & (share < 1)


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, L, p*p*C) in transformers' ``ViTMAEForPreTraining.patchify`` layout (row-major tokens, channel last)."""
    n, c, h, w = images.shape
    x = images.reshape(n, c, h // patch, patch, w // patch, patch).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(n, (h // patch) * (w // patch), patch * patch * c)


def unpatchify(tokens: torch.Tensor, patch: int, size: tuple[int, int] | None = None, channels: int = 3) -> torch.Tensor:
    """The inverse of :func:`patchify`: (N, L, p*p*C) -> (N, C, H, W) (square unless ``size`` is given)."""
    n, length, _ = tokens.shape
    if size is None:
        side = math.isqrt(length)
        gh = gw = side
    else:
        gh, gw = size[0] // patch, size[1] // patch
    if gh * gw != length:
        raise InpaintlabError(f"{length} tokens do not fill a {gh}x{gw} patch grid")
    x = tokens.reshape(n, gh, gw, patch, patch, channels).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(n, channels, gh * patch, gw * patch)


def _check_images(model: nn.Module, images: torch.Tensor, hole: torch.Tensor | None = None) -> None:
    """Images (N, 3, S, S) at the model's image size and a hole (N, 1, S, S), or one clear error."""
    size = _side(model.config.image_size, "image_size")
    if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (size, size):
        raise InpaintlabError(f"the MAE takes images (N, 3, {size}, {size}), got {tuple(images.shape)}; "
                              f"resize to its image_size first")
    if hole is not None and (hole.ndim != 4 or hole.shape[1] != 1 or hole.shape[0] != images.shape[0]
                             or hole.shape[-2:] != images.shape[-2:]):
        raise BadMaskError(f"the hole must be (N, 1, {size}, {size}) like the images, got {tuple(hole.shape)}")


def embed_patches(model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """Patch embeddings plus the encoder's position table, without CLS: (N, L, D) (``ViTMAEEmbeddings.forward`` before masking)."""
    embeddings = _vit(model).embeddings
    return embeddings.patch_embeddings(pixel_values) + embeddings.position_embeddings[:, 1:]


def encode(model: nn.Module, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The encoder on (N, K, D) position-embedded tokens: CLS prepended, all blocks, final norm -> (N, 1+K, D)."""
    vit = _vit(model)
    embeddings = vit.embeddings
    cls = (embeddings.cls_token + embeddings.position_embeddings[:, :1]).expand(tokens.shape[0], -1, -1)
    hidden = torch.cat([cls, tokens], dim=1)
    for layer in encoder_layers(model):
        hidden = _hidden(layer(hidden) if attention_mask is None else layer(hidden, attention_mask))
    return vit.layernorm(hidden)


def decoder_tokens(model: nn.Module, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
    """``decoder_embed`` of the encoder output, mask tokens restored to their places by ``ids_restore``: (N, 1+L, d), no positions yet."""
    decoder = model.decoder
    hidden = decoder.decoder_embed(latent)
    n, length = ids_restore.shape
    masks = decoder.mask_token.to(hidden.dtype).expand(n, length + 1 - hidden.shape[1], -1)
    tokens = torch.cat([hidden[:, 1:], masks], dim=1)
    tokens = torch.gather(tokens, 1, ids_restore.unsqueeze(-1).expand(-1, -1, hidden.shape[2]))
    return torch.cat([hidden[:, :1], tokens], dim=1)


def run_decoder(model: nn.Module, hidden: torch.Tensor, blocks: int | None = None) -> torch.Tensor:
    """The first ``blocks`` decoder blocks (all by default) on position-embedded tokens (N, 1+L, d)."""
    layers = decoder_layers(model)
    for layer in layers if blocks is None else layers[:blocks]:
        hidden = _hidden(layer(hidden))
    return hidden


def decoder_head(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """``decoder_norm`` then ``decoder_pred``, CLS dropped: the pixel logits (N, L, p*p*3) of ``ViTMAEDecoder.forward``."""
    decoder = model.decoder
    return decoder.decoder_pred(decoder.decoder_norm(hidden))[:, 1:]


def _visible_first(hole_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids_shuffle, ids_restore) that put the visible tokens first, in their order (a stable sort)."""
    ids_shuffle = torch.argsort(hole_tokens.to(torch.uint8), dim=1, stable=True)
    return ids_shuffle, torch.argsort(ids_shuffle, dim=1)


def _decoder_input_drop(model: nn.Module, x: torch.Tensor, hole_tokens: torch.Tensor) -> torch.Tensor:
    """Decoder tokens with the encoder run on each sample's visible tokens only (samples with equal counts batched)."""
    tokens = embed_patches(model, x)
    ids_shuffle, ids_restore = _visible_first(hole_tokens)
    visible = (~hole_tokens).sum(dim=1)
    order, pieces = [], []
    for count in visible.unique().tolist():
        idx = (visible == count).nonzero()[:, 0]
        keep = ids_shuffle[idx, :count]
        kept = torch.gather(tokens[idx], 1, keep.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        pieces.append(decoder_tokens(model, encode(model, kept), ids_restore[idx]))
        order.append(idx)
    return torch.cat(pieces)[torch.argsort(torch.cat(order))]


def _decoder_input_attention(model: nn.Module, x: torch.Tensor, hole_tokens: torch.Tensor) -> torch.Tensor:
    """Decoder tokens with the encoder run on all tokens, hole-token keys masked out ([C] ``forward_encoder_with_mask``)."""
    layer = encoder_layers(model)[0]
    if "attention_mask" not in inspect.signature(layer.forward).parameters:
        raise InpaintlabError("encoder='attention' needs transformers >= 5 (its ViTMAELayer takes an attention "
                              "mask); use encoder='drop'")
    tokens = embed_patches(model, x)
    bias = torch.zeros(hole_tokens.shape[0], hole_tokens.shape[1] + 1, dtype=tokens.dtype, device=tokens.device)
    bias[:, 1:] = bias[:, 1:].masked_fill(hole_tokens, torch.finfo(tokens.dtype).min)
    hidden = model.decoder.decoder_embed(encode(model, tokens, bias[:, None, None, :]))
    mask = model.decoder.mask_token.to(hidden.dtype)
    return torch.cat([hidden[:, :1], torch.where(hole_tokens.unsqueeze(-1), mask, hidden[:, 1:])], dim=1)


def prior_features(
    model: nn.Module,
    images: torch.Tensor,
    hole: torch.Tensor,
    layer: int = FEATURE_LAYER,
    *,
    partial: "PartialTokenEmbed | None" = None,
    encoder: str = "drop",
) -> torch.Tensor:
    """ASUKA's MAE prior F: decoder tokens after block ``layer``, before the norm, CLS dropped: (N, L, d_dec) ([C] ``forward_return_feature``).

    Steps: (1) :func:`mae_input`; (2) the encoder over the visible tokens only -- ``encoder="drop"``
    runs it on each sample's visible tokens (exact by construction, any transformers version),
    ``"attention"`` on all tokens with hole-token keys masked (the official route, batched,
    transformers >= 5; equal for the visible tokens up to float rounding); (3) ``decoder_embed``,
    the mask token at every hole token; (4) optionally the partial-token embedding; (5) the
    decoder position table; (6) decoder blocks ``0 .. layer-1``.
    """
    _check_images(model, images, hole)
    n_blocks = len(decoder_layers(model))
    if not 0 <= layer <= n_blocks:
        raise InpaintlabError(f"layer must be in 0..{n_blocks} (the MAE decoder has {n_blocks} blocks), got {layer}")
    dtype = model.decoder.decoder_pos_embed.dtype
    x = mae_input(images, hole).to(dtype)
    holes = token_hole(hole, _side(model.config.patch_size, "patch_size"))
    if encoder == "drop":
        hidden = _decoder_input_drop(model, x, holes)
    elif encoder == "attention":
        hidden = _decoder_input_attention(model, x, holes)
    else:
        raise InpaintlabError(f"encoder must be 'drop' or 'attention', got {encoder!r}")
    if partial is not None:
        hidden = torch.cat([hidden[:, :1], partial(hidden[:, 1:], x, hole)], dim=1)
    hidden = run_decoder(model, hidden + model.decoder.decoder_pos_embed, layer)
    return hidden[:, 1:]


class PartialTokenEmbed(nn.Module):
    """The official fine-tuned MAE's partial-token embedding ([C] ``MaskedAutoencoderViTFinetune``): optional, a no-op at init.

    Tokens whose patch is partly hole become ``a * token + (1 - a) * E([x (1 - hole), hole])``,
    ``a = clamp(alpha, 0, 1)`` with ``alpha`` initialised to 1, ``E`` a patch-size, patch-stride
    convolution from the 3 image channels plus the hole to the decoder width. It is not part of
    ``ViTMAEForPreTraining``: save it next to the MAE (its state dict) when it is trained.
    """

    def __init__(self, patch_size: int, dim: int, channels: int = 3, *, generator: torch.Generator | None = None):
        super().__init__()
        self.patch_size = int(patch_size)
        self.proj = nn.Conv2d(channels + 1, dim, kernel_size=patch_size, stride=patch_size)
        self.alpha = nn.Parameter(torch.tensor(1.0))
        with torch.no_grad():
            self.proj.bias.zero_()
            if generator is None:  # to be loaded from a state dict
                self.proj.weight.zero_()
            else:  # as the official code: Xavier-uniform of the flattened kernel
                nn.init.xavier_uniform_(self.proj.weight.view(dim, -1), generator=generator)

    @classmethod
    def for_model(cls, model: nn.Module, *, generator: torch.Generator | None = None) -> "PartialTokenEmbed":
        """The embedding that fits ``model`` (its patch size, decoder width and channels)."""
        config = model.config
        return cls(_side(config.patch_size, "patch_size"), config.decoder_hidden_size, config.num_channels,
                   generator=generator)

    def forward(self, tokens: torch.Tensor, pixel_values: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """Blend the partial tokens of (N, L, d) ``tokens`` with the embedding of the normalised image outside ``hole``."""
        h = _binary(hole).to(pixel_values.dtype)
        embedded = self.proj(torch.cat([pixel_values * (1.0 - h), h], dim=1)).flatten(2).transpose(1, 2)
        a = self.alpha.clamp(0.0, 1.0)
        partial = partial_tokens(hole, self.patch_size).unsqueeze(-1)
        return torch.where(partial, a * tokens + (1.0 - a) * embedded, tokens)


# fine-tuning: adaptive masking and the masked MSE ------------------------------------------------

def _len_keep(length: int, ratio: float) -> int:
    """Tokens kept by masking ``ratio`` of ``length`` (transformers' and MAE's ``int(L * (1 - ratio))``)."""
    return int(length * (1 - ratio))


def masking_fits(hole_tokens: torch.Tensor, ratio: float = 0.75) -> torch.Tensor:
    """(N,) bool: the token hole fits in the removed share (at most ``L - int(L (1 - ratio))`` hole tokens); redraw the others."""
    length = hole_tokens.shape[1]
    return hole_tokens.sum(dim=1) <= length - _len_keep(length, ratio)


def _uniform(n: int, length: int, generator: torch.Generator | Sequence[torch.Generator]) -> torch.Tensor:
    """U[0, 1) of shape (n, length) from one generator, or row i from the i-th of n generators (batch-size independent)."""
    if isinstance(generator, torch.Generator):
        return torch.rand(n, length, generator=generator, device=generator.device)
    generators = list(generator)
    if len(generators) != n:
        raise InpaintlabError(f"{len(generators)} generators for {n} samples")
    return torch.stack([torch.rand(length, generator=g, device=g.device) for g in generators])


def adaptive_noise(hole_tokens: torch.Tensor, generator: torch.Generator | Sequence[torch.Generator], ratio: float = 0.75) -> torch.Tensor:
    """ASUKA's adaptive masking noise ``clamp(U[0,1) + token_hole, 0, 1)`` ([C] ``adaptive_random_masking``): pass as ``noise=``.

    The ``int(L (1 - ratio))`` tokens with the smallest noise are kept: visible tokens only, and all
    hole tokens are removed -- unless the hole has more tokens than the removed share, when ties at
    1 would keep hole tokens. Such masks are refused (:func:`masking_fits` finds them beforehand).
    """
    if hole_tokens.ndim != 2:
        raise BadMaskError(f"the token hole must be (N, L), got {tuple(hole_tokens.shape)}")
    fits = masking_fits(hole_tokens, ratio)
    if not bool(fits.all()):
        length = hole_tokens.shape[1]
        bad = (~fits).nonzero()[:, 0].tolist()
        counts = hole_tokens.sum(dim=1)[bad].tolist()
        raise BadMaskError(f"adaptive masking refuses sample(s) {bad[:8]}: their holes cover {counts[:8]} of {length} "
                           f"tokens, more than the {length - _len_keep(length, ratio)} a {ratio:g} masking ratio removes "
                           f"(hole tokens would be kept); redraw those masks")
    noise = _uniform(hole_tokens.shape[0], hole_tokens.shape[1], generator).to(hole_tokens.device)
    return torch.clamp(noise + hole_tokens.to(noise.dtype), 0.0, 1.0)


def mask_from_noise(noise: torch.Tensor, ratio: float = 0.75) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids_keep, ids_restore, removed) of MAE's ``random_masking``: keep the ``int(L (1 - ratio))`` smallest noises."""
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    keep = _len_keep(noise.shape[1], ratio)
    removed = torch.ones_like(noise, dtype=torch.bool)
    removed[:, :keep] = False
    return ids_shuffle[:, :keep], ids_restore, torch.gather(removed, 1, ids_restore)


def irr_mask(hole: torch.Tensor, removed: torch.Tensor, patch: int) -> torch.Tensor:
    """The fine-tuning hole (N, 1, H, W): hole pixels inside removed hole tokens plus whole extra removed patches ([C] ``irr_mask``)."""
    n, _, h, w = hole.shape
    holes = token_hole(hole, patch)

    def up(tokens: torch.Tensor) -> torch.Tensor:
        grid = tokens.reshape(n, 1, h // patch, w // patch).float()
        return grid.repeat_interleave(patch, dim=2).repeat_interleave(patch, dim=3)

    return _binary(hole) * up(removed & holes) + up(removed & ~holes)


@dataclass
class AdaptiveMasking:
    """One draw of ASUKA's adaptive masking: the ``noise`` for ``ViTMAEModel``, the ``removed`` tokens, and ``irr_mask``."""

    noise: torch.Tensor      # (N, L), float in [0, 1]
    removed: torch.Tensor    # (N, L) bool, transformers' ``mask`` (1 = removed)
    irr_mask: torch.Tensor   # (N, 1, H, W) float {0, 1}: the pixels the loss is taken over
    ratio: float


def adaptive_masking(hole: torch.Tensor, patch: int, generator: torch.Generator | Sequence[torch.Generator], ratio: float = 0.75) -> AdaptiveMasking:
    """ASUKA's fine-tuning masking (notes 2.2.1): every hole token removed, random visible ones until ``ratio`` are, and ``irr_mask``."""
    noise = adaptive_noise(token_hole(hole, patch), generator, ratio)
    _, _, removed = mask_from_noise(noise, ratio)
    return AdaptiveMasking(noise=noise, removed=removed, irr_mask=irr_mask(hole, removed, patch), ratio=ratio)


def masked_mse(pred_pixels: torch.Tensor, target_pixels: torch.Tensor, irr_mask: torch.Tensor) -> torch.Tensor:
    """MSE over the ``irr_mask`` pixels only: sum of squared errors there / number of masked pixel-channels ([C] ``forward_loss``)."""
    weight = irr_mask.to(pred_pixels.dtype).expand_as(pred_pixels)
    return ((pred_pixels - target_pixels) ** 2 * weight).sum() / weight.sum().clamp_min(1.0)


def finetune_loss(
    model: nn.Module,
    images: torch.Tensor,
    hole: torch.Tensor,
    generator: torch.Generator | Sequence[torch.Generator],
    *,
    partial: PartialTokenEmbed | None = None,
    ratio: float | None = None,
) -> tuple[torch.Tensor, AdaptiveMasking]:
    """ASUKA's MAE fine-tuning loss ([C] ``MaskedAutoencoderViTFinetune.forward``, ``norm_pix_loss=False``) and its masking.

    The normalised full image is both input and target (the removed tokens never reach the
    encoder; the partial-token embedding sees ``x (1 - irr_mask)`` only); ``ratio`` defaults to
    the model's ``mask_ratio``.
    """
    _check_images(model, images, hole)
    ratio = float(model.config.mask_ratio if ratio is None else ratio)
    patch = _side(model.config.patch_size, "patch_size")
    x = mae_input(images).to(model.decoder.decoder_pos_embed.dtype)
    masking = adaptive_masking(hole, patch, generator, ratio)
    ids_keep, ids_restore, _ = mask_from_noise(masking.noise, ratio)
    tokens = embed_patches(model, x)
    kept = torch.gather(tokens, 1, ids_keep.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
    hidden = decoder_tokens(model, encode(model, kept), ids_restore)
    if partial is not None:
        hidden = torch.cat([hidden[:, :1], partial(hidden[:, 1:], x, masking.irr_mask)], dim=1)
    hidden = run_decoder(model, hidden + model.decoder.decoder_pos_embed)
    pred = unpatchify(decoder_head(model, hidden), patch, tuple(x.shape[-2:]), x.shape[1])
    return masked_mse(pred, x, masking.irr_mask), masking
