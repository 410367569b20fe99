"""Re-measure Seamless Borders' claims at small scale (Hou et al. 2025; notes 1.9).

Data: ``--size`` crops of the left three quarters of the built-in photos, each covering 15-35 % of
the region's shorter side (scene-level content); evaluation on held-out crops of the right quarters
(three per photo), each with one Co-Mod mask (10-50 % hole) and one outpainting border (kept box
0.5-0.75 of each side). Tiny models: a VAE of widths (32, 64, 64) (factor 4) and an unconditional
UNet of widths (32, 64).

1. **vae** (the paper's Fig. 1 on the VAE alone): pre-train the VAE on plain reconstruction
   (``--pretrain-steps``; L1 + LPIPS-Alex where its weights are present, KL 1e-6, no GAN), then three
   branches of ``--branch-steps`` each from it: (a) Eq. 6 on encoder and decoder, (b) Eq. 6 on the
   decoder only, (c) plain reconstruction (the control: the same extra steps). Measured on the
   blended reconstruction D(E(x) hole_r + E(x_known)(1 - hole_r)) (posterior means):
   the seam's colour step beyond the image's own, dCD = CD(result) - CD(x), on the decoded image and on
   the composite (known pixels pasted); PSNR in a band of +-2 px around the boundary (composite);
   PSNR of the plain reconstruction D(E(x)) (must not degrade).
2. **table** (the paper's Table 4): a v-prediction UNet trained on the pre-trained VAE's latents with
   the standard loss (``--denoiser-steps``), then branched for ``--branch-steps`` standard vs
   two-step (Algorithm 1, lambda 0.5, t' = t - 1); sampled with BLD on the masked image's latents
   (DDIM, ``--sample-steps``, leading) and decoded by the pre-trained VAE ("original") or branch (b)
   (decoder-only, so both share the UNet's latent space). CD, boundary-gradient error, PSNR, SSIM,
   LPIPS-Alex on the composite; two sampling seeds.

Each row: mean over crops and seeds, with a paired bootstrap 95 % interval of the difference to the
reference row. Runs resume: a second call with the same ``--out`` reuses finished runs.

    python benchmarks/repro_seamless.py --pretrain-steps 1500 --branch-steps 800 --out runs/bench-seamless
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from common import launch_child, lpips_present, right_quarter_crops

VAE_COLUMNS = {  # score key: column title
    "inpaint_dcd_composite": "dCD inpaint, composite", "inpaint_dcd_decoded": "dCD inpaint, decoded",
    "outpaint_dcd_composite": "dCD outpaint, composite", "inpaint_band_psnr": "band PSNR inpaint",
    "outpaint_band_psnr": "band PSNR outpaint", "plain_psnr": "PSNR of D(E(x))",
}
PAPER_TABLE4 = {  # FID / AS / CD, BrushBench inpainting
    "BLD (original VAE, standard)": "18.466 / 5.367 / 15.735",
    "VAE fine-tuned only": "16.835 / 5.725 / 15.354",
    "two-step only": "17.081 / 5.576 / 16.080",
    "both": "15.434 / 5.991 / 8.538",
}


def train_config(args, method: str, steps: int):
    from inpaintlab.train.config import TrainConfig

    every = max(1, steps // 2)
    return TrainConfig(method=method, data="builtin", size=args.size, batch_size=args.batch_size, steps=steps,
                       seed=args.seed, val_every=every, checkpoint_every=every, val_count=8, log_every=10, mask_size=256,
                       crop_min=0.15, crop_max=0.35)


def child(args) -> None:
    """One training run, in its own process with one thread."""
    import torch

    from inpaintlab.train.loop import TrainRun

    torch.set_num_threads(1)
    spec = json.loads(args.child)
    s = TrainRun(train_config(args, spec["method"], spec["steps"]), spec["options"], spec["out"],
                 log=lambda m: None).run()
    Path(spec["out"], "bench.json").write_text(json.dumps({"seconds": s.seconds, "steps": s.steps}))


def launch(args, spec: dict) -> None:
    if Path(spec["out"], "bench.json").is_file():
        print(f"  {spec['name']}: done before", flush=True)
        return
    seconds = launch_child(__file__, "--child", spec, ["--size", str(args.size), "--batch-size",
                                                      str(args.batch_size), "--seed", str(args.seed)])
    print(f"  {spec['name']}: {seconds:.0f} s", flush=True)


def held_out(size: int):
    """Right-quarter crops and two masks each: (images (N,3,S,S), comod holes, border holes)."""
    import torch

    from inpaintlab.masks import make_generator, make_rng

    crops = np.stack(right_quarter_crops(size))
    comod = make_generator("bucket", kind="comod", lo=0.1, hi=0.5)
    border = make_generator("outpaint-random", min_ratio=0.5, max_ratio=0.75)
    n = len(crops)
    holes_c = np.stack([cv2.resize(comod(256, 256, make_rng(3000, i)), (size, size), interpolation=cv2.INTER_NEAREST)
                        for i in range(n)])
    holes_b = np.stack([border(size, size, make_rng(4000, i)) for i in range(n)])
    images = torch.from_numpy(crops).permute(0, 3, 1, 2).float()
    return images, torch.from_numpy(holes_c)[:, None].float(), torch.from_numpy(holes_b)[:, None].float()


def band(hole, width: int = 2):
    """Pixels within ``width`` of the hole's boundary (both sides)."""
    import torch.nn.functional as F

    k = 2 * width + 1
    grown = F.max_pool2d(hole, k, 1, width)
    shrunk = 1 - F.max_pool2d(1 - hole, k, 1, width)
    return (grown - shrunk) > 0.5


def psnr_in(a, b, where) -> np.ndarray:
    mse = (((a - b) ** 2) * where).flatten(1).sum(1) / (where.expand_as(a).flatten(1).sum(1)).clamp(min=1)
    return (10 * np.log10(1.0 / mse.clamp(min=1e-10).numpy()))


def vae_scores(run: Path, images, holes: dict) -> dict:
    """Per crop: dCD (decoded, composite), band PSNR, plain-reconstruction PSNR, for each mask family."""
    import torch

    from inpaintlab.methods.seamless.blend import blended_reconstruction
    from inpaintlab.methods.seamless.models import load_vae_run
    from inpaintlab.metrics.boundary import color_distance

    vae = load_vae_run(str(run))[0].eval()
    out = {}
    with torch.no_grad():
        plain = ((vae.decode(vae.encode(images * 2 - 1).latent_dist.mode()).sample + 1) / 2).clamp(0, 1)
        out["plain_psnr"] = psnr_in(plain, images, torch.ones_like(images[:, :1])).tolist()
        for family, hole in holes.items():
            x_hat = ((blended_reconstruction(vae, images, hole) + 1) / 2).clamp(0, 1)
            comp = x_hat * hole + images * (1 - hole)
            own = color_distance(images, hole)
            out[f"{family}_dcd_decoded"] = (color_distance(x_hat, hole) - own).tolist()
            out[f"{family}_dcd_composite"] = (color_distance(comp, hole) - own).tolist()
            out[f"{family}_band_psnr"] = psnr_in(comp, images, band(hole).float()).tolist()
    return out


def bootstrap_diff(a, b, reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of the paired differences a - b and its bootstrap 95 % interval."""
    d = np.asarray(a, float) - np.asarray(b, float)
    d = d[np.isfinite(d)]  # CD is undefined for a mask without a boundary
    rng = np.random.default_rng(seed)
    means = rng.choice(d, size=(reps, len(d)), replace=True).mean(1)
    return float(d.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def vae_experiment(args) -> str:
    import torch

    torch.set_num_threads(2)
    out = args.out / "vae"
    percept = "lpips-alex" if lpips_present() else "none"
    base = {"width": "32", "perceptual": percept, "disc_start": str(10 ** 9), "base_lr": str(args.lr / args.batch_size)}
    pre = out / "pretrain"
    launch(args, {"method": "seamless-vae", "steps": args.pretrain_steps, "out": str(pre), "name": "vae pretrain",
                  "options": {**base, "objective": "plain"}})
    arms = {"a: Eq. 6, encoder + decoder": {"objective": "blended"},
            "b: Eq. 6, decoder only": {"objective": "blended", "train_encoder": "false"},
            "c: plain (control)": {"objective": "plain"}}
    jobs = [{"method": "seamless-vae", "steps": args.branch_steps, "out": str(out / f"branch-{k[0]}"), "name": k,
             "options": {**base, **v, "pretrained": str(pre)}} for k, v in arms.items()]
    with ThreadPoolExecutor(args.parallel) as pool:
        list(pool.map(lambda j: launch(args, j), jobs))
    images, comod, border = held_out(args.size)
    holes = {"inpaint": comod, "outpaint": border}
    scores = {"pre-trained (start)": vae_scores(pre, images, holes)}
    for k in arms:
        scores[k] = vae_scores(out / f"branch-{k[0]}", images, holes)
    (out / "scores.json").write_text(json.dumps(scores))
    ref = scores["c: plain (control)"]
    cols = list(VAE_COLUMNS.items())
    lines = [f"VAE: {args.pretrain_steps} pre-training steps (plain, {percept}), then {args.branch_steps} per branch; "
             f"batch {args.batch_size} of {args.size} px; {len(images)} held-out crops. Cells: mean [95 % CI of the "
             f"difference to c].", "", "| VAE | " + " | ".join(c[1] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, s in scores.items():
        cells = []
        for key, _ in cols:
            mean = float(np.nanmean(s[key]))
            if name.startswith("c:"):
                cells.append(f"{mean:.2f}")
            else:
                d, lo, hi = bootstrap_diff(s[key], ref[key])
                cells.append(f"{mean:.2f} [{lo:+.2f}, {hi:+.2f}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_experiment(args) -> str:
    import torch

    from inpaintlab.inpainters import load_inpainter
    from inpaintlab.metrics import build_metric

    torch.set_num_threads(2)
    vae_dir = args.out / "vae"
    pre, ft = vae_dir / "pretrain", vae_dir / "branch-b"
    out = args.out / "table"
    base = {"vae": str(pre), "width": "32", "lr": str(args.denoiser_lr), "val_steps": "5"}
    std = out / "standard"
    launch(args, {"method": "seamless-denoiser", "steps": args.denoiser_steps, "out": str(std), "name": "denoiser",
                  "options": {**base, "objective": "standard"}})
    jobs = [{"method": "seamless-denoiser", "steps": args.branch_steps, "out": str(out / name), "name": name,
             "options": {**base, "init": str(std), "objective": objective}}
            for name, objective in (("branch-standard", "standard"), ("branch-two-step", "two-step"))]
    with ThreadPoolExecutor(args.parallel) as pool:
        list(pool.map(lambda j: launch(args, j), jobs))
    images, comod, _ = held_out(args.size)
    rows = {"BLD (original VAE, standard)": ("branch-standard", pre),
            "VAE fine-tuned only": ("branch-standard", ft),
            "two-step only": ("branch-two-step", pre), "both": ("branch-two-step", ft)}
    names = ["cd", "boundary-gradient", "psnr", "ssim"] + (["lpips-alex"] if lpips_present() else [])
    metrics = {m: build_metric(m) for m in names}
    scores = {}
    for row, (unet, vae) in rows.items():
        model = load_inpainter("seamless", checkpoint=str(out / unet), vae=str(vae), steps=args.sample_steps,
                               device="cpu")
        values = {m: [] for m in names}
        for seed in (0, 1):
            result = model(images, comod, generator=torch.Generator().manual_seed(seed))
            for m, metric in metrics.items():
                values[m] += metric.update(result, images, comod).tolist()
                metric.reset()
        scores[row] = values
    (out / "scores.json").write_text(json.dumps(scores))
    ref = scores["BLD (original VAE, standard)"]
    lines = [f"Denoiser: {args.denoiser_steps} standard steps, then {args.branch_steps} per branch; BLD on the masked "
             f"image's latents, DDIM {args.sample_steps} steps; {len(images)} crops x 2 seeds, Co-Mod 10-50 % holes. "
             f"Cells: mean [95 % CI of the difference to the BLD row].", "",
             "| row | " + " | ".join(names) + " | paper FID / AS / CD |", "|---" * (len(names) + 2) + "|"]
    for row, values in scores.items():
        cells = []
        for m in names:
            mean = float(np.nanmean(values[m]))
            if row == "BLD (original VAE, standard)":
                cells.append(f"{mean:.3f}")
            else:
                _, lo, hi = bootstrap_diff(values[m], ref[m])
                cells.append(f"{mean:.3f} [{lo:+.3f}, {hi:+.3f}]")
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {PAPER_TABLE4[row]} |")
    return "\n".join(lines)


def pooled(folders: list[Path], part: str, reference: str, digits: int) -> list[str]:
    """Rows of one experiment pooled over training seeds: per-seed means, pooled mean [95 % CI vs reference]."""
    runs = [json.loads((f / part / "scores.json").read_text()) for f in folders]
    columns = [c for c in VAE_COLUMNS if c in runs[0][reference]] or list(runs[0][reference])
    titles = [VAE_COLUMNS.get(c, c) for c in columns]
    extra = [" paper FID / AS / CD |"] if part == "table" else [""]
    lines = ["| row | " + " | ".join(titles) + " |" + extra[0], "|---" * (len(columns) + 1 + (part == "table")) + "|"]
    for row in runs[0]:
        cells = []
        for c in columns:
            seeds = " / ".join(f"{np.nanmean(r[row][c]):.{digits}f}" for r in runs)
            values = sum((r[row][c] for r in runs), [])
            if row == reference:
                cells.append(f"{np.nanmean(values):.{digits}f} ({seeds})")
            else:
                base = sum((r[reference][c] for r in runs), [])
                _, lo, hi = bootstrap_diff(values, base)
                cells.append(f"{np.nanmean(values):.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}] ({seeds})")
        lines.append(f"| {row} | " + " | ".join(cells) + " |" + (f" {PAPER_TABLE4[row]} |" if part == "table" else ""))
    return lines


def combine(folders: list[Path]) -> str:
    """Both experiments' tables pooled over the training seeds of ``folders``."""
    head = (f"Pooled over {len(folders)} training seeds; cells: mean over crops and seeds [95 % bootstrap interval of "
            f"the paired difference to the reference row] (per-seed means).")
    vae = pooled(folders, "vae", "c: plain (control)", 2)
    table = pooled(folders, "table", "BLD (original VAE, standard)", 3)
    return "\n".join([head, "", "#### 1. The VAE alone", "", *vae, "", "#### 2. The Table 4 analogue", "", *table])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", nargs="+", choices=("vae", "table"), default=["vae", "table"])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--pretrain-steps", type=int, default=1500)
    ap.add_argument("--branch-steps", type=int, default=800)
    ap.add_argument("--denoiser-steps", type=int, default=1500)
    ap.add_argument("--sample-steps", type=int, default=25)
    ap.add_argument("--lr", type=float, default=2e-4, help="VAE learning rate (base_lr = lr / batch)")
    ap.add_argument("--denoiser-lr", type=float, default=2e-4)
    ap.add_argument("--seed", type=int, default=0, help="training seed (weights, crops, masks)")
    ap.add_argument("--combine", nargs="+", type=Path, help="only print the tables pooled over these --out folders "
                                                            "(one per training seed)")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-seamless"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    if args.combine:
        return print(combine(args.combine))
    t0 = time.perf_counter()
    parts = []
    if "vae" in args.experiments:
        parts.append("### 1. The VAE alone (Fig. 1, Eq. 6)\n\n" + vae_experiment(args))
    if "table" in args.experiments:
        parts.append("### 2. Table 4 analogue\n\n" + table_experiment(args))
    text = "\n\n".join(parts) + f"\n\nTotal {(time.perf_counter() - t0) / 60:.0f} min.\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
