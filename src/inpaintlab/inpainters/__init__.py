"""Inpainters: the protocol, the compositing wrapper and the registered backends.

``inpaint(images, hole, *, generator) -> images``, batched, same shape in and out. The wrapper
(:class:`Inpainter`), not the backend, composites: outside the hole the output equals the input
exactly, whatever the backend did there, and the backend's own change there (the *kept-region
drift*) is measured on every call.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass


import torch
import torch.nn.functional as F

from ..errors import InpaintlabError
from ..images import validate_hole, validate_images
from .base import INPAINTERS, Backend, Generators, NumpyBackend, Requirements
from .compositing import COMPOSITORS

# Importing a backend module registers it.
from . import opencv as _opencv  # noqa: F401,E402
from . import patchmatch as _patchmatch  # noqa: F401,E402
from . import diffusion as _diffusion  # noqa: F401,E402

__all__ = [
    "INPAINTERS",
    "COMPOSITORS",
    "Backend",
    "NumpyBackend",
    "Requirements",
    "Inpainter",
    "InpaintOutput",
    "load_inpainter",
    "backend_options",
]


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

    def inpaint(self, images: torch.Tensor, hole: torch.Tensor, *, generator: Generators | torch.Generator = None) -> torch.Tensor:
        """Fill ``hole`` in ``images`` and composite; see :meth:`run` for the drift too."""
        return self.run(images, hole, generator=generator).images

    __call__ = inpaint

    def run(self, images: torch.Tensor, hole: torch.Tensor, *, generator: Generators | torch.Generator = None) -> InpaintOutput:
        """Fill ``hole`` (1 = hole) in ``images``; per-sample generators keep batches independent."""
        if self.validate:
            validate_images(images)
            validate_hole(hole, images)
        gens = _per_sample(generator, images.shape[0])
        raw = self._call_backend(images, hole, gens)
        out = self._compose(images, raw, hole)
        keep = 1.0 - hole
        n_keep = keep.sum(dim=(1, 2, 3)).clamp_min(1) * images.shape[1]
        drift = ((raw - images).abs() * keep).sum(dim=(1, 2, 3)) / n_keep
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


def _per_sample(generator: Generators | torch.Generator, n: int) -> list[torch.Generator] | None:
    """One generator per sample; a single generator is split by drawing a seed per sample."""
    if generator is None:
        return None
    if isinstance(generator, torch.Generator):
        if n == 1:
            return [generator]
        seeds = torch.randint(0, 2**62, (n,), generator=generator).tolist()
        return [torch.Generator().manual_seed(int(s)) for s in seeds]
    gens = list(generator)
    if len(gens) != n:
        raise InpaintlabError(f"got {len(gens)} generators for a batch of {n} images; pass one per image")
    return gens


def backend_options(name: str) -> dict[str, object]:
    """The keyword options of a registered backend and their defaults (for --help and configs)."""
    sig = inspect.signature(INPAINTERS.get(name))
    return {p.name: p.default for p in sig.parameters.values() if p.default is not inspect.Parameter.empty}


def load_inpainter(name: str, *, compositing: str = "hard", feather_width: float = 8.0,
                   validate: bool = True, **options) -> Inpainter:
    """Build the registered backend ``name`` with ``options`` and wrap it."""
    factory = INPAINTERS.get(name)
    known = backend_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InpaintlabError(
            f"inpainter {name!r} has no option {', '.join(unknown)}; its options are: {', '.join(known) or 'none'}")
    COMPOSITORS.get(compositing)
    try:
        backend = factory(**options)
    except ValueError as e:
        raise InpaintlabError(f"inpainter {name!r}: {e}") from None
    return Inpainter(backend, name=name, compositing=compositing, feather_width=feather_width, validate=validate)
