"""Aesthetic Score (AS): LAION's aesthetic predictor v1 on CLIP ViT-L/14 image embeddings.

The score Seamless Borders (Hou et al. 2025, Sec. 4, "Aesthetic Score (AS) [20]") and BrushBench
report: ``AS(x) = w . e(x) / ||e(x)|| + b`` with ``e(x)`` the 768-d projected image embedding of
OpenAI's CLIP ViT-L/14 (``CLIPVisionModelWithProjection(...).image_embeds`` of
``openai/clip-vit-large-patch14``) and ``(w, b)`` the ``torch.nn.Linear(768, 1)`` head of
LAION-AI/aesthetic-predictor, file ``sa_0_4_vit_l_14_linear.pth`` (state dict ``weight`` (1, 768),
``bias`` (1,)). Higher is better (LAION's ratings run from 1 to 10).

**Preprocessing** is OpenAI CLIP's ``_transform(n_px)`` (open_clip's for OpenAI models), the one
the head was fitted on, done in torch on ``(N, 3, H, W)`` images in ``[0, 1]``: resize the
shorter side to ``n_px`` (the long side to ``int(n_px * long / short)``) with antialiased bicubic
(PIL's kernel), centre crop ``n_px`` with torchvision's offset ``int(round((H - n_px) / 2))``,
normalise with CLIP's mean / std. ``n_px`` is the loaded model's ``config.image_size`` (224 for
ViT-L/14). transformers' CLIP processor (and :meth:`inpaintlab.datasets.clip.ClipVision.preprocess`)
floors that crop offset instead, one pixel off for some sizes: hence a preprocessing of our own.

**Weights**: the head through :func:`inpaintlab.weights.resolve` (an explicit ``head_path``, then
``$INPAINTLAB_WEIGHTS``, then the torch hub cache; never downloaded, no checksum is published),
read with ``torch.load(weights_only=True)``; CLIP through
:func:`inpaintlab.datasets.clip.load_clip_vision` (a folder saved with ``save_pretrained``, or a hub
id from the Hugging Face cache, the network only when allowed and reachable). Either missing is
one :class:`~inpaintlab.errors.MissingWeightsError` line.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from .. import weights as _weights
from ..datasets.clip import CLIP_MEAN, CLIP_STD, DEFAULT_CLIP, load_clip_vision  # transformers on first load
from ..errors import InpaintlabError, MissingWeightsError
from ..images import validate_images
from .base import METRICS, PerImageMetric, Prepared

__all__ = ["HEAD_FILE", "DEFAULT_CLIP", "CLIP_MEAN", "CLIP_STD", "clip_preprocess", "aesthetic_scores",
           "load_head", "AestheticScore"]

HEAD_FILE = "sa_0_4_vit_l_14_linear.pth"
# DEFAULT_CLIP is openai/clip-vit-large-patch14, the CLIP the head was fitted on; CLIP_MEAN / CLIP_STD
# are OpenAI CLIP's normalisation (its clip.py ``_transform``).


# --------------------------------------------------------------------------------------------
# the maths


def _resized_size(h: int, w: int, n_px: int) -> tuple[int, int]:
    """torchvision ``Resize(n_px)``'s output size: the short side to ``n_px``, the long one ``int(n_px * long / short)``."""
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(n_px * long / short)
    return (new_long, n_px) if w <= h else (n_px, new_long)


def clip_preprocess(images: torch.Tensor, n_px: int, mean: tuple[float, ...] = CLIP_MEAN,
                    std: tuple[float, ...] = CLIP_STD) -> torch.Tensor:
    """OpenAI CLIP's ``_transform(n_px)`` (bicubic short-side resize, centre crop, normalise) on (N,3,H,W) in [0, 1]."""
    h, w = images.shape[-2:]
    size = _resized_size(h, w, n_px)
    x = images.to(torch.float32)
    if size != (h, w):  # torchvision returns the image as it is when its short side is n_px already
        # antialias=True is PIL's bicubic (a = -0.5, kernel widened when shrinking); CLIP resizes PIL
        # images. The clamp stands for PIL's uint8 output, which cannot overshoot [0, 1].
        x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    # torchvision's center_crop rounds the offset (half to even); the short side is n_px, so it fits
    top, left = int(round((size[0] - n_px) / 2.0)), int(round((size[1] - n_px) / 2.0))
    x = x[..., top:top + n_px, left:left + n_px]
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def aesthetic_scores(embeds: torch.Tensor, head: nn.Linear) -> torch.Tensor:
    """LAION aesthetic predictor v1: ``head(e / ||e||)`` of (N, d) CLIP image embeddings, shape (N,)."""
    # LAION's example divides by the norm in place; F.normalize is that, with a floor against 0
    return head(F.normalize(embeds.to(head.weight.dtype), dim=-1)).squeeze(-1)


# --------------------------------------------------------------------------------------------
# the weights


def load_head(path: str | os.PathLike, in_features: int = 768) -> nn.Linear:
    """The LAION head ``nn.Linear(in_features, 1)`` from a state dict file (``weight`` (1, d), ``bias`` (1,))."""
    state = _weights.read_checkpoint(path, "LAION aesthetic head", HEAD_FILE)  # weights_only=True
    if not isinstance(state, dict):
        raise MissingWeightsError(f"{path} is not a LAION aesthetic head file (a {type(state).__name__}, "
                                  f"not a state dict); expected {HEAD_FILE}")
    problems = _weights.state_dict_problems({"weight": (1, in_features), "bias": (1,)}, state)
    if problems:
        raise MissingWeightsError(f"{path} is not a LAION aesthetic head for {in_features}-d CLIP embeddings "
                                  f"({'; '.join(problems)}); expected {HEAD_FILE}")
    head = nn.Linear(in_features, 1)
    head.load_state_dict({k: v.float() for k, v in state.items()})
    return head.requires_grad_(False).eval()


def _load_clip(model: str, device: torch.device) -> nn.Module:
    """``CLIPVisionModelWithProjection`` from a folder or hub id (the repository's one CLIP loader)."""
    try:
        return load_clip_vision(model, device=device).model
    except MissingWeightsError as exc:
        # its message names the misato command's flag; this metric takes the folder as an option
        raise MissingWeightsError(f"aesthetic score: {str(exc).replace('(--clip DIR)', '(clip_model=DIR)')}") from None


# --------------------------------------------------------------------------------------------
# the metric


@METRICS.register("aesthetic")
class AestheticScore(PerImageMetric):
    """Aesthetic Score (LAION predictor v1 on CLIP ViT-L/14, as Seamless Borders / BrushBench); higher is better.

    Scores the whole result image alone: the hole and the reference are ignored. Options:
    ``clip_model`` (a hub id or a folder saved with ``save_pretrained``; default
    ``openai/clip-vit-large-patch14``), ``head_path`` (the head file, or a folder holding
    ``sa_0_4_vit_l_14_linear.pth``; default: the weights folders), ``batch_size`` (images per
    CLIP forward pass).
    """

    name = "aesthetic"
    higher_is_better = True
    regions = ("image",)
    weight_files = (HEAD_FILE,)

    def __init__(self, *, region: str | None = None, device: str | torch.device = "cpu",
                 clip_model: str | os.PathLike | None = None, head_path: str | os.PathLike | None = None,
                 batch_size: int = 32):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise InpaintlabError(f"metric 'aesthetic': batch_size must be a whole number >= 1, got {batch_size!r}")
        device = torch.device(device)
        # The head first: a local look-up, so a missing head fails at once, before CLIP loads.
        head_file = _weights.resolve(HEAD_FILE, path=head_path)
        self.clip = _load_clip(DEFAULT_CLIP if clip_model is None else os.fspath(clip_model), device)
        self.n_px = int(self.clip.config.image_size)
        self.head = load_head(head_file, int(self.clip.config.projection_dim)).to(device)
        self.batch_size = batch_size
        super().__init__(region=region, device=device)

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """CLIP ``image_embeds`` (N, d) of images in [0, 1], ``batch_size`` images per forward pass."""
        chunks = [self.clip(pixel_values=clip_preprocess(images[i:i + self.batch_size], self.n_px)).image_embeds
                  for i in range(0, images.shape[0], self.batch_size)]
        return torch.cat(chunks)

    def values(self, images: torch.Tensor, reference: torch.Tensor | None = None,
               hole: torch.Tensor | None = None) -> torch.Tensor:
        """``(N,)`` aesthetic scores of ``images``; ``reference`` and ``hole`` are ignored."""
        validate_images(images)
        return aesthetic_scores(self.embed(images.to(self.device)), self.head)

    @torch.no_grad()
    def score(self, prepared: Prepared, images: torch.Tensor, hole: torch.Tensor | None = None) -> torch.Tensor:
        # the reference does not enter: no copy of it to the device
        return self.values(images).double().cpu().reshape(-1)
