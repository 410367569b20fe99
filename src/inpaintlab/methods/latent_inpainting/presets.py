"""Latent inpainting's method names and the presets of the thesis's Table 5.1 (no torch: inpainters import this)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AUTOENCODER = "latent-autoencoder"
INPAINTING = "latent-inpainting"


@dataclass(frozen=True)
class Preset:
    """One row of the thesis's Table 5.1."""

    input: Literal["masked", "alpha"]
    control: bool
    frozen_autoencoder: bool
    latent_loss: bool
    title: str


#: thesis Table 5.1, rows (1)-(4)
PRESETS: dict[int, Preset] = {
    1: Preset("alpha", False, False, False, "L1 pixel, encoder-decoder trained, mask as alpha"),
    2: Preset("masked", True, True, False, "L1 pixel, frozen autoencoder, mask control"),
    3: Preset("alpha", False, True, True, "L1 latent, only the first conv trained, mask as alpha"),
    4: Preset("masked", True, True, True, "L1 latent, frozen autoencoder, mask control"),
}


__all__ = ["AUTOENCODER", "INPAINTING", "Preset", "PRESETS"]
