"""Quality and speed of the classical backends (every registered backend that needs no hub weights).

On the built-in photographs, with LaMa's thin and thick stroke masks (and medium for good
measure) drawn at 256 px, every backend fills the same holes through ``inpaintlab eval``; the
script prints LPIPS-VGG (when its weights are present), PSNR and SSIM in the hole, and seconds
per image, one row per backend and mask family. Everything is in one process on one machine, so
the timings compare with each other, not with other machines.

    python benchmarks/classical_backends.py [--size 256] [--kinds lama-thin,lama-thick] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from inpaintlab.evaluate import EvalConfig, EvalRun, build_table
from inpaintlab.inpainters import INPAINTERS
from inpaintlab.masks.sets import generate_set
from inpaintlab.metrics import METRICS
from inpaintlab.weights import find


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--kinds", default="lama-thin,lama-medium,lama-thick")
    ap.add_argument("--backends", default=None, help="default: every backend that needs no hub weights")
    ap.add_argument("--out", type=Path, default=None, help="keep the evaluations here (default: a temporary folder)")
    args = ap.parse_args()
    backends = args.backends.split(",") if args.backends else [n for n, c in INPAINTERS.items() if not c.needs_weights]
    metrics = ["psnr@hole", "ssim@hole", "mae@hole"]
    if all(find(f)[0] is not None for f in METRICS.get("lpips-vgg").weight_files):
        metrics.insert(0, "lpips-vgg")
    else:
        print("lpips-vgg weights missing (`inpaintlab weights fetch`): LPIPS left out")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        from inpaintlab.datasets import open_image_set

        names = open_image_set("builtin").names
        rows = []
        for kind in args.kinds.split(","):
            masks = root / f"masks-{kind}"
            generate_set(kind, len(names), args.size, 0, masks, {}, names=names)
            for name in backends:
                t0 = time.perf_counter()
                cfg = EvalConfig(images="builtin", masks=str(masks), model=name, metrics=metrics, size=args.size)
                EvalRun(cfg, root / f"{kind}-{name}", log=lambda m: None).run()
                seconds = (time.perf_counter() - t0) / len(names)
                table = build_table(root / f"{kind}-{name}")
                overall = table[table["bucket"] == "all"].iloc[0]
                rows.append((kind, name, overall["n"], {m: overall[m] for m in metrics}, seconds))
                print(f"{kind:12s} {name:14s} done ({seconds:.2f} s/image)", flush=True)
    print(f"\nbuilt-in photos ({len(names)}), {args.size} px, masks seed 0; hole metrics; s/image includes the metrics")
    print("| masks | backend | " + " | ".join(metrics) + " | s/image |")
    print("|---|---|" + "---|" * (len(metrics) + 1))
    for kind, name, _, values, seconds in rows:
        print(f"| {kind} | {name} | " + " | ".join(f"{values[m]:.4f}" for m in metrics) + f" | {seconds:.2f} |")


if __name__ == "__main__":
    main()
