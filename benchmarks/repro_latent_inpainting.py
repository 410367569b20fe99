"""Re-measure the latent-inpainting thesis's Table 5.1 at small scale (Babin 2024; notes B8).

One autoencoder (MSE) is pre-trained on the left three quarters of the built-in photos and shared
by the four presets; each preset then trains with the same data order, masks and seeds:

1. **timing** (one thread, nothing else running): ``--warmup`` then ``--timed`` optimiser steps of
   each preset on one batch, median seconds per step, as ratios to preset 1;
2. **training**: every preset for ``--steps`` steps (equal steps), and the presets faster per step
   than preset 1 on to ``steps * t1 / tk`` (equal wall clock by the measured ratios); runs go two
   at a time with one thread each; ``--seeds`` seeds;
3. **evaluation** on held-out crops of the right quarters (three per photo) with LaMa's medium and
   thick masks drawn at 256 and reduced to the crop: PSNR, SSIM, LPIPS-VGG on the composite.

It prints one markdown table (mean +- std over seeds, % change against preset 1) beside the
thesis's numbers, and writes it to ``OUT/table.md``.

    python benchmarks/repro_latent_inpainting.py --steps 600 --size 128 --out runs/bench-latent

A second call with the same ``--out`` resumes the runs that stopped and reuses the finished ones.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from common import launch_child, right_quarter_crops

THESIS = {  # Table 5.1: train time (h), FID, LPIPS, SSIM
    1: (6.0, 16.6, 0.155, 0.865), 2: (6.4, 16.0, 0.153, 0.884), 3: (4.0, 18.3, 0.163, 0.878),
    4: (4.3, 12.4, 0.149, 0.888),
}
METRICS = ("psnr", "ssim", "lpips-vgg")


def train_config(args, method: str, steps: int, seed: int, every: int):
    from inpaintlab.train.config import TrainConfig

    return TrainConfig(method=method, data="builtin", size=args.size, batch_size=args.batch_size, steps=steps,
                       seed=seed, val_every=every, checkpoint_every=every, val_count=8, log_every=10,
                       mask_size=256, grad_clip=1.0)  # LaMa masks are defined at 256; the code clips at norm 1


def one_run(args) -> None:
    """Child process: train one preset (or the autoencoder) to --run-steps."""
    import torch

    from inpaintlab.train.loop import TrainRun

    torch.set_num_threads(1)
    spec = json.loads(args.one)
    cfg = train_config(args, spec["method"], spec["steps"], spec["seed"], spec["every"])
    summary = TrainRun(cfg, spec["options"], spec["out"], log=lambda s: None).run()
    Path(spec["out"], "bench.json").write_text(json.dumps({"seconds": summary.seconds, "steps": summary.steps}))


def launch(args, spec: dict) -> None:
    seconds = launch_child(__file__, "--one", spec, ["--size", str(args.size), "--batch-size", str(args.batch_size)])
    print(f"  {Path(spec['out']).name}: {spec['steps']} steps in {seconds:.0f} s", flush=True)


def time_presets(args, autoencoder: Path) -> dict[int, float]:
    """Median seconds per optimiser step of each preset, one thread, same batch."""
    import torch

    from inpaintlab.masks import make_generator, make_rng
    from inpaintlab.methods.latent_inpainting.method import LatentInpaintingMethod, LatentInpaintingOptions

    torch.set_num_threads(1)
    cfg = train_config(args, "latent-inpainting", 1, 0, 1)
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(args.batch_size, 3, args.size, args.size, generator=gen)
    draw = make_generator("lama-train")
    hole = torch.stack([torch.from_numpy(cv2.resize(draw(256, 256, make_rng(0, i)).astype(np.float32),
                                                    (args.size, args.size), interpolation=cv2.INTER_AREA) >= 0.5)
                        for i in range(args.batch_size)])[:, None].float()
    seconds = {}
    for preset in (1, 2, 3, 4):
        torch.manual_seed(0)
        method = LatentInpaintingMethod(cfg, LatentInpaintingOptions(preset=preset, autoencoder=str(autoencoder)),
                                        log=lambda s: None)
        method.train()
        opt = torch.optim.Adam([p for p in method.net_g.parameters() if p.requires_grad], lr=1e-3)
        times = []
        for i in range(args.warmup + args.timed):
            t0 = time.perf_counter()
            _, losses = method.generator_losses(images, hole)
            loss = torch.stack(list(losses.values())).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
            opt.step()
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
        seconds[preset] = statistics.median(times)
        print(f"  preset {preset}: {seconds[preset]:.3f} s/step (median of {args.timed})", flush=True)
    return seconds


def held_out(size: int):
    """The right-quarter crops (three per photo), each with a LaMa medium and a LaMa thick mask (drawn at 256)."""
    import torch

    from inpaintlab.masks import make_generator, make_rng

    crops = right_quarter_crops(size)
    images, out_holes = [], []
    for k, kind in enumerate(("lama-medium", "lama-thick")):
        draw = make_generator(kind)
        for j, crop in enumerate(crops):
            hole = cv2.resize(draw(256, 256, make_rng(1000 + k, j)).astype(np.float32), (size, size),
                              interpolation=cv2.INTER_AREA) >= 0.5
            images.append(crop)
            out_holes.append(hole)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    holes = torch.from_numpy(np.stack(out_holes))[:, None].float()
    return x, holes


def evaluate(checkpoint: Path, images, holes) -> dict[str, float]:
    """Mean PSNR / SSIM / LPIPS-VGG of the composite over the held-out pairs."""
    import torch

    from inpaintlab.metrics import build_metric
    from inpaintlab.methods.latent_inpainting.inpainter import load_latent_model

    net, _ = load_latent_model(str(checkpoint))
    scores = {m: [] for m in METRICS}
    metrics = {m: build_metric(m) for m in METRICS}
    with torch.no_grad():
        for i in range(0, len(images), 16):
            x, h = images[i:i + 16], holes[i:i + 16]
            out = torch.where(h > 0.5, net(x, h).clamp(0, 1), x)
            for name, metric in metrics.items():
                scores[name] += metric.update(out, x, h).tolist()
                metric.reset()
    return {k: float(np.mean(v)) for k, v in scores.items()}


def fmt(values: list[float], base: list[float] | None, digits: int) -> str:
    mean = float(np.mean(values))
    text = f"{mean:.{digits}f} ± {float(np.std(values)):.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"
    if base is not None:
        text += f" ({100 * (mean / float(np.mean(base)) - 1):+.1f} %)"
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600, help="equal-steps budget of every preset")
    ap.add_argument("--ae-steps", type=int, default=1500, help="autoencoder pre-training steps")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--every", type=int, default=100, help="checkpoint and validation interval (equal-time steps "
                                                          "are rounded to it)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--timed", type=int, default=50)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-latent"))
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        return one_run(args)
    t_start = time.perf_counter()
    ae = args.out / "autoencoder"
    print(f"1. autoencoder: {args.ae_steps} steps at {args.size}x{args.size}, batch {args.batch_size}", flush=True)
    launch(args, {"method": "latent-autoencoder", "steps": args.ae_steps, "seed": 0, "every": 500, "options": {},
                  "out": str(ae)})
    ae_info = json.loads((ae / "bench.json").read_text())

    timing_file = args.out / "timing.json"
    if timing_file.exists():
        seconds = {int(k): v for k, v in json.loads(timing_file.read_text()).items()}
        print("2. timing: reused", timing_file)
    else:
        print(f"2. timing: {args.warmup} warm-up + {args.timed} timed steps per preset, one thread", flush=True)
        seconds = time_presets(args, ae)
        timing_file.write_text(json.dumps(seconds))
    equal_time = {p: max(args.steps, round(args.steps * seconds[1] / seconds[p] / args.every) * args.every)
                  for p in seconds}
    # a preset slower than (1) reaches its equal-time point before --steps: a checkpoint there too
    equal_time_short = {p: round(args.steps * seconds[1] / seconds[p] / args.every) * args.every for p in seconds}

    print(f"3. training: presets 1-4 x seeds {args.seeds}, {args.steps} steps (equal-time steps "
          f"{ {p: equal_time_short[p] for p in seconds} })", flush=True)
    specs = []
    for seed in args.seeds:
        for preset in (1, 2, 3, 4):
            specs.append({"method": "latent-inpainting", "steps": equal_time[preset], "seed": seed,
                          "every": args.every, "options": {"preset": preset, "autoencoder": str(ae)},
                          "out": str(args.out / f"preset{preset}-seed{seed}")})
    with ThreadPoolExecutor(args.parallel) as pool:
        list(pool.map(lambda s: launch(args, s), specs))

    print("4. evaluation on held-out crops", flush=True)
    images, holes = held_out(args.size)
    results: dict[tuple[int, str], list[dict[str, float]]] = {}
    walls: dict[int, list[float]] = {}
    for spec in specs:
        preset, run = spec["options"]["preset"], Path(spec["out"])
        ck = run / "checkpoints"
        results.setdefault((preset, "steps"), []).append(evaluate(ck / f"step-{args.steps:07d}.ckpt", images, holes))
        short = max(args.every, equal_time_short[preset])
        results.setdefault((preset, "time"), []).append(evaluate(ck / f"step-{short:07d}.ckpt", images, holes))
        walls.setdefault(preset, []).append(json.loads((run / "bench.json").read_text())["seconds"])

    def row(preset: int, mode: str) -> str:
        vals = results[(preset, mode)]
        base = results[(1, mode)]
        cells = []
        for name, digits in (("psnr", 2), ("ssim", 4), ("lpips-vgg", 4)):
            cells.append(fmt([v[name] for v in vals], None if preset == 1 else [v[name] for v in base], digits))
        return " | ".join(cells)

    lines = [f"Budget: autoencoder {ae_info['steps']} steps ({ae_info['seconds']:.0f} s); presets {args.steps} steps "
             f"(equal steps) at {args.size}x{args.size}, batch {args.batch_size}, seeds {args.seeds}; held-out: "
             f"{len(images)} pairs (27 right-quarter crops x LaMa medium/thick masks). Total wall time "
             f"{(time.perf_counter() - t_start) / 60:.0f} min.", "",
             "| preset | s/step (1 thread) | vs (1) | steps at equal time | run wall (s, to its last step; 2 runs on 2 cores) | PSNR ↑ | SSIM ↑ "
             "| LPIPS-VGG ↓ | thesis time | thesis FID / LPIPS / SSIM |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for p in (1, 2, 3, 4):
        t = THESIS[p]
        lines.append(f"| ({p}) equal steps | {seconds[p]:.3f} | {seconds[p] / seconds[1]:.2f} | "
                     f"{equal_time_short[p]} | {np.mean(walls[p]):.0f} | {row(p, 'steps')} | {t[0]} h "
                     f"({100 * (t[0] / THESIS[1][0] - 1):+.0f} %) | {t[1]} / {t[2]} / {t[3]} |")
    for p in (1, 2, 3, 4):
        lines.append(f"| ({p}) equal time | | | {equal_time_short[p]} | | {row(p, 'time')} | | |")
    table = "\n".join(lines)
    (args.out / "table.md").write_text(table + "\n")
    (args.out / "results.json").write_text(json.dumps({"seconds": seconds, "walls": walls, "results": {
        f"{p}-{m}": v for (p, m), v in results.items()}}, indent=1))
    print(table)


if __name__ == "__main__":
    main()
