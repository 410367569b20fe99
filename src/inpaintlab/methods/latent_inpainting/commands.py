"""``inpaintlab latent visualize``: the thesis's Fig. 4.4 for a trained autoencoder or inpainting network."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ...console import out, progress
from ...errors import InpaintlabError

app = typer.Typer(no_args_is_help=True, help="Latent-space inpainting tools (Babin 2024): the latent visualisation.")


@app.command("visualize")
def visualize_command(
    run: str = typer.Argument(..., help="A `train latent-autoencoder` or `train latent-inpainting` run, its export, "
                                        "or one of its checkpoints/*.ckpt."),
    images: str = typer.Option("builtin", "--images", help="Images: 'builtin', a folder, a glob or hf:NAME."),
    masks: str = typer.Option("lama-medium", "--masks", help="Mask kind (see `inpaintlab masks generate --help`); "
                                                            "mask i is drawn from (seed, i)."),
    mask_param: Optional[list[str]] = typer.Option(None, "--mask-param", help="Mask parameter KEY=VALUE."),
    size: int = typer.Option(256, "--size", help="Images are resized (centre square) to this side, a multiple of "
                                                 "the network's stride."),
    seed: int = typer.Option(0, "--seed", help="Seed of the masks."),
    count: Optional[int] = typer.Option(None, "--count", "-n", help="Only the first N images."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Folder for one PNG per image (panels side by side)."),
):
    """Write D[E(gt) - E(masked)] (thesis Eq. 4.1) and D(0) beside each image; for an inpainting run also
    D[R(z) - z], D[E(gt) - R(z)] and the output (z: the network's latent of the masked input, R: its refiner)."""
    import numpy as np
    import torch

    from ...cliargs import parse_key_values
    from ...datasets import open_image_set
    from ...devices import resolve_device
    from ...images import save_image
    from ...masks.base import make_generator, make_rng
    from .inpainter import load_latent_model
    from .presets import AUTOENCODER, INPAINTING
    from .visualize import latent_panels

    generate = make_generator(masks, **parse_key_values(mask_param, "--mask-param", "max_width=50"))
    net, _ = load_latent_model(run, accept=(AUTOENCODER, INPAINTING))
    if size <= 0 or size % net.cfg.downscale:
        raise InpaintlabError(f"--size must be a positive multiple of {net.cfg.downscale}, got {size}")
    dev = resolve_device(device, allow_auto=True)
    net = net.to(dev)
    source = open_image_set(images, size=size)
    n = len(source) if count is None else min(count, len(source))
    names = None
    with progress("latent visualize", "images") as report:
        for i in range(n):
            image = source.load(i).to(dev)
            hole = torch.from_numpy(np.asarray(generate(size, size, make_rng(seed, i)), np.float32))[None, None]
            panels = latent_panels(net, image, hole.to(dev))
            names = list(panels)
            row = torch.cat([p[0].expand(3, -1, -1).float().clamp(0, 1).cpu() for p in panels.values()], dim=-1)
            save_image(out_dir / f"{source.names[i]}.png", row)
            report(i + 1, n)
    out.print(f"wrote {n} rows to {out_dir}; panels left to right: {', '.join(names or [])}", markup=False)
