"""The Inpainter protocol, the backend base classes and the inpainter registry.

A *backend* fills holes; the *wrapper* (:class:`inpaintlab.inpainters.Inpainter`) validates the
input, adapts it to what the backend declares it needs, and composites the result so that
pixels outside the hole equal the input exactly.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np
import torch

from ..errors import InpaintlabError
from ..images import to_uint8
from ..options import NoOptions, check_specs, parse_options, specs_of
from ..registry import Registry, subclass_of

Generators = Sequence[torch.Generator] | None


@dataclass(frozen=True)
class Requirements:
    """What a backend needs from its input; the wrapper adapts to it and undoes the adaptation."""

    size_multiple: int = 1  # H and W padded (reflect) up to a multiple of this
    value_range: tuple[float, float] = (0.0, 1.0)  # images rescaled from [0, 1] to this range
    device: str | None = None  # None: the wrapper leaves tensors where they are


def child_seed(base: int, index: int) -> int:
    """The seed of sample ``index`` split from ``base`` (NumPy's SeedSequence mixes the pair)."""
    return int(np.random.SeedSequence([base, index]).generate_state(1, np.uint64)[0])


def per_sample_generators(generator: Generators | torch.Generator, n: int) -> list[torch.Generator]:
    """One generator per sample, split the same way for every batch size (1 included).

    A single generator gives one draw ``base``; sample ``i`` gets a generator seeded from
    ``(base, i)``, so the same seed gives sample ``i`` the same noise whether it runs alone or in a
    batch. A list is used as given (one per sample). None means seed 0 for every sample, never the
    global random state.
    """
    if generator is None:
        return [torch.Generator().manual_seed(0) for _ in range(n)]
    if isinstance(generator, torch.Generator):
        base = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
        return [torch.Generator().manual_seed(child_seed(base, i)) for i in range(n)]
    gens = list(generator)
    if len(gens) != n:
        raise InpaintlabError(f"got {len(gens)} generators for a batch of {n} images; pass one per image")
    return gens


class Backend(abc.ABC):
    """A hole-filling method. Inputs arrive adapted to :attr:`requirements`.

    A backend declares its options as a frozen dataclass :attr:`Options` (typed fields with
    defaults and one-line help, see :func:`inpaintlab.options.option`) and is built from one
    instance of it; the registry checks both on registration.
    """

    requirements: ClassVar[Requirements] = Requirements()
    Options: ClassVar[type] = NoOptions
    #: True when building it needs pretrained weights from a hub (tests that build every backend skip these)
    needs_weights: ClassVar[bool] = False

    def __init__(self, options: Any = None, **values):
        """Build from an ``Options`` instance, or from option values (checked as ``--option`` values are)."""
        if options is not None and values:
            raise TypeError("pass an Options instance or option values, not both")
        if options is None:
            options = parse_options(self.Options, values, f"inpainter {type(self).__name__}")
        self.options = options

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
        gens = per_sample_generators(generator, images.shape[0])
        for i in range(images.shape[0]):
            img = to_uint8_hwc(images[i])
            h = hole[i, 0].detach().cpu().numpy() > 0.5
            rng = numpy_rng(gens[i])
            res = self.inpaint_one(img, h, rng)
            out.append(torch.from_numpy(np.ascontiguousarray(res)).permute(2, 0, 1))
        return torch.stack(out).to(images.device, torch.float32) / 255.0


def to_uint8_hwc(image: torch.Tensor) -> np.ndarray:
    """(3,H,W) float [0,1] -> HxWx3 uint8, rounding to nearest as a saved image would."""
    arr = to_uint8(image.detach().float())
    return arr.permute(1, 2, 0).cpu().numpy()


def numpy_rng(generator: torch.Generator) -> np.random.Generator:
    """A NumPy generator seeded from a torch generator."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    return np.random.default_rng(seed)


def _typed_options(name: str, cls: type) -> None:
    """A registered backend has a docstring and an options dataclass with typed, defaulted, explained fields."""
    if not (cls.__doc__ or "").strip():
        raise TypeError(f"inpainter {name!r}: {cls.__qualname__} needs a docstring (its first line is its description)")
    if not dataclasses.is_dataclass(cls.Options):
        raise TypeError(f"inpainter {name!r}: {cls.__qualname__}.Options must be a dataclass")
    check_specs(f"inpainter {name!r}", specs_of(cls.Options), need_help=True)


#: name -> Backend subclass, built as ``cls(cls.Options(...))``; modules in this package register on discovery
INPAINTERS: Registry[type[Backend]] = Registry("inpainter", check=subclass_of(Backend, _typed_options),
                                               packages=("inpaintlab.inpainters",), method_modules=("inpainter",))
