"""Training latent-space inpainting (Babin 2024): the autoencoder, then the four presets of Table 5.1.

``inpaintlab train latent-autoencoder`` pre-trains the encoder and decoder of a split LaMa
generator on full images with MSE (thesis §4.1.2; code ``own/autoencoder_fit.py``: the squared error
summed over channels and pixels, averaged over the batch; Adam 1e-3; reduce-on-plateau, factor 0.2,
patience 20, min LR 5e-5, on the validation loss). ``inpaintlab train latent-inpainting --preset N
--autoencoder RUN`` then trains one preset from it:

====== ============================ =================================== ============================
preset encoder input                trained                             loss (``objective=thesis``)
====== ============================ =================================== ============================
1      [image * (1 - hole), hole]   everything (from the autoencoder)   pixel L1 (known 1, hole 1)
2      image * (1 - hole)           refiner + mask encoder + zero convs pixel L1
3      [image * (1 - hole), hole]   refiner + the 4-channel stem conv   latent L1 alone, no decoder
4      image * (1 - hole)           refiner + mask encoder + zero convs latent L1 alone, no decoder
====== ============================ =================================== ============================

The 4-channel stem starts as the autoencoder's with a zero mask channel (``stem=copy``), so the
network starts as the autoencoder on the masked image; ``stem=random`` re-initialises it as the
public code does for preset 1, and ``stem=mask_conv`` is the code's preset 3 (a new bias-free 7x7
conv replacing the stem and bypassing its BatchNorm and ReLU). **Frozen means frozen**: frozen
parts have ``requires_grad=False`` and stay in eval mode (their BatchNorm running statistics never
move), which the public code does not do.

``objective``: ``thesis`` (default) as in the table; ``reference`` as the public code trains the
latent presets (pixel L1 x10 known and hole + 1e-4 x latent L1, decoder always on); ``full`` the
thesis's Table 5.2: LaMa's adversarial losses (non-saturating + R1, feature matching x100,
perceptual x30, L1 known x10) + 1e-3 x latent L1 for the latent presets.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from ...errors import InpaintlabError
from ...options import option
from ...train.export import state_fingerprint
from ...train.method import METHODS, TrainableMethod
from ..lama.losses import LAMA_LOSS_WEIGHTS, masked_l1
from ..lama.method import TwoPlayerStep
from .network import LatentInpaintingNet, LatentNetConfig, config_from_dict, config_to_dict, latent_l1
from .presets import AUTOENCODER, INPAINTING, PRESETS

def freeze(module: torch.nn.Module) -> None:
    """No gradients and eval mode (BatchNorm uses and keeps its running statistics)."""
    module.requires_grad_(False)
    module.eval()


class FrozenPartsMixin:
    """Keeps the modules named in ``frozen_parts`` in eval mode whatever ``train()`` Lightning calls."""

    frozen_parts: tuple[str, ...] = ()

    def train(self, mode: bool = True):
        super().train(mode)  # type: ignore[misc]
        for name in self.frozen_parts:
            self.get_submodule(name).eval()  # type: ignore[attr-defined]
        return self


# -- the autoencoder ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AutoencoderOptions:
    """Options of the autoencoder pre-training (thesis §4.1.2; code ``own/autoencoder_fit.py``)."""

    ngf: int = option(8, "base width: encoder widths ngf, 2ngf, 4ngf, 8ngf (the thesis's 8: a 64-channel latent)",
                      ge=1)
    n_downsampling: int = option(3, "stride-2 stages of the encoder (the latent is at H / 2**n)", ge=1)
    lr: float = option(1e-3, "learning rate (Adam)", gt=0)
    plateau_factor: float = option(0.2, "reduce-on-plateau: multiply the learning rate by this", gt=0, lt=1)
    plateau_patience: int = option(20, "reduce-on-plateau: validations without improvement before reducing", ge=0)
    min_lr: float = option(5e-5, "reduce-on-plateau: lowest learning rate", ge=0)


def reconstruction_mse(recon: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """The code's MSE: squared error summed over channels and pixels, averaged over the batch."""
    return (recon - images).pow(2).sum(dim=(1, 2, 3)).mean()


@METHODS.register(AUTOENCODER)
class LatentAutoencoderMethod(TrainableMethod):
    """The autoencoder of latent inpainting: LaMa's encoder and decoder trained on full images with MSE."""

    Config = AutoencoderOptions

    def __init__(self, train, options: AutoencoderOptions, *, log=print):
        super().__init__(train, options, log=log)
        if train.size % 2 ** options.n_downsampling:
            raise InpaintlabError(f"--size must be a multiple of {2 ** options.n_downsampling} for "
                                  f"n_downsampling={options.n_downsampling}, got {train.size}")
        self.net_cfg = LatentNetConfig(ngf=options.ngf, n_downsampling=options.n_downsampling, n_blocks=0,
                                       reference=False)
        self.net_g = LatentInpaintingNet(self.net_cfg)

    def generator_config(self) -> dict[str, Any]:
        return config_to_dict(self.net_cfg)

    def usage_hint(self, out) -> str:
        return f"train a preset from it: inpaintlab train {INPAINTING} --preset 4 --autoencoder {out} ..."

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """D(E(I)): the full image through the encoder and decoder."""
        return self.net_g.decode(self.net_g.encode(images))

    def inpaint(self, images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """The reconstruction of the masked image (an autoencoder fills nothing; validation scores reconstructions)."""
        return self.reconstruct(images * (1 - hole))

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        self.count_batch(batch)
        loss = reconstruction_mse(self.reconstruct(batch["image"]), batch["image"])
        self.log_losses({"train/mse": loss.detach()})
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        images = batch["image"]
        with torch.no_grad():
            recon = self.reconstruct(images).clamp(0, 1)
        n = images.shape[0]
        psnr = -10 * torch.log10((recon - images).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-10))
        self.log("val/mse", reconstruction_mse(recon, images), batch_size=n, on_epoch=True, sync_dist=True)
        self.log("val/psnr", psnr.mean(), batch_size=n, on_epoch=True, sync_dist=True)
        if batch_idx == 0 and self.samples_dir is not None and self.trainer.is_global_zero:
            self._sample_grid(images[:4], torch.zeros_like(images[:4, :1]), recon[:4])

    def configure_optimizers(self):
        o = self.options
        opt = torch.optim.Adam(self.net_g.parameters(), lr=o.lr)
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=o.plateau_factor,
                                                             patience=o.plateau_patience, min_lr=o.min_lr)
        # strict=False: a run stopped by --max-time between validations has no val/mse to monitor yet
        return {"optimizer": opt, "lr_scheduler": {"scheduler": plateau, "monitor": "val/mse", "interval": "epoch",
                                                   "strict": False}}


# -- the inpainting presets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LatentInpaintingOptions:
    """Options of latent-space inpainting (defaults: the thesis's Table 5.1 and the code's optimiser)."""

    preset: int = option(4, "Table 5.1 row: 1 mask as alpha, all trained, pixel L1; 2 frozen autoencoder + mask "
                            "control, pixel L1; 3 latent L1, only the stem trained (mask as alpha); 4 frozen "
                            "autoencoder + mask control + latent L1", ge=1, le=4)
    autoencoder: str = option("", "the pre-trained autoencoder: a `train latent-autoencoder` run folder or its "
                                  "export (required)")
    n_blocks: int = option(9, "FFC ResNet blocks of the refiner", ge=1)
    objective: Literal["thesis", "reference", "full"] = option(
        "thesis", "thesis: Table 5.1 (latent presets: latent L1 alone, no decoder); reference: the public code "
                  "(pixel L1 x10/x10 + 1e-4 latent L1, decoder on); full: Table 5.2, LaMa's losses + 1e-3 latent L1")
    latent_weight: float | None = option(None, "latent L1 weight (none: the objective's: thesis 1 / reference 1e-4 / "
                                               "full 1e-3 in presets 3-4, 0 in presets 1-2)", ge=0)
    l1_known: float | None = option(None, "pixel L1 weight on known pixels (none: the objective's)", ge=0)
    l1_missing: float | None = option(None, "pixel L1 weight in the hole (none: the objective's)", ge=0)
    stem: Literal["copy", "random", "mask_conv"] = option(
        "copy", "4-channel stem of presets 1 and 3: copy (the autoencoder's RGB weights, mask channel zero), random "
                "(the code's preset 1), mask_conv (the code's preset 3: a new conv bypassing the stem's BN+ReLU)")
    lr: float = option(1e-3, "learning rate (Adam; the code's default_optimizers.yaml)", gt=0)
    lr_d: float = option(1e-4, "objective full: discriminator learning rate (Adam)", gt=0)
    adversarial: float = option(LAMA_LOSS_WEIGHTS["adversarial"], "objective full: adversarial weight", ge=0)
    gp_coef: float = option(LAMA_LOSS_WEIGHTS["gp_coef"], "objective full: R1 penalty gamma", ge=0)
    feature_matching: float = option(LAMA_LOSS_WEIGHTS["feature_matching"], "objective full: feature matching weight",
                                     ge=0)
    perceptual: float = option(LAMA_LOSS_WEIGHTS["resnet_pl"], "objective full: perceptual loss weight", ge=0)
    perceptual_term: Literal["auto", "resnet_pl", "lpips_vgg", "none"] = option(
        "auto", "objective full: LaMa's ResNetPL when its ADE20k weights are present, else LPIPS-VGG; or name one")


@dataclass(frozen=True)
class LossWeights:
    """The weights one training step uses, resolved from the preset, the objective and the overrides."""

    latent: float
    l1_known: float
    l1_missing: float
    adversarial: bool

    @property
    def decodes(self) -> bool:
        """Whether a training step runs the decoder (not for the thesis's latent presets)."""
        return self.l1_known > 0 or self.l1_missing > 0 or self.adversarial


def loss_weights(o: LatentInpaintingOptions) -> LossWeights:
    """The objective's weights for the preset (thesis Table 5.1 / 5.2, code ``default.py::generator_loss``)."""
    latent_preset = PRESETS[o.preset].latent_loss
    if o.objective == "thesis":
        latent, known, missing = (1.0, 0.0, 0.0) if latent_preset else (0.0, 1.0, 1.0)
    elif o.objective == "reference":  # lama-fourier-latent-l2.yaml (latent) / lama-fourier-l2.yaml (pixel)
        latent, known, missing = (1e-4, 10.0, 10.0) if latent_preset else (0.0, 1.0, 1.0)
    else:  # LaMa's lama-fourier.yaml L1 (known x10, hole x0) and the thesis's 1e-3
        latent, known, missing = (1e-3 if latent_preset else 0.0), LAMA_LOSS_WEIGHTS["l1_weight_known"], \
            LAMA_LOSS_WEIGHTS["l1_weight_missing"]
    pick = lambda given, default: default if given is None else float(given)  # noqa: E731
    return LossWeights(pick(o.latent_weight, latent), pick(o.l1_known, known), pick(o.l1_missing, missing),
                       o.objective == "full")


def load_autoencoder(path: str) -> tuple[LatentNetConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """The architecture, weights and metadata of a ``latent-autoencoder`` run or export."""
    from ...train.export import read_trained

    if not path:
        raise InpaintlabError("latent-inpainting needs the pre-trained autoencoder: --autoencoder RUN (a run of "
                              "`inpaintlab train latent-autoencoder` or its export)")
    if not Path(path).expanduser().exists():
        raise InpaintlabError(f"--autoencoder {path}: no such file or folder")
    meta, state = read_trained(path)
    if meta.get("method") != AUTOENCODER:
        raise InpaintlabError(f"--autoencoder {path} holds a {meta.get('method')!r} generator, not a {AUTOENCODER} "
                              f"one; train it with `inpaintlab train {AUTOENCODER}`")
    return config_from_dict(meta["generator"]), state, meta


STEM = "1.ffc.convl2l.weight"  # the 7x7 stem conv inside the encoder (LaMa's model.1.ffc.convl2l)


def init_from_autoencoder(net: LatentInpaintingNet, ae_state: dict[str, torch.Tensor], stem: str) -> None:
    """Encoder, decoder and reference from the autoencoder; a 4-channel stem copies its RGB weights (mask: 0)."""
    part = lambda name: {k.split(".", 1)[1]: v for k, v in ae_state.items() if k.startswith(name + ".")}  # noqa: E731
    encoder, decoder = part("encoder"), part("decoder")
    if net.reference is not None:
        net.reference.load_state_dict(encoder, strict=True)
    net.decoder.load_state_dict(decoder, strict=True)
    own = net.encoder.state_dict()[STEM]
    if own.shape[1] != encoder[STEM].shape[1]:  # a 4-channel stem: [RGB | hole]
        encoder = dict(encoder)
        encoder[STEM] = torch.cat([encoder[STEM], torch.zeros_like(own[:, 3:])], 1) if stem == "copy" else own
    net.encoder.load_state_dict(encoder, strict=True)


@METHODS.register(INPAINTING)
class LatentInpaintingMethod(FrozenPartsMixin, TwoPlayerStep, TrainableMethod):
    """Latent-space inpainting (Babin 2024): a frozen autoencoder, mask control, a refiner trained on latents."""

    Config = LatentInpaintingOptions
    inpainter = "latent-lama"

    def __init__(self, train, options: LatentInpaintingOptions, *, log=print):
        super().__init__(train, options, log=log)
        self.automatic_optimization = False
        preset = PRESETS[options.preset]
        if options.stem != "copy" and preset.input != "alpha":
            raise InpaintlabError(f"--set stem={options.stem} applies to presets 1 and 3 (a 4-channel stem); "
                                  f"preset {options.preset} takes the 3-channel masked image")
        ae_cfg, ae_state, ae_meta = load_autoencoder(options.autoencoder)
        if train.size % ae_cfg.downscale:
            raise InpaintlabError(f"--size must be a multiple of {ae_cfg.downscale} for this autoencoder, "
                                  f"got {train.size}")
        self.net_cfg = dataclasses.replace(ae_cfg, n_blocks=options.n_blocks, input=preset.input,
                                           control=preset.control, reference=True,
                                           stem="mask_conv" if options.stem == "mask_conv" else "ffc")
        self.net_g = LatentInpaintingNet(self.net_cfg)
        init_from_autoencoder(self.net_g, ae_state, options.stem)
        self.weights = loss_weights(options)
        self.autoencoder_record = {"path": options.autoencoder, "steps": ae_meta.get("steps")}
        self.autoencoder_sha256 = state_fingerprint(ae_state)
        self.frozen_parts = ("net_g.reference",)
        freeze(self.net_g.reference)
        if preset.frozen_autoencoder:
            self.frozen_parts += ("net_g.encoder", "net_g.decoder")
            freeze(self.net_g.encoder)
            freeze(self.net_g.decoder)
            if preset.input == "alpha" and options.stem != "mask_conv":
                self.net_g.encoder[1].ffc.convl2l.weight.requires_grad_(True)  # preset 3: the 4-channel stem
        self.net_d = None
        self._perceptual = None
        self.perceptual_name = "none"
        if self.weights.adversarial:
            from ..lama.discriminator import DiscriminatorConfig, build_discriminator
            from ..lama.method import build_perceptual

            self.net_d = build_discriminator(DiscriminatorConfig())
            term, self.perceptual_name = build_perceptual(options.perceptual, options.perceptual_term, self.note)
            object.__setattr__(self, "_perceptual", term)  # frozen and large: out of the state dict (as in lama)

    # -- what the loop needs ----------------------------------------------------------------------------
    def generator_config(self) -> dict[str, Any]:
        return config_to_dict(self.net_cfg)

    def extra_record(self) -> dict[str, Any]:
        return {"loss_weights": dataclasses.asdict(self.weights), "autoencoder": self.autoencoder_record,
                "fingerprints": {"autoencoder.sha256": self.autoencoder_sha256},  # a resume compares them
                "perceptual_term": self.perceptual_name,
                "trainable": sorted(n for n, p in self.net_g.named_parameters() if p.requires_grad)}

    def inpaint(self, images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        return self.net_g(images, hole)

    def configure_optimizers(self):
        params = [p for p in self.net_g.parameters() if p.requires_grad]
        opt_g = torch.optim.Adam(params, lr=self.options.lr)
        if self.net_d is None:
            return opt_g
        return opt_g, torch.optim.Adam(self.net_d.parameters(), lr=self.options.lr_d)

    def on_fit_start(self) -> None:
        if self._perceptual is not None:
            self._perceptual.to(self.device)

    # -- one step ---------------------------------------------------------------------------------------
    def generator_losses(self, image: torch.Tensor, hole: torch.Tensor) -> tuple[torch.Tensor | None, dict]:
        """The prediction (None when the step needs no decoder) and the weighted generator losses."""
        w, net = self.weights, self.net_g
        refined = net.refine(net.encode(net.encoder_input(image, hole), hole))
        losses: dict[str, torch.Tensor] = {}
        if w.latent > 0:
            with torch.no_grad():
                target = net.reference_latent(image)
            losses["train/latent_l1"] = w.latent * latent_l1(refined, target)
        pred = net.decode(refined) if w.decodes else None
        if pred is not None and (w.l1_known > 0 or w.l1_missing > 0):
            losses["train/l1"] = masked_l1(pred, image, hole, w.l1_known, w.l1_missing)
        return pred, losses


__all__ = ["PRESETS", "LatentAutoencoderMethod", "LatentInpaintingMethod", "LatentInpaintingOptions",
           "AutoencoderOptions", "loss_weights", "load_autoencoder", "init_from_autoencoder", "reconstruction_mse",
           "freeze", "AUTOENCODER", "INPAINTING"]
