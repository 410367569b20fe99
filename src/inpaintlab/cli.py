"""The ``inpaintlab`` command line: a thin layer over the library.

Errors caused by input (a bad file, a missing weight, a mismatched run folder) are printed as
one line and exit with status 2; everything already committed stays on disk.
"""

from __future__ import annotations

import os
import sys

import typer

from .datasets.commands import app as datasets_app
from .errors import InpaintlabError
from .evaluate.commands import app as eval_app
from .inpainters.commands import app as inpainter_commands
from .masks.commands import app as masks_app
from .methods.latent_inpainting.commands import app as latent_app
from .methods.strdiffusion.commands import app as strdiffusion_app
from .metrics.commands import app as metric_commands
from .rip.commands import app as rip_app
from .train.commands import app as train_app
from .weights.commands import app as weights_app

app = typer.Typer(help="inpaintlab: run, train and measure image inpainting models, faithfully and stably.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

# One line per command group; each lives in its package's commands.py.
app.add_typer(inpainter_commands)  # inpaint, models
app.add_typer(metric_commands)  # metrics
app.add_typer(rip_app, name="rip")
app.add_typer(eval_app, name="eval")
app.add_typer(train_app, name="train")
app.add_typer(masks_app, name="masks")
app.add_typer(datasets_app, name="datasets")
app.add_typer(weights_app, name="weights")
app.add_typer(latent_app, name="latent")
app.add_typer(strdiffusion_app, name="strdiffusion")


def main() -> None:
    """Entry point: one line for input errors, a traceback only for bugs."""
    try:
        app()
    except InpaintlabError as e:
        sys.stderr.write(f"error: {' '.join(str(e).split())}\n")  # one line, whatever the message held
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: what was committed is kept; run the same command to resume\n")
        sys.exit(130)
    except BrokenPipeError:  # `inpaintlab ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)


if __name__ == "__main__":
    main()
