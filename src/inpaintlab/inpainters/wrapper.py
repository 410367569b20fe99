"""The compositing wrapper: validate, adapt to the backend's requirements, call it, composite.

``inpaint(images, hole, *, generator) -> images``, batched, same shape in and out. The wrapper
(:class:`Inpainter`), not the backend, composites: outside the hole the output equals the input
exactly, whatever the backend did there, and the backend's own change there (the *kept-region
drift*) is measured on every call.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F

from ..errors import InpaintlabError
from ..metrics.functional import kept_drift
from ..images import validate_hole, validate_images
from ..options import parse_options, resolved
from .base import INPAINTERS, Backend, Generators, per_sample_generators
from .compositing import COMPOSITORS

__all__ = ["Inpainter", "InpaintOutput", "load_inpainter", "build_options"]


@dataclass
class InpaintOutput:
    """One wrapped call: the composited images, the backend's raw output and its drift."""

    images: torch.Tensor  # (N,3,H,W) composited: input outside the hole, exactly
    raw: torch.Tensor  # (N,3,H,W) the backend's output before compositing
    kept_drift: torch.Tensor  # (N,) mean |raw - input| over the kept pixels and channels


class Inpainter:
    """Validates, adapts to the backend's :class:`Requirements`, calls it, and composites."""

    def __init__(self, backend: Backend, *, name: str = "", compositing: str = "hard",
                 feather_width: float = 8.0, validate: bool = True):
        self.backend = backend
        self.name = name or type(backend).__name__
        self.compositing = compositing
        compose = COMPOSITORS.get(compositing)
        self._compose = functools.partial(compose, width=feather_width) if compositing == "feather" else compose
        self.feather_width = feather_width
        self.validate = validate

    @property
    def options(self) -> dict[str, Any]:
        """The backend's resolved options, defaults included (what runs store in ``config.json``)."""
        return resolved(self.backend.options)

    def inpaint(self, images: torch.Tensor, hole: torch.Tensor, *, generator: Generators | torch.Generator = None) -> torch.Tensor:
        """Fill ``hole`` in ``images`` and composite; see :meth:`run` for the drift too."""
        return self.run(images, hole, generator=generator).images

    __call__ = inpaint

    def run(self, images: torch.Tensor, hole: torch.Tensor, *, generator: Generators | torch.Generator = None) -> InpaintOutput:
        """Fill ``hole`` (1 = hole) in ``images``; per-sample generators keep batches independent."""
        if self.validate:
            validate_images(images)
            validate_hole(hole, images)
        gens = per_sample_generators(generator, images.shape[0])
        raw = self._call_backend(images, hole, gens)
        out = self._compose(images, raw, hole)
        drift = kept_drift(raw, images, hole)
        return InpaintOutput(images=out, raw=raw, kept_drift=drift)

    def _call_backend(self, images: torch.Tensor, hole: torch.Tensor, gens: Generators) -> torch.Tensor:
        """Adapt device, size multiple and value range; call the backend; undo the adaptation."""
        req = self.backend.requirements
        device = images.device
        x, m = images, hole
        if req.device is not None:
            x, m = x.to(req.device), m.to(req.device)
        h, w = x.shape[-2:]
        k = req.size_multiple
        ph, pw = (-h) % k, (-w) % k
        if ph or pw:
            # Reflect padding gives the backend plausible context rather than a hard edge.
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
            m = F.pad(m, (0, pw, 0, ph), value=0.0)
        lo, hi = req.value_range
        if (lo, hi) != (0.0, 1.0):
            x = x * (hi - lo) + lo
        y = self.backend.inpaint(x, m, generator=gens)
        if tuple(y.shape) != tuple(x.shape):
            raise InpaintlabError(f"inpainter {self.name!r} returned shape {tuple(y.shape)}, expected {tuple(x.shape)}")
        if (lo, hi) != (0.0, 1.0):
            y = (y - lo) / (hi - lo)
        y = y[..., :h, :w].to(device, torch.float32).clamp(0.0, 1.0)
        return y


def build_options(name: str, options: Mapping[str, Any] | None = None) -> Any:
    """The typed options of backend ``name`` from raw values (strings or Python values), checked once."""
    return parse_options(INPAINTERS.get(name).Options, dict(options or {}), f"inpainter {name!r}")


def load_inpainter(name: str, *, compositing: str = "hard", feather_width: float = 8.0,
                   validate: bool = True, **options) -> Inpainter:
    """Build the registered backend ``name`` with ``options`` (checked against its Options) and wrap it."""
    cls = INPAINTERS.get(name)
    opts = build_options(name, options)
    COMPOSITORS.get(compositing)
    try:
        backend = cls(opts)
    except ValueError as e:
        raise InpaintlabError(f"inpainter {name!r}: {e}") from None
    return Inpainter(backend, name=name, compositing=compositing, feather_width=feather_width, validate=validate)
