"""The trainable-method contract (a LightningModule with a typed Config) and its registry.

A method implements :meth:`TrainableMethod.training_step` (automatic or manual optimisation, its
choice), :meth:`inpaint` (images and hole -> raw output in [0, 1]) and names its generator, the
network that is exported and that the method's inpainter loads. The base class does what every
method shares: validation on the held-out pairs with inpaintlab's metrics on the composite, a
sample grid, the position in the data stream and the random states in every checkpoint.
"""

from __future__ import annotations

import abc
import dataclasses
import random
from pathlib import Path
from typing import Any, Callable, ClassVar

import lightning.pytorch as pl
import numpy as np
import torch

from ..options import check_specs, specs_of
from ..registry import Registry, subclass_of
from .config import TrainConfig


class TrainableMethod(pl.LightningModule, abc.ABC):
    """A trainable inpainting method: typed options in :attr:`Config`, one generator to export."""

    Config: ClassVar[type]
    #: the registered inpainter that loads this method's runs (None: none does)
    inpainter: ClassVar[str | None] = None
    #: what validation scores the composite with (skipped with a note when their weights are absent)
    val_metrics: ClassVar[tuple[str, ...]] = ("psnr", "ssim", "lpips-vgg")
    #: the method's own defaults of shared settings (``{"ema_decay": 0.995}``): its ``inpaintlab train``
    #: command shows and uses them where TrainConfig's would apply
    train_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, train: TrainConfig, options: Any, *, log: Callable[[str], None] = print):
        super().__init__()
        self.train_cfg, self.options, self.note = train, options, log
        self.samples_seen = 0  # training samples consumed, saved with every checkpoint (the data position)
        self.val_data: tuple[torch.Tensor, torch.Tensor, list[str]] | None = None
        self.samples_dir: Path | None = None
        self._metrics: dict[str, Any] | None = None

    # -- what a method provides ------------------------------------------------------------------
    #: the network that fills holes, exported and loaded by the method's inpainter; a method assigns
    #: it in its ``__init__`` (checkpoints and exports find it under this name)
    net_g: torch.nn.Module

    @property
    def generator(self) -> torch.nn.Module:
        return self.net_g

    @abc.abstractmethod
    def generator_config(self) -> dict[str, Any]:
        """The generator's architecture as plain JSON values (rebuilds it without this class)."""

    @abc.abstractmethod
    def inpaint(self, images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """The generator's raw output for ``images`` (N,3,H,W in [0, 1]) and ``hole`` (N,1,H,W, 1 = hole)."""

    def run_subfolder(self) -> str | None:
        """A sub-folder of ``--out`` for this run (methods whose parts train separately into one folder)."""
        return None

    def usage_hint(self, out: Path) -> str:
        """What a user does with a finished run (printed after the export)."""
        return f"use it with --model {self.inpainter} --option checkpoint={out}" if self.inpainter else ""

    def extra_record(self) -> dict[str, Any]:
        """What the run should record beyond the options (e.g. a loss term chosen at run time)."""
        return {}

    # -- shared bookkeeping -----------------------------------------------------------------------
    def count_batch(self, batch: dict[str, torch.Tensor]) -> None:
        """Advance the data position by the batch's samples (call once per training batch)."""
        self.samples_seen += int(batch["image"].shape[0]) * self.trainer.world_size

    def first_sample_key(self, batch: dict[str, torch.Tensor]) -> int:
        """Key of this process's first sample in ``batch`` (call before :meth:`count_batch`): sample ``i`` is key + i,
        unique over steps and processes, for per-sample generators that do not depend on the batch."""
        return self.samples_seen + self.global_rank * int(batch["image"].shape[0])

    @property
    def steps_done(self) -> int:
        """Training batches done (per process), the run's step count."""
        return self.samples_seen // (self.train_cfg.batch_size * self.trainer.world_size)

    def manual_update(self, optimizer, loss: torch.Tensor, last_of_accumulation: bool) -> None:
        """Manual optimisation's backward, and every ``accumulate`` batches the clip and the step."""
        cfg = self.train_cfg
        self.manual_backward(loss / cfg.accumulate)
        if last_of_accumulation:
            if cfg.grad_clip is not None:
                self.clip_gradients(optimizer, gradient_clip_val=cfg.grad_clip, gradient_clip_algorithm="norm")
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    def log_losses(self, values: dict[str, torch.Tensor | float]) -> None:
        """Log training values (every step; the run's logger keeps every ``log_every``-th, counted by the run)."""
        for key, value in values.items():
            self.log(key, value, on_step=True, on_epoch=False, batch_size=self.train_cfg.batch_size)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning's loop state is dropped: epochs here are spans between validations that the data
        # sampler aligns to sample positions, so a resume starts a fresh loop at the saved position
        # (with Lightning's mid-epoch counters the first epoch after a resume would end early).
        checkpoint.pop("loops", None)
        checkpoint["inpaintlab"] = {
            "samples_seen": self.samples_seen,
            "rng": {"torch": torch.get_rng_state(), "numpy": _numpy_state(), "python": _python_state(),
                    **({"cuda": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {})},
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("inpaintlab", {})
        self.samples_seen = int(state.get("samples_seen", 0))
        rng = state.get("rng")
        if rng:
            torch.set_rng_state(rng["torch"])
            _set_numpy_state(rng["numpy"])
            _set_python_state(rng["python"])
            if "cuda" in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])

    # -- validation --------------------------------------------------------------------------------
    def _validation_metrics(self) -> dict[str, Any]:
        if self._metrics is None:
            from ..errors import MissingWeightsError
            from ..metrics import build_metric

            self._metrics = {}
            for name in self.val_metrics:
                try:
                    self._metrics[name] = build_metric(name, device=self.device)
                except MissingWeightsError as e:
                    self.note(f"validation without {name}: {e}")
        return self._metrics

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        images, hole = batch["image"], batch["hole"]
        with torch.no_grad():
            raw = self.inpaint(images, hole).float().clamp(0, 1)
        out = torch.where(hole > 0.5, raw, images)  # the composite: kept pixels exactly the input's
        n = images.shape[0]
        for name, metric in self._validation_metrics().items():
            values = metric.update(out, images, hole)
            metric.reset()
            finite = values[torch.isfinite(values)]
            if finite.numel():
                self.log(f"val/{name}", finite.mean().float(), batch_size=n, on_step=False, on_epoch=True,
                         sync_dist=True)
        if batch_idx == 0 and self.samples_dir is not None and self.trainer.is_global_zero:
            self._sample_grid(images[:4], hole[:4], out[:4])

    def _sample_grid(self, images: torch.Tensor, hole: torch.Tensor, out: torch.Tensor) -> None:
        """A PNG per validation: rows of (input with the hole greyed, hole, output, ground truth)."""
        from ..images import save_image

        shown = images * (1 - hole) + 0.5 * hole
        rows = [torch.cat([s, h.expand(3, -1, -1), o, g], dim=-1) for s, h, o, g in zip(shown, hole, out, images)]
        grid = torch.cat(rows, dim=-2)
        save_image(self.samples_dir / f"step-{self.samples_seen // self.train_cfg.batch_size:07d}.png",
                   grid.detach().float().cpu().clamp(0, 1))


def _numpy_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos, "has_gauss": has_gauss,
            "cached": cached}


def _set_numpy_state(s: dict[str, Any]) -> None:
    np.random.set_state((s["name"], s["keys"].numpy().astype(np.uint32), s["pos"], s["has_gauss"], s["cached"]))


def _python_state() -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    return {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss}


def _set_python_state(s: dict[str, Any]) -> None:
    random.setstate((s["version"], tuple(int(v) for v in s["internal"].tolist()), s["gauss"]))


def _typed_method(name: str, cls: type) -> None:
    """A registered method documents itself and declares typed, defaulted, explained options."""
    if not (cls.__doc__ or "").strip():
        raise TypeError(f"training method {name!r}: {cls.__qualname__} needs a docstring")
    if not dataclasses.is_dataclass(getattr(cls, "Config", None)):
        raise TypeError(f"training method {name!r}: {cls.__qualname__}.Config must be a dataclass")
    check_specs(f"training method {name!r}", specs_of(cls.Config), need_help=True)


#: name -> TrainableMethod subclass; each method package registers in its ``method`` module, found on discovery
METHODS: Registry[type[TrainableMethod]] = Registry("training method", check=subclass_of(TrainableMethod, _typed_method),
                                                    method_modules=("method",))

__all__ = ["TrainableMethod", "METHODS"]
