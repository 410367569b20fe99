"""Seamless Borders (Hou et al. 2025, "Towards Seamless Borders"; no public code): blended-latent inpainting
whose VAE is fine-tuned on blended latents (Eq. 6) and whose denoiser is trained in two steps (Algorithm 1).

:mod:`.blend` holds the method's equations as short pure functions: the masked model input, the known
latent ``s E(x_known)``, the blended reconstruction of Eq. 6, and Algorithm 1's targets and loss;
:mod:`.vae_loss` SD's VAE loss (LDM's ``LPIPSWithDiscriminator``, taming's PatchGAN); :mod:`.method`
the training methods ``seamless-vae`` and ``seamless-denoiser``; :mod:`.inpainter` the ``seamless``
inpainter (BLD on the masked image's latents, :mod:`.sampler`).
The specification of record is ``../shared/methods/asuka-seamless.md``, sections 0 and 1. Names below
load on first use: importing this package does not import torch.
"""

from ...lazy import lazy_exports

_LAZY = {name: "blend" for name in ("masked_model_input", "known_latent", "blended_reconstruction",
                                    "two_step_targets", "two_step_loss", "TwoStepTargets", "TwoStepLoss")}
_LAZY |= {name: "vae_loss" for name in ("LDMVAELoss", "VAELossConfig", "NLayerDiscriminator")}
_LAZY |= {name: "method" for name in ("SeamlessVAEMethod", "SeamlessDenoiserMethod")}
_LAZY |= {"SeamlessInpainter": "inpainter", "seamless_sample": "sampler"}

__all__ = sorted(_LAZY)
__getattr__ = lazy_exports(__name__, _LAZY)
