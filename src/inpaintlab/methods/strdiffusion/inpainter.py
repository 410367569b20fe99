"""The ``ir-sde`` and ``strdiffusion`` inpainters: networks trained by ``inpaintlab train ir-sde`` / ``strdiffusion``.

``--option checkpoint=`` takes a run (or its export); for ``strdiffusion`` the folder holding the
``structure/``, ``texture/`` and ``discriminator/`` runs that one ``--out`` collects. The SDE (T,
lambda, eps) and the edge sigma come from the checkpoints; a different value asked for is refused,
since a network only knows the schedule it was trained with. Each call records the network
evaluations per image in ``last_nfe`` (texture + structure) and ``last_disc_calls``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from ...errors import InpaintlabError
from ...inpainters.base import INPAINTERS, Backend, Generators, Requirements, per_sample_generators
from ...options import option
from .names import IRSDE, PARTS, STRDIFFUSION
from .sde import SDEConfig, Schedule


def _load_part(path: Path, method: str, part: str | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    from ...train.export import read_trained_as
    from .discriminator import DiscriminatorConfig, TimeDiscriminator
    from .unet import ConditionalUNet, unet_config_from_dict

    meta, state = read_trained_as(path, method, command=f"inpaintlab train {method}"
                                                        f"{' --part ' + part if part else ''}")
    gen = meta["generator"]
    if part is not None and gen.get("part") != part:
        raise InpaintlabError(f"{path} holds StrDiffusion's {gen.get('part')} network, not its {part} one")
    if part == "discriminator":
        net: torch.nn.Module = TimeDiscriminator(DiscriminatorConfig.from_dict(gen["network"]))
    else:
        net = ConditionalUNet(unet_config_from_dict(gen["network"] if part else gen["unet"]))
    net.load_state_dict(state, strict=True)
    return net.eval(), meta


def _check_same(what: str, stored: Any, asked: Any) -> None:
    if asked is not None and asked != stored:
        raise InpaintlabError(f"the networks were trained with {what}={stored}; sampling with {what}={asked} is "
                              f"refused (they only know the schedule they were trained on): drop the option")


@dataclass(frozen=True)
class IRSDEInpainterOptions:
    """The options of the ``ir-sde`` inpainter."""

    checkpoint: str = option("", "a run of `inpaintlab train ir-sde` or its export")
    sampler: Literal["reverse-sde", "repaint"] = option(
        "reverse-sde", "reverse-sde: IR-SDE's sampler; repaint: with RePaint's known-region pinning and jumps")
    jump: int = option(10, "repaint: steps per stretch before jumping back", ge=1)
    resample: int = option(5, "repaint: passes over each stretch (1: no jumps)", ge=1)
    T: int | None = option(None, "must equal the trained T if given (the checkpoint's is used)", ge=2)
    device: str = option("auto", "torch device: auto (CUDA when available), cpu, cuda, cuda:N")


@INPAINTERS.register(IRSDE)
class IRSDEInpainter(Backend):
    """IR-SDE (Luo et al. 2023): the reverse of a mean-reverting SDE from the masked image (holes white)."""

    Options = IRSDEInpainterOptions
    needs_weights = True

    def __init__(self, options: IRSDEInpainterOptions | None = None, **values):
        super().__init__(options, **values)
        from ...devices import resolve_device

        if not self.options.checkpoint:
            raise InpaintlabError("ir-sde needs --option checkpoint=PATH: a run of `inpaintlab train ir-sde`")
        self.device = resolve_device(self.options.device, allow_auto=True)
        net, meta = _load_part(Path(self.options.checkpoint).expanduser(), IRSDE)
        gen = meta["generator"]
        _check_same("T", gen["sde"]["T"], self.options.T)
        self.net, self.fill = net.to(self.device), float(gen["fill"])
        self.schedule = Schedule(SDEConfig(**gen["sde"]))
        self.requirements = Requirements(size_multiple=net.cfg.pad_multiple, device=str(self.device))
        self.last_nfe: list[int] = []

    @torch.no_grad()
    def inpaint(self, images: torch.Tensor, hole: torch.Tensor, *, generator: Generators) -> torch.Tensor:
        """IR-SDE's reverse SDE from mu = image x keep + fill x hole (T evaluations; RePaint: more)."""
        from .sampler import Counts, Noise, irsde_sample, repaint_irsde_sample

        o, n = self.options, images.shape[0]
        noise = Noise(per_sample_generators(generator, n), images.device)
        mu, counts = images * (1 - hole) + self.fill * hole, Counts(n)
        if o.sampler == "repaint":
            y = repaint_irsde_sample(self.net, self.schedule, mu, images, hole, noise, o.jump, o.resample, counts)
        else:
            y = irsde_sample(self.net, self.schedule, mu, noise, counts)
        self.last_nfe = counts.nfe
        return y.clamp(0, 1).float()


@dataclass(frozen=True)
class StrDiffusionInpainterOptions:
    """The options of the ``strdiffusion`` inpainter."""

    checkpoint: str = option("", "the folder whose structure/, texture/ and discriminator/ runs `inpaintlab train "
                                 "strdiffusion --part ... --out FOLDER` wrote")
    sampler: Literal["reference", "paper"] = option(
        "reference", "reference: the public sampler (guidance for t >= 0.4T, scheduled resampling); paper: Eq. 17 "
                     "with a discriminator threshold")
    resampling: bool = option(True, "adaptive resampling with the discriminator (false: the paper's case C)")
    threshold: float = option(0.5, "paper sampler: resample while sigmoid(D) is below this (ours)", gt=0, lt=1)
    max_tries: int = option(5, "paper sampler: most resampling tries per step (ours)", ge=1)
    structure: Literal["network", "oracle"] = option(
        "network", "network: the structure diffusion; oracle: a diagnostic that guides with the closed-form "
                   "structure state of the complete image (it reads the hole: never a result), no resampling")
    T: int | None = option(None, "must equal the trained T if given (the checkpoints' is used)", ge=2)
    edge_sigma: float | None = option(None, "must equal the trained Canny sigma if given", gt=0)
    device: str = option("auto", "torch device: auto (CUDA when available), cpu, cuda, cuda:N")


@INPAINTERS.register(STRDIFFUSION)
class StrDiffusionInpainter(Backend):
    """StrDiffusion (Liu et al. 2024): texture diffusion guided by a structure diffusion, with adaptive resampling."""

    Options = StrDiffusionInpainterOptions
    needs_weights = True

    def __init__(self, options: StrDiffusionInpainterOptions | None = None, **values):
        super().__init__(options, **values)
        from ...devices import resolve_device

        o = self.options
        if not o.checkpoint:
            raise InpaintlabError("strdiffusion needs --option checkpoint=FOLDER: the --out of `inpaintlab train "
                                  "strdiffusion --part structure|texture|discriminator`")
        self.device = resolve_device(o.device, allow_auto=True)
        folder = Path(o.checkpoint).expanduser()
        if o.structure == "oracle" and o.sampler == "paper":
            raise InpaintlabError("structure=oracle is case C with the true structure (no resampling): drop "
                                  "sampler=paper")
        wanted = PARTS if o.resampling and o.structure == "network" else PARTS[:2]
        missing = [p for p in wanted if not (folder / p).exists()]
        if missing:
            hint = " (or sample without it: --option resampling=false)" if missing == ["discriminator"] else ""
            raise InpaintlabError(f"{folder} has no {', '.join(missing)} run: train it with `inpaintlab train "
                                  f"strdiffusion --part {missing[0]} --out {folder}`{hint}")
        parts = {p: _load_part(folder / p, STRDIFFUSION, p) for p in wanted}
        gens = {p: meta["generator"] for p, (_, meta) in parts.items()}
        for key in ("sde", "edge_sigma"):
            values = {p: g[key] for p, g in gens.items()}
            if len({repr(v) for v in values.values()}) > 1:
                raise InpaintlabError(f"the parts in {folder} were trained with different {key}: {values}")
        self.gen = gens["texture"]
        _check_same("T", self.gen["sde"]["T"], o.T)
        _check_same("edge_sigma", self.gen["edge_sigma"], o.edge_sigma)
        self.nets = {p: net.to(self.device) for p, (net, _) in parts.items()}
        self.schedule = Schedule(SDEConfig(**self.gen["sde"]))
        self.requirements = Requirements(size_multiple=self.nets["texture"].cfg.pad_multiple, device=str(self.device))
        self.last_nfe: list[int] = []
        self.last_disc_calls: list[int] = []

    @torch.no_grad()
    def inpaint(self, images: torch.Tensor, hole: torch.Tensor, *, generator: Generators) -> torch.Tensor:
        """The texture state y_0 sampled with structure guidance (the wrapper pastes the known pixels back)."""
        from .sampler import (Counts, Noise, strdiffusion_oracle_sample, strdiffusion_paper_sample,
                              strdiffusion_reference_sample)
        from .structure import grayscale, structure_edges

        o, n, s = self.options, images.shape[0], self.schedule
        noise = Noise(per_sample_generators(generator, n), images.device)
        keep = 1 - hole
        mu_y, gray_known = images * keep, grayscale(images) * keep
        # the known pixels' edges only: the reference's complete-image Canny needs the hole's content
        mu_x = structure_edges(images, hole, self.gen["edge_sigma"], "known")
        texture, structure = self.nets["texture"], self.nets["structure"]

        def tex(y, mu, t, guide):
            return texture(y, mu, t, structure=guide)

        disc = self.nets["discriminator"].score if "discriminator" in self.nets else None
        counts = Counts(n)
        if o.structure == "oracle":  # the diagnostic: the complete image's grayscale, hole included
            y = strdiffusion_oracle_sample(tex, s, s, mu_y, grayscale(images), mu_x, noise, counts)
        elif o.sampler == "reference":
            y = strdiffusion_reference_sample(tex, structure, disc, s, s, mu_y, gray_known, mu_x, hole, noise,
                                              resampling=o.resampling, counts=counts)
        else:
            y = strdiffusion_paper_sample(tex, structure, disc if o.resampling else None, s, s, mu_y, gray_known,
                                          mu_x, hole, noise, o.threshold, o.max_tries, counts)
        self.last_nfe, self.last_disc_calls = counts.nfe, counts.disc
        return y.clamp(0, 1).float()


__all__ = ["IRSDEInpainter", "StrDiffusionInpainter", "IRSDEInpainterOptions", "StrDiffusionInpainterOptions"]
