"""CLIP image embeddings (Radford et al. 2021) for the MISATO builder, through ``transformers``.

``load_clip_vision(model)`` loads ``CLIPVisionModelWithProjection`` from a Hugging Face hub id
(the hub cache first, the network only when allowed and reachable: :mod:`inpaintlab.hub`) or
from a local folder written by ``save_pretrained``. The image preprocessing is ours, in torch,
so no image-processor code path (some of which want torchvision) is involved: it follows CLIP's
processor -- resize the short side to ``shortest_edge`` (bicubic, antialiased), centre crop
``crop_size``, normalise with CLIP's mean / std -- with the values read from the model's
``preprocessor_config.json`` when it has one, and CLIP's published defaults (short side and
crop = the model's ``image_size``) otherwise.

The default model is ``openai/clip-vit-large-patch14``: the ASUKA paper says "CLIP visual
model" without naming one, and ViT-L/14 is the CLIP image encoder most used in that line of work
(Stable Diffusion's own text encoder is its text half).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .. import hub
from ..errors import InpaintlabError, MissingWeightsError
from ..hub import hub_cache_dir, hub_offline  # their home is inpaintlab.hub; kept importable from here
from ..hub import quiet_transformers
from . import DEFAULT_CLIP

__all__ = ["DEFAULT_CLIP", "CLIP_MEAN", "CLIP_STD", "ClipVision", "load_clip_vision", "hub_cache_dir", "hub_offline"]

#: CLIP's normalisation constants (OpenAI's preprocessing; also transformers' OPENAI_CLIP_MEAN / _STD).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class ClipVision:
    """A loaded CLIP image encoder and its preprocessing; call it on images to get embeddings."""

    model: torch.nn.Module
    name: str
    shortest_edge: int
    crop: tuple[int, int]  # (height, width)
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    device: torch.device = torch.device("cpu")

    @property
    def dim(self) -> int:
        return int(self.model.config.projection_dim)

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """CLIP preprocessing of one ``(1, 3, H, W)`` image in [0, 1]: short side resize, centre crop, normalise."""
        h, w = image.shape[-2:]
        scale = self.shortest_edge / min(h, w)
        # Same rounding as transformers' get_resize_output_image_size (int of the scaled long side).
        size = (self.shortest_edge, int(w * scale)) if h <= w else (int(h * scale), self.shortest_edge)
        x = image.to(torch.float32)
        if (h, w) != size:
            x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
        ch, cw = self.crop
        top, left = max((size[0] - ch) // 2, 0), max((size[1] - cw) // 2, 0)
        x = x[..., top:top + ch, left:left + cw]
        if tuple(x.shape[-2:]) != (ch, cw):  # an image smaller than the crop: pad, as CLIP's processor does
            x = F.pad(x, (0, cw - x.shape[-1], 0, ch - x.shape[-2]))
        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(1, 3, 1, 1)
        return (x - mean) / std

    @torch.inference_mode()
    def __call__(self, images: Sequence[torch.Tensor]) -> np.ndarray:
        """``image_embeds`` (the projected pooled output) of a list of ``(1, 3, H, W)`` images: float32 ``(N, D)``."""
        if not images:
            return np.zeros((0, self.dim), np.float32)
        batch = torch.cat([self.preprocess(im) for im in images]).to(self.device)
        out = self.model(pixel_values=batch).image_embeds
        return out.detach().to("cpu", torch.float32).numpy()


def _read_preprocessor(model: str, local_files_only: bool, cache_dir: str | os.PathLike | None) -> dict:
    """The model's ``preprocessor_config.json`` as a dict, or {} when it has none."""
    from transformers.utils import cached_file

    try:
        path = cached_file(model, "preprocessor_config.json", local_files_only=local_files_only,
                           cache_dir=cache_dir, _raise_exceptions_for_missing_entries=False,
                           _raise_exceptions_for_connection_errors=False)
    except (OSError, ValueError):
        return {}
    if not path:
        return {}
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InpaintlabError(f"cannot read {path} of CLIP model {model}: {exc}") from None


def _edge(value: object, default: int) -> int:
    """A processor 'size' entry (int, or dict with shortest_edge / height) to one side length."""
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        for key in ("shortest_edge", "height"):
            if isinstance(value.get(key), int):
                return value[key]
    return default


def _crop(value: object, default: int) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if isinstance(value, dict) and isinstance(value.get("height"), int) and isinstance(value.get("width"), int):
        return value["height"], value["width"]
    return default, default


OFFLINE = "offline mode is on (HF_HUB_OFFLINE=1 or local_files_only)"


def _missing_model_message(model: str, why: str, cache: Path) -> str:
    """One line: the model, the cache it is not in, why it was not downloaded, and what to do."""
    return (f"CLIP model {model!r} is not in the Hugging Face cache {cache} and {why}; run once with network "
            f"access to download it into that cache, or pass a local folder saved with save_pretrained (--clip DIR)")


def load_clip_vision(
    model: str = DEFAULT_CLIP,
    *,
    device: str | torch.device = "cpu",
    local_files_only: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> ClipVision:
    """Load a CLIP image encoder (``CLIPVisionModelWithProjection``) from a hub id or a local folder.

    A hub id follows :func:`inpaintlab.hub.from_cache_or_hub`: the cache first; then a download
    unless the hub is switched off (``local_files_only=True``, or ``None`` with ``HF_HUB_OFFLINE``)
    or unreachable. A missing model is one ``MissingWeightsError`` line naming the model and the
    cache folder.
    """
    from transformers import CLIPVisionModelWithProjection

    def load(source: str, local_only: bool):
        return CLIPVisionModelWithProjection.from_pretrained(
            source, local_files_only=local_only, cache_dir=cache_dir, dtype=torch.float32)

    local = Path(model).expanduser()
    is_path = local.exists() or model.startswith((".", "/", "~")) or os.sep in model.strip("/").split("/", 1)[-1]
    if is_path and not local.is_dir():
        raise MissingWeightsError(f"CLIP model folder {local} does not exist (give a folder saved with "
                                  f"save_pretrained, or a hub id such as {DEFAULT_CLIP})")
    source = str(local) if is_path else model
    try:
        with quiet_transformers():
            if is_path:  # a folder: never the network
                net = load(source, True)
            else:
                net = hub.from_cache_or_hub(lambda local_only: load(source, local_only), local_files_only=local_files_only)
    except hub.HubUnavailable as exc:
        why = OFFLINE if exc.switched_off else exc.why
        raise MissingWeightsError(_missing_model_message(model, why, hub_cache_dir(cache_dir))) from None
    except (OSError, ValueError, EnvironmentError) as exc:
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        if is_path:
            raise MissingWeightsError(f"CLIP model folder {local} holds no loadable CLIP vision model "
                                      f"(config.json + weights): {reason}") from None
        raise MissingWeightsError(_missing_model_message(model, f"the download failed: {reason}",
                                                         hub_cache_dir(cache_dir))) from None
    net.eval().to(device)
    image_size = int(net.config.image_size)
    # The preprocessing config by the same rule: the cache (or the folder), then the hub when allowed.
    pre = _read_preprocessor(source, True, cache_dir)
    if not pre and not is_path and hub.network_allowed(local_files_only):
        pre = _read_preprocessor(source, False, cache_dir)
    mean = tuple(float(v) for v in pre.get("image_mean", CLIP_MEAN))
    std = tuple(float(v) for v in pre.get("image_std", CLIP_STD))
    if len(mean) != 3 or len(std) != 3:
        raise InpaintlabError(f"CLIP model {model}: image_mean / image_std must have 3 values")
    return ClipVision(model=net, name=model, shortest_edge=_edge(pre.get("size"), image_size),
                      crop=_crop(pre.get("crop_size"), image_size), mean=mean, std=std,  # type: ignore[arg-type]
                      device=torch.device(device))
