"""``inpaintlab rip ...``: run (or resume) the Recursive InPainting benchmark, draw its figures, export it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from ..cliargs import default, joined
from ..console import note, out, run_with_progress, status
from .config import RipConfig

app = typer.Typer(help="Recursive InPainting (RIP): how stable is an inpainter applied again and again?",
                  no_args_is_help=True)


def _d(name: str):
    return default(RipConfig, name)


@app.command("run")
def run(
    out_dir: Path = typer.Option(..., "--out", "-o", help="Run folder: config.json, results.sqlite, kept images, figures."),
    images: str = typer.Option(_d("images"), help="'builtin' (scikit-image's sample photos), a folder, a glob, or a "
                                                  "Hugging Face dataset: 'hf:huggan/wikiart?sample=100&seed=0' (the "
                                                  "paper's 100 random WikiArt images; also split=, limit=)."),
    model: str = typer.Option(_d("model"), "--model", "-m", help="Inpainter backend (see `inpaintlab models`)."),
    option: Optional[list[str]] = typer.Option(None, "--option", help="Backend option KEY=VALUE (repeatable); "
                                                                      "`inpaintlab models NAME` lists them."),
    compositing: str = typer.Option(_d("compositing"), help="hard (paste only the cell, the paper's choice), "
                                                            "feather or poisson."),
    mask_sizes: str = typer.Option(joined(_d("mask_sizes")), help="Cell sizes in pixels; each must divide --size."),
    percent: float = typer.Option(_d("percent"), help="Stop when this share of the image's pixels has been inpainted."),
    checkpoint_every: float = typer.Option(_d("checkpoint_every"),
                                           help="Score against the original every this many percent (0 % included)."),
    seeds: str = typer.Option(joined(_d("seeds")), help="Seeds: '0', '0,1,2' or '0-9'; one trajectory per image, "
                                                        "cell size and seed."),
    metrics: str = typer.Option(joined(_d("metrics")), help="Metrics against the original; one whose weights are "
                                                            "missing is skipped with a note."),
    size: int = typer.Option(_d("size"), help="Working size: images are padded to a square with blank bands, "
                                              "then resized."),
    pad_color: str = typer.Option(joined(_d("pad_color")), help="Colour of the blank bands (and behind "
                                                                "transparency), R,G,B in 0-255."),
    sampling: str = typer.Option(_d("sampling"), help="Cell draws: 'replacement' (independent, the paper) or "
                                                      "'no-replacement'."),
    quantize: bool = typer.Option(_d("quantize"), help="Round each iteration's result to uint8, as a saved image "
                                                       "would be."),
    keep_images: str = typer.Option(_d("keep_images"), help="Images to keep: checkpoints, ends (0 % and last) or none."),
    batch_size: int = typer.Option(_d("batch_size"), help="Trajectories per inpainter call; never changes a result."),
    device: str = typer.Option(_d("device"), help="Torch device for metrics and GPU backends (cpu, cuda, cuda:1)."),
    feature_cache_gb: float = typer.Option(_d("feature_cache_gb"), help="Memory for the originals' cached LPIPS "
                                                                        "features; past it they are recomputed "
                                                                        "(never changes a result)."),
    report: bool = typer.Option(True, help="Write the figures into OUT/figures when the run ends."),
):
    """Run the RIP benchmark, or resume it: run the same command again after an interruption."""
    from ..cliargs import parse_ints, parse_key_values, parse_names
    from .engine import RipRun

    cfg = RipConfig(images=images, model=model, model_options=parse_key_values(option, "--option"),
                    compositing=compositing, mask_sizes=parse_ints(mask_sizes, "--mask-sizes"), percent=percent,
                    checkpoint_every=checkpoint_every, seeds=parse_ints(seeds, "--seeds"),
                    metrics=parse_names(metrics), size=size, pad_color=parse_ints(pad_color, "--pad-color"),
                    sampling=sampling, quantize=quantize, keep_images=keep_images, batch_size=batch_size,
                    device=device, feature_cache_gb=feature_cache_gb)
    t0 = time.perf_counter()
    rip = RipRun(cfg, out_dir, log=note)
    with status(f"loading {model}, the images and the metrics"):  # a diffusion model takes a while
        rip.prepare()  # rejects bad input before any work
    summary = run_with_progress(rip, f"RIP {model}", "inpaintings", out_dir)
    wall = time.perf_counter() - t0
    for path, why in summary.failed_images:
        note(f"skipped unreadable image {path}: {why}")
    t = summary.timings
    out.print(f"RIP done in {wall:.1f} s: {summary.trajectories} trajectories, {summary.calls} inpainter calls "
              f"({summary.resumed} resumed), metrics: {', '.join(summary.metrics) or 'none'}; time in the "
              f"inpainter {t['inpaint']:.1f} s, in metrics {t['metrics']:.1f} s, elsewhere "
              f"{wall - t['inpaint'] - t['metrics']:.1f} s", markup=False)
    if report:
        from ..report.rip import make_report

        files = make_report(out_dir)
        out.print(f"figures: {out_dir / 'figures'} ({len(files)} files)", markup=False)
    print_final_table(out_dir)


def print_final_table(run_dir: Path) -> None:
    """Mean +- std at the last checkpoint, per metric and cell size."""
    from rich.table import Table

    from ..report.rip import load_run, summary_table

    _, metrics, _ = load_run(run_dir)
    table = summary_table(metrics)
    last = table.loc[table.groupby(["metric", "mask_size"])["percent"].idxmax()]
    t = Table("metric", "cell", "percent", "mean", "std", "n", title="at the last checkpoint")
    for r in last.itertuples():
        t.add_row(r.metric, str(r.mask_size), f"{r.percent:g}", f"{r.mean:.4f}",
                  "" if r.std != r.std else f"{r.std:.4f}", str(r.count))
    out.print(t)


@app.command("report")
def report(
    run_dir: Path = typer.Argument(..., help="A RIP run folder."),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to write the figures (default "
                                                                     "RUN_DIR/figures)."),
):
    """Write the figures of a RIP run: mean +- std, per-image scatter, seed spread, image strips."""
    from ..report.rip import make_report

    for f in make_report(run_dir, out_dir):
        out.print(str(f), markup=False)
    print_final_table(run_dir)


@app.command("export")
def export(
    run_dir: Path = typer.Argument(..., help="A RIP run folder."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help="csv or parquet (default: from the --output "
                                                                       "suffix, else csv)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Destination file (default "
                                                                       "RUN_DIR/metrics.FORMAT)."),
):
    """Export the metrics table (image, mask_size, seed, iteration, percent, metric, value)."""
    from ..report.rip import export as export_metrics

    out.print(str(export_metrics(run_dir, format, output)), markup=False)


__all__ = ["app", "print_final_table"]
