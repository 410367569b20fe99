"""``inpaintlab datasets ...``: the dataset commands (wired into the main CLI as ``datasets``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from ..cliargs import parse_key_values
from ..console import note, out, progress
from ..errors import InpaintlabError
from . import DEFAULT_CLIP

__all__ = ["app", "parse_domains", "parse_foreground"]

app = typer.Typer(help="Datasets: image folders, Hugging Face hub datasets, the MISATO benchmark builder.",
                           no_args_is_help=True)



def _name_value_pairs(items: list[str] | None, flag: str, example: str) -> list[tuple[str, str]]:
    """``["a=x", ...]`` -> [("a", "x"), ...] in the given order; anything else is one line naming ``flag``."""
    pairs = []
    for item in items or []:
        name, sep, spec = item.partition("=")
        if not sep or not name.strip() or not spec.strip():
            raise InpaintlabError(f"{flag} {item!r} is not NAME=DIR, e.g. {flag} {example}")
        pairs.append((name.strip(), spec.strip()))
    return pairs


def parse_domains(items: list[str] | None) -> list[tuple[str, str]]:
    """``["indoor=/data/mp3d", ...]`` -> [("indoor", "/data/mp3d"), ...] in the given order."""
    return _name_value_pairs(items, "--domain", "indoor=/data/matterport")


def parse_foreground(items: list[str] | None) -> dict[str, str]:
    """``["background=/data/coco-fg", ...]`` -> {"background": "/data/coco-fg"}; a domain named twice is an error."""
    pairs = _name_value_pairs(items, "--foreground", "background=/data/coco-foreground")
    names = [name for name, _ in pairs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InpaintlabError(f"--foreground names domain {', '.join(twice)} more than once; give one folder per domain")
    return dict(pairs)


@app.command("list")
def list_datasets():
    """The registered image-source kinds: what `--images` / `--names-from` / `--domain` accept."""
    from . import DATASETS

    for name, cls in DATASETS.items():
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        spec = {"builtin": "builtin", "folder": "DIR or GLOB"}.get(name, f"{name}:...")
        out.print(f"{spec:14s} {doc}", markup=False)


@app.command("build-misato")
def build_misato_command(
    domain: list[str] = typer.Option(..., "--domain", help="NAME=SOURCE: a folder, a glob or hf:NAME, as --images "
                                                            "(repeatable; the order seeds the masks)."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Output folder: images/, masks/, manifest.json."),
    per_domain: int = typer.Option(500, help="Images per domain = bisecting k-means clusters (the paper: 500)."),
    clip: str = typer.Option(DEFAULT_CLIP, help="CLIP model: a Hugging Face hub id or a local save_pretrained folder."),
    size: int = typer.Option(512, help="Side of the square output images (centre crop, then resize)."),
    seed: int = typer.Option(0, help="Seed of the clustering and of the masks."),
    mask_kind: str = typer.Option("misato", help="Mask generator (see `inpaintlab masks`); misato defaults to "
                                                  "MISATO's masks, the mixture without rectangles (rectangles=false)."),
    mask_param: Optional[list[str]] = typer.Option(None, "--mask-param", help="Mask generator parameter KEY=VALUE (repeatable)."),
    foreground: Optional[list[str]] = typer.Option(None, "--foreground", help="NAME=DIR: a background domain's "
                                                   "foreground masks (<image stem>.png, white = foreground), never "
                                                   "in the hole (ASUKA's COCO domain; repeatable)."),
    foreground_min_hole: float = typer.Option(0.01, help="A background domain's hole must cover more than this "
                                                         "share of the image, else it is drawn again."),
    allow_fewer: bool = typer.Option(False, help="Take all images of a domain that has fewer than --per-domain."),
    batch_size: int = typer.Option(32, help="Images per CLIP call; never changes the selection beyond float noise."),
    device: str = typer.Option("cpu", help="Torch device for CLIP (cpu, cuda, cuda:1)."),
):
    """Build a MISATO-style benchmark: CLIP features, bisecting k-means, the image nearest each centre, masks."""
    from .misato import MisatoConfig, build_misato

    cfg = MisatoConfig(domains=parse_domains(domain), per_domain=per_domain, size=size, seed=seed, clip=clip,
                       mask_kind=mask_kind, mask_params=parse_key_values(mask_param, "--mask-param"),
                       foreground=parse_foreground(foreground), foreground_min_hole=foreground_min_hole,
                       allow_fewer=allow_fewer, batch_size=batch_size, device=device)
    t0 = time.perf_counter()
    with progress("CLIP embeddings", "images") as report:
        summary = build_misato(cfg, out_dir, log=note, progress=report)
    counts = ", ".join(f"{name} {n}" for name, n in summary.counts.items())
    out.print(f"MISATO build done in {time.perf_counter() - t0:.1f} s: {counts}; {len(summary.skipped)} unreadable "
               f"files skipped; manifest {summary.manifest}", soft_wrap=True, markup=False)
