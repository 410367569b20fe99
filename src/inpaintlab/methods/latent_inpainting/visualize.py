"""The thesis's latent-space visualisation (Fig. 4.4, Eq. 4.1): decoded differences of latents.

``D[E(I_gt) - E(I_masked)]`` decodes what masking removed from the latent: the thesis's argument that
the ground truth's latent holds what the refiner must restore, and that the damage spreads beyond
the hole over the encoder's receptive field. For a trained inpainting network two more panels
show the refiner's work: ``D[R(z) - z]`` (what it added to the masked latent ``z``) and
``D[E(I_gt) - R(z)]`` (what is still missing). The decoder's sigmoid output is not zero at a zero
latent, so ``D(0)``, the neutral grey of these panels, is drawn too.
"""

from __future__ import annotations

import torch

from .network import Latent, LatentInpaintingNet


def minus(a: Latent, b: Latent) -> Latent:
    """Branch-wise difference of two (local, global) latents."""
    return a[0] - b[0], a[1] - b[1]


@torch.no_grad()
def latent_panels(net: LatentInpaintingNet, images: torch.Tensor, hole: torch.Tensor) -> dict[str, torch.Tensor]:
    """Named (N, 3, H, W) panels in [0, 1]: the thesis's Eq. 4.1 and, for an inpainting network, the refiner's."""
    net = net.eval()
    encode_ae = net.reference if net.reference is not None else net.encoder  # E of the autoencoder (3 channels)
    masked = images * (1 - hole)
    gt, damaged = encode_ae(images), encode_ae(masked)
    zero = (torch.zeros_like(gt[0]), torch.zeros_like(gt[1]))
    panels = {"image": images, "masked": masked + 0.5 * hole, "D[E(gt) - E(masked)]": net.decode(minus(gt, damaged)),
              "D(0)": net.decode(zero)}
    if len(net.refiner):
        z = net.encode(net.encoder_input(images, hole), hole)
        refined = net.refine(z)
        panels["D[R(z) - z]"] = net.decode(minus(refined, z))
        panels["D[E(gt) - R(z)]"] = net.decode(minus(gt, refined))
        panels["output"] = torch.where(hole > 0.5, net.decode(refined), images)
    return panels


__all__ = ["latent_panels", "minus"]
