"""Stable Diffusion inpainting throughput: batch 1 vs batch N, guidance elision on/off, RIP harness share.

Uses ``stabilityai/stable-diffusion-2-inpainting`` from the Hugging Face cache (or ``--model-path``)
on whatever device it finds (CUDA, else CPU). Without the weights it says so and measures a tiny
randomly initialised pipeline saved to a temporary folder instead: those numbers show the
batching and elision ratios and the harness overhead, not Stable Diffusion's speed.

    python benchmarks/sd_throughput.py [--batch 8] [--steps 50] [--size 512] [--model-path PATH]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from inpaintlab.errors import MissingWeightsError
from inpaintlab.inpainters import load_inpainter
from inpaintlab.inpainters import tiny
from inpaintlab.inpainters.diffusion import SD2_INPAINTING, quiet_diffusers
from inpaintlab.rip import RipConfig, RipRun


def save_tiny_pipeline(folder: Path) -> str:
    """diffusers' dummy SD-inpainting components (random weights), saved with save_pretrained."""
    with quiet_diffusers():
        return str(tiny.save_tiny_pipeline(folder))


def images_per_second(inp, n: int, size: int, repeats: int) -> float:
    """Images per second of the fastest of ``repeats`` calls on a batch of ``n`` (after a warm-up call).

    The fastest call, as timeit does: on a shared machine the slower ones measure the neighbours.
    """
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, size, size, generator=g)
    hole = torch.zeros(n, 1, size, size)
    hole[..., size // 4:size // 2, size // 4:size // 2] = 1
    gens = lambda: [torch.Generator().manual_seed(i) for i in range(n)]
    inp.run(x, hole, generator=gens())
    sync()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        inp.run(x, hole, generator=gens())
        sync()
        best = min(best, time.perf_counter() - t0)
    return n / best


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def rip_overhead(model_options: dict, size: int, n_images: int, batch: int, folder: Path) -> tuple[float, float, int]:
    """(wall s, share of wall outside the inpainter and metric calls, calls) of a small RIP run."""
    d = folder / "rip-images"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(n_images):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(d / f"im{k}.png")
    cfg = RipConfig(images=str(d), model="sd2-inpainting", model_options=model_options, mask_sizes=[size // 4],
                    percent=100.0, checkpoint_every=50.0, metrics=["psnr", "ssim"], size=size, batch_size=batch,
                    device="cuda" if torch.cuda.is_available() else "cpu")
    t0 = time.perf_counter()
    run = RipRun(cfg, folder / "rip-run", log=lambda s: None)
    run.prepare()
    t_prep = time.perf_counter() - t0
    summary = run.run()
    wall = time.perf_counter() - t0 - t_prep  # without loading the model
    t = summary.timings
    return wall, (wall - t["inpaint"] - t["metrics"]) / wall, summary.calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-path", default=SD2_INPAINTING)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=None, help="default: 50 with real weights, 4 with the tiny pipeline")
    ap.add_argument("--size", type=int, default=None, help="default: 512 with real weights, 64 with the tiny pipeline")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", default="auto")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_path, real = args.model_path, True
        try:
            load_inpainter("sd2-inpainting", model_path=model_path, steps=1, dtype=args.dtype)
        except MissingWeightsError as e:
            real = False
            model_path = save_tiny_pipeline(tmp / "tiny")
            print(f"NOTE: no real weights ({e})")
            print(f"NOTE: measuring a TINY RANDOM pipeline saved to {model_path} instead: the ratios and the harness "
                  f"share are meaningful, the absolute images/s are not Stable Diffusion's")
        steps = args.steps or (50 if real else 4)
        size = args.size or (512 if real else 64)
        dtype = args.dtype
        print(f"device {device} ({torch.cuda.get_device_name() if device == 'cuda' else f'{torch.get_num_threads()} threads'}), "
              f"model {model_path}, {steps} steps, {size}x{size}, dtype {dtype}, guidance 7.5, empty prompt")
        rates = {}
        for literal in (False, True):
            inp = load_inpainter("sd2-inpainting", model_path=model_path, steps=steps, dtype=dtype,
                                 literal_guidance=literal)
            for n in (1, args.batch):
                rates[(literal, n)] = r = images_per_second(inp, n, size, args.repeats)
                label = "literal CFG (2 UNet passes)" if literal else "guidance elided (1 UNet pass)"
                print(f"  {label:32s} batch {n:3d}: {r:8.3f} images/s")
        n = args.batch
        print(f"batch {n} vs 1 (elided): x{rates[(False, n)] / rates[(False, 1)]:.2f}; "
              f"elision vs literal (batch {n}): x{rates[(False, n)] / rates[(True, n)]:.2f}")
        per_image = 1.0 / rates[(False, n)]
        print(f"RIP paper run (100 images x 1 seed, 256 + 64 + 16 = 336 calls per image) at this rate: "
              f"{100 * 336 * per_image / 3600:.1f} h of inpainting")
        wall, share, calls = rip_overhead({"model_path": model_path, "steps": steps, "dtype": dtype},
                                          size, n, n, tmp)
        print(f"RIP harness: {n} images, {size // 4}-px cells to 100 %, {calls} calls, {wall:.1f} s; "
              f"share of wall time outside the inpainter and metrics (psnr, ssim): {share:.1%}")


if __name__ == "__main__":
    main()
