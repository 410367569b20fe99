"""Re-measure StrDiffusion's claim at small scale: structure guidance vs plain mean-reverting diffusion (notes A10).

Training (each network alone, one thread, two at a time, the same data stream): IR-SDE and the three
StrDiffusion parts (structure, texture, discriminator) on each ``--data`` set: ``photos`` (the left
three quarters of the built-in photos) and ``synthetic`` (seeded scenes of flat polygons and straight
lines, where continuing edges through the hole is the whole task); ``--size`` crops, LaMa's training
masks. IR-SDE is trained with StrDiffusion's hole fill (0)
and weighted loss, so that the comparison isolates structure guidance (``--irsde-reference`` trains
IR-SDE as its code does: fill 1, plain L1).

Evaluation on held-out crops (photos: the right quarters, three per photo; synthetic: scenes of other
seeds) with Co-Mod/MAT-style masks
bucketed by hole ratio (10-20, 20-30, 30-40, 40-50 %; the paper's Table 1 buckets), the same masks
and per-image seeds for every arm:

- ``ir-sde``: IR-SDE's reverse SDE; ``A``: IR-SDE with RePaint resampling (the paper's Table 2 case A);
- ``C``: StrDiffusion without adaptive resampling; ``D``: the full reference sampler;
  ``paper``: the paper's Eq. 17 reading (discriminator threshold 0.5, at most 5 tries);
- ``oracle`` (a diagnostic): C guided by the closed-form structure state of the true grayscale. If it
  does not beat IR-SDE, the texture network has not learned to use guidance.

A finished network or arm is not redone: the training runs resume (a finished one only exports), and
an arm's evaluation file (named by steps, size and crops per bucket) is read back.

Metrics on the composite: PSNR, SSIM, LPIPS-Alex where its weights are present, CD (boundary colour
distance), network evaluations and seconds per image. One table per data set goes to ``OUT/table.md``.

    python benchmarks/repro_strdiffusion.py --steps 2000 --size 32 --out runs/bench-strdiffusion
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from common import launch_child, lines_and_polygons, right_quarter_crops, write_scenes

BUCKETS = ((0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5))
PAPER = {  # Table 1 (Places2, PSNR / SSIM / FID) and Table 2 (PSV, hard masks)
    "ir-sde": "28.98/.961 · 25.37/.928 · 23.93/.908 · 21.68/.864",
    "D": "29.45/.973 · 26.28/.941 · 24.43/.917 · 22.37/.874",
    "A": "Table 2 hard: 24.65 / .851", "C": "Table 2 hard: 25.59 / .867",
}
ARMS = {
    "ir-sde": ("ir-sde", {}), "A": ("ir-sde", {"sampler": "repaint", "jump": 10, "resample": 3}),
    "C": ("strdiffusion", {"resampling": False}), "D": ("strdiffusion", {}),
    "paper": ("strdiffusion", {"sampler": "paper"}),
    # diagnostic (notes A10): C guided by the true structure state; reads the hole, so never a result
    "oracle": ("strdiffusion", {"structure": "oracle"}),
}


SYNTHETIC_TRAIN, SYNTHETIC_HELD_OUT = 400, 1_000_000  # training scenes; seed of the held-out ones


def train_config(args, method: str, data: str, seed: int = 0):
    from inpaintlab.train.config import TrainConfig

    photos = data == "builtin"
    # photos: train left 3/4, validate right 1/4; scenes: every training scene is new, validation holds out 8
    return TrainConfig(method=method, data=data, size=args.size, batch_size=args.batch_size, steps=args.steps,
                       seed=seed, val_every=max(1, args.steps // 4), checkpoint_every=max(1, args.steps // 4),
                       val_count=8, log_every=10, mask_size=256, holdout="right" if photos else "images",
                       crop_min=0.5 if photos else 1.0)


def child(args) -> None:
    """One training run or one arm's evaluation, in its own process with one thread."""
    import torch

    torch.set_num_threads(1)
    spec = json.loads(args.child)
    if spec["job"] == "train":
        from inpaintlab.train.loop import TrainRun

        s = TrainRun(train_config(args, spec["method"], spec["data"]), spec["options"], spec["out"],
                     log=lambda m: None).run()
        Path(spec["out"], f"bench-{spec['options'].get('part', 'run')}.json").write_text(
            json.dumps({"seconds": s.seconds, "steps": s.steps}))
    else:
        Path(spec["out"]).write_text(json.dumps(evaluate(args, spec)))


def launch(args, spec: dict) -> None:
    if spec["job"] == "train":
        done = Path(spec["out"], f"bench-{spec['options'].get('part', 'run')}.json")
        if done.is_file() and json.loads(done.read_text()).get("steps") == args.steps:
            print(f"  {spec['name']}: trained before ({json.loads(done.read_text())['seconds']:.0f} s)", flush=True)
            return
    seconds = launch_child(__file__, "--child", spec, ["--size", str(args.size), "--batch-size", str(args.batch_size),
                                                      "--steps", str(args.steps), "--per-bucket", str(args.per_bucket)])
    print(f"  {spec['name']}: {seconds:.0f} s", flush=True)


def held_out(size: int, per_bucket: int, data: str = "photos"):
    """Held-out crops (photos' right quarters, or unseen scenes) and one bucketed Co-Mod mask each: {bucket: (images,
    holes)}."""
    import torch

    from inpaintlab.masks import make_generator, make_rng

    if data == "photos":
        crops = right_quarter_crops(size)
    else:
        # drawn at twice the size and shrunk, as the training crops of the 2x scenes are
        crops = [cv2.resize(lines_and_polygons(2 * size, np.random.default_rng([SYNTHETIC_HELD_OUT, i])), (size, size),
                            interpolation=cv2.INTER_AREA) for i in range(4 * per_bucket)]
    out = {}
    for b, (lo, hi) in enumerate(BUCKETS):
        draw = make_generator("bucket", kind="comod", lo=lo, hi=hi)
        picks = [(b * 7 + 3 * j) % len(crops) for j in range(per_bucket)]  # spread over the photos
        holes = [draw(size, size, make_rng(2000 + b, j)).astype(np.float32) for j in range(per_bucket)]
        images = torch.from_numpy(np.stack([crops[k] for k in picks])).permute(0, 3, 1, 2).float()
        out[f"{int(lo * 100)}-{int(hi * 100)}"] = (images, torch.from_numpy(np.stack(holes))[:, None])
    return out


def evaluate(args, spec: dict) -> dict:
    """One arm over every bucket: metric means, NFE and seconds per image."""
    import torch

    from inpaintlab.errors import MissingWeightsError
    from inpaintlab.inpainters import load_inpainter
    from inpaintlab.metrics import build_metric

    model_name, options = ARMS[spec["arm"]]
    model = load_inpainter(model_name, checkpoint=spec["checkpoint"], device="cpu", **options)
    metrics = {}
    for name in ("psnr", "ssim", "lpips-alex", "cd"):
        try:
            metrics[name] = build_metric(name)
        except MissingWeightsError:
            pass
    result = {}
    for bucket, (images, holes) in held_out(args.size, args.per_bucket, spec["data"]).items():
        scores = {m: [] for m in metrics}
        nfe, seconds = [], []
        for i in range(images.shape[0]):  # one image at a time: seconds per image, and the reference's batch 1
            x, h = images[i:i + 1], holes[i:i + 1]
            t0 = time.perf_counter()
            out = model(x, h, generator=[torch.Generator().manual_seed(10_000 + i)])
            seconds.append(time.perf_counter() - t0)
            nfe += model.backend.last_nfe
            for name, metric in metrics.items():
                scores[name] += metric.update(out, x, h).tolist()
                metric.reset()
        result[bucket] = {**{m: float(np.mean(v)) for m, v in scores.items()},
                          "nfe": float(np.mean(nfe)), "seconds": float(np.mean(seconds)), "n": len(seconds)}
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000, help="training steps of every network")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--data", nargs="+", choices=("photos", "synthetic"), default=["photos", "synthetic"])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--nf", type=int, default=16)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--per-bucket", type=int, default=8, help="held-out crops per hole-ratio bucket")
    ap.add_argument("--arms", nargs="+", default=list(ARMS))
    ap.add_argument("--irsde-reference", action="store_true", help="IR-SDE as its code trains it (fill 1, plain L1)")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-strdiffusion"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    t_start = time.perf_counter()
    tables = []
    for data in args.data:
        tables.append(f"### {data}\n\n" + run_data_set(args, data, args.out / data))
    budget = (f"Budget: {args.steps} steps per network (nf {args.nf}, depth {args.depth}, T {args.T}) at "
              f"{args.size}x{args.size}, batch {args.batch_size}; {args.per_bucket} held-out crops per bucket; total "
              f"{(time.perf_counter() - t_start) / 60:.0f} min.")
    table = "\n\n".join([budget, *tables])
    (args.out / "table.md").write_text(table + "\n")
    print(table)


def run_data_set(args, data: str, out: Path) -> str:
    """Train the four networks on one data set, evaluate every arm on its held-out crops; the table (markdown)."""
    source = "builtin" if data == "photos" else \
        write_scenes(out / "scenes", SYNTHETIC_TRAIN, args.size * 2, seed=0)  # crops of 2x scenes: lines stay sharp
    net = {"nf": args.nf, "depth": args.depth, "T": args.T}
    irsde = {**net, **({} if args.irsde_reference else {"fill": 0.0, "loss": "weighted"})}
    sd = out / "strdiffusion"
    jobs = [{"job": "train", "method": "ir-sde", "options": irsde, "out": str(out / "ir-sde"), "name": f"{data} ir-sde",
             "data": source}]
    jobs += [{"job": "train", "method": "strdiffusion", "options": {**net, "part": p, "disc_ngf": 16}, "out": str(sd),
              "name": f"{data} {p}", "data": source} for p in ("texture", "structure", "discriminator")]
    print(f"{data}: training {len(jobs)} networks, {args.steps} steps each at {args.size}x{args.size}", flush=True)
    with ThreadPoolExecutor(args.parallel) as pool:
        list(pool.map(lambda j: launch(args, j), jobs))
    print(f"{data}: evaluating {args.arms} on {args.per_bucket} crops per bucket", flush=True)
    evals = []
    for arm in args.arms:
        checkpoint = out / "ir-sde" if ARMS[arm][0] == "ir-sde" else sd
        name = f"eval-{arm}-s{args.steps}-px{args.size}-n{args.per_bucket}.json"
        evals.append({"job": "eval", "arm": arm, "checkpoint": str(checkpoint), "out": str(out / name),
                      "name": f"{data} {arm}", "data": data})
    todo = [e for e in evals if not Path(e["out"]).is_file()]
    if len(todo) < len(evals):
        print(f"{data}: read back {', '.join(e['arm'] for e in evals if e not in todo)}", flush=True)
    with ThreadPoolExecutor(args.parallel) as pool:
        list(pool.map(lambda j: launch(args, j), todo))
    results = {e["arm"]: json.loads(Path(e["out"]).read_text()) for e in evals}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    buckets = list(next(iter(results.values())))
    lpips = "lpips-alex" in next(iter(results[evals[0]["arm"]].values()))
    lines = ["| arm | " + " | ".join(f"{b} %: PSNR / SSIM{' / LPIPS' if lpips else ''} / CD" for b in buckets)
             + " | NFE per image | s per image | paper |", "|---" * (len(buckets) + 4) + "|"]
    base = results.get("ir-sde")
    for arm, res in results.items():
        cells = []
        for b in buckets:
            r = res[b]
            delta = f" ({r['psnr'] - base[b]['psnr']:+.2f} dB)" if base is not None and arm != "ir-sde" else ""
            cells.append(f"{r['psnr']:.2f}{delta} / {r['ssim']:.3f}" + (f" / {r['lpips-alex']:.3f}" if lpips else "")
                         + f" / {r['cd']:.1f}")
        nfe = np.mean([res[b]["nfe"] for b in buckets])
        sec = np.mean([res[b]["seconds"] for b in buckets])
        lines.append(f"| {arm} | " + " | ".join(cells) + f" | {nfe:.0f} | {sec:.1f} | {PAPER.get(arm, '')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
