"""The networks Seamless Borders trains, as diffusers builds them: a VAE (``AutoencoderKL``) and a UNet.

Pretrained: a diffusers folder or hub id (SD-1.5's pipeline folder, whose ``vae/`` and ``unet/``
sub-folders are found, or a model folder itself). From scratch: the tiny configurations of the
notes' small-scale protocol (1.9), which train on a CPU. A trained network is exported as its state
dict plus its diffusers config (plain JSON values), rebuilt with ``from_config``: loading runs no code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from ...errors import InpaintlabError
from .names import VAE_METHOD

#: SD-1.5's pipeline on the hub (the paper's base model)
SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"


def tiny_vae_config(width: int = 32) -> dict[str, Any]:
    """The notes' small VAE (1.9): (w, 2w, 2w) channels, one layer per block, 4 latent channels, factor 4."""
    return {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 1,
            "block_out_channels": [width, 2 * width, 2 * width], "norm_num_groups": min(16, width),
            "down_block_types": ["DownEncoderBlock2D"] * 3, "up_block_types": ["UpDecoderBlock2D"] * 3}


def tiny_unet_config(width: int = 32, in_channels: int = 4, cross_attention_dim: int = 32) -> dict[str, Any]:
    """The notes' small denoiser (1.9): (w, 2w) channels, one layer per block, one cross-attention level."""
    return {"sample_size": 8, "in_channels": in_channels, "out_channels": 4, "layers_per_block": 1,
            "block_out_channels": [width, 2 * width], "norm_num_groups": min(32, width),
            "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
            "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"], "cross_attention_dim": cross_attention_dim,
            "attention_head_dim": 8}


def plain_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A diffusers config as JSON values, without the private keys (``_class_name``, ``_diffusers_version``)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(config).items() if not k.startswith("_")}


def _folder(path: str, sub: str) -> tuple[str, str | None]:
    """(path, subfolder): a pipeline folder's ``sub/``, or a model folder itself, or a hub id (with ``sub``)."""
    p = Path(path).expanduser()
    if p.is_dir():
        if (p / sub / "config.json").is_file():
            return str(p), sub
        if (p / "config.json").is_file():
            return str(p), None
        raise InpaintlabError(f"{path} holds neither {sub}/config.json nor config.json: give a diffusers pipeline "
                              f"folder (e.g. SD-1.5's) or a {sub} folder written by save_pretrained")
    return path, sub


def load_pretrained(kind: str, path: str, local_files_only: bool | None = None):
    """A diffusers ``AutoencoderKL`` (kind ``vae``) or ``UNet2DConditionModel`` (``unet``) from a folder or hub id.

    A hub id follows :func:`inpaintlab.hub.from_cache_or_hub` (the cache first, then the hub when
    allowed and reachable); anything missing is one :class:`MissingWeightsError` line.
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from ... import hub
    from ...errors import MissingWeightsError
    from ...inpainters.diffusion import missing_model_message, quiet_diffusers

    cls = AutoencoderKL if kind == "vae" else UNet2DConditionModel
    where, sub = _folder(path, kind)
    local = Path(where).expanduser().is_dir()
    try:
        with quiet_diffusers():
            if local:
                return cls.from_pretrained(where, subfolder=sub, local_files_only=True)
            return hub.from_cache_or_hub(lambda only: cls.from_pretrained(where, subfolder=sub, local_files_only=only),
                                         local_files_only=local_files_only)
    except hub.HubUnavailable as e:
        raise MissingWeightsError(missing_model_message(path, e.why)) from None
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise MissingWeightsError(f"cannot load the {kind} from {path}: {first}") from None


def build_vae(config: Mapping[str, Any]):
    """An ``AutoencoderKL`` from a (plain) config."""
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_config(dict(config))


def build_unet(config: Mapping[str, Any]):
    """A ``UNet2DConditionModel`` from a (plain) config."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_config(dict(config))


def load_state(net: torch.nn.Module, state: Mapping[str, torch.Tensor], what: str) -> torch.nn.Module:
    """``net`` with ``state`` loaded strictly, or one line saying what does not fit."""
    from ...weights import state_dict_problems

    problems = state_dict_problems({k: tuple(v.shape) for k, v in net.state_dict().items()}, state)
    if problems:
        raise InpaintlabError(f"the {what} weights do not fit its config: {'; '.join(problems)}")
    net.load_state_dict(dict(state), strict=True)
    return net


def frozen(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` with ``requires_grad`` off, in eval mode."""
    module.requires_grad_(False)
    return module.eval()


def load_vae_run(path: str):
    """The VAE of a ``seamless-vae`` run or export: (AutoencoderKL, meta, state)."""
    from ...train.export import read_trained_as

    meta, state = read_trained_as(path, VAE_METHOD, flag="--vae")
    return load_state(build_vae(meta["generator"]["vae"]), state, "VAE"), meta, state


class PromptEncoder:
    """SD-1.5's CLIP tokenizer and text encoder from a pipeline folder (frozen), prompts -> (N, 77, 768)."""

    def __init__(self, pretrained: str):
        from transformers import CLIPTextModel, CLIPTokenizer

        from ...inpainters.diffusion import quiet_diffusers
        
        where, _ = _folder(pretrained, "text_encoder")
        try:
            with quiet_diffusers():
                self.tokenizer = CLIPTokenizer.from_pretrained(where, subfolder="tokenizer")
                self.encoder = frozen(CLIPTextModel.from_pretrained(where, subfolder="text_encoder"))
        except (OSError, ValueError) as e:
            raise InpaintlabError(f"cannot load the text encoder from {pretrained}: {str(e).splitlines()[0][:200]}"
                                  ) from None

    def to(self, device) -> "PromptEncoder":
        self.encoder.to(device)
        return self

    @torch.no_grad()
    def __call__(self, prompts: list[str]) -> torch.Tensor:
        ids = self.tokenizer(prompts, padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids
        return self.encoder(ids.to(self.encoder.device))[0]


__all__ = ["PromptEncoder", "frozen", "load_vae_run", "SD15", "tiny_vae_config", "tiny_unet_config", "plain_config", "load_pretrained", "build_vae",
           "build_unet", "load_state"]
