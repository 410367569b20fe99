"""Colour augmentation of ASUKA's decoder fine-tuning: torchvision's ``ColorJitter``, per sample, in torch.

ASUKA (paper, decoder training) jitters colours with brightness 0.15, contrast 0.2, saturation 0.1
and hue 0.03 (``../shared/methods/asuka-seamless.md`` section 2.2.3). This module reproduces the
semantics of torchvision's ``transforms.ColorJitter`` on float tensors
(``torchvision/transforms/_functional_tensor.py``, ``adjust_*``), without torchvision:

- factors: brightness ``b ~ U[max(0, 1 - 0.15), 1 + 0.15]``, contrast ``c ~ U[0.8, 1.2]``,
  saturation ``s ~ U[0.9, 1.1]``, hue ``h ~ U[-0.03, 0.03]``; a strength of 0 skips the op and
  draws nothing, as torchvision;
- order: a random permutation of the four ops;
- draws, in torchvision's ``ColorJitter.get_params`` order: ``randperm(4)``, then one
  ``uniform_`` per enabled op (brightness, contrast, saturation, hue), all from the sample's own
  ``torch.Generator`` (so one seed gives torchvision's parameters for the same generator state);
- ops (``blend(x, y, f) = clamp(f x + (1 - f) y, 0, 1)``, clamped after every op):
  brightness ``blend(x, 0, b)``; contrast ``blend(x, mean(gray(x)), c)`` with the mean over the
  whole image; saturation ``blend(x, gray(x), s)``; hue: RGB -> HSV, ``H = (H + h) mod 1``,
  HSV -> RGB (torchvision's conversions, themselves after Pillow's ``Convert.c``);
- ``gray = 0.2989 R + 0.587 G + 0.114 B`` (torchvision's weights; Pillow's ``L`` uses 0.299).

Unlike ``ColorJitter`` (one draw for the whole batch), every sample gets its own order and factors
from its own generator, so a sample's result does not depend on the batch it is in. Images are
(N,3,H,W) in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ...errors import InpaintlabError
from ...inpainters.base import per_sample_generators

#: ASUKA's jitter strengths (paper, decoder training)
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0.15, 0.2, 0.1, 0.03
#: torchvision's ``rgb_to_grayscale`` weights (R, G, B)
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)
#: the ops, indexed as in torchvision's ``ColorJitter.forward`` (``fn_idx`` from ``randperm(4)``)
OPS = ("brightness", "contrast", "saturation", "hue")


def rgb_to_gray(x: torch.Tensor) -> torch.Tensor:
    """``0.2989 R + 0.587 G + 0.114 B`` of (..., 3, H, W) images, as (..., 1, H, W)."""
    r, g, b = x.unbind(-3)
    wr, wg, wb = GRAY_WEIGHTS
    return (wr * r + wg * g + wb * b).unsqueeze(-3)


def _blend(x: torch.Tensor, y: torch.Tensor | float, factor: float) -> torch.Tensor:
    return (factor * x + (1.0 - factor) * y).clamp(0.0, 1.0)


def adjust_brightness(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with black: ``clamp(factor * x, 0, 1)``."""
    if factor < 0:
        raise InpaintlabError(f"brightness factor {factor} is negative")
    return _blend(x, 0.0, factor)


def adjust_contrast(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with the mean of the image's greyscale (one scalar per image): ``clamp(f x + (1 - f) mean, 0, 1)``."""
    if factor < 0:
        raise InpaintlabError(f"contrast factor {factor} is negative")
    mean = rgb_to_gray(x).mean(dim=(-3, -2, -1), keepdim=True)
    return _blend(x, mean, factor)


def adjust_saturation(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with the image's greyscale: ``clamp(f x + (1 - f) gray(x), 0, 1)``."""
    if factor < 0:
        raise InpaintlabError(f"saturation factor {factor} is negative")
    return _blend(x, rgb_to_gray(x), factor)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB in [0, 1] -> HSV with H, S, V in [0, 1] (torchvision's ``_rgb2hsv``; H = S = 0 on grey)."""
    r, g, b = x.unbind(-3)
    maxc, minc = x.max(dim=-3).values, x.min(dim=-3).values
    grey = maxc == minc  # H and S are 0 there; the divisors below are replaced by 1 to avoid NaN
    chroma = maxc - minc
    ones = torch.ones_like(maxc)
    s = chroma / torch.where(grey, ones, maxc)
    div = torch.where(grey, ones, chroma)
    rc, gc, bc = (maxc - r) / div, (maxc - g) / div, (maxc - b) / div
    is_r = maxc == r
    is_g = (maxc == g) & ~is_r
    is_b = ~is_g & ~is_r
    h = is_r * (bc - gc) + is_g * (2.0 + rc - bc) + is_b * (4.0 + gc - rc)
    h = torch.fmod(h / 6.0 + 1.0, 1.0)
    return torch.stack((h, s, maxc), dim=-3)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hsv` (torchvision's ``_hsv2rgb``: sector ``i = floor(6 H) mod 6``)."""
    h, s, v = x.unbind(-3)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.to(torch.int64) % 6
    p = (v * (1.0 - s)).clamp(0.0, 1.0)
    q = (v * (1.0 - s * f)).clamp(0.0, 1.0)
    t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0)
    # per sector (0..5): R, G, B
    table = torch.stack([torch.stack(c, dim=-3) for c in (
        (v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))], dim=-4)  # (..., 6, 3, H, W)
    index = i.unsqueeze(-3).unsqueeze(-3).expand(*i.shape[:-2], 1, 3, *i.shape[-2:])
    return table.gather(-4, index).squeeze(-4)


def adjust_hue(x: torch.Tensor, shift: float) -> torch.Tensor:
    """Rotate the hue: RGB -> HSV, ``H = (H + shift) mod 1``, HSV -> RGB; ``shift`` in [-0.5, 0.5]."""
    if not -0.5 <= shift <= 0.5:
        raise InpaintlabError(f"hue shift {shift} is not in [-0.5, 0.5]")
    h, s, v = rgb_to_hsv(x).unbind(-3)
    h = (h + shift) % 1.0
    return hsv_to_rgb(torch.stack((h, s, v), dim=-3))


_ADJUST = {"brightness": adjust_brightness, "contrast": adjust_contrast, "saturation": adjust_saturation,
           "hue": adjust_hue}


@dataclass(frozen=True)
class JitterParams:
    """One sample's draw: the order of the ops (indices into :data:`OPS`) and the factors (None = op off)."""

    order: tuple[int, ...]
    brightness: float | None
    contrast: float | None
    saturation: float | None
    hue: float | None


def _range(strength: float, name: str, centre: float, bound: tuple[float, float]) -> tuple[float, float] | None:
    """torchvision's ``_check_input`` for a scalar strength: ``[centre - s, centre + s]`` clipped below; None for 0."""
    if strength < 0:
        raise InpaintlabError(f"colour jitter {name} strength {strength} is negative")
    if strength == 0:
        return None
    lo, hi = max(bound[0], centre - strength), centre + strength
    if hi > bound[1]:
        raise InpaintlabError(f"colour jitter {name} strength {strength} exceeds {bound[1] - centre}")
    return lo, hi


class ColorJitter:
    """torchvision's ``ColorJitter`` (ASUKA's strengths by default), drawn per sample from explicit generators.

    ``jitter(images, generator)`` with images (N,3,H,W) in [0, 1] and ``generator`` one
    ``torch.Generator`` per sample (a list), or one generator split per sample with
    :func:`inpaintlab.inpainters.base.per_sample_generators` (the same split for every batch size).
    :meth:`sample` draws one sample's :class:`JitterParams`; :meth:`apply` applies them.
    """

    def __init__(self, brightness: float = BRIGHTNESS, contrast: float = CONTRAST, saturation: float = SATURATION,
                 hue: float = HUE):
        inf = float("inf")
        self.ranges = {"brightness": _range(brightness, "brightness", 1.0, (0.0, inf)),
                       "contrast": _range(contrast, "contrast", 1.0, (0.0, inf)),
                       "saturation": _range(saturation, "saturation", 1.0, (0.0, inf)),
                       "hue": _range(hue, "hue", 0.0, (-0.5, 0.5))}

    def sample(self, generator: torch.Generator) -> JitterParams:
        """One draw, in ``ColorJitter.get_params`` order: ``randperm(4)``, then a uniform per enabled op."""
        order = tuple(int(i) for i in torch.randperm(4, generator=generator, device=generator.device))
        factors: dict[str, float | None] = {}
        for name in OPS:
            r = self.ranges[name]
            factors[name] = None if r is None else float(
                torch.empty(1, device=generator.device).uniform_(r[0], r[1], generator=generator))
        return JitterParams(order=order, **factors)

    @staticmethod
    def apply(image: torch.Tensor, params: JitterParams) -> torch.Tensor:
        """The ops of ``params`` in its order on (3,H,W) or (N,3,H,W) images (the same draw for all of them)."""
        for i in params.order:
            name = OPS[i]
            factor = getattr(params, name)
            if factor is not None:
                image = _ADJUST[name](image, factor)
        return image

    def __call__(self, images: torch.Tensor, generator: torch.Generator | Sequence[torch.Generator]) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise InpaintlabError(f"colour jitter expects (N, 3, H, W) images, got {tuple(images.shape)}")
        gens = per_sample_generators(generator, images.shape[0])
        return torch.stack([self.apply(x, self.sample(g)) for x, g in zip(images, gens)])


def color_jitter(images: torch.Tensor, generator: torch.Generator | Sequence[torch.Generator], *,
                 brightness: float = BRIGHTNESS, contrast: float = CONTRAST, saturation: float = SATURATION,
                 hue: float = HUE) -> torch.Tensor:
    """:class:`ColorJitter` in one call: each sample jittered with its own draw from its own generator."""
    return ColorJitter(brightness, contrast, saturation, hue)(images, generator)


__all__ = ["BRIGHTNESS", "CONTRAST", "SATURATION", "HUE", "GRAY_WEIGHTS", "OPS", "rgb_to_gray", "adjust_brightness",
           "adjust_contrast", "adjust_saturation", "rgb_to_hsv", "hsv_to_rgb", "adjust_hue", "JitterParams",
           "ColorJitter", "color_jitter"]
