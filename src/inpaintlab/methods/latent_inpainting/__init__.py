"""Latent-space inpainting (Babin 2024; public code igor185/latent-inpainting, a LaMa fork).

LaMa's FFC generator split into encoder, refiner and decoder (:mod:`.network`), an autoencoder
pre-trained on full images and then frozen, a mask encoder injected into the image encoder through
zero convolutions, and a refiner trained with an L1 loss on latents (:mod:`.method`: the methods
``latent-autoencoder`` and ``latent-inpainting`` with the four presets of the thesis's Table 5.1).
:mod:`.inpainter` registers ``latent-lama``; :mod:`.visualize` renders the thesis's Fig. 4.4
(``inpaintlab latent visualize``). Names below load on first use: importing this package does not
import torch.
"""

from ...lazy import lazy_exports

_LAZY = {name: "network" for name in ("LatentNetConfig", "LatentInpaintingNet", "MaskEncoder", "latent_l1",
                                      "split_lama_state", "join_lama_state")}
_LAZY |= {name: "method" for name in ("LatentAutoencoderMethod", "LatentInpaintingMethod", "load_autoencoder")}
_LAZY |= {name: "presets" for name in ("PRESETS", "AUTOENCODER", "INPAINTING")}
_LAZY |= {name: "inpainter" for name in ("LatentLaMaInpainter", "load_latent_model")}

__all__ = sorted(_LAZY)
__getattr__ = lazy_exports(__name__, _LAZY)
