"""Re-measure ASUKA's claims at small scale (Wang, Cao, Fu 2024, Tables 1-4; notes 2.8).

Data: ``--size`` crops of the left three quarters of the built-in photos (15-35 % of the region's
shorter side); evaluation on held-out crops of the right quarters (three per photo) with one
MISATO mask each (ASUKA's mixture without rectangles, hole 10-50 %), two sampling seeds.

Stages (each a training run of inpaintlab's own commands, except the base stand-in):

1. **vae**: a tiny KL VAE (widths 32, 64, 64; factor 4) on plain reconstruction (``seamless-vae
   --set objective=plain``), ``--vae-steps``; its latents are rescaled to unit variance, as SD's.
2. **base**: the frozen "SD-inpainting" stand-in: a 9-channel UNet (widths 32, 64, one
   cross-attention level of width 32) trained with the eps loss on the ASUKA mask mixture. So that
   it has learned to use its cross-attention (as SD has, from text), half of its samples get a
   "caption" made from the clean image (16 tokens: a 4x4 thumbnail through a fixed random
   projection, then the empty prompt's remaining tokens), half the empty prompt (notes 2.8 item 1).
   Saved as an SD-inpainting pipeline folder (with diffusers' tiny CLIP text encoder), which the
   ASUKA commands load like SD-1.5's.
3. **mae**: ViTMAE at 32 px, patch 4 (64 tokens), width 64, 4 blocks, decoder 64 x 8 (features after
   block 6): ``--mae-steps`` of random 75 % masking (the "p.t. MAE"), then two branches of
   ``--mae-ft-steps``: ASUKA's adaptive masking on the mixture ("f.t. MAE") and more random masking
   (the control with the same steps).
4. **align**: ``--align-steps`` each: asuka (4 blocks), attn, linear, cross4, prompt (SD-prompt), and
   asuka on the control MAE (Table 2); the learning rate is ``--align-lr`` (the printed 5e-2 is
   swept with ``--lr-sweep``).
5. **decoder**: the asymmetric decoder from the KL decoder, ``--decoder-steps`` without
   augmentation (the "Asy. VAE" row), then ``--decoder-branch-steps`` each: no augmentation
   (control), colour, colour + latent.
6. **tables**: each arm inpaints the held-out crops (DDIM ``--sample-steps``, no guidance) with two
   seeds. PSNR, SSIM, LPIPS-Alex, CD and Grad on the composite, and the stability measure: LPIPS-Alex
   between the two seeds' results inside the hole (lower: fewer seed-dependent insertions). Cells:
   mean [95 % bootstrap interval of the paired difference to the table's reference row]. A diagnostic
   row conditions the base on the caption of the ground truth (what it was trained with): how much a
   condition can help it at all.

Runs resume: a second call with the same ``--out`` reuses finished runs. ``--combine OUT1 OUT2``
pools the tables of several training seeds.

    python benchmarks/repro_asuka.py --seed 0 --out runs/bench-asuka
    python benchmarks/repro_asuka.py --seed 1 --share-base runs/bench-asuka --out runs/bench-asuka-seed1
    python benchmarks/repro_asuka.py --combine runs/bench-asuka runs/bench-asuka-seed1
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from common import launch_child, lpips_present, right_quarter_crops

PAPER = {  # MISATO: PSNR / SSIM / LPIPS / FID / U-IDS / P-IDS (notes 2.7)
    "SD": "22.454 / 0.796 / 0.168 / 12.812", "SD-prompt": "22.381 / 0.798 / 0.160 / 12.517",
    "ASUKA (KL decoder)": "22.454 / 0.795 / 0.156 / 11.949", "ASUKA": "22.495 / 0.799 / 0.150 / 11.460",
    "p.t. MAE": "22.485 / 0.799 / 0.151 / 11.513", "f.t. MAE": "22.495 / 0.799 / 0.150 / 11.460",
    "linear": "22.402 / 0.797 / 0.155 / 11.934", "attn": "22.474 / 0.798 / 0.152 / 11.613",
    "cross4": "22.488 / 0.799 / 0.152 / 11.762", "asuka (4 blocks)": "22.495 / 0.799 / 0.150 / 11.460",
    "KL-VAE": "22.454 / 0.795 / 0.156 / 11.949", "Asy. VAE": "22.566 / 0.801 / 0.151 / 11.634",
    "colour aug": "22.475 / 0.799 / 0.152 / 11.603", "colour + latent aug": "22.495 / 0.799 / 0.150 / 11.460",
}
METRICS = ("psnr", "ssim", "lpips-alex", "cd", "grad", "stability")
#: one value per arm (no interval); meaningful only with many more images than the 27 crops here
DATASET_METRICS = ("fid", "u-ids", "p-ids")
TINY_MAE = {"patch_size": "4", "hidden_size": "64", "num_hidden_layers": "4", "decoder_hidden_size": "64"}


def train_config(args, method: str, steps: int, masks: str = "misato"):
    from inpaintlab.train.config import TrainConfig

    every = max(1, steps // 2)
    return TrainConfig(method=method, data="builtin", size=args.size, batch_size=args.batch_size, steps=steps,
                       seed=args.seed, val_every=every, checkpoint_every=every, val_count=4, log_every=10,
                       masks=masks, mask_params={"hi": 0.5} if masks == "misato" else {}, mask_size=256, crop_min=0.15, crop_max=0.35)


# ---- the base stand-in -------------------------------------------------------------------------------

def caption_projection(width: int, seed: int = 1234):
    """The fixed random map of a 4x4 thumbnail to 16 caption tokens: (W (3, c), position table (16, c))."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.randn(3, width, generator=g) / 3 ** 0.5, 0.5 * torch.randn(16, width, generator=g)


def caption(images, null, projection):
    """Caption tokens of clean images: 16 thumbnail tokens, then the empty prompt's tokens 16..76."""
    import torch
    import torch.nn.functional as F

    w, pos = projection
    thumb = F.adaptive_avg_pool2d(images * 2 - 1, 4).flatten(2).transpose(1, 2)  # (N, 16, 3)
    return torch.cat([thumb @ w + pos, null[:, 16:].expand(images.shape[0], -1, -1)], dim=1)


def train_base(args, spec: dict) -> dict:
    """The frozen SD-inpainting stand-in (notes 2.8 item 1), saved as an inpainting pipeline folder."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel

    from inpaintlab.datasets import open_image_set
    from inpaintlab.inpainters.blended import latent_hole, masked_model_input
    from inpaintlab.methods.asuka.sampler import SD_BETAS
    from inpaintlab.methods.seamless.models import load_vae_run, tiny_unet_config
    from inpaintlab.testing import tiny_components
    from inpaintlab.train.data import TrainingCrops, split_images

    out = Path(spec["out"])
    cfg = train_config(args, "base", spec["steps"])
    vae = load_vae_run(spec["vae"])[0].eval().requires_grad_(False)
    source = open_image_set("builtin", size=None)
    crops = TrainingCrops(source, cfg, split_images(source, cfg)[0])
    with torch.no_grad():  # latents at unit variance, as SD's 0.18215 does for its VAE
        probe = torch.stack([crops[k]["image"] for k in range(256)])
        std = float(vae.encode(probe * 2 - 1).latent_dist.mode().std())
    vae.register_to_config(scaling_factor=1.0 / std)
    s = vae.config.scaling_factor
    parts = tiny_components(9, out / "tokenizer-files")
    text, tok = parts["text_encoder"].eval(), parts["tokenizer"]
    with torch.no_grad():
        null = text(tok([""], padding="max_length", max_length=77, return_tensors="pt").input_ids)[0]
    torch.manual_seed(args.seed)
    unet = UNet2DConditionModel(**tiny_unet_config(32, in_channels=9, cross_attention_dim=int(null.shape[-1])))
    projection = caption_projection(int(null.shape[-1]))
    schedule = DDIMScheduler(**SD_BETAS)
    abar = schedule.alphas_cumprod
    opt = torch.optim.AdamW(unet.parameters(), lr=args.base_lr, weight_decay=1e-2)
    losses = []
    for step in range(spec["steps"]):
        batch = [crops[step * args.batch_size + i] for i in range(args.batch_size)]
        x = torch.stack([b["image"] for b in batch])
        hole = torch.stack([b["hole"] for b in batch])
        with torch.no_grad():
            z0 = vae.encode(x * 2 - 1).latent_dist.sample() * s
            zk = vae.encode(masked_model_input(x, hole)).latent_dist.sample() * s
            cond = torch.where((torch.rand(len(x)) < 0.5).view(-1, 1, 1), caption(x, null, projection),
                               null.expand(len(x), -1, -1))
        t = torch.randint(0, 1000, (len(x),))
        eps = torch.randn_like(z0)
        a = abar[t].view(-1, 1, 1, 1)
        zt = a.sqrt() * z0 + (1 - a).sqrt() * eps
        pred = unet(torch.cat([zt, latent_hole(hole, 4), zk], 1), t, encoder_hidden_states=cond).sample
        loss = torch.mean((pred - eps) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    pipe = StableDiffusionInpaintPipeline(vae=vae, unet=unet.eval(), text_encoder=text, tokenizer=tok,
                                          scheduler=DDIMScheduler(**SD_BETAS, clip_sample=False,
                                                                  set_alpha_to_one=False, steps_offset=1),
                                          safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(out / "pipeline")
    return {"loss_first_100": float(np.mean(losses[:100])), "loss_last_100": float(np.mean(losses[-100:])),
            "scaling_factor": s}


# ---- runs ---------------------------------------------------------------------------------------------

def child(args) -> None:
    """One training run, in its own process with one thread."""
    import torch

    from inpaintlab.train.loop import TrainRun

    torch.set_num_threads(1)
    spec = json.loads(args.child)
    t0 = time.perf_counter()
    if spec["method"] == "base":
        extra = train_base(args, spec)
        steps = spec["steps"]
    else:
        s = TrainRun(train_config(args, spec["method"], spec["steps"], spec.get("masks", "misato")), spec["options"],
                     spec["out"], log=lambda m: None).run()
        extra, steps = {}, s.steps
    Path(spec["out"], "bench.json").write_text(json.dumps({"seconds": time.perf_counter() - t0, "steps": steps,
                                                           **extra}))


def launch(args, spec: dict) -> None:
    if Path(spec["out"], "bench.json").is_file():
        print(f"  {spec['name']}: done before", flush=True)
        return
    seconds = launch_child(__file__, "--child", spec, argv(args))
    print(f"  {spec['name']}: {seconds:.0f} s", flush=True)


def argv(args) -> list[str]:
    return ["--size", str(args.size), "--batch-size", str(args.batch_size), "--seed", str(args.seed),
            "--base-lr", str(args.base_lr)]


def parallel(args, jobs: list[dict]) -> None:
    with ThreadPoolExecutor(args.parallel) as pool:
        list(pool.map(lambda j: launch(args, j), jobs))


def train_all(args) -> dict[str, Path]:
    """Every run of the protocol (stages 1-5); the paths by name."""
    out = args.out
    p = {"vae": out / "vae", "base": out / "base", "mae-pt": out / "mae-pt", "mae-ft": out / "mae-ft",
         "mae-ctl": out / "mae-ctl", "dec-asy": out / "dec-asy"}
    percept = "lpips-alex" if lpips_present() else "none"
    if args.share_base:  # the frozen "SD" of another seed's run: only ASUKA's own parts are trained again
        import shutil

        for name in ("vae", "base"):
            if not (p[name] / "bench.json").is_file():
                shutil.copytree(args.share_base / name, p[name], dirs_exist_ok=True)
    parallel(args, [
        {"method": "seamless-vae", "steps": args.vae_steps, "out": str(p["vae"]), "name": "vae",
         "masks": "lama-medium",
         "options": {"width": "32", "perceptual": percept, "disc_start": str(10 ** 9), "objective": "plain",
                     "base_lr": str(2e-4 / args.batch_size)}},
        {"method": "asuka-mae", "steps": args.mae_steps, "out": str(p["mae-pt"]), "name": "MAE pre-training",
         "options": {**TINY_MAE, "masking": "random", "base_lr": str(args.mae_lr)}},
    ])
    parallel(args, [
        {"method": "base", "steps": args.base_steps, "out": str(p["base"]), "name": "base stand-in",
         "vae": str(p["vae"])},
        {"method": "asuka-mae", "steps": args.mae_ft_steps, "out": str(p["mae-ft"]), "name": "MAE fine-tuning",
         "options": {"pretrained": str(p["mae-pt"]), "masking": "adaptive", "base_lr": str(args.mae_lr)}},
        {"method": "asuka-mae", "steps": args.mae_ft_steps, "out": str(p["mae-ctl"]), "name": "MAE control",
         "options": {"pretrained": str(p["mae-pt"]), "masking": "random", "base_lr": str(args.mae_lr)}},
    ])
    pipeline = str(p["base"] / "pipeline")
    align = {"base": pipeline, "mae": str(p["mae-ft"]), "lr": str(args.align_lr), "val_steps": "5",
             "p_warmup": str(max(1, args.align_steps // 10))}
    arms = {"asuka": {}, "attn": {"variant": "attn"}, "linear": {"variant": "linear"},
            "cross4": {"variant": "cross4"}, "prompt": {"variant": "prompt"},
            "asuka-ptmae": {"mae": str(p["mae-ctl"])}}
    arms |= {f"asuka-lr{lr:g}": {"lr": str(lr)} for lr in args.lr_sweep}
    jobs = []
    for name, extra in arms.items():
        p[f"align-{name}"] = out / f"align-{name}"
        jobs.append({"method": "asuka-align", "steps": args.align_steps, "out": str(p[f"align-{name}"]),
                     "name": f"align {name}", "options": {**align, **extra}})
    decoder = {"base": pipeline, "lr": str(args.decoder_lr), "perceptual": percept, "disc_start": str(10 ** 9)}
    jobs.append({"method": "asuka-decoder", "steps": args.decoder_steps, "out": str(p["dec-asy"]),
                 "name": "decoder (Asy.)", "options": {**decoder, "jitter": "none", "latent_aug": "0"}})
    parallel(args, jobs)
    branches = {"dec-none": {"jitter": "none", "latent_aug": "0"}, "dec-colour": {"latent_aug": "0"},
                "dec-colour-latent": {}}
    jobs = []
    for name, extra in branches.items():
        p[name] = out / name
        jobs.append({"method": "asuka-decoder", "steps": args.decoder_branch_steps, "out": str(p[name]),
                     "name": name, "options": {**decoder, "pretrained": str(p["dec-asy"]), **extra}})
    parallel(args, jobs)
    return p


# ---- evaluation -----------------------------------------------------------------------------------------

def held_out(size: int):
    """Right-quarter crops with one MISATO mask each (the mixture without rectangles, hole 10-50 %)."""
    import cv2
    import torch

    from inpaintlab.masks import make_generator, make_rng

    crops = np.stack(right_quarter_crops(size))
    generate = make_generator("misato", hi=0.5, rectangles=False)
    holes = np.stack([cv2.resize(generate(256, 256, make_rng(5000, i)).astype(np.float32), (size, size),
                                 interpolation=cv2.INTER_NEAREST) for i in range(len(crops))])
    return torch.from_numpy(crops).permute(0, 3, 1, 2).float(), torch.from_numpy(holes)[:, None].float()


def scores_of(model, images, hole, metrics: dict, seeds=(0, 1)) -> dict[str, list[float]]:
    """Per crop and seed: the metrics of the composite; per crop: the stability (LPIPS between seeds in the hole)."""
    import torch

    from inpaintlab.metrics.base import PerImageMetric

    results = [model(images, hole, generator=torch.Generator().manual_seed(s)) for s in seeds]
    values: dict[str, list[float]] = {m: [] for m in metrics if m != "stability"}
    for name in values:
        metric = metrics[name]
        for result in results:
            if isinstance(metric, PerImageMetric):
                values[name] += metric.update(result, images, hole).tolist()
                metric.reset()
            else:  # a dataset-level metric (FID, IDS): one value over every crop and seed
                metric.update(result, images, hole)
        if not isinstance(metric, PerImageMetric):
            values[name] = [float(metric.compute())]
            metric.reset()
    if "stability" in metrics:
        values["stability"] = metrics["stability"](results, hole).tolist() * len(seeds)
    return values


def stability_measure():
    """Mean pairwise LPIPS-Alex inside the hole between the seeds' results."""
    from inpaintlab.metrics.stability import hole_lpips_distance, seed_variance

    distance = hole_lpips_distance()
    return lambda results, hole: seed_variance(results, hole, distance)


def bootstrap_diff(a, b, reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of the paired differences a - b and its bootstrap 95 % interval."""
    d = np.asarray(a, float) - np.asarray(b, float)
    d = d[np.isfinite(d)]
    rng = np.random.default_rng(seed)
    means = rng.choice(d, size=(reps, len(d)), replace=True).mean(1)
    return float(d.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


#: the four tables: (title, [(row, score key)]); the first row is the reference of the intervals
TABLES = [
    ("Table 1 analogue", [("SD", "sd"), ("SD-prompt", "prompt"), ("ASUKA (KL decoder)", "asuka"),
                          ("ASUKA", "asuka+dec"), ("SD + the clean image's caption (diagnostic)", "oracle")]),
    ("Table 2 analogue (MAE)", [("p.t. MAE", "asuka-ptmae"), ("f.t. MAE", "asuka")]),
    ("Table 3 analogue (alignment)", [("linear", "linear"), ("attn", "attn"), ("cross4", "cross4"),
                                      ("asuka (4 blocks)", "asuka")]),
    ("Table 4 analogue (decoder; same latents)", [("KL-VAE", "asuka"), ("Asy. VAE", "dec-asy"),
                                                  ("no aug (control)", "dec-none"), ("colour aug", "dec-colour"),
                                                  ("colour + latent aug", "asuka+dec")]),
]


def render(runs: list[dict], names: list[str]) -> str:
    """The four tables from the scores of one or more training seeds (values pooled; per-seed means in brackets)."""
    parts = []
    for title, rows in TABLES:
        rows = list(rows)
        if title.startswith("Table 3"):
            rows += [(f"asuka, lr {k.removeprefix('lr')}", k) for k in runs[0]
                     if k.startswith("lr") and all(k in r for r in runs)]
        ref_key = rows[0][1]
        if not all(ref_key in r for r in runs):
            continue
        lines = [f"#### {title}", "", "| row | " + " | ".join(names) + " | paper PSNR / SSIM / LPIPS / FID |",
                 "|---" * (len(names) + 2) + "|"]
        for row, key in rows:
            if not all(key in r for r in runs):
                continue
            cells = []
            for m in names:
                values = sum((r[key].get(m, [np.nan]) for r in runs), [])
                seeds = f" ({' / '.join(f'{np.nanmean(r[key].get(m, [np.nan])):.3f}' for r in runs)})" \
                    if len(runs) > 1 else ""
                if key == ref_key or m in DATASET_METRICS:
                    cells.append(f"{np.nanmean(values):.3f}{seeds}")
                else:
                    _, lo, hi = bootstrap_diff(values, sum((r[ref_key][m] for r in runs), []))
                    cells.append(f"{np.nanmean(values):.3f} [{lo:+.3f}, {hi:+.3f}]{seeds}")
            lines.append(f"| {row} | " + " | ".join(cells) + f" | {PAPER.get(row, '')} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def evaluate(args, p: dict[str, Path]) -> str:
    import torch

    from inpaintlab.inpainters import load_inpainter
    from inpaintlab.metrics import build_metric

    torch.set_num_threads(2)
    images, hole = held_out(args.size)
    names = metric_names()
    metrics = {m: build_metric(m) for m in names if m != "stability"}
    if "stability" in names:
        metrics["stability"] = stability_measure()
    pipeline = str(p["base"] / "pipeline")
    cache = args.out / "scores.json"
    scores = json.loads(cache.read_text()) if cache.is_file() else {}
    asuka = {"align": str(p["align-asuka"])}
    arms = {"sd": {"condition": "empty", "base": pipeline}, "prompt": {"align": str(p["align-prompt"])},
            "asuka": asuka, "asuka+dec": {**asuka, "decoder": str(p["dec-colour-latent"])},
            "asuka-ptmae": {"align": str(p["align-asuka-ptmae"])},
            **{k: {"align": str(p[f"align-{k}"])} for k in ("linear", "attn", "cross4")},
            **{f"lr{lr:g}": {"align": str(p[f"align-asuka-lr{lr:g}"])} for lr in args.lr_sweep},
            **{k: {**asuka, "decoder": str(p[k])} for k in ("dec-asy", "dec-none", "dec-colour")}}
    for key, options in arms.items():
        if key not in scores or any(m not in scores[key] for m in names):
            model = load_inpainter("asuka", steps=args.sample_steps, scheduler="ddim", device="cpu", **options)
            scores[key] = scores_of(model, images, hole, metrics)
            cache.write_text(json.dumps(scores))
    if "oracle" not in scores or any(m not in scores["oracle"] for m in names):  # does the base use its condition? the caption it was trained with, from the truth
        model = load_inpainter("asuka", condition="empty", base=pipeline, steps=args.sample_steps, scheduler="ddim",
                               device="cpu")
        null = model.backend.null
        projection = caption_projection(int(null.shape[-1]))
        model.backend.condition = lambda x, h: caption(x, null, projection)
        scores["oracle"] = scores_of(model, images, hole, metrics)
        cache.write_text(json.dumps(scores))
    return f"{header(args, len(images))}\n\n{render([scores], names)}"


def metric_names() -> list[str]:
    """The per-image metrics, and FID / U-IDS / P-IDS where the Inception weights are here."""
    from inpaintlab.errors import MissingWeightsError
    from inpaintlab.metrics import build_metric

    names = [m for m in METRICS if m not in ("lpips-alex", "stability") or lpips_present()]
    for name in DATASET_METRICS:
        try:
            build_metric(name)
            names.append(name)
        except MissingWeightsError:
            pass
    return names


def header(args, n: int, seeds: int = 1) -> str:
    pooled = f"pooled over {seeds} training seeds (per-seed means in brackets); " if seeds > 1 else ""
    return (f"{n} held-out crops of {args.size} px x 2 sampling seeds, {pooled}MISATO masks (mixture without "
            f"rectangles, 10-50 %); DDIM {args.sample_steps} steps, no guidance. Stability: LPIPS-Alex between the "
            f"two sampling seeds' results (composited: they differ only in the hole; one value per crop). Cells: "
            f"mean [95 % bootstrap interval of the paired difference to the table's first row].")


def combine(args, folders: list[Path]) -> str:
    """The tables pooled over the training seeds of ``folders`` (each a finished ``--out``)."""
    runs = [json.loads((f / "scores.json").read_text()) for f in folders]
    return f"{header(args, len(runs[0]['sd']['psnr']) // 2, len(runs))}\n\n{render(runs, metric_names())}"


def budget(p: dict[str, Path]) -> str:
    """What each run trained: steps and seconds."""
    lines = ["| run | steps | minutes |", "|---|---|---|"]
    for name, path in p.items():
        info = json.loads((path / "bench.json").read_text())
        lines.append(f"| {name} | {info['steps']} | {info['seconds'] / 60:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--vae-steps", type=int, default=800)
    ap.add_argument("--base-steps", type=int, default=2000)
    ap.add_argument("--base-lr", type=float, default=3e-4)
    ap.add_argument("--mae-steps", type=int, default=1500)
    ap.add_argument("--mae-ft-steps", type=int, default=500)
    ap.add_argument("--mae-lr", type=float, default=1.5e-3, help="asuka-mae base_lr (lr = base_lr x batch / 256)")
    ap.add_argument("--align-steps", type=int, default=600)
    ap.add_argument("--align-lr", type=float, default=5e-4)
    ap.add_argument("--lr-sweep", type=float, nargs="*", default=[5e-2])
    ap.add_argument("--decoder-steps", type=int, default=600)
    ap.add_argument("--decoder-branch-steps", type=int, default=400)
    ap.add_argument("--decoder-lr", type=float, default=2e-4)
    ap.add_argument("--sample-steps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0, help="training seed (weights, crops, masks)")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--share-base", type=Path, help="reuse the VAE and the base stand-in of this --out folder (a "
                                                    "second training seed of ASUKA's parts on the same frozen base)")
    ap.add_argument("--combine", nargs="+", type=Path, help="only print the tables pooled over these --out folders "
                                                            "(one per training seed)")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-asuka"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    if args.combine:
        return print(combine(args, args.combine))
    t0 = time.perf_counter()
    paths = train_all(args)
    text = evaluate(args, paths) + "\n\n#### Budget\n\n" + budget(paths)
    runs = sum(json.loads((path / "bench.json").read_text())["seconds"] for path in paths.values()) / 60
    text += (f"\n\nRuns: {runs:.0f} min of one-thread training in all (2 at a time on 2 cores); this call "
             f"{(time.perf_counter() - t0) / 60:.0f} min (finished runs and scores are reused).\n")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
