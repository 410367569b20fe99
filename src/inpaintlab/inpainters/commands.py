"""``inpaintlab inpaint`` and ``inpaintlab models``: fill one image, list the backends and their options."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..console import out

app = typer.Typer()

OPTION_HELP = "Backend option KEY=VALUE (repeatable); `inpaintlab models NAME` lists them with types and defaults."


@app.command()
def inpaint(
    image: Path = typer.Argument(..., help="Image file to fill (PNG, JPEG, WebP, TIFF, ...)."),
    mask: Path = typer.Argument(..., help="Mask file of the same size: white = hole, black = keep."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the result (format from the suffix)."),
    model: str = typer.Option("telea", "--model", "-m", help="Inpainter backend (see `inpaintlab models`)."),
    option: Optional[list[str]] = typer.Option(None, "--option", help=OPTION_HELP),
    compositing: str = typer.Option("hard", help="How the result meets the kept pixels (`inpaintlab models` lists "
                                                 "the modes): hard, feather or poisson."),
    seed: int = typer.Option(0, help="Seed of the backend's random generator (stochastic backends)."),
):
    """Inpaint one image: pixels outside the mask are copied from the input exactly.

    A transparent image keeps its alpha channel: outside the hole the output holds the file's own
    RGBA values, inside it the new colours under the original alpha (so write PNG, WebP or TIFF).
    The model sees transparent pixels composited on black. 16-bit files are read and written at 8 bits.
    """
    import torch

    from ..cliargs import parse_key_values
    from ..images import (load_image, load_mask, output_format, read_rgba8, save_image, save_rgba,
                          to_numpy_uint8)
    from . import build_options, load_inpainter

    options = parse_key_values(option, "--option")
    build_options(model, options)  # a wrong name or option is the cheapest mistake to report
    x = load_image(image, size=None)
    hole = load_mask(mask, size=tuple(x.shape[-2:]))
    rgba = read_rgba8(image)
    output_format(output, alpha=rgba is not None)
    inp = load_inpainter(model, compositing=compositing, **options)
    res = inp.run(x, hole, generator=[torch.Generator().manual_seed(seed)])
    if rgba is None:
        save_image(output, res.images)
    else:
        # transparency: every kept pixel is the file's own RGBA value; the hole gets the new colours
        # under its original alpha (the model saw transparent pixels on black, as everywhere in inpaintlab)
        filled = rgba.copy()
        inside = hole[0, 0].numpy() > 0.5
        filled[inside, :3] = to_numpy_uint8(res.images)[inside]
        save_rgba(output, filled)
    out.print(f"wrote {output} ({model}, hole {hole.mean().item():.1%} of the image, "
              f"kept-region drift before compositing {res.kept_drift.item():.4f})", markup=False)


@app.command()
def models(name: Optional[str] = typer.Argument(None, help="A backend: list its options with types, defaults "
                                                         "and help.")):
    """List the inpainter backends (with their options), or one backend's options in full."""
    from rich.table import Column, Table

    from ..options import describe, specs_of
    from . import COMPOSITORS, INPAINTERS

    if name is not None:
        cls = INPAINTERS.get(name)
        out.print(f"{name}: {(cls.__doc__ or '').strip().splitlines()[0]}", markup=False)
        t = Table(Column("option", no_wrap=True), Column("takes", overflow="fold"), Column("default", overflow="fold"),
                  Column("what it does", overflow="fold"))
        for row in describe(specs_of(cls.Options)):
            t.add_row(*row)
        out.print(t if t.row_count else "no options")
        return
    # fold, never truncate: a default repo id cut to "stabilityai/stab…" cannot be copied
    t = Table(Column("name", no_wrap=True), Column("options (defaults)", overflow="fold"),
              Column("description", overflow="fold"))
    for backend, cls in INPAINTERS.items():
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        t.add_row(backend, ", ".join(f"{o}={d}" for o, _, d, _ in describe(specs_of(cls.Options))), doc)
    out.print(t)
    out.print(f"compositing modes (--compositing): {', '.join(COMPOSITORS.names())}; "
              f"`inpaintlab models NAME` explains a backend's options", markup=False)
