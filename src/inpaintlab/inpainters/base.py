"""The Inpainter protocol, the backend base classes and the inpainter registry.

A *backend* fills holes; the *wrapper* (:class:`inpaintlab.inpainters.Inpainter`) validates the
input, adapts it to what the backend declares it needs, and composites the result so that
pixels outside the hole equal the input exactly.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Callable, ClassVar, Sequence

import numpy as np
import torch

from ..registry import Registry

Generators = Sequence[torch.Generator] | None


@dataclass(frozen=True)
class Requirements:
    """What a backend needs from its input; the wrapper adapts to it and undoes the adaptation."""

    size_multiple: int = 1  # H and W padded (reflect) up to a multiple of this
    value_range: tuple[float, float] = (0.0, 1.0)  # images rescaled from [0, 1] to this range
    device: str | None = None  # None: the wrapper leaves tensors where they are
    deterministic: bool = True  # same input, same output, without a generator


class Backend(abc.ABC):
    """A hole-filling method. Inputs arrive adapted to :attr:`requirements`."""

    requirements: ClassVar[Requirements] = Requirements()

    @abc.abstractmethod
    def inpaint(self, images: torch.Tensor, hole: torch.Tensor, *, generator: Generators) -> torch.Tensor:
        """Fill ``hole`` (N,1,H,W, 1 = hole) in ``images`` (N,3,H,W); return (N,3,H,W)."""


class NumpyBackend(Backend):
    """A backend that works one uint8 HxWx3 image at a time (OpenCV-style methods)."""

    @abc.abstractmethod
    def inpaint_one(self, image: np.ndarray, hole: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Fill ``hole`` (HxW bool) in ``image`` (HxWx3 uint8); return HxWx3 uint8."""

    def inpaint(self, images: torch.Tensor, hole: torch.Tensor, *, generator: Generators) -> torch.Tensor:
        out = []
        for i in range(images.shape[0]):
            img = to_uint8_hwc(images[i])
            h = hole[i, 0].detach().cpu().numpy() > 0.5
            rng = numpy_rng(generator[i] if generator is not None else None)
            res = self.inpaint_one(img, h, rng)
            out.append(torch.from_numpy(np.ascontiguousarray(res)).permute(2, 0, 1))
        return torch.stack(out).to(images.device, torch.float32) / 255.0


def to_uint8_hwc(image: torch.Tensor) -> np.ndarray:
    """(3,H,W) float [0,1] -> HxWx3 uint8, rounding to nearest as a saved image would."""
    arr = image.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return arr.permute(1, 2, 0).cpu().numpy()


def numpy_rng(generator: torch.Generator | None) -> np.random.Generator:
    """A NumPy generator seeded from a torch generator (or a fixed seed when there is none)."""
    if generator is None:
        return np.random.default_rng(0)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    return np.random.default_rng(seed)


#: name -> factory(**options) -> Backend
INPAINTERS: Registry[Callable[..., Backend]] = Registry("inpainter")
