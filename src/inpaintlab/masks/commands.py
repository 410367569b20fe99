"""``inpaintlab masks``: generate mask sets reproducibly from a seed, and preview them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..atomic import atomic_write
from ..cliargs import parse_key_values
from ..errors import InpaintlabError
from .base import MASKS, factory_params, hole_ratio, make_generator, make_rng

MANIFEST = "manifest.json"


def kinds_help() -> str:
    """One paragraph per registered kind: its parameters (defaults) and what it draws."""
    lines = []
    for name in MASKS.names():
        doc = (MASKS.get(name).__doc__ or "").strip().splitlines()[0]
        params = ", ".join(f"{k}={v}" for k, v in factory_params(name).items()) or "no parameters"
        # escaped: typer renders help as rich markup, which would eat "[...]"
        lines.append(escape(f"{name} [{params}]: {doc}"))
    return "\n\n".join(lines)


masks_app = typer.Typer(help="Mask sets of the papers' families (LaMa, Co-Mod/MAT, objects, MISATO, ...), reproducible "
                             "from a seed.", no_args_is_help=True)
out = Console()


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True))


def generate_set(kind: str, count: int, size: int, seed: int, out_dir: Path, params: dict[str, object],
                 names: list[str] | None = None) -> dict:
    """Write masks ``mask_00000.png``... and ``manifest.json``; mask ``i`` depends on (seed, i) only.

    With ``names`` (e.g. the stems of an image set) mask ``i`` is written as ``names[i].png`` so
    that ``inpaintlab eval`` pairs it with its image, and ``count`` is ``len(names)``.
    """
    if names is not None:
        count = len(names)
    from ..images import save_mask

    if count < 1:
        raise InpaintlabError(f"--count must be at least 1, got {count}")
    if size < 8:
        raise InpaintlabError(f"--size must be at least 8 px, got {size}")
    try:
        generate = make_generator(kind, **params)
    except (TypeError, ValueError) as exc:
        raise InpaintlabError(f"mask generator {kind!r}: {str(exc).splitlines()[0]}") from None
    records = []
    with progress_bar() as bar:
        task = bar.add_task(f"{kind} masks", total=count)
        for i in range(count):
            try:
                hole = generate(size, size, make_rng(seed, i))
            except (TypeError, ValueError) as exc:
                raise InpaintlabError(f"mask generator {kind!r}: {str(exc).splitlines()[0]}") from None
            name = f"{names[i]}.png" if names is not None else f"mask_{i:05d}.png"
            save_mask(out_dir / name, hole)
            records.append({"index": i, "file": name, "hole_ratio": hole_ratio(hole)})
            bar.advance(task)
    manifest = {"kind": kind, "params": params, "seed": seed, "size": size, "count": count,
                "rng": "numpy default_rng(SeedSequence([seed, index]))", "masks": records}
    text = json.dumps(manifest, indent=2).encode()
    atomic_write(out_dir / MANIFEST, lambda f: f.write(text))
    return manifest


@masks_app.command("generate", help="Write COUNT square masks (PNG, white = hole) and manifest.json (kind, params, seed, "
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
        None, "--names-from", help="One mask per image of this set ('builtin', a folder or a glob), named after "
                                   "the image's stem so `inpaintlab eval` pairs them; replaces --count."),
):
    names = None
    if names_from is not None:
        from ..images import image_files, unique_names

        names = unique_names(image_files(names_from))
        count = len(names)
    manifest = generate_set(kind, count, size, seed, out_dir, parse_key_values(param, "--param", "lo=0.1"), names=names)
    ratios = [m["hole_ratio"] for m in manifest["masks"]]
    out.print(f"wrote {count} {kind} masks to {out_dir} (hole ratio mean {np.mean(ratios):.1%}, "
              f"range {min(ratios):.1%}-{max(ratios):.1%})")


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise InpaintlabError(f"{folder} has no {MANIFEST}: make it with `inpaintlab masks generate --out {folder}`")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InpaintlabError(f"cannot read {path}: {exc}") from None


def contact_sheet(folder: Path, manifest: dict, path: Path, limit: int = 64) -> None:
    """A grid of the first ``limit`` masks (white = hole), each titled with its hole ratio."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..images import load_mask

    records = manifest["masks"][:limit]
    cols = min(8, len(records))
    rows = -(-len(records) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.75 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, rec in zip(axes.flat, records):
        ax.imshow(load_mask(folder / rec["file"])[0, 0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"{rec['index']}: {rec['hole_ratio']:.0%}", fontsize=7)
    fig.suptitle(f"{manifest['kind']} (seed {manifest['seed']}, {manifest['size']} px)", fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


def ratio_histogram(manifest: dict, path: Path) -> None:
    """Histogram of hole ratios in 5 % bins."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratios = [m["hole_ratio"] for m in manifest["masks"]]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.hist(ratios, bins=np.linspace(0, 1, 21), color="0.3", edgecolor="white")
    ax.set_xlabel("hole ratio")
    ax.set_ylabel("masks")
    ax.set_title(f"{manifest['kind']}: {len(ratios)} masks, mean {np.mean(ratios):.1%}", fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


@masks_app.command("preview")
def preview_command(
    folder: Path = typer.Argument(..., help="A folder written by `inpaintlab masks generate`."),
    limit: int = typer.Option(64, help="Masks on the contact sheet (the first ones)."),
):
    """Write FOLDER/preview/contact_sheet.png (a grid of the masks) and hole_ratios.png (histogram).

    They go into a sub-folder so the mask folder itself holds only masks (eval pairs every file).
    """
    manifest = read_manifest(folder)
    if not manifest.get("masks"):
        raise InpaintlabError(f"{folder / MANIFEST} lists no masks")
    dest = folder / "preview"
    dest.mkdir(exist_ok=True)
    contact_sheet(folder, manifest, dest / "contact_sheet.png", max(1, limit))
    ratio_histogram(manifest, dest / "hole_ratios.png")
    out.print(f"wrote {dest / 'contact_sheet.png'} and {dest / 'hole_ratios.png'}")
