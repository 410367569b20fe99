"""Does StrDiffusion's discriminator learn? Its own pairs against an easy control, same network and optimiser.

StrDiffusion trains D (Eq. 14-16) to tell the "real" pair (y*_{t-1}, x*_{t-1}) from the "fake"
(y_t, x*_{t-1}): two states one reverse step apart. This probe trains the discriminator with the
method's loss and Adam (1e-4, betas 0.5 / 0.99) on 32 px crops of the built-in photos, either on those
pairs (``--task pairs``) or on a control whose fake is the clean image plus N(0, 0.3^2) noise
(``--task control``), and prints the loss and the mean real / fake logits every ``--every`` steps.
If the control separates and the pairs do not, the network and loss work and the task is the hard part.

    python benchmarks/strdiffusion_discriminator_probe.py --task control --steps 1500
    python benchmarks/strdiffusion_discriminator_probe.py --task pairs --steps 1500
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from inpaintlab.datasets import open_image_set
from inpaintlab.masks import make_generator, make_rng
from inpaintlab.methods.strdiffusion.discriminator import DiscriminatorConfig, TimeDiscriminator, discriminator_loss
from inpaintlab.methods.strdiffusion.sde import SDEConfig, Schedule, optimal_reverse_state, sample_state
from inpaintlab.methods.strdiffusion.structure import grayscale, structure_edges


def crops(size: int, count: int, seed: int) -> torch.Tensor:
    """``count`` random ``size`` crops of the built-in photos' left three quarters (N, 3, size, size)."""
    source, rng = open_image_set("builtin", size=None), np.random.default_rng(seed)
    out = []
    for _ in range(count):
        image = source.read(int(rng.integers(len(source))))
        h, w = image.shape[:2]
        side = int(rng.integers(size, min(h, 3 * w // 4) + 1))
        y0, x0 = int(rng.integers(h - side + 1)), int(rng.integers(3 * w // 4 - side + 1))
        window = torch.from_numpy(np.ascontiguousarray(image[y0:y0 + side, x0:x0 + side])).permute(2, 0, 1)[None]
        out.append(torch.nn.functional.interpolate(window.float(), size=(size, size), mode="area"))
    return torch.cat(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=("pairs", "control"), default="pairs")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--ngf", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    s = Schedule(SDEConfig(args.T))
    net = TimeDiscriminator(DiscriminatorConfig(ngf=args.ngf))
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, betas=(0.5, 0.99))
    pool = crops(args.size, 512, seed=0)
    draw = make_generator("lama-medium")
    t0 = time.perf_counter()
    print(f"task {args.task}, T {args.T}, lr {args.lr}, {args.size} px, batch {args.batch_size}, ngf {args.ngf}")
    for step in range(args.steps + 1):
        image = pool[torch.randint(len(pool), (args.batch_size,))]
        # LaMa's masks drawn at 256 and shrunk (at 32 px they would cover more than half the crop)
        big = torch.from_numpy(np.stack([draw(256, 256, make_rng(step, i)) for i in
                                         range(args.batch_size)]).astype(np.float32))[:, None]
        hole = (torch.nn.functional.interpolate(big, size=(args.size, args.size), mode="area") > 0.5).float()
        keep, t = 1 - hole, torch.randint(2, args.T + 1, (args.batch_size,))
        x0, mu_x = grayscale(image), structure_edges(image, hole, 3.0, "known")
        x_star = optimal_reverse_state(s, sample_state(s, x0, mu_x, t, torch.randn_like(x0)), x0, mu_x, t)
        if args.task == "pairs":  # the method's pairs (StrDiffusionMethod.step_loss, part discriminator)
            mu_y = image * keep
            fake = sample_state(s, image, mu_y, t, torch.randn_like(image))
            real = optimal_reverse_state(s, fake, image, mu_y, t)
        else:
            real, fake = image, image + 0.3 * torch.randn_like(image)
        d_real, d_fake = net(t, real, x_star), net(t, fake, x_star)
        d_anchor = net(t, real * keep + fake * hole, x_star)
        loss, _ = discriminator_loss(d_real, d_fake, d_anchor, 1.0, 1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % args.every == 0:
            print(f"step {step:5d}  loss {loss.item():.4f}  real {d_real.mean().item():+.4g}  fake "
                  f"{d_fake.mean().item():+.4g}  gap {(d_real - d_fake).mean().item():+.4g}  "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
