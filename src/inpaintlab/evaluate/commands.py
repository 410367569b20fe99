"""``inpaintlab eval``: score an inpainter (or a folder of results) and compare evaluations.

Wired into the main CLI as ``eval``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..cliargs import default, joined, parse_ints, parse_key_values, parse_names
from ..console import note, out, run_with_progress, status
from ..errors import InpaintlabError
from .config import EvalConfig

app = typer.Typer(
    help="Score an inpainter, or a folder of results, on images and masks paired by file stem; "
         "`eval compare` puts evaluations side by side.",
    no_args_is_help=True, invoke_without_command=True)



def _d(name: str):
    return default(EvalConfig, name)


def _print_table(table, title: str, columns: str) -> None:
    """Print ``table`` transposed (one row per metric) so it fits a terminal; ``columns`` names the header field."""
    from .tables import metric_header

    def _fmt(v) -> str:
        return "–" if isinstance(v, float) and math.isnan(v) else f"{v:.4g}"

    metrics = [c for c in table.columns if c not in ("scheme", "bucket", "n", "run")]
    heads = [f"{str(h).rstrip('%')}\nn={n}" for h, n in zip(table[columns], table["n"])]
    t = Table("metric", *heads, title=title)
    for m in metrics:
        t.add_row(metric_header(m), *[_fmt(v) for v in table[m]])
    out.print(t)


@app.callback()
def evaluate(
    ctx: typer.Context,
    images: Optional[str] = typer.Option(None, help="Ground-truth images: a folder, a glob, 'builtin' or a Hugging "
                                                    "Face dataset 'hf:NAME?split=test&limit=100', as --images of "
                                                    "`rip run`; paired with masks by name."),
    masks: Optional[str] = typer.Option(None, help="Folder (or glob) of masks, white = hole, paired by file stem."),
    results: Optional[str] = typer.Option(None, help="Folder of results to score, paired by stem (or use --model)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Inpainter to run (see `inpaintlab models`)."),
    option: Optional[list[str]] = typer.Option(None, "--option", help="Backend option KEY=VALUE (repeatable); "
                                                                      "`inpaintlab models NAME` lists them."),
    compositing: str = typer.Option(_d("compositing"), help="With --model: hard, feather or poisson."),
    metrics: str = typer.Option(joined(_d("metrics")),
                                help="Metrics, NAME or NAME@REGION (image, hole, kept); one whose weights are "
                                     "missing is skipped with a note."),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o",
                                           help="Run folder: config.json, results.sqlite, table.md/csv, results/."),
    size: Optional[int] = typer.Option(_d("size"), help="Pad to square and resize image, mask and result to this "
                                                        "size (default: native size)."),
    pad_color: str = typer.Option(joined(_d("pad_color")), help="With --size: colour of the blank bands, R,G,B in "
                                                                "0-255."),
    seed: int = typer.Option(_d("seed"), help="With --model: per-image generators come from (seed, image name)."),
    min_bucket_images: int = typer.Option(_d("min_bucket_images"),
                                          help="Dataset-level metrics (FID, P-IDS, U-IDS) per bucket only when it "
                                               "holds at least this many images."),
    batch_size: int = typer.Option(_d("batch_size"), help="Images per inpainter / metric call; never changes a "
                                                          "result."),
    device: str = typer.Option(_d("device"), help="Torch device for metrics and GPU backends."),
):
    """Evaluate, or resume an interrupted evaluation: run the same command again."""
    if ctx.invoked_subcommand is not None:
        return
    missing = [n for n, v in (("--images", images), ("--masks", masks), ("--out", out_dir)) if v is None]
    if missing:
        raise InpaintlabError(f"eval needs {', '.join(missing)} (see `inpaintlab eval --help`)")
    from .runner import EvalRun

    cfg = EvalConfig(images=images, masks=masks, results=results, model=model,
                     model_options=parse_key_values(option, "--option"), compositing=compositing, seed=seed,
                     metrics=parse_names(metrics), size=size, pad_color=parse_ints(pad_color, "--pad-color"),
                     min_bucket_images=min_bucket_images, batch_size=batch_size, device=device)
    run = EvalRun(cfg, out_dir, log=note)
    with status(f"loading {model}, the masks and the metrics" if model else "loading the masks and the metrics"):
        run.prepare()  # rejects bad input before any work
    summary = run_with_progress(run, f"eval {model or 'results'}", "images", out_dir)
    from .tables import build_table

    t = summary.timings
    out.print(f"evaluated {summary.images} images ({summary.resumed} resumed) in {t['total']:.1f} s "
              f"(inpainter {t['inpaint']:.1f} s, metrics {t['metrics']:.1f} s); "
              f"metrics: {', '.join(summary.metrics) or 'none'}", markup=False)
    table = build_table(out_dir)
    shown = table[(table["scheme"] != "strdiffusion") & (table["n"] > 0)]  # StrDiffusion's are LaMa's rows
    _print_table(shown, f"{out_dir}: overall and by hole ratio [lo, hi) %", "bucket")
    out.print(f"tables: {out_dir / 'table.md'}, {out_dir / 'table.csv'}", markup=False)


@app.command("compare")
def compare(
    run_dirs: list[Path] = typer.Argument(..., help="Evaluation folders (from `inpaintlab eval --out`)."),
    bucket: str = typer.Option("all", help="Compare on this hole-ratio bucket, e.g. all or 10-20%."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Also write the table to this markdown file."),
):
    """Print evaluations side by side: one row per run, one column per metric."""
    from ..atomic import atomic_write
    from .tables import compare_table, to_markdown

    table = compare_table(list(run_dirs), bucket)
    _print_table(table, f"hole-ratio bucket {bucket}", "run")
    if markdown is not None:
        text = to_markdown(table, f"hole-ratio bucket {bucket}").encode()
        atomic_write(markdown, lambda f: f.write(text))
        out.print(f"wrote {markdown}", markup=False)


__all__ = ["app", "evaluate", "compare"]
