"""Training IR-SDE and StrDiffusion's three networks on the shared loop (notes A1-A7).

``inpaintlab train ir-sde`` trains IR-SDE's noise network (holes filled with 1, plain L1 between the
mean reverse step and the optimal state of Eq. 4, t ~ U{1..T}). ``inpaintlab train strdiffusion
--part structure|texture|discriminator`` trains one of StrDiffusion's three independent networks
(t ~ U{2..T}, the 1 (known) + 10 (hole) weighted L1): the structure network on grayscale -> edges,
the SPADE texture network conditioned on the closed-form structure state x*_{t-1}, or the
discriminator on closed-form pairs (Eq. 14-16). The parts share nothing in training, so they run in
any order or at once; with one ``--out`` each goes to its own sub-folder (``OUT/structure`` ...),
and the ``strdiffusion`` inpainter loads all three from ``OUT``.

Every draw of t and noise comes from torch's global generator, which the loop seeds and saves in
every checkpoint (a resume continues the same stream).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from ...errors import InpaintlabError
from ...options import option
from ...train.method import METHODS, TrainableMethod
from .discriminator import DiscriminatorConfig, TimeDiscriminator, discriminator_loss
from .names import IRSDE, PARTS, STRDIFFUSION
from .sde import (SDEConfig, Schedule, eq11_target, matching_loss, optimal_reverse_state, reverse_mean_step,
                  sample_state, score_from_noise)
from .structure import grayscale, structure_edges
from .unet import ConditionalUNet, UNetConfig, unet_config_to_dict



@dataclass(frozen=True)
class DiffusionOptions:
    """What IR-SDE and StrDiffusion share (IR-SDE's inpainting config: T 100, lambda 30/255, eps 0.005)."""

    T: int = option(100, "diffusion steps (stored with the network; sampling uses the same)", ge=2)
    max_sigma: float = option(30.0, "lambda, the stationary noise level, on the 0-255 scale", gt=0)
    eps: float = option(0.005, "exp(-thetabar_T): how close to mu the forward process ends", gt=0, lt=1)
    nf: int = option(64, "UNet base width (64: the papers'; 16 trains on a CPU)", ge=4)
    depth: int = option(4, "UNet levels (4: the papers'; H and W are padded to a multiple of 2**depth)", ge=2)
    lr: float = option(1e-4, "learning rate (Adam, betas 0.9 / 0.99)", gt=0)
    w_known: float = option(1.0, "weighted loss: weight of the known pixels' mean |error|", ge=0)
    w_hole: float = option(10.0, "weighted loss: weight of the hole pixels' mean |error|", ge=0)
    val_sampling: bool = option(False, "validate by sampling the held-out pairs (T network evaluations each; "
                                       "off: the matching loss at fixed steps)")


@dataclass(frozen=True)
class IRSDEOptions(DiffusionOptions):
    """IR-SDE's options (``codes/config/inpainting/options/train/ir-sde.yml``)."""

    fill: float = option(1.0, "mu's value in the hole (IR-SDE: 1, white; StrDiffusion: 0)")
    loss: Literal["l1", "weighted"] = option("l1", "l1: IR-SDE's plain mean |error|; weighted: StrDiffusion's "
                                                   "w_known / w_hole")


@dataclass(frozen=True)
class StrDiffusionOptions(DiffusionOptions):
    """StrDiffusion's options (``train/{structure,texture,discriminator}/.../ir-sde.yml``)."""

    part: Literal["structure", "texture", "discriminator"] = option(
        "texture", "which network: structure (gray -> edges), texture (SPADE-guided), discriminator")
    T: int = option(400, "diffusion steps (the training configs' and the Places2 checkpoint's 400; paper: 100)",
                    ge=2)
    edge_sigma: float = option(3.0, "Canny sigma of the structure's edges (the reference: 3 in training, 2 at "
                                    "test); stored, and sampling uses it", gt=0)
    edges: Literal["known", "complete"] = option(
        "known", "known: Canny on the known pixels only; complete: the reference's Canny of the whole image "
                 "(leaks hole content)")
    target: Literal["eq4", "eq11"] = option(
        "eq4", "texture target: eq4 (the code's optimal state; the published numbers) or eq11 (the paper's "
               "structure-guided target, in the hole)")
    disc_ngf: int = option(64, "discriminator width", ge=1)
    margin: float = option(1.0, "discriminator triplet margin (nn.TripletMarginLoss's default)", ge=0)
    triplet_weight: float = option(1.0, "discriminator triplet weight (the code adds it 1:1)", ge=0)


def sde_record(o: DiffusionOptions) -> dict[str, Any]:
    return {"T": o.T, "max_sigma": o.max_sigma, "eps": o.eps}


class DiffusionMethod(TrainableMethod):
    """What the diffusion methods share: the schedule, t and noise draws, validation by the matching loss."""

    t_min: int = 1

    def __init__(self, train, options: DiffusionOptions, *, log=print):
        super().__init__(train, options, log=log)
        self.schedule = Schedule(SDEConfig(options.T, options.max_sigma, options.eps))

    def draw_t(self, n: int) -> torch.Tensor:
        return torch.randint(self.t_min, self.options.T + 1, (n,), device=self.device)

    def matching(self, pred: torch.Tensor, target: torch.Tensor, hole: torch.Tensor | None) -> torch.Tensor:
        o = self.options
        return matching_loss(pred, target, hole, o.w_known, o.w_hole)

    def step_loss(self, image: torch.Tensor, hole: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The training loss of a batch at steps ``t`` (noise from the global generator)."""
        raise NotImplementedError

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        self.count_batch(batch)
        loss = self.step_loss(batch["image"], batch["hole"], self.draw_t(batch["image"].shape[0]))
        self.log_losses({"train/loss": loss.detach()})
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        if self.options.val_sampling:
            return super().validation_step(batch, batch_idx)
        image, hole = batch["image"], batch["hole"]
        # the same steps and noise at every validation: a curve that moves only with the weights
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(1000 + batch_idx)
            losses = [self.step_loss(image, hole, torch.full((image.shape[0],), max(self.t_min, int(q * self.options.T)),
                                                             device=self.device)) for q in (0.1, 0.3, 0.6, 1.0)]
        self.log("val/loss", torch.stack(losses).mean(), batch_size=image.shape[0], on_epoch=True, sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.net_g.parameters(), lr=self.options.lr, betas=(0.9, 0.99))


def noise_prediction_loss(method: DiffusionMethod, net, y0, mu, t, hole, structure=None, target=None):
    """Matching loss of one batch: y_t from the marginal, the network's mean reverse step vs the target (Eq. 4)."""
    s = method.schedule
    yt = sample_state(s, y0, mu, t, torch.randn_like(y0))
    eps = net(yt, mu, t) if structure is None else net(yt, mu, t, structure=structure)
    pred = reverse_mean_step(s, yt, mu, score_from_noise(s, eps, t), t)
    goal = optimal_reverse_state(s, yt, y0, mu, t) if target is None else target(yt)
    return method.matching(pred, goal, hole)


@METHODS.register(IRSDE)
class IRSDEMethod(DiffusionMethod):
    """IR-SDE (Luo et al. 2023): a mean-reverting SDE whose reverse a UNet learns, holes filled with white."""

    Config = IRSDEOptions
    inpainter = IRSDE
    # codes/config/inpainting/options/train/ir-sde.yml: batch 4 of 128 crops; EMA(beta=0.995, update_every=10)
    # of ema_pytorch, whose update_after_step is 100
    train_defaults = {"size": 128, "batch_size": 4, "ema_decay": 0.995, "ema_every": 10, "ema_warmup": 100}

    def __init__(self, train, options: IRSDEOptions, *, log=print):
        super().__init__(train, options, log=log)
        self.unet_cfg = UNetConfig(3, 3, options.nf, options.depth)
        self.net_g = ConditionalUNet(self.unet_cfg)

    def generator_config(self) -> dict[str, Any]:
        return {"unet": unet_config_to_dict(self.unet_cfg), "sde": sde_record(self.options), "fill": self.options.fill}

    def mu(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """mu = image x keep + fill x hole (IR-SDE's ``mask_to``: holes white)."""
        return image * (1 - hole) + self.options.fill * hole

    def step_loss(self, image, hole, t):
        weighted = hole if self.options.loss == "weighted" else None
        return noise_prediction_loss(self, self.net_g, image, self.mu(image, hole), t, weighted)

    def inpaint(self, images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        from .sampler import Noise, irsde_sample

        gens = [torch.Generator().manual_seed(i) for i in range(images.shape[0])]
        return irsde_sample(self.net_g, self.schedule, self.mu(images, hole), Noise(gens, images.device))


@METHODS.register(STRDIFFUSION)
class StrDiffusionMethod(DiffusionMethod):
    """StrDiffusion (Liu et al. 2024): structure diffusion (gray -> edges) guiding a texture diffusion, one part a run."""

    Config = StrDiffusionOptions
    inpainter = STRDIFFUSION
    train_defaults = {"size": 256, "batch_size": 16}  # the three train configs: batch 16 of 256 crops, no EMA
    t_min = 2  # the code's generate_random_states: randint(2, T + 1)

    def __init__(self, train, options: StrDiffusionOptions, *, log=print):
        super().__init__(train, options, log=log)
        o = options
        if o.part == "discriminator" and train.batch_size > 4 and train.batch_size % 4:
            raise InpaintlabError(f"the discriminator's minibatch-stddev layer groups the batch by 4: --batch-size "
                                  f"must be at most 4 or a multiple of 4, got {train.batch_size}")
        if o.part == "structure":
            self.net_cfg: Any = UNetConfig(1, 1, o.nf, o.depth)
            self.net_g = ConditionalUNet(self.net_cfg)
        elif o.part == "texture":
            self.net_cfg = UNetConfig(3, 3, o.nf, o.depth, spade=True)
            self.net_g = ConditionalUNet(self.net_cfg)
        else:
            self.net_cfg = DiscriminatorConfig(ngf=o.disc_ngf)
            self.net_g = TimeDiscriminator(self.net_cfg)

    def run_subfolder(self) -> str | None:
        return self.options.part

    def generator_config(self) -> dict[str, Any]:
        o = self.options
        net = self.net_cfg.to_dict() if o.part == "discriminator" else unet_config_to_dict(self.net_cfg)
        return {"part": o.part, "network": net, "sde": sde_record(o), "edge_sigma": o.edge_sigma, "edges": o.edges,
                "target": o.target}

    def usage_hint(self, out) -> str:
        folder = out.parent if out.name == self.options.part else out
        others = [p for p in PARTS if p != self.options.part and not (folder / p).is_dir()]
        if others:
            return f"train {' and '.join(others)} with --out {folder} too, then --model {STRDIFFUSION} --option " \
                   f"checkpoint={folder}"
        return f"use it with --model {STRDIFFUSION} --option checkpoint={folder}"

    def structure_inputs(self, image: torch.Tensor, hole: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x0 = gray(image), mu_x = Canny edges x keep (of the known pixels, or the reference's whole image)."""
        o = self.options
        return grayscale(image), structure_edges(image, hole, o.edge_sigma, o.edges)

    def structure_optimum(self, x0, mu_x, t):
        """x*_{t-1}: the closed-form structure state the texture network is conditioned on (a fresh x_t)."""
        s = self.schedule
        xt = sample_state(s, x0, mu_x, t, torch.randn_like(x0))
        return xt, optimal_reverse_state(s, xt, x0, mu_x, t)

    def step_loss(self, image, hole, t):
        o, s = self.options, self.schedule
        x0, mu_x = self.structure_inputs(image, hole)
        if o.part == "structure":
            return noise_prediction_loss(self, self.net_g, x0, mu_x, t, hole)
        mu_y = image * (1 - hole)  # StrDiffusion: holes black
        if o.part == "texture":
            xt, x_star = self.structure_optimum(x0, mu_x, t)
            target = None if o.target == "eq4" else \
                (lambda yt: eq11_target(s, s, image, mu_y, xt, x0, mu_x, t, hole=hole))  # noqa: E731
            return noise_prediction_loss(self, self.net_g, image, mu_y, t, hole, structure=x_star, target=target)
        yt = sample_state(s, image, mu_y, t, torch.randn_like(image))
        y_star = optimal_reverse_state(s, yt, image, mu_y, t)
        _, x_star = self.structure_optimum(x0, mu_x, t)
        keep = 1 - hole
        d_real = self.net_g(t, y_star, x_star)
        d_fake = self.net_g(t, yt, x_star)
        d_anchor = self.net_g(t, y_star * keep + yt * hole, x_star)
        loss, _ = discriminator_loss(d_real, d_fake, d_anchor, o.margin, o.triplet_weight)
        return loss

    def inpaint(self, images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        raise InpaintlabError("one StrDiffusion part cannot inpaint alone: the strdiffusion inpainter loads all three")

    def validation_step(self, batch, batch_idx):
        if self.options.val_sampling:
            raise InpaintlabError("--set val_sampling=true needs all three parts; a part validates its loss")
        return super().validation_step(batch, batch_idx)

    def configure_optimizers(self):
        if self.options.part == "discriminator":  # the code's D: Adam 1e-4, betas (0.5, 0.99)
            return torch.optim.Adam(self.net_g.parameters(), lr=self.options.lr, betas=(0.5, 0.99))
        return super().configure_optimizers()


__all__ = ["IRSDEMethod", "StrDiffusionMethod", "IRSDEOptions", "StrDiffusionOptions", "PARTS", "IRSDE",
           "STRDIFFUSION"]
