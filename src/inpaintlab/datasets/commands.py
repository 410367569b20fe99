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

__all__ = ["app", "parse_domains"]

app = typer.Typer(help="Datasets: image folders, Hugging Face hub datasets, the MISATO benchmark builder.",
                           no_args_is_help=True)



def parse_domains(items: list[str] | None) -> list[tuple[str, str]]:
    """``["indoor=/data/mp3d", ...]`` -> [("indoor", "/data/mp3d"), ...] in the given order."""
    domains = []
    for item in items or []:
        name, sep, spec = item.partition("=")
        if not sep or not name.strip() or not spec.strip():
            raise InpaintlabError(f"--domain {item!r} is not NAME=DIR, e.g. --domain indoor=/data/matterport")
        domains.append((name.strip(), spec.strip()))
    return domains


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
    mask_kind: str = typer.Option("misato", help="Mask generator (see `inpaintlab masks`)."),
    mask_param: Optional[list[str]] = typer.Option(None, "--mask-param", help="Mask generator parameter KEY=VALUE (repeatable)."),
    allow_fewer: bool = typer.Option(False, help="Take all images of a domain that has fewer than --per-domain."),
    batch_size: int = typer.Option(32, help="Images per CLIP call; never changes the selection beyond float noise."),
    device: str = typer.Option("cpu", help="Torch device for CLIP (cpu, cuda, cuda:1)."),
):
    """Build a MISATO-style benchmark: CLIP features, bisecting k-means, the image nearest each centre, masks."""
    from .misato import MisatoConfig, build_misato

    cfg = MisatoConfig(domains=parse_domains(domain), per_domain=per_domain, size=size, seed=seed, clip=clip,
                       mask_kind=mask_kind, mask_params=parse_key_values(mask_param, "--mask-param"),
                       allow_fewer=allow_fewer, batch_size=batch_size, device=device)
    t0 = time.perf_counter()
    with progress("CLIP embeddings", "images") as report:
        summary = build_misato(cfg, out_dir, log=note, progress=report)
    counts = ", ".join(f"{name} {n}" for name, n in summary.counts.items())
    out.print(f"MISATO build done in {time.perf_counter() - t0:.1f} s: {counts}; {len(summary.skipped)} unreadable "
               f"files skipped; manifest {summary.manifest}", soft_wrap=True, markup=False)
