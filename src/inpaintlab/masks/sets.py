"""Mask sets on disk: a folder of PNG masks (white = hole) with ``manifest.json``, and its previews.

Mask ``i`` of a set depends only on ``(seed, i)``, so a set can be regenerated or extended exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from ..atomic import atomic_write
from ..errors import InpaintlabError
from .base import hole_ratio, make_generator, make_rng, resolved_params

MANIFEST = "manifest.json"

Progress = Callable[[int, int], None]


def generate_set(kind: str, count: int, size: int, seed: int, out_dir: Path, params: dict[str, object],
                 names: list[str] | None = None, progress: Progress | None = None) -> dict:
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
    generate = make_generator(kind, **params)
    records = []
    for i in range(count):
        try:
            hole = generate(size, size, make_rng(seed, i))
        except (TypeError, ValueError) as exc:
            raise InpaintlabError(f"mask generator {kind!r}: {str(exc).splitlines()[0]}") from None
        name = f"{names[i]}.png" if names is not None else f"mask_{i:05d}.png"
        save_mask(out_dir / name, hole)
        records.append({"index": i, "file": name, "hole_ratio": hole_ratio(hole)})
        if progress:
            progress(i + 1, count)
    manifest = {"kind": kind, "params": resolved_params(kind, params), "seed": seed, "size": size, "count": count,
                "rng": "numpy default_rng(SeedSequence([seed, index]))", "masks": records}
    text = json.dumps(manifest, indent=2).encode()
    atomic_write(out_dir / MANIFEST, lambda f: f.write(text))
    return manifest


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


__all__ = ["MANIFEST", "generate_set", "read_manifest", "contact_sheet", "ratio_histogram"]
