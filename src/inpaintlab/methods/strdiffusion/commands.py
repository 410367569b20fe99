"""``inpaintlab strdiffusion import`` and ``import-ir-sde``: the authors' published ``.pth`` files as our exports."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ...console import out
from ...errors import InpaintlabError

app = typer.Typer(no_args_is_help=True, help="StrDiffusion and IR-SDE tools: import the published checkpoints.")


def _check_T(T: int) -> None:
    if T < 2:
        raise InpaintlabError(f"--T must be at least 2, got {T}")


@app.command("import")
def import_command(
    structure: Path = typer.Option(..., "--structure", help="The published structure network (structure.pth)."),
    texture: Path = typer.Option(..., "--texture", help="The published texture network (texture.pth)."),
    discriminator: Optional[Path] = typer.Option(None, "--discriminator", help="The published discriminator "
                                                 "(discriminator.pth); without it, sample with "
                                                 "--option resampling=false."),
    T: int = typer.Option(..., "--T", help="The T the files were trained with: Places2 400, PSV 100 (the authors' "
                                           "README). The file does not say, and sampling with another T is wrong."),
    edge_sigma: float = typer.Option(2.0, "--edge-sigma", help="Canny sigma of the structure's edges at sampling "
                                                              "(the reference's test script: 2)."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Folder for structure/, texture/ and discriminator/ "
                                                          "exports: use it as --option checkpoint=FOLDER."),
):
    """Turn StrDiffusion's published .pth files (Baidu links in htyjers/StrDiffusion's README; nothing is
    downloaded) into exports the strdiffusion inpainter loads. The widths are read off the tensors; files
    are read as tensors only."""
    from .published import import_strdiffusion

    _check_T(T)
    if edge_sigma <= 0:
        raise InpaintlabError(f"--edge-sigma must be positive, got {edge_sigma}")
    folder = import_strdiffusion(out_dir, structure=structure, texture=texture, discriminator=discriminator, T=T,
                                 edge_sigma=edge_sigma)
    hint = "" if discriminator is not None else " --option resampling=false"
    out.print(f"imported StrDiffusion (T = {T}) into {folder}; use it with --model strdiffusion --option "
              f"checkpoint={folder}{hint}", markup=False)


@app.command("import-ir-sde")
def import_irsde_command(
    path: Path = typer.Argument(..., help="IR-SDE's inpainting UNet (a *_G.pth, or lastest_EMA.pth for the EMA)."),
    T: int = typer.Option(100, "--T", help="The T it was trained with (IR-SDE's inpainting config: 100)."),
    fill: float = typer.Option(1.0, "--fill", help="mu's value in the hole the network was trained with (IR-SDE: 1)."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Export folder: use it as --option checkpoint=FOLDER."),
):
    """Turn a published or self-trained IR-SDE inpainting .pth into an export the ir-sde inpainter loads."""
    from .published import import_irsde

    _check_T(T)
    folder = import_irsde(out_dir, path, T=T, fill=fill)
    out.print(f"imported IR-SDE (T = {T}) into {folder}; use it with --model ir-sde --option checkpoint={folder}",
              markup=False)
