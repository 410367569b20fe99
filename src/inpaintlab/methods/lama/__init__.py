"""LaMa (Suvorov et al. 2022): Fourier-convolution generator, discriminator, losses and checkpoints.

The network is LaMa's own, module for module (:mod:`.ffc`: ``FFCResNetGenerator`` with its
``GeneratorConfig`` and the ``big-lama`` / ``lama-fourier`` / ``small`` presets; :mod:`.discriminator`:
pix2pixHD's ``NLayerDiscriminator``), so state-dict keys are LaMa's ``model.N...`` and a released
``big-lama/models/best.ckpt`` loads through :mod:`.checkpoint` (read with a restricted unpickler that
runs no code from the file, weights checked key by key and shape by shape). The generator takes
``cat([image * (1 - hole), hole], 1)`` (images in [0, 1], hole = 1 where to fill, H and W multiples of 8)
and returns an image in [0, 1] (sigmoid output). Names below load on first use: importing this package
does not import torch.
"""

from ...lazy import lazy_exports

_LAZY = {name: "ffc" for name in ("FFCResNetGenerator", "GeneratorConfig", "FFCConvConfig", "GENERATOR_PRESETS",
                                  "build_generator", "config_to_dict", "config_from_dict")}
_LAZY |= {name: "discriminator" for name in ("NLayerDiscriminator", "DiscriminatorConfig", "build_discriminator")}
_LAZY |= {name: "checkpoint" for name in ("load_checkpoint_state", "lama_generator_state", "read_lama_config",
                                          "load_lama_generator")}

__all__ = sorted(_LAZY)
__getattr__ = lazy_exports(__name__, _LAZY)
