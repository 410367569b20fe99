"""Train the small LaMa on the built-in photos and compare it with the classical backends on held-out crops.

The left three quarters of each built-in photo train it (``--holdout right``, the default), the right
quarter is held out: three 128x128 crops per image (top, middle, bottom of the right quarter) with
LaMa's thin / medium / thick masks (drawn at 256, LaMa's preset size, and reduced to 128). The
script trains for ``--steps`` (calibrate it to your budget: it prints seconds per step), prints
the validation curve, then evaluates the trained model, ``telea`` and ``patchmatch`` on the same
crops and masks through ``inpaintlab eval``, and prints one markdown table.

    python benchmarks/train_lama.py --steps 800 --out runs/bench-lama [--generator small] [--size 128]

Run it again with more ``--steps`` on the same ``--out`` to continue training (the run resumes).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from inpaintlab.datasets import open_image_set
from inpaintlab.evaluate import EvalConfig, EvalRun, build_table
from inpaintlab.masks import make_generator, make_rng
from inpaintlab.train.config import TrainConfig
from inpaintlab.train.loop import TrainRun

KINDS = ("lama-thin", "lama-medium", "lama-thick")


def held_out_crops(size: int, folder: Path) -> list[str]:
    """Three crops of the right quarter of every built-in photo, saved as PNG; their names."""
    folder.mkdir(parents=True, exist_ok=True)
    source = open_image_set("builtin", size=None)
    names = []
    for i, name in enumerate(source.names):
        image = source.read(i)
        h, w = image.shape[:2]
        x0 = (3 * w) // 4
        side = min(h, w - x0)
        for tag, top in (("top", 0), ("mid", (h - side) // 2), ("bot", h - side)):
            crop = cv2.resize(np.ascontiguousarray(image[top:top + side, x0:x0 + side]), (size, size),
                              interpolation=cv2.INTER_AREA if side > size else cv2.INTER_CUBIC)
            Image.fromarray((np.clip(crop, 0, 1) * 255).round().astype(np.uint8)).save(folder / f"{name}-{tag}.png")
            names.append(f"{name}-{tag}")
    return names


def masks_for(kind: str, names: list[str], size: int, folder: Path) -> None:
    """One mask per crop, drawn at 256 (LaMa's preset) and reduced to ``size`` (area, then >= 0.5)."""
    folder.mkdir(parents=True, exist_ok=True)
    generate = make_generator(kind)
    for i, name in enumerate(names):
        hole = generate(256, 256, make_rng(0, i)).astype(np.float32)
        small = cv2.resize(hole, (size, size), interpolation=cv2.INTER_AREA) >= 0.5
        if not small.any():
            small[size // 2, size // 2] = True
        Image.fromarray(small.astype(np.uint8) * 255).save(folder / f"{name}.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--generator", default="small")
    ap.add_argument("--val-every", type=int, default=100)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-lama"))
    args = ap.parse_args()
    run_dir = args.out / "train"
    cfg = TrainConfig(method="lama", data="builtin", size=args.size, steps=args.steps, batch_size=args.batch_size,
                      val_every=args.val_every, checkpoint_every=args.val_every, val_count=9, log_every=10,
                      mask_size=256)  # LaMa's training masks are defined at 256: drawn there, resized to the crop
    stamps: list[tuple[int, float]] = []
    t0 = time.perf_counter()
    summary = TrainRun(cfg, {"generator": args.generator}, run_dir, log=print,
                       progress=lambda done, total: stamps.append((done, time.perf_counter()))).run()
    wall = time.perf_counter() - t0
    if len(stamps) > 10:
        (s0, t_0), (s1, t_1) = stamps[5], stamps[-1]
        print(f"trained {summary.steps} steps ({summary.resumed_from} resumed) in {wall:.0f} s: "
              f"{(t_1 - t_0) / (s1 - s0):.2f} s/step, {args.batch_size * (s1 - s0) / (t_1 - t_0):.2f} images/s "
              f"(batch {args.batch_size}, {args.size}x{args.size}, generator {args.generator})")
    m = pd.read_csv(run_dir / "metrics.csv")
    val = m.dropna(subset=["val/psnr"])[["step", *[c for c in m.columns if c.startswith("val/")]]]
    print("validation curve (held-out right-quarter crops, composite):")
    print(val.to_string(index=False))

    crops = args.out / "crops"
    names = held_out_crops(args.size, crops)
    rows = []
    for kind in KINDS:
        mask_dir = args.out / f"masks-{kind}"
        masks_for(kind, names, args.size, mask_dir)
        for model, options in (("lama", {"checkpoint": str(run_dir)}), ("telea", {}), ("patchmatch", {})):
            out = args.out / f"eval-{kind}-{model}"
            ecfg = EvalConfig(images=str(crops), masks=str(mask_dir), model=model, model_options=options,
                              metrics=["lpips-vgg", "psnr@hole", "ssim", "mae@hole"])
            EvalRun(ecfg, out, log=print).run()
            table = build_table(out)
            row = table[table["bucket"] == "all"].iloc[0]
            rows.append((kind, model, int(row["n"]), row["lpips-vgg"], row["psnr@hole"], row["ssim"], row["mae@hole"]))
    print(f"\nheld-out crops ({len(names)}, {args.size} px), {summary.steps} training steps:")
    print("| masks | model | n | LPIPS-VGG | PSNR hole (dB) | SSIM | MAE hole |")
    print("|---|---|---|---|---|---|---|")
    for kind, model, n, lp, ps, ss, ma in rows:
        print(f"| {kind} | {model} | {n} | {lp:.4f} | {ps:.2f} | {ss:.4f} | {ma:.4f} |")


if __name__ == "__main__":
    main()
