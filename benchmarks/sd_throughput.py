"""Stable Diffusion inpainting throughput: batch 1 vs batch N, guidance elision on/off, RIP harness share.

Which network it measures, on whatever device it finds (CUDA, else CPU):

- ``stabilityai/stable-diffusion-2-inpainting`` from the Hugging Face cache (or ``--model-path``);
- without those weights, the same architecture at full size with **random weights**
  (``inpaintlab.inpainters.architectures``), saved to a temporary folder: the same layers and
  FLOPs, so the same time per call; only the images are noise;
- ``--tiny``: diffusers' dummy pipeline (seconds; the ratios, not Stable Diffusion's speed).

A call costs ``fixed + steps x per_step`` (text encoder, VAE encode/decode and the pipeline
around them, plus one UNet evaluation per step). Each configuration is timed at two step counts
(``--fit-steps``, best of ``--repeats`` after a warm-up) and the line through them predicts the
call at ``--steps`` (50, the paper's); ``--check-steps K`` also times K steps directly and prints
the prediction error. The FLOPs of a call are counted with ``torch.utils.flop_counter``. The
estimate for the RIP paper's experiment (100 images x 336 calls of 50 steps) follows.

    python benchmarks/sd_throughput.py [--batch 4] [--fit-steps 2,6] [--check-steps 10] [--tiny]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from inpaintlab.errors import MissingWeightsError
from inpaintlab import testing as tiny
from inpaintlab.inpainters import load_inpainter
from inpaintlab.inpainters.architectures import save_random_pipeline
from inpaintlab.inpainters.diffusion import SD2_INPAINTING, quiet_diffusers
from inpaintlab.rip import RipConfig, RipRun

PAPER_CALLS = 100 * (256 + 64 + 16)  # 100 WikiArt images, 64/128/256-px cells to 400 % at 512x512


@dataclass
class StepModel:
    """Seconds of one call as ``fixed + steps * per_step``, fitted through two step counts."""

    fixed: float
    per_step: float

    def at(self, steps: int) -> float:
        return self.fixed + steps * self.per_step

    @classmethod
    def through(cls, a: tuple[int, float], b: tuple[int, float]) -> "StepModel":
        per_step = (b[1] - a[1]) / (b[0] - a[0])
        return cls(fixed=a[1] - a[0] * per_step, per_step=per_step)


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def inputs(n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images and a quarter-side square hole (the call's cost does not depend on the content)."""
    x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))
    hole = torch.zeros(n, 1, size, size)
    hole[..., size // 4:size // 2, size // 4:size // 2] = 1
    return x, hole


def call_seconds(inp, n: int, size: int, repeats: int) -> float:
    """The fastest of ``repeats`` calls on a batch of ``n`` (as timeit: slower ones measure the neighbours)."""
    x, hole = inputs(n, size)
    best = float("inf")
    for _ in range(repeats):
        gens = [torch.Generator().manual_seed(i) for i in range(n)]
        sync()
        t0 = time.perf_counter()
        inp.run(x, hole, generator=gens)
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def call_flops(inp, size: int) -> int:
    """FLOPs of one single-image call (matmuls and convolutions, as torch's FlopCounterMode counts them)."""
    x, hole = inputs(1, size)
    counter = FlopCounterMode(display=False)
    # The math attention kernel: the fused CPU/flash kernels are not all in the counter's table
    # (CPU flash attention counts 0), the math one is plain matmuls. Same FLOPs, counted.
    with counter, sdpa_kernel(SDPBackend.MATH):
        inp.run(x, hole, generator=[torch.Generator().manual_seed(0)])
    return counter.get_total_flops()


def rip_overhead(model_options: dict, size: int, n_images: int, batch: int, folder: Path) -> tuple[float, float, int]:
    """(wall s, share of wall outside the inpainter and metric calls, calls) of a small RIP run."""
    d = folder / "rip-images"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(n_images):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(d / f"im{k}.png")
    cfg = RipConfig(images=str(d), model="sd2-inpainting", model_options=model_options, mask_sizes=[size // 2],
                    percent=100.0, checkpoint_every=50.0, metrics=["psnr", "ssim"], size=size, batch_size=batch,
                    device="cuda" if torch.cuda.is_available() else "cpu")
    run = RipRun(cfg, folder / "rip-run", log=lambda s: None)
    run.prepare()
    t0 = time.perf_counter()  # without loading the model
    summary = run.run()
    wall = time.perf_counter() - t0
    t = summary.timings
    return wall, (wall - t["inpaint"] - t["metrics"]) / wall, summary.calls


def choose_model(args, tmp: Path) -> tuple[str, str, object | None]:
    """(model path, what it is, the loaded inpainter if probing loaded it): the real weights, else
    the random full-size architecture (or --tiny)."""
    if args.tiny:
        with quiet_diffusers():
            return str(tiny.save_tiny_pipeline(tmp / "tiny")), "TINY random pipeline (ratios only)", None
    try:
        probe = load_inpainter("sd2-inpainting", model_path=args.model_path, steps=1, dtype=args.dtype)
        return args.model_path, "weights as given", probe
    except MissingWeightsError as e:
        print(f"NOTE: no real weights ({e})")
    t0 = time.perf_counter()
    with quiet_diffusers():
        path = str(save_random_pipeline("sd2-inpainting", tmp / "random"))
    print(f"NOTE: measuring SD 2 inpainting's full-size architecture with RANDOM weights instead "
          f"(same layers, same FLOPs; built and saved in {time.perf_counter() - t0:.0f} s)")
    return path, "full-size architecture, random weights", None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-path", default=SD2_INPAINTING)
    ap.add_argument("--tiny", action="store_true", help="diffusers' dummy pipeline instead (fast; ratios only)")
    ap.add_argument("--batch", type=int, default=None, help="N of batch 1 vs N (default: 8 on CUDA, 2 on CPU)")
    ap.add_argument("--steps", type=int, default=50, help="steps of the predicted call (the paper's 50)")
    ap.add_argument("--fit-steps", default="2,6", help="the two step counts the line is fitted through")
    ap.add_argument("--check-steps", type=int, default=None, help="also time this many steps directly (batch 1)")
    ap.add_argument("--size", type=int, default=None, help="default: 512 (64 with --tiny)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--no-literal", action="store_true", help="skip the literal-guidance timings")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    n = args.batch or (8 if device == "cuda" else 2)
    size = args.size or (64 if args.tiny else 512)
    fit = sorted(int(s) for s in args.fit_steps.split(","))
    if len(fit) != 2 or fit[0] < 1 or fit[0] == fit[1]:
        ap.error("--fit-steps takes two different positive step counts, e.g. 2,6")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_path, what, probe = choose_model(args, tmp)
        where = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
        print(f"device {device} ({where}); model {model_path} ({what}); {size}x{size}, dtype {args.dtype}, "
              f"guidance 7.5, empty prompt; fit through {fit[0]} and {fit[1]} steps, best of {args.repeats}")
        loaded = {} if probe is None else {False: probe}  # the probe is the elided-guidance model
        if probe is not None:
            call_seconds(probe, 1, size, 1)  # its warm-up

        def load(steps: int, literal: bool):
            """One loaded pipeline per guidance mode, its step count set per call: every point times a warm model."""
            if literal not in loaded:
                loaded[literal] = load_inpainter("sd2-inpainting", model_path=model_path, steps=1, dtype=args.dtype,
                                                 literal_guidance=literal)
                call_seconds(loaded[literal], 1, size, 1)  # warm-up: allocator, kernels, caches
            inp = loaded[literal]
            inp.backend.opts = dataclasses.replace(inp.backend.opts, steps=steps)
            return inp

        models: dict[tuple[bool, int], StepModel] = {}
        for literal in (False,) if args.no_literal else (False, True):
            label = "literal CFG (2 UNet passes)" if literal else "guidance elided (1 UNet pass)"
            for b in (1, n):
                points = [(steps, call_seconds(load(steps, literal), b, size, args.repeats)) for steps in fit]
                m = models[(literal, b)] = StepModel.through(*points)
                print(f"  {label:30s} batch {b:2d}: {m.fixed / b:7.3f} s fixed + {m.per_step / b:7.3f} s/step "
                      f"per image -> {m.at(args.steps) / b:8.2f} s per image at {args.steps} steps "
                      f"({b / m.at(args.steps):.3f} images/s)")
        seconds_per_image = {b: models[(False, b)].at(args.steps) / b for b in (1, n)}  # elided
        best_b = min(seconds_per_image, key=seconds_per_image.get)
        print(f"batch {n} vs 1 (elided, {args.steps} steps): x{seconds_per_image[1] / seconds_per_image[n]:.2f} images/s")
        if not args.no_literal:
            print(f"elision vs literal (batch {n}, {args.steps} steps): "
                  f"x{models[(True, n)].at(args.steps) / models[(False, n)].at(args.steps):.2f} images/s")
        if args.check_steps:
            measured = call_seconds(load(args.check_steps, False), 1, size, 1)
            predicted = models[(False, 1)].at(args.check_steps)
            print(f"check: batch 1 at {args.check_steps} steps measured {measured:.2f} s, line predicts "
                  f"{predicted:.2f} s ({predicted / measured - 1:+.1%})")
        f_a, f_b = (call_flops(load(s, False), size) for s in fit)
        per_step_flops = (f_b - f_a) / (fit[1] - fit[0])
        per_call_flops = f_a + (args.steps - fit[0]) * per_step_flops
        print(f"FLOPs per image: {per_step_flops / 1e9:.0f} G per step (elided), {(f_a - fit[0] * per_step_flops) / 1e9:.0f} G "
              f"fixed; {per_call_flops / 1e12:.1f} T per {args.steps}-step call")
        per_image = seconds_per_image[best_b]
        if not args.tiny:  # the tiny pipeline's time says nothing about Stable Diffusion's
            print(f"RIP paper experiment ({PAPER_CALLS:,} calls of {args.steps} steps, "
                  f"{PAPER_CALLS * per_call_flops / 1e18:.2f} EFLOP) at batch {best_b} on this device: "
                  f"{PAPER_CALLS * per_image / 3600:,.1f} h ({PAPER_CALLS * per_image / 86400:,.1f} days)")
        wall, share, calls = rip_overhead({"model_path": model_path, "steps": fit[0], "dtype": args.dtype},
                                          size, n, n, tmp)
        print(f"RIP harness: {n} images, {size // 2}-px cells to 100 %, {calls} calls of {fit[0]} steps, {wall:.1f} s; "
              f"share of wall time outside the inpainter and metrics (psnr, ssim): {share:.1%}")


if __name__ == "__main__":
    main()
