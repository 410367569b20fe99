"""LaMa masks (Suvorov et al. 2022): irregular line strokes mixed with boxes.

Ported from ``saicinpainting/training/data/masks.py`` (``make_random_irregular_mask``,
``make_random_rectangle_mask``, ``MixedMaskGenerator``) of github.com/advimman/lama, with the
numbers of its ``configs/data_gen/random_{thin,medium,thick}_{256,512}.yaml`` (evaluation) and
``configs/training/data/abl-04-256-mh-dist.yaml`` (Big-LaMa training mix). Every draw comes
from an explicit ``numpy.random.Generator`` instead of numpy's global state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from .base import MASKS, MaskGenerator, check, resample


@dataclass(frozen=True)
class IrregularParams:
    """``make_random_irregular_mask`` arguments: strokes of 1-5 line segments each."""

    max_angle: int = 4
    max_len: int = 60
    max_width: int = 20
    min_times: int = 0
    max_times: int = 10


@dataclass(frozen=True)
class BoxParams:
    """``make_random_rectangle_mask`` arguments: axis-aligned boxes."""

    margin: int = 10
    bbox_min_size: int = 30
    bbox_max_size: int = 100
    min_times: int = 0
    max_times: int = 3


@dataclass(frozen=True)
class LamaPreset:
    """A LaMa ``MixedMaskGenerator`` config: family weights (renormalised) and the area cap.

    ``max_hole_ratio`` is ``max_tamper_area`` of ``bin/gen_mask_dataset.py``: masks covering more
    are dropped (here: redrawn). ``None`` means no cap (training).
    """

    irregular: IrregularParams
    box: BoxParams | None = None
    irregular_proba: float = 1.0
    box_proba: float = 0.0
    max_hole_ratio: float | None = 0.5


#: The evaluation presets, keyed by (thickness, size); values of ``configs/data_gen/random_*.yaml``.
#: Thin has no boxes in the reference (``box_proba: 0``); medium and thick use weight 0.3 for boxes
#: against 1 for strokes, i.e. a box mask with probability 0.3 / 1.3 after renormalisation.
LAMA_PRESETS: dict[tuple[str, int], LamaPreset] = {
    ("thin", 256): LamaPreset(IrregularParams(max_angle=4, max_len=40, max_width=10, min_times=4, max_times=50)),
    ("thin", 512): LamaPreset(IrregularParams(max_angle=4, max_len=100, max_width=20, min_times=4, max_times=70)),
    ("medium", 256): LamaPreset(
        IrregularParams(max_angle=4, max_len=100, max_width=50, min_times=4, max_times=5),
        BoxParams(margin=0, bbox_min_size=10, bbox_max_size=50, min_times=1, max_times=5), box_proba=0.3),
    ("medium", 512): LamaPreset(
        IrregularParams(max_angle=4, max_len=200, max_width=100, min_times=4, max_times=10),
        BoxParams(margin=0, bbox_min_size=30, bbox_max_size=150, min_times=1, max_times=5), box_proba=0.3),
    ("thick", 256): LamaPreset(
        IrregularParams(max_angle=4, max_len=200, max_width=100, min_times=1, max_times=5),
        BoxParams(margin=10, bbox_min_size=30, bbox_max_size=150, min_times=1, max_times=3), box_proba=0.3),
    ("thick", 512): LamaPreset(
        IrregularParams(max_angle=4, max_len=450, max_width=250, min_times=1, max_times=5),
        BoxParams(margin=10, bbox_min_size=30, bbox_max_size=300, min_times=1, max_times=4), box_proba=0.3),
}

#: Big-LaMa's training mix: strokes and boxes with equal weight (abl-04-256-mh-dist.yaml), no area cap.
LAMA_TRAIN = LamaPreset(
    IrregularParams(max_angle=4, max_len=200, max_width=100, min_times=1, max_times=5),
    BoxParams(margin=10, bbox_min_size=30, bbox_max_size=150, min_times=1, max_times=4),
    irregular_proba=1.0, box_proba=1.0, max_hole_ratio=None)


def irregular_strokes(height: int, width: int, rng: np.random.Generator, p: IrregularParams) -> np.ndarray:
    """LaMa ``make_random_irregular_mask`` (LINE draw method): polylines of thick segments."""
    hole = np.zeros((height, width), np.float32)
    for i in range(int(rng.integers(p.min_times, p.max_times + 1))):
        x, y = int(rng.integers(width)), int(rng.integers(height))
        for _ in range(1 + int(rng.integers(5))):
            # the reference draws an integer number of radians plus 0.01, mirrored on even strokes
            angle = 0.01 + int(rng.integers(p.max_angle))
            if i % 2 == 0:
                angle = 2 * 3.1415926 - angle
            length = 10 + int(rng.integers(p.max_len))
            brush_w = 5 + int(rng.integers(p.max_width))
            end_x = min(max(int(x + length * math.sin(angle)), 0), width)
            end_y = min(max(int(y + length * math.cos(angle)), 0), height)
            cv2.line(hole, (x, y), (end_x, end_y), 1.0, brush_w)
            x, y = end_x, end_y
    return hole


def random_boxes(height: int, width: int, rng: np.random.Generator, p: BoxParams) -> np.ndarray:
    """LaMa ``make_random_rectangle_mask``: boxes inside a margin, sides in [min, max)."""
    hole = np.zeros((height, width), np.float32)
    max_size = min(p.bbox_max_size, height - 2 * p.margin, width - 2 * p.margin)
    check(max_size > p.bbox_min_size,
          f"a {height}x{width} image is too small for boxes of {p.bbox_min_size}-{p.bbox_max_size} px "
          f"with margin {p.margin}: use a larger size or the 256 preset")
    for _ in range(int(rng.integers(p.min_times, p.max_times + 1))):
        bw, bh = int(rng.integers(p.bbox_min_size, max_size)), int(rng.integers(p.bbox_min_size, max_size))
        x0 = int(rng.integers(p.margin, width - p.margin - bw + 1))
        y0 = int(rng.integers(p.margin, height - p.margin - bh + 1))
        hole[y0:y0 + bh, x0:x0 + bw] = 1.0
    return hole


def lama_mixed(preset: LamaPreset, max_tries: int = 100) -> MaskGenerator:
    """LaMa ``MixedMaskGenerator`` (+ the ``max_tamper_area`` filter of ``gen_mask_dataset.py``)."""
    weights = [preset.irregular_proba] + ([preset.box_proba] if preset.box is not None and preset.box_proba > 0 else [])
    probs = np.asarray(weights, np.float64) / sum(weights)

    def draw_once(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        family = int(rng.choice(len(probs), p=probs)) if len(probs) > 1 else 0
        if family == 0:
            return irregular_strokes(height, width, rng, preset.irregular)
        return random_boxes(height, width, rng, preset.box)

    def generate(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        cap = preset.max_hole_ratio
        if cap is None:
            return draw_once(height, width, rng)
        # an empty mask is useless for evaluation; the reference's emptiness check never fires
        return resample(lambda: draw_once(height, width, rng), lambda r: 0.0 < r <= cap, max_tries,
                        f"in (0, {cap:g}]")

    return generate


def preset_size(size: int | None, height: int, width: int) -> int:
    """256 or 512: ``size`` when given, else 512 for images of at least 512 px a side."""
    s = int(size) if size is not None else (512 if min(height, width) >= 512 else 256)
    check(s in (256, 512), f"LaMa presets exist for size 256 and 512, got size={size}")
    return s


def _lama_factory(thickness: str):
    def factory(size: int | None = None, max_width: int | None = None, max_len: int | None = None,
                max_times: int | None = None, box_proba: float | None = None,
                max_hole_ratio: float | None = 0.5) -> MaskGenerator:
        check(size is None or int(size) in (256, 512), f"LaMa presets exist for size 256 and 512, got size={size}")
        check(max_width is None or int(max_width) >= 1, f"max_width must be >= 1, got {max_width}")
        check(max_len is None or int(max_len) >= 1, f"max_len must be >= 1, got {max_len}")
        check(box_proba is None or float(box_proba) >= 0, f"box_proba must be >= 0, got {box_proba}")
        check(max_hole_ratio is None or 0 < float(max_hole_ratio) <= 1,
              f"max_hole_ratio must be in (0, 1], got {max_hole_ratio}")

        def resolved(height: int, width: int) -> LamaPreset:
            s = preset_size(size, height, width)
            preset = LAMA_PRESETS[(thickness, s)]
            strokes = {k: int(v) for k, v in (("max_width", max_width), ("max_len", max_len),
                                                ("max_times", max_times)) if v is not None}
            irregular = replace(preset.irregular, **strokes)
            check(irregular.max_times >= irregular.min_times,
                  f"max_times must be >= min_times ({irregular.min_times}), got {irregular.max_times}")
            extra = {} if box_proba is None else {"box_proba": float(box_proba)}
            if extra and preset.box is None:
                # thin has no box parameters in the reference; borrow medium's at the same size
                extra["box"] = LAMA_PRESETS[("medium", s)].box
            return replace(preset, irregular=irregular, max_hole_ratio=max_hole_ratio, **extra)

        def generate(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
            return lama_mixed(resolved(height, width))(height, width, rng)

        return generate

    factory.__name__ = f"lama_{thickness}"
    factory.__doc__ = (
        f"LaMa '{thickness}' evaluation masks (random_{thickness}_256/512.yaml): strokes"
        + ("" if thickness == "thin" else " or boxes (box weight 0.3 vs strokes 1)")
        + "; masks over max_hole_ratio=0.5 redrawn. size=256|512 picks the preset (default: 512 when "
        "the image is >= 512 px a side); max_width/max_len/max_times/box_proba override the preset.")
    return factory


lama_thin = MASKS.register("lama-thin", _lama_factory("thin"))
lama_medium = MASKS.register("lama-medium", _lama_factory("medium"))
lama_thick = MASKS.register("lama-thick", _lama_factory("thick"))


@MASKS.register("lama-train")
def lama_train(max_width: int = 100, box_proba: float = 1.0) -> MaskGenerator:
    """Big-LaMa training mix (abl-04-256-mh-dist.yaml): strokes (max_width 100, max_len 200, 1-5) or boxes (30-150 px, 1-4), 50/50."""
    check(int(max_width) >= 1, f"max_width must be >= 1, got {max_width}")
    check(float(box_proba) >= 0, f"box_proba must be >= 0, got {box_proba}")
    return lama_mixed(replace(LAMA_TRAIN, irregular=replace(LAMA_TRAIN.irregular, max_width=int(max_width)),
                              box_proba=float(box_proba)))
