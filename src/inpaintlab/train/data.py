"""Training data: random crops with scale jitter and flips, one mask each, and fixed validation pairs.

**Every draw is keyed, never streamed.** Training sample ``k`` (the k-th sample the run draws, over
all epochs) takes its image from epoch ``e = k // n``'s permutation of the ``n`` images and its
crop, flip and mask from a generator seeded by ``(seed, k)``; a sampler that starts at any
position feeds the loader. So the batches do not depend on the number of loader workers, nor on
where a run was interrupted: a resume starts the sampler at the next position and sees the
samples an uninterrupted run sees.

**Held-out validation, disjoint from the training crops:** ``holdout="right"`` trains on the left
three quarters of every image and validates on one fixed crop of the right quarter of the first
``val_count`` images; ``holdout="images"`` holds the last ``val_count`` images out entirely and
validates on their centre squares. Validation masks come from generators keyed by ``(seed, i)``
too, so every validation of every run with one seed sees the same pairs.
"""

from __future__ import annotations

from typing import Callable, Iterator

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..datasets.source import ImageSource
from ..errors import BadImageError, InpaintlabError
from ..masks.base import HoleRatioError, MaskParamError, make_generator
from .config import TrainConfig

# tags that keep the generators of different purposes apart (SeedSequence mixes the whole key)
_SAMPLE, _EPOCH, _VALIDATION = 1, 2, 3


def sample_rng(seed: int, k: int) -> np.random.Generator:
    """The generator of training sample ``k``: crop, flip and mask depend on (seed, k) only."""
    return np.random.default_rng(np.random.SeedSequence([seed, _SAMPLE, k]))


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order in which epoch ``epoch`` visits the ``n`` training images."""
    return np.random.default_rng(np.random.SeedSequence([seed, _EPOCH, epoch])).permutation(n)


def region(width: int, holdout: str, part: str) -> tuple[int, int]:
    """The columns ``[x0, x1)`` of an image that ``part`` (train / val) may use."""
    if holdout != "right":
        return 0, width
    cut = (3 * width) // 4
    return (0, cut) if part == "train" else (cut, width)


def draw_hole(generate, size: int, mask_size: int | None, rng: np.random.Generator) -> torch.Tensor:
    """A (1, S, S) hole from ``generate``, drawn at ``mask_size`` and resized to ``size`` (area, >= 0.5) if given.

    Mask families are defined at a size (LaMa's presets at 256 and 512): drawn there and resized,
    they cover the same share of a smaller crop as of the image they were made for.
    """
    drawn = mask_size or size
    try:
        hole = np.asarray(generate(drawn, drawn, rng), np.float32)
    except MaskParamError as e:
        if mask_size:
            raise
        raise MaskParamError(f"{e} (or draw the masks at a larger size and resize them to the crops: "
                             f"--mask-size 256)") from None
    if drawn != size:
        hole = (cv2.resize(hole, (size, size), interpolation=cv2.INTER_AREA) >= 0.5).astype(np.float32)
    return torch.from_numpy(hole)[None]


def crop_square(image: np.ndarray, top: int, left: int, side: int, size: int) -> np.ndarray:
    """A ``side`` x ``side`` window of an HxWx3 float image resized to ``size`` (area down, cubic up)."""
    window = np.ascontiguousarray(image[top:top + side, left:left + side])
    if side == size:
        return window
    inter = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return np.clip(cv2.resize(window, (size, size), interpolation=inter), 0.0, 1.0)


def to_chw(image: np.ndarray) -> torch.Tensor:
    """HxWx3 float32 -> (3, H, W) on the 8-bit grid (what a saved image holds)."""
    return torch.from_numpy(np.round(image * np.float32(255)) / np.float32(255)).permute(2, 0, 1).contiguous()


class TrainingCrops(Dataset):
    """Training sample ``k``: ``{"image": (3,S,S), "hole": (1,S,S)}``, a pure function of (seed, k)."""

    def __init__(self, source: ImageSource, cfg: TrainConfig, images: list[int]):
        self.source, self.cfg, self.images = source, cfg, list(images)
        if not self.images:
            raise InpaintlabError("no training images are left once the validation images are held out; "
                                  "use --holdout right, or fewer validation images")
        self.masks = make_generator(cfg.masks, **cfg.mask_params)
        self._cache: dict[int, np.ndarray] = {}
        self._foreground: dict[int, np.ndarray | None] = {}

    def __len__(self) -> int:  # a sampler gives the positions; this is only the number of images
        return len(self.images)

    def _read(self, i: int) -> np.ndarray:
        """Image ``i`` (native size), decoded once per process and kept while the cache is small."""
        if i not in self._cache:
            image = self.source.read(i)
            if len(self._cache) < 256:
                self._cache[i] = image
            return image
        return self._cache[i]

    def image_for(self, k: int) -> int:
        """The source index of sample ``k``: epoch ``k // n``'s permutation, at ``k % n``."""
        n = len(self.images)
        return self.images[int(epoch_order(self.cfg.seed, k // n, n)[k % n])]

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        cfg, size = self.cfg, self.cfg.size
        rng = sample_rng(cfg.seed, k)
        i = self.image_for(k)
        for attempt in range(len(self.images)):  # an unreadable image is replaced by the next one, always the same
            try:
                image = self._read(i)
                break
            except BadImageError:
                i = self.images[(self.images.index(i) + 1) % len(self.images)]
        else:
            raise InpaintlabError(f"no training image of {cfg.data!r} can be read")
        h, w = image.shape[:2]
        x0, x1 = region(w, cfg.holdout, "train")
        short = min(h, x1 - x0)
        side = max(8, int(round(short * rng.uniform(cfg.crop_min, cfg.crop_max))))
        side = min(side, short)
        top = int(rng.integers(0, h - side + 1))
        left = x0 + int(rng.integers(0, x1 - x0 - side + 1))
        crop = crop_square(image, top, left, side, size)
        flipped = cfg.flip and rng.random() < 0.5
        if flipped:
            crop = crop[:, ::-1]
        fg = self.foreground_for(i, h, w)
        if fg is None:
            hole = draw_hole(self.masks, size, cfg.mask_size, rng)
        else:  # the same window of the foreground, and a hole drawn (again) until it has background to fill
            fg = cv2.resize(fg[top:top + side, left:left + side].astype(np.uint8), (size, size),
                            interpolation=cv2.INTER_NEAREST_EXACT).astype(bool)  # the image's pixel grid
            hole = background_crop_hole(self.masks, fg[:, ::-1] if flipped else fg, size, cfg.mask_size, rng)
        return {"image": to_chw(np.ascontiguousarray(crop)), "hole": hole}

    def foreground_for(self, i: int, height: int, width: int) -> np.ndarray | None:
        """Image ``i``'s foreground (``--foreground DIR``: ``<name's stem>.png``, white = foreground), or None."""
        if self.cfg.foreground is None:
            return None
        if i not in self._foreground:
            from ..masks.background import foreground_file, read_foreground

            path = foreground_file(self.cfg.foreground, self.source.names[i])
            self._foreground[i] = read_foreground(path, height, width) if path is not None else None
        return self._foreground[i]


def background_crop_hole(generate, foreground: np.ndarray, size: int, mask_size: int | None,
                         rng: np.random.Generator) -> torch.Tensor:
    """A (1, S, S) hole outside ``foreground``, redrawn while it is empty (Seamless Borders' training masks).

    A crop that is all foreground (or one whose draws never leave it) keeps the unrestricted hole:
    training goes on, and such crops are rare (whole-image objects).
    """
    from ..masks.background import background_hole

    def draw(height: int, width: int, r: np.random.Generator) -> np.ndarray:
        return draw_hole(generate, size, mask_size, r)[0].numpy()

    state = rng.bit_generator.state
    try:
        return torch.from_numpy(background_hole(draw, foreground, rng, max_tries=20))[None]
    except HoleRatioError:
        rng.bit_generator.state = state
        return draw_hole(generate, size, mask_size, rng)


class PositionSampler(Sampler[int]):
    """The sample positions of one "epoch": from the run's position to the next multiple of ``per_epoch``.

    ``position()`` is read when an epoch starts, so after a resume the sampler continues where the
    checkpoint left off and the epochs (between validations) end where an uninterrupted run's do.
    With several processes, rank ``r`` of ``world`` takes every ``world``-th position.
    """

    def __init__(self, position: Callable[[], int], per_epoch: int, stop: int, rank: int = 0, world: int = 1):
        self.position, self.per_epoch, self.stop, self.rank, self.world = position, per_epoch, stop, rank, world

    def bounds(self) -> tuple[int, int]:
        start = self.position()
        return start, min(self.stop, (start // self.per_epoch + 1) * self.per_epoch)

    def __iter__(self) -> Iterator[int]:
        start, end = self.bounds()
        return iter(range(start + self.rank, end, self.world))

    def __len__(self) -> int:
        # exact, read at each epoch's start (the loop reloads the loader every epoch), so Lightning
        # sees the epoch's last batch and validates after it, also after a resume mid-epoch
        start, end = self.bounds()
        return max(0, end - start - self.rank + self.world - 1) // self.world


def split_images(source: ImageSource, cfg: TrainConfig) -> tuple[list[int], list[int]]:
    """(training image indices, validation image indices) of the source under ``cfg.holdout``."""
    n = len(source)
    if cfg.holdout == "right":
        return list(range(n)), list(range(min(cfg.val_count, n)))
    if n <= cfg.val_count:
        raise InpaintlabError(f"{cfg.data!r} has {n} images: holding out {cfg.val_count} for validation leaves "
                              f"none to train on; use --holdout right, or --val-count below {n}")
    return list(range(n - cfg.val_count)), list(range(n - cfg.val_count, n))


def validation_pairs(source: ImageSource, cfg: TrainConfig, images: list[int]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Fixed ``(images (V,3,S,S), holes (V,1,S,S), names)``: the centre square of each held-out region."""
    generate = make_generator(cfg.masks, **cfg.mask_params)
    xs, hs, names = [], [], []
    for j, i in enumerate(images):
        try:
            image = source.read(i)
        except BadImageError:
            continue
        h, w = image.shape[:2]
        x0, x1 = region(w, cfg.holdout, "val")
        side = min(h, x1 - x0)
        top, left = (h - side) // 2, x0 + (x1 - x0 - side) // 2
        xs.append(to_chw(crop_square(image, top, left, side, cfg.size)))
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, _VALIDATION, j]))
        hs.append(draw_hole(generate, cfg.size, cfg.mask_size, rng))
        names.append(source.names[i])
    if not xs:
        raise InpaintlabError(f"no validation image of {cfg.data!r} can be read")
    return torch.stack(xs), torch.stack(hs), names


__all__ = ["TrainingCrops", "PositionSampler", "split_images", "validation_pairs", "sample_rng", "epoch_order"]
