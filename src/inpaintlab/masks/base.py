"""The mask-generator contract, its registry, and the generic hole-ratio constraint."""

from __future__ import annotations

import inspect
from typing import Callable

import numpy as np

from ..errors import InpaintlabError
from ..registry import Registry

MaskGenerator = Callable[[int, int, np.random.Generator], np.ndarray]

#: name -> factory(**params) -> MaskGenerator; ``generate(height, width, rng)`` returns HxW float32, 1 = hole
MASKS: Registry[Callable[..., MaskGenerator]] = Registry("mask generator")


class MaskParamError(InpaintlabError):
    """A mask generator parameter that is unknown or out of range."""


class HoleRatioError(InpaintlabError):
    """A constrained generator that could not reach its hole-ratio range."""


def hole_ratio(hole: np.ndarray) -> float:
    """Share of pixels that are hole (1)."""
    return float(np.mean(hole))


def check(condition: bool, message: str) -> None:
    """Raise a one-line ``MaskParamError`` unless ``condition`` holds."""
    if not condition:
        raise MaskParamError(message)


def check_range(lo: float, hi: float, what: str = "hole ratio") -> None:
    """A ratio range must satisfy 0 <= lo < hi <= 1."""
    check(0.0 <= lo < hi <= 1.0, f"{what} range [{lo}, {hi}) is not valid: need 0 <= lo < hi <= 1")


def resample(draw: Callable[[], np.ndarray], accept: Callable[[float], bool], max_tries: int,
             describe: str) -> np.ndarray:
    """Draw until ``accept(hole_ratio)``; after ``max_tries`` misses, a one-line ``HoleRatioError``."""
    check(int(max_tries) >= 1, f"max_tries must be at least 1, got {max_tries}")
    seen: list[float] = []
    for _ in range(int(max_tries)):
        hole = draw()
        r = hole_ratio(hole)
        if accept(r):
            return hole
        seen.append(r)
    lo, hi = min(seen), max(seen)
    raise HoleRatioError(
        f"no mask with a hole ratio {describe} in {max_tries} tries (the ratios drawn ranged "
        f"{lo:.3f}-{hi:.3f}): widen the range, raise max_tries or pick another kind"
    )


def with_hole_ratio(generator: MaskGenerator, lo: float, hi: float, max_tries: int = 1000) -> MaskGenerator:
    """Constrain ``generator`` to hole ratios in ``[lo, hi)`` by rejection sampling (Co-Mod-GAN/MAT style).

    Every retry draws from the same ``rng``, so the result still depends only on the seed.
    """
    check_range(lo, hi)

    def generate(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        return resample(lambda: generator(height, width, rng), lambda r: lo <= r < hi, max_tries,
                        f"in [{lo:g}, {hi:g})")

    return generate


def factory_params(name: str) -> dict[str, object]:
    """The keyword parameters of the factory registered as ``name``, with their defaults."""
    sig = inspect.signature(MASKS.get(name))
    return {p.name: (None if p.default is inspect.Parameter.empty else p.default)
            for p in sig.parameters.values() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def accepts_any(name: str) -> bool:
    """Whether the factory registered as ``name`` takes ``**params`` (passed on to another kind)."""
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(MASKS.get(name)).parameters.values())


def make_generator(name: str, **params) -> MaskGenerator:
    """``MASKS.get(name)(**params)`` with unknown parameter names reported as one line."""
    factory = MASKS.get(name)
    if not accepts_any(name):
        known = factory_params(name)
        unknown = sorted(set(params) - set(known))
        if unknown:
            listing = ", ".join(f"{k}={v}" for k, v in known.items()) or "none"
            raise MaskParamError(f"mask generator {name!r} has no parameter {', '.join(unknown)}; "
                                 f"its parameters (defaults): {listing}")
    return factory(**params)


def make_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of mask ``index`` under ``seed``: depends on (seed, index) only, not on count or batching."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
