"""The mask-generator contract, its registry, and the generic hole-ratio constraint."""

from __future__ import annotations

import inspect
from typing import Callable

import numpy as np

from ..errors import InpaintlabError
from ..options import NO_DEFAULT, OptionError, check_specs, parse_values, specs_of_signature
from ..registry import Registry

MaskGenerator = Callable[[int, int, np.random.Generator], np.ndarray]

def _typed_factory(name: str, factory: object) -> None:
    """A mask kind is a documented callable whose parameters are typed keywords with defaults."""
    if not callable(factory):
        raise TypeError(f"mask generator {name!r}: expected a factory function, got {factory!r}")
    if not (getattr(factory, "__doc__", None) or "").strip():
        raise TypeError(f"mask generator {name!r}: the factory needs a docstring (its first line is its description)")
    check_specs(f"mask generator {name!r}", specs_of_signature(factory), need_help=False)


#: name -> factory(**params) -> MaskGenerator; ``generate(height, width, rng)`` returns HxW float32, 1 = hole.
#: Modules of this package register on the registry's first look-up.
MASKS: Registry[Callable[..., MaskGenerator]] = Registry("mask generator", check=_typed_factory,
                                                         packages=("inpaintlab.masks",), method_modules=("mask",))


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
    return {k: (None if spec.default is NO_DEFAULT else spec.default)
            for k, spec in specs_of_signature(MASKS.get(name)).items()}


def accepts_any(name: str) -> bool:
    """Whether the factory registered as ``name`` takes ``**params`` (passed on to another kind)."""
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(MASKS.get(name)).parameters.values())


def make_generator(name: str, **params) -> MaskGenerator:
    """``MASKS.get(name)(**params)`` with parameters typed by the factory's signature, checked once.

    Values may be command-line strings (``"0.3"``) or Python values; an unknown name, a wrong type
    or a non-finite number is one :class:`MaskParamError` line. Extra parameters of a factory
    that takes ``**params`` (``bucket``) are passed on as given, for the kind it wraps to check.
    """
    factory = MASKS.get(name)
    specs = specs_of_signature(factory)
    extra = {k: v for k, v in params.items() if k not in specs} if accepts_any(name) else {}
    try:
        typed = parse_values(specs, {k: v for k, v in params.items() if k not in extra},
                             f"mask generator {name!r}", flag="--param", noun="parameter")
    except OptionError as e:
        raise MaskParamError(str(e)) from None
    try:
        return factory(**typed, **extra)
    except MaskParamError:
        raise
    except (TypeError, ValueError) as e:
        raise MaskParamError(f"mask generator {name!r}: {str(e).splitlines()[0]}") from None


def resolved_params(name: str, params: dict[str, object]) -> dict[str, object]:
    """Every typed parameter of kind ``name`` with defaults filled in, plus extra ones passed on (``bucket``)."""
    specs = specs_of_signature(MASKS.get(name))
    given = parse_values(specs, {k: v for k, v in params.items() if k in specs}, f"mask generator {name!r}", "--param",
                         "parameter")
    extra = {k: v for k, v in params.items() if k not in specs}
    return {k: given.get(k, None if s.default is NO_DEFAULT else s.default) for k, s in specs.items()} | extra


def make_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of mask ``index`` under ``seed``: depends on (seed, index) only, not on count or batching."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
