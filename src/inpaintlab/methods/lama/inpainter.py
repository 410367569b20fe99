"""The ``lama`` inpainter: a LaMa generator from an inpaintlab run or export, or LaMa's released checkpoints.

``--option checkpoint=PATH`` takes what ``inpaintlab train lama`` wrote (the run folder, its
``export/`` or the ``generator.safetensors`` file) or LaMa's own release (the ``big-lama`` folder with
``config.yaml`` and ``models/best.ckpt``, or the ``.ckpt`` file). Nothing is unpickled from an
export; a LaMa checkpoint is read by a restricted unpickler that runs no code from the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ...errors import InpaintlabError
from ...inpainters.base import INPAINTERS, Backend, Generators, Requirements
from ...options import option


@dataclass(frozen=True)
class LaMaInpainterOptions:
    """The options of the ``lama`` inpainter."""

    checkpoint: str = option("", "an inpaintlab lama run, its export, or LaMa's big-lama folder / best.ckpt")
    device: str = option("auto", "torch device: auto (CUDA when available), cpu, cuda, cuda:N")


def load_generator(path: str) -> tuple[torch.nn.Module, str]:
    """A LaMa generator in eval mode and a description of where it came from."""
    from ...train.export import META, is_run_checkpoint, read_trained
    from .checkpoint import load_lama_generator
    from .ffc import build_generator, config_from_dict

    p = Path(path).expanduser()
    ours = (p / META).is_file() or (p / "export" / META).is_file() or (p / "checkpoints" / "last.ckpt").is_file() \
        or p.name in (META, "generator.safetensors") or is_run_checkpoint(p)
    if ours:
        meta, state = read_trained(p)
        if meta.get("method") != "lama":
            raise InpaintlabError(f"{path} holds a {meta.get('method')!r} generator, not a lama one; use "
                                  f"--model {meta.get('method')}")
        generator = build_generator(config_from_dict(meta["generator"]))
        generator.load_state_dict(state, strict=True)
        return generator.eval(), f"inpaintlab {meta.get('method')} at step {meta.get('steps')}"
    return load_lama_generator(p), "LaMa checkpoint"


@INPAINTERS.register("lama")
class LaMaInpainter(Backend):
    """LaMa (Suvorov et al. 2022): a trained inpaintlab lama run, or LaMa's released Big-LaMa checkpoint."""

    Options = LaMaInpainterOptions
    needs_weights = True

    def __init__(self, options: LaMaInpainterOptions | None = None, **values):
        super().__init__(options, **values)
        from ...devices import resolve_device

        if not self.options.checkpoint:
            raise InpaintlabError("lama needs --option checkpoint=PATH: a run of `inpaintlab train lama`, its export, "
                                  "or LaMa's big-lama folder (config.yaml + models/best.ckpt)")
        self.device = resolve_device(self.options.device, allow_auto=True)
        generator, self.source = load_generator(self.options.checkpoint)
        self.generator = generator.to(self.device)
        self.requirements = Requirements(size_multiple=8, device=str(self.device))

    @torch.no_grad()
    def inpaint(self, images: torch.Tensor, hole: torch.Tensor, *, generator: Generators) -> torch.Tensor:
        """``G([image * (1 - hole), hole])``: LaMa's input and its sigmoid output in [0, 1] (deterministic)."""
        return self.generator(torch.cat([images * (1 - hole), hole], dim=1)).float()


__all__ = ["LaMaInpainter", "LaMaInpainterOptions", "load_generator"]
