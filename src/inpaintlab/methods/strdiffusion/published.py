"""The published StrDiffusion and IR-SDE checkpoints, turned into exports our inpainters load.

StrDiffusion's authors publish three ``.pth`` files per data set (Places2 at T = 400, PSV at T = 100;
Baidu links in their README, so nothing here downloads them): the texture network, the structure
network and the discriminator, each the ``state_dict()`` of the module (the reference's
``BaseModel.save_network``; a ``DataParallel`` copy carries ``module.``). IR-SDE's training saves its
UNet the same way (``*_G.pth``, and ``lastest_EMA.pth`` for the EMA). The file holds no architecture and
no schedule: the widths are read off the tensors' shapes, T comes from the user (the README says which
T each file was trained with), and lambda = 30/255, eps = 0.005 are the configs' (all of them).

Files are read with ``torch.load(weights_only=True)``: tensors and plain containers only, so a
checkpoint cannot run code. A file whose keys or shapes do not fit the architecture its shapes imply
is refused in one line naming the problem.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import torch

from ...errors import InpaintlabError
from .discriminator import DiscriminatorConfig, TimeDiscriminator
from .names import IRSDE, PARTS, STRDIFFUSION
from .unet import ConditionalUNet, UNetConfig, unet_config_to_dict

#: the sampling Canny sigma of the reference's test script (``canny(GT, sigma=2)``; training used 3)
REFERENCE_TEST_SIGMA = 2.0
#: lambda (0-255 scale) and eps of every IR-SDE / StrDiffusion config
REFERENCE_SDE = {"max_sigma": 30.0, "eps": 0.005}


def read_state_dict(path: str | Path, what: str) -> dict[str, torch.Tensor]:
    """A ``.pth`` state dict, tensors only, without ``DataParallel``'s ``module.`` prefix (or a ``params`` wrap)."""
    from ...weights import read_checkpoint

    p = Path(path).expanduser()
    if not p.is_file():
        raise InpaintlabError(f"{path}: no such file (the published {what} .pth)")
    state = read_checkpoint(p, f"{what} checkpoint", p.name)
    if isinstance(state, Mapping) and "params" in state and isinstance(state["params"], Mapping):
        state = state["params"]  # some BasicSR-style savers wrap the state dict
    if not isinstance(state, Mapping) or not state or not all(torch.is_tensor(v) for v in state.values()):
        raise InpaintlabError(f"{path} is not a state dict of tensors (the published {what} .pth)")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def unet_config_of(state: Mapping[str, torch.Tensor], path: str | Path, what: str) -> UNetConfig:
    """The UNet's ``in_nc, out_nc, nf, depth`` and SPADE switch, read off the tensors' shapes."""
    try:
        nf, in2 = state["init_conv.weight"].shape[:2]
        out_nc = state["final_conv.weight"].shape[0]
    except KeyError as e:
        raise InpaintlabError(f"{path} is not an IR-SDE/StrDiffusion UNet (no {e.args[0]}); is it the {what} "
                              f"file?") from None
    levels = {int(m.group(1)) for k in state if (m := re.match(r"downs\.(\d+)\.0\.", k))}
    spade = any(k.startswith("downs.0.4.") for k in state)
    try:
        return UNetConfig(in_nc=int(in2) // 2, out_nc=int(out_nc), nf=int(nf), depth=len(levels), spade=spade)
    except ValueError as e:
        raise InpaintlabError(f"{path}: {e}") from None


def discriminator_config_of(state: Mapping[str, torch.Tensor], path: str | Path) -> DiscriminatorConfig:
    """The discriminator's ``nc, ngf, t_emb_dim``, read off the tensors' shapes."""
    try:
        ngf2, nc = state["start_conv.weight"].shape[:2]
        td = state["t_embed.main.0.weight"].shape[0]
    except KeyError as e:
        raise InpaintlabError(f"{path} is not StrDiffusion's discriminator (no {e.args[0]}); is it the "
                              f"discriminator file?") from None
    return DiscriminatorConfig(nc=int(nc), ngf=int(ngf2) // 2, t_emb_dim=int(td))


def fitted(net: torch.nn.Module, state: Mapping[str, torch.Tensor], path: str | Path, what: str) -> torch.nn.Module:
    """``net`` with ``state`` loaded strictly, or one line saying what does not fit."""
    from ...weights import state_dict_problems

    want = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    problems = state_dict_problems(want, state)
    if problems:
        raise InpaintlabError(f"{path} does not fit the {what} its shapes imply: {'; '.join(problems)}")
    net.load_state_dict(dict(state), strict=True)
    return net


def _check_unet(cfg: UNetConfig, path: str | Path, what: str, channels: int, spade: bool) -> None:
    if (cfg.in_nc, cfg.out_nc, cfg.spade) != (channels, channels, spade):
        kind = "a SPADE-guided " if cfg.spade else "an unguided "
        raise InpaintlabError(f"{path} holds {kind}{cfg.in_nc}-channel UNet, not the {what} network ({channels} "
                              f"channels{', SPADE-guided' if spade else ', unguided'}); are the files swapped?")


def _meta(method: str, generator: dict[str, Any], path: Path) -> dict[str, Any]:
    from ...weights import sha256_of

    return {"method": method, "generator": generator, "steps": None, "ema": None,
            "source": str(path.resolve()), "sha256": sha256_of(path), "imported": "published .pth"}


def _export(net: torch.nn.Module, meta: dict[str, Any], folder: Path) -> Path:
    from ...train.export import export_generator

    return export_generator(net, meta, folder / "export")


def import_strdiffusion(out: str | Path, *, structure: str | Path, texture: str | Path,
                        discriminator: str | Path | None, T: int, edge_sigma: float = REFERENCE_TEST_SIGMA,
                        edges: str = "complete") -> Path:
    """Write the published parts as ``OUT/<part>/export`` (what ``--option checkpoint=OUT`` loads); return OUT.

    ``edges`` records how the networks were trained (the reference's Canny of the complete image);
    sampling always uses the known pixels' edges.
    """
    out = Path(out).expanduser()
    files = {"structure": structure, "texture": texture, "discriminator": discriminator}
    sde = {"T": int(T), **REFERENCE_SDE}
    nets = {}
    for part in PARTS:  # every file read and checked before anything is written
        if files[part] is None:
            continue
        path = Path(files[part]).expanduser()
        state = read_state_dict(path, f"StrDiffusion {part}")
        if part == "discriminator":
            cfg: Any = discriminator_config_of(state, path)
            net: torch.nn.Module = TimeDiscriminator(cfg)
            network = cfg.to_dict()
        else:
            cfg = unet_config_of(state, path, part)
            _check_unet(cfg, path, f"StrDiffusion {part}", 3 if part == "texture" else 1, part == "texture")
            net, network = ConditionalUNet(cfg), unet_config_to_dict(cfg)
        generator = {"part": part, "network": network, "sde": sde, "edge_sigma": float(edge_sigma), "edges": edges,
                     "target": "eq4"}
        nets[part] = (fitted(net, state, path, f"StrDiffusion {part} network"), _meta(STRDIFFUSION, generator, path))
    for part, (net, meta) in nets.items():
        _export(net, meta, out / part)
    return out


def import_irsde(out: str | Path, path: str | Path, *, T: int, fill: float = 1.0) -> Path:
    """Write a published IR-SDE inpainting UNet as ``OUT/export`` (``--model ir-sde --option checkpoint=OUT``)."""
    out, path = Path(out).expanduser(), Path(path).expanduser()
    state = read_state_dict(path, "IR-SDE")
    cfg = unet_config_of(state, path, "IR-SDE")
    _check_unet(cfg, path, "IR-SDE", 3, False)
    net = fitted(ConditionalUNet(cfg), state, path, "IR-SDE UNet")
    generator = {"unet": unet_config_to_dict(cfg), "sde": {"T": int(T), **REFERENCE_SDE}, "fill": float(fill)}
    _export(net, _meta(IRSDE, generator, path), out)
    return out


__all__ = ["import_strdiffusion", "import_irsde", "read_state_dict", "unet_config_of", "discriminator_config_of",
           "REFERENCE_TEST_SIGMA"]
