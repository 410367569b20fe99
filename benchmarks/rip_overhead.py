"""Where a RIP run's wall time goes: the inpainter, the metrics, and the harness around them.

Runs RIP on the built-in images (a fresh temporary run folder) and prints the share of wall
time spent outside the inpainter and metric calls: cell draws, batching, state encoding,
SQLite commits, kept images. With ``telea`` it should stay under 5 %.

    python benchmarks/rip_overhead.py [--model telea] [--metrics psnr,ssim,lpips-alex,lpips-vgg]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from inpaintlab.rip import RipConfig, RipRun


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="telea")
    ap.add_argument("--images", default="builtin")
    ap.add_argument("--mask-sizes", default="64,128,256")
    ap.add_argument("--percent", type=float, default=400.0)
    ap.add_argument("--metrics", default="psnr,ssim,lpips-alex,lpips-vgg")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    cfg = RipConfig(images=args.images, model=args.model, mask_sizes=[int(s) for s in args.mask_sizes.split(",")],
                    percent=args.percent, metrics=args.metrics.split(","), batch_size=args.batch_size, size=args.size)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        run = RipRun(cfg, out, log=print)
        run.prepare()
        t_prep = time.perf_counter() - t0
        summary = run.run()
        wall = time.perf_counter() - t0
    t = summary.timings
    outside = wall - t["inpaint"] - t["metrics"]
    print(f"model {args.model}, {summary.trajectories} trajectories, {summary.calls} inpainter calls, "
          f"metrics {', '.join(summary.metrics)}")
    print(f"wall {wall:.2f} s = inpainter {t['inpaint']:.2f} s + metrics {t['metrics']:.2f} s "
          f"+ outside {outside:.2f} s (of which start-up: images, weights, folder {t_prep:.2f} s)")
    print(f"share of wall time outside the inpainter and metric calls: {outside / wall:.1%}")
    print(f"  without start-up: {(outside - t_prep) / (wall - t_prep):.1%}")


if __name__ == "__main__":
    main()
