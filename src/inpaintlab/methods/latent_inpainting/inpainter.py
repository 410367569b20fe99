"""The ``latent-lama`` inpainter: a network trained by ``inpaintlab train latent-inpainting`` (any preset).

``--option checkpoint=PATH`` takes the run folder (its export, or its last checkpoint when the run
stopped early), the ``export/`` folder or file, or one of the run's ``checkpoints/step-NNNNNNN.ckpt``.
Exports are safetensors and checkpoints are read with ``weights_only``: loading runs no code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...errors import InpaintlabError
from ...inpainters.base import INPAINTERS, Backend, Generators, Requirements
from ...options import option
from .presets import AUTOENCODER, INPAINTING, PRESETS
from .network import LatentInpaintingNet, config_from_dict


@dataclass(frozen=True)
class LatentLaMaOptions:
    """The options of the ``latent-lama`` inpainter."""

    checkpoint: str = option("", "a `train latent-inpainting` run, its export, or one of its checkpoints/*.ckpt")
    device: str = option("auto", "torch device: auto (CUDA when available), cpu, cuda, cuda:N")


def load_latent_model(path: str, *, accept: tuple[str, ...] = (INPAINTING,)) -> tuple[LatentInpaintingNet, dict]:
    """A trained network of one of the ``accept``-ed methods in eval mode, and its export metadata."""
    from pathlib import Path

    from ...train.export import read_trained

    if not Path(path).expanduser().exists():
        raise InpaintlabError(f"{path}: no such file or folder (a run of `inpaintlab train {accept[0]}` or its "
                              f"export)")
    meta, state = read_trained(path)
    if meta.get("method") not in accept:
        hint = (f"train an inpainting preset from it with `inpaintlab train {INPAINTING} --autoencoder {path}`"
                if meta.get("method") == AUTOENCODER else f"use --model {meta.get('method')}")
        raise InpaintlabError(f"{path} holds a {meta.get('method')!r} network, not a {' or '.join(accept)} one; "
                              f"{hint}")
    net = LatentInpaintingNet(config_from_dict(meta["generator"]))
    problems = net.load_state_dict(state, strict=False)
    if problems.missing_keys or problems.unexpected_keys:
        raise InpaintlabError(f"{path}: the weights do not fit the architecture it names (missing "
                              f"{problems.missing_keys[:3]}, unexpected {problems.unexpected_keys[:3]})")
    return net.eval(), meta


@INPAINTERS.register("latent-lama")
class LatentLaMaInpainter(Backend):
    """Latent-space inpainting (Babin 2024): a refiner on a frozen LaMa autoencoder's latents, any preset."""

    Options = LatentLaMaOptions
    needs_weights = True

    def __init__(self, options: LatentLaMaOptions | None = None, **values):
        super().__init__(options, **values)
        from ...devices import resolve_device

        if not self.options.checkpoint:
            raise InpaintlabError("latent-lama needs --option checkpoint=PATH: a run of `inpaintlab train "
                                  "latent-inpainting` or its export")
        self.device = resolve_device(self.options.device, allow_auto=True)
        net, meta = load_latent_model(self.options.checkpoint)
        self.net = net.to(self.device)
        preset = meta.get("options", {}).get("preset")
        self.source = (f"latent-inpainting preset {preset} ({PRESETS[preset].title}) at step {meta.get('steps')}"
                       if preset in PRESETS else f"latent-inpainting at step {meta.get('steps')}")
        self.requirements = Requirements(size_multiple=net.cfg.downscale, device=str(self.device))

    @torch.no_grad()
    def inpaint(self, images: torch.Tensor, hole: torch.Tensor, *, generator: Generators) -> torch.Tensor:
        """``D(R(E(image * (1 - hole), hole)))`` in [0, 1] (deterministic)."""
        return self.net(images, hole).float()


__all__ = ["LatentLaMaInpainter", "LatentLaMaOptions", "load_latent_model"]
