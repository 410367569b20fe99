"""``inpaintlab masks``: generate mask sets reproducibly from a seed, and preview them."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ..cliargs import parse_key_values
from ..console import out, progress
from ..errors import InpaintlabError
from .base import MASKS, factory_params


def kinds_help() -> str:
    """One paragraph per registered kind: its parameters (defaults) and what it draws."""
    lines = []
    for name in MASKS.names():
        doc = (MASKS.get(name).__doc__ or "").strip().splitlines()[0]
        params = ", ".join(f"{k}={v}" for k, v in factory_params(name).items()) or "no parameters"
        # escaped: typer renders help as rich markup, which would eat "[...]"
        lines.append(escape(f"{name} [{params}]: {doc}"))
    return "\n\n".join(lines)


app = typer.Typer(help="Mask sets of the papers' families (LaMa, Co-Mod/MAT, objects, MISATO, ...), reproducible "
                       "from a seed.", no_args_is_help=True)


@app.command("generate", help="Write COUNT square masks (PNG, white = hole) and manifest.json (kind, params, seed, "
                              "each mask's hole ratio). Mask i depends only on (seed, i).\n\nKinds and their "
                              "--param names (defaults):\n\n" + kinds_help())
def generate_command(
    kind: str = typer.Option(..., "--kind", "-k", help=f"Mask family: {', '.join(MASKS.names())}."),
    count: int = typer.Option(100, "--count", "-n", help="Number of masks."),
    size: int = typer.Option(512, "--size", help="Side of the square masks in pixels."),
    seed: int = typer.Option(0, "--seed", help="Seed; mask i is drawn from SeedSequence([seed, i])."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p", help="Generator parameter KEY=VALUE (repeatable)."),
    names_from: Optional[str] = typer.Option(
        None, "--names-from", help="One mask per image of this set (any --images source: 'builtin', a folder, a glob "
                                   "or hf:NAME), named after the image so `inpaintlab eval` pairs them; replaces "
                                   "--count."),
):
    import numpy as np

    from ..datasets import open_image_set
    from .base import make_generator
    from .sets import generate_set

    params = parse_key_values(param, "--param", "lo=0.1")
    MASKS.get(kind)
    make_generator(kind, **params)  # a wrong kind or parameter before anything is read or written
    names = open_image_set(names_from).names if names_from is not None else None
    with progress(f"{kind} masks", "masks") as report:
        manifest = generate_set(kind, count, size, seed, out_dir, params, names=names, progress=report)
    ratios = [m["hole_ratio"] for m in manifest["masks"]]
    out.print(f"wrote {len(ratios)} {kind} masks to {out_dir} (hole ratio mean {np.mean(ratios):.1%}, "
              f"range {min(ratios):.1%}-{max(ratios):.1%})", markup=False)


@app.command("preview")
def preview_command(
    folder: Path = typer.Argument(..., help="A folder written by `inpaintlab masks generate`."),
    limit: int = typer.Option(64, help="Masks on the contact sheet (the first ones)."),
):
    """Write FOLDER/preview/contact_sheet.png (a grid of the masks) and hole_ratios.png (histogram).

    They go into a sub-folder so the mask folder itself holds only masks (eval pairs every file).
    """
    from .sets import MANIFEST, contact_sheet, ratio_histogram, read_manifest

    manifest = read_manifest(folder)
    if not manifest.get("masks"):
        raise InpaintlabError(f"{folder / MANIFEST} lists no masks")
    dest = folder / "preview"
    dest.mkdir(exist_ok=True)
    contact_sheet(folder, manifest, dest / "contact_sheet.png", max(1, limit))
    ratio_histogram(manifest, dest / "hole_ratios.png")
    out.print(f"wrote {dest / 'contact_sheet.png'} and {dest / 'hole_ratios.png'}", markup=False)
