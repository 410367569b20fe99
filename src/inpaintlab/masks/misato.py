"""ASUKA's mask mixture (Wang et al., ASUKA Sec. 3.1), also used for the MISATO benchmark (Sec. 4).

"50 % object-shape mask, 20 % Co-Mod mask, 20 % LaMa mask, 5 % rectangle mask and 5 % complement
rectangle mask. We combine object-shape mask with Co-Mod style and LaMa style with the chance of
25 %, respectively." The hole-ratio range is configurable: the numbers of the paper's range are
missing from our copy of the text, so the default [0.1, 0.7) is ours.

MISATO's masks are this mixture *without* the rectangle and complement-rectangle families
(``rectangles=False``): the remaining families are renormalised, 5/9 object, 2/9 Co-Mod, 2/9 LaMa
(with object shapes) or 1/2 Co-Mod, 1/2 LaMa (without); the object's combinations are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .base import MASKS, MaskGenerator, check_range, with_hole_ratio
from .comod import RANDOM_MASK_PRESETS, random_brush, random_mask
from .lama import LAMA_TRAIN, irregular_strokes, lama_mixed
from .objects import ObjectShape, load_objects, object_hole
from .shapes import complement_rectangle, rectangle

#: family -> probability (ASUKA Sec. 3.1)
MISATO_WEIGHTS: dict[str, float] = {
    "object": 0.50, "comod": 0.20, "lama": 0.20, "rectangle": 0.05, "complement-rectangle": 0.05,
}
#: what an object-shape mask is combined with -> probability (the rest: the object alone)
OBJECT_COMBINATIONS: dict[str, float] = {"object+comod": 0.25, "object+lama": 0.25}
#: the families MISATO's masks leave out (``rectangles=False``)
RECTANGLE_FAMILIES = ("rectangle", "complement-rectangle")


def family_weights(with_objects: bool, rectangles: bool = True) -> dict[str, float]:
    """The mixture's families and probabilities, the ones left out renormalised (no objects: 40/40/10/10)."""
    weights = {k: v for k, v in MISATO_WEIGHTS.items()
               if (with_objects or k != "object") and (rectangles or k not in RECTANGLE_FAMILIES)}
    total = sum(weights.values())
    return {k: v / total for k, v in weights.items()}


@dataclass
class MisatoMixture:
    """The mixture with its hole-ratio range; ``draw`` also says which family a mask came from."""

    objects: list[ObjectShape] | None = None
    lo: float = 0.1
    hi: float = 0.7
    max_tries: int = 1000
    rectangles: bool = True
    weights: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        check_range(self.lo, self.hi)
        self.weights = family_weights(bool(self.objects), self.rectangles)
        coef = min(self.lo + self.hi, 1.0)
        comod_strokes = max(int(RANDOM_MASK_PRESETS["comod"].strokes * coef), 1)
        lama = lama_mixed(LAMA_TRAIN)

        def obj(height, width, rng):
            return object_hole(self.objects, height, width, rng)

        def obj_comod(height, width, rng):
            return np.maximum(obj(height, width, rng), random_brush(height, width, rng, comod_strokes))

        def obj_lama(height, width, rng):
            return np.maximum(obj(height, width, rng), irregular_strokes(height, width, rng, LAMA_TRAIN.irregular))

        raw: dict[str, MaskGenerator] = {
            "object": obj, "object+comod": obj_comod, "object+lama": obj_lama,
            # Co-Mod's RandomMask takes the range itself (and scales its shape counts by it)
            "comod": random_mask(RANDOM_MASK_PRESETS["comod"], self.lo, self.hi, self.max_tries),
            "lama": lama,
            "rectangle": rectangle(self.lo, self.hi),
            "complement-rectangle": complement_rectangle(self.lo, self.hi),
        }
        self._families = {k: with_hole_ratio(g, self.lo, self.hi, self.max_tries) for k, g in raw.items()}

    def choose_family(self, rng: np.random.Generator) -> str:
        """The family first (so the 50/20/20/5/5 split is exact), then the object's combination."""
        names = list(self.weights)
        family = names[int(rng.choice(len(names), p=np.asarray([self.weights[n] for n in names])))]
        if family == "object":
            u = rng.random()
            edge = 0.0
            for combo, p in OBJECT_COMBINATIONS.items():
                edge += p
                if u < edge:
                    return combo
        return family

    def draw(self, height: int, width: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """One mask and the family it came from; the ratio constraint redraws within that family."""
        family = self.choose_family(rng)
        return self._families[family](height, width, rng), family

    def __call__(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        return self.draw(height, width, rng)[0]


@MASKS.register("misato")
def misato(object_folder: str | None = None, lo: float = 0.1, hi: float = 0.7, max_tries: int = 1000,
           rectangles: bool = True) -> MisatoMixture:
    """ASUKA/MISATO mixture: 50 % object (+Co-Mod or +LaMa strokes 25 % each), 20 % Co-Mod, 20 % LaMa, 5 % rect, 5 % complement; lo <= ratio < hi.

    Without ``object_folder`` there are no object shapes: the other four families are renormalised
    to 40 % Co-Mod, 40 % LaMa, 10 % rectangle, 10 % complement rectangle. ``rectangles=False``
    (MISATO's masks) leaves out both rectangle families and renormalises the rest: 5/9 object,
    2/9 Co-Mod, 2/9 LaMa, or 1/2 Co-Mod, 1/2 LaMa without object shapes.
    """
    objects = load_objects(object_folder) if object_folder is not None else None
    return MisatoMixture(objects, float(lo), float(hi), int(max_tries), bool(rectangles))
