"""One training run in one folder, on Lightning: start it, or resume it with the same command.

1. check the settings and the method's options, open the image source, split it into training
   crops and held-out validation pairs, build the method (every input error before any work);
2. lock the run folder, compare with a saved ``config.json`` (a different configuration is
   refused naming the keys), write it;
3. fit with Lightning: one "epoch" is ``val_every`` training batches (validation and a sample
   grid close it), checkpoints every ``checkpoint_every`` batches and at the end, a resume
   starts from ``checkpoints/last.ckpt`` at the next sample position;
4. export the generator (EMA weights when EMA is on).

Folder: ``config.json``, ``metrics.csv`` (losses per logged step, ``val/*`` per validation;
``tensorboard/`` too when TensorBoard is installed),
``samples/step-NNNNNNN.png``, ``checkpoints/{last,step-NNNNNNN}.ckpt``, ``export/generator.{safetensors,json}``.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

from ..datasets import open_image_set
from ..errors import InpaintlabError
from ..options import parse_options, resolved
from ..runs import start_run, versions
from ..store import disk_full_is_one_line
from .config import RUNTIME_KEYS, TrainConfig, validate
from .data import PositionSampler, TrainingCrops, split_images, validation_pairs
from .export import export_generator, samples_per_step
from .method import METHODS, TrainableMethod

Log = Callable[[str], None]
Progress = Callable[[int, int], None]  # (steps done, steps in all)


@dataclass
class TrainSummary:
    """What a run did."""

    out: Path
    steps: int
    resumed_from: int
    seconds: float
    export: Path | None
    last_validation: dict[str, float]


class StepControl(Callback):
    """Counts training steps (batches), checkpoints every N and at the end, stops at ``steps``, reports progress."""

    def __init__(self, run: "TrainRun"):
        self.run = run
        self.deferred: int | None = None

    def steps_done(self, module: TrainableMethod) -> int:
        return module.samples_seen // (self.run.cfg.batch_size * self.run.world)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        cfg = self.run.cfg
        done = self.steps_done(module)
        if self.run.progress and trainer.is_global_zero:
            self.run.progress(done, cfg.steps)
        if done >= cfg.steps:
            trainer.should_stop = True
        if done % cfg.checkpoint_every == 0 or done >= cfg.steps:
            if done % cfg.val_every == 0 or done >= cfg.steps:
                # this batch ends an epoch: save once its validation ran, so a resume never skips one
                self.deferred = done
            else:
                self.run.save_checkpoint(trainer, done)

    def on_validation_end(self, trainer, module) -> None:
        if self.deferred is not None and not trainer.sanity_checking:
            self.run.save_checkpoint(trainer, self.deferred)
            self.deferred = None

    def on_train_end(self, trainer, module) -> None:
        done = self.steps_done(module)
        if done != self.run.last_saved:  # stopped by --max-time, or an end that was not a checkpoint step
            self.run.save_checkpoint(trainer, done)


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSV logger writing ``OUT/metrics.csv``, kept across resumes.

    Lightning's own writer deletes an existing ``metrics.csv``; this one keeps it and drops the
    rows after the step the run resumes from (a killed run may have logged steps it then did again).
    """

    def __init__(self, out: Path, resume_step: int, flush_every: int, step: Callable[[], int], every: int = 1):
        super().__init__(save_dir=str(out), name="", version="", flush_logs_every_n_steps=flush_every)
        self._step, self._every = step, every
        path = out / "metrics.csv"
        if path.exists():
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
                keys = list(rows[0].keys()) if rows else []
            kept = [r for r in rows if r.get("step") not in (None, "") and int(r["step"]) < resume_step]
            with open(path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=keys)
                if keys:
                    writer.writeheader()
                writer.writerows(kept)
        self._keys = keys if path.exists() else []

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Rows numbered by the run's own step (0-based index of the last batch done), without Lightning's epoch;
        training values every ``every`` steps (validations always)."""
        step = self._step()
        kept = {k: v for k, v in metrics.items() if k != "epoch" and (k.startswith("val/") or (step + 1) % self._every == 0)}
        if kept:
            super().log_metrics(kept, step)

    @property
    def experiment(self):
        if self._experiment is None:
            from lightning.fabric.loggers.csv_logs import _ExperimentWriter

            class KeepingWriter(_ExperimentWriter):
                def _check_log_dir_exists(self) -> None:  # keep the file: this run resumes it
                    pass

            self._experiment = KeepingWriter(log_dir=self.log_dir)
            self._experiment.metrics_keys = sorted(self._keys)
        return self._experiment


def launched_worker() -> bool:
    """Whether this process is one that Lightning's DDP launcher started for a rank other than 0."""
    return int(os.environ.get("LOCAL_RANK", "0")) != 0 or int(os.environ.get("NODE_RANK", "0")) != 0


def quiet_lightning() -> None:
    """Lightning's start-up chatter (GPU/TPU available, tips) off; its warnings stay."""
    import logging
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # lightning 2.6 with torch 2.13: a deprecation inside lightning itself, nothing a user can act on
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # methods keep frozen parts in eval mode on purpose (latent inpainting's frozen autoencoder), and their
    # tests check which parts; the warning would be noise on every run
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")


class TrainRun:
    """One training run into one folder; :meth:`prepare` rejects bad input, :meth:`run` trains."""

    def __init__(self, cfg: TrainConfig, options: dict[str, Any] | None = None, out: str | Path = "", *,
                 log: Log = print, progress: Progress | None = None):
        validate(cfg)
        self.cfg, self.raw_options, self.out = cfg, dict(options or {}), Path(out)
        self.log, self.progress = log, progress
        self.last_saved = -1

    # 1-2. input, method, folder ------------------------------------------------------------------
    def prepare(self) -> None:
        cfg = self.cfg
        cls = METHODS.get(cfg.method)
        self.options = parse_options(cls.Config, self.raw_options, f"training method {cfg.method!r}", flag="--set")
        pl.seed_everything(cfg.seed, workers=True, verbose=False)  # the method's initial weights
        self.source = open_image_set(cfg.data, size=None)
        train_images, val_images = split_images(self.source, cfg)
        self.crops = TrainingCrops(self.source, cfg, train_images)  # checks the mask kind and its parameters
        self.val = validation_pairs(self.source, cfg, val_images)
        self.method: TrainableMethod = cls(cfg, self.options, log=self.log)
        sub = self.method.run_subfolder()
        if sub:
            self.out = self.out / sub
        # the method's options inside the config: a resume compares them too, naming the option that differs
        record = {"config": asdict(cfg) | {"options": resolved(self.options)}, "generator": self.method.generator_config(),
                  "images": [[n, s] for n, s in zip(self.source.names, self.source.sources)],
                  "validation": self.val[2], "versions": versions(), **self.method.extra_record()}
        if launched_worker():  # a process Lightning started for another rank: the first one owns the folder
            self.lock = None
        else:
            self.lock, _, _ = start_run(self.out, record, what="a training run", inputs_key="images",
                                        runtime_keys=RUNTIME_KEYS, unordered=(), requested_metrics=[],
                                        load_metrics=lambda names: ({}, {}), log=self.log)
        self.record = record

    # 3. fit ---------------------------------------------------------------------------------------
    @property
    def checkpoints(self) -> Path:
        return self.out / "checkpoints"

    def save_checkpoint(self, trainer: pl.Trainer, steps: int) -> None:
        """``step-NNNNNNN.ckpt`` and ``last.ckpt`` (written beside, then renamed: a kill leaves the old one whole)."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        step_file = self.checkpoints / f"step-{steps:07d}.ckpt"
        tmp = self.checkpoints / ".last.ckpt.tmp"
        trainer.save_checkpoint(tmp, weights_only=False)  # everything: optimisers, callbacks (EMA), our data position
        if trainer.is_global_zero:
            os.replace(tmp, self.checkpoints / "last.ckpt")
            if steps % self.cfg.checkpoint_every == 0 or steps >= self.cfg.steps:
                import shutil

                shutil.copyfile(self.checkpoints / "last.ckpt", step_file)
        self.last_saved = steps

    def _resume_point(self) -> tuple[Path | None, int]:
        """The last checkpoint and its sample position, or (None, 0) for a fresh run."""
        last = self.checkpoints / "last.ckpt"
        if not last.is_file():
            return None, 0
        try:
            state = torch.load(last, map_location="cpu", weights_only=True)
        except Exception as e:
            raise InpaintlabError(f"cannot resume from {last}: {str(e).splitlines()[0]}; move it away to start the "
                                  f"run over, or restore it") from None
        return last, int(state.get("inpaintlab", {}).get("samples_seen", 0))

    def _trainer(self, resume_step: int) -> pl.Trainer:
        cfg, method = self.cfg, self.method
        quiet_lightning()
        callbacks: list[Callback] = [StepControl(self)]
        if cfg.ema_decay:  # a decay of 0 averages nothing: off
            from .ema import ScheduledEMA

            callbacks.append(ScheduledEMA(cfg.ema_decay, cfg.ema_every, cfg.ema_warmup))
        automatic = method.automatic_optimization
        loggers = [ResumableCSVLogger(self.out, resume_step, cfg.log_every, lambda: method.steps_done - 1,
                                      cfg.log_every)]
        if importlib.util.find_spec("tensorboard") is not None:  # the user's choice: not a dependency
            from lightning.pytorch.loggers import TensorBoardLogger

            loggers.append(TensorBoardLogger(str(self.out), name="tensorboard", version=""))
        return pl.Trainer(
            max_epochs=-1, max_steps=-1, max_time=cfg.max_time, callbacks=callbacks, logger=loggers,
            log_every_n_steps=1,  # every step reaches the logger, which keeps every log_every-th by the run's count
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            num_sanity_val_steps=0, check_val_every_n_epoch=1, use_distributed_sampler=False,
            reload_dataloaders_every_n_epochs=1,  # each epoch's length is measured at its start (PositionSampler)
            deterministic=cfg.deterministic or None, precision=cfg.precision, devices=cfg.devices,
            num_nodes=cfg.num_nodes,
            accelerator=cfg.accelerator, strategy=cfg.strategy, default_root_dir=str(self.out),
            accumulate_grad_batches=cfg.accumulate if automatic else 1,
            gradient_clip_val=cfg.grad_clip if automatic else None,
        )

    def run(self) -> TrainSummary:
        """Train to ``cfg.steps`` (resuming from the last checkpoint if there is one), then export."""
        if not hasattr(self, "method"):
            self.prepare()
        cfg, method = self.cfg, self.method
        t0 = time.perf_counter()
        try:
            ckpt, start = self._resume_point()
            resume_step = start // samples_per_step(asdict(cfg))
            if ckpt is not None:
                self.log(f"resuming from {ckpt} (step {resume_step})")
            trainer = self._trainer(resume_step)
            self.world = trainer.world_size
            method.samples_dir = self.out / "samples"
            method.val_data = self.val
            per_epoch = cfg.val_every * cfg.batch_size * self.world
            stop = cfg.steps * cfg.batch_size * self.world
            sampler = PositionSampler(lambda: method.samples_seen, per_epoch, stop, trainer.global_rank, self.world)
            loader = DataLoader(self.crops, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                                drop_last=True, persistent_workers=cfg.num_workers > 0)
            images, holes, _ = self.val
            val_loader = DataLoader([{"image": x, "hole": h} for x, h in zip(images, holes)],
                                    batch_size=cfg.batch_size)
            if start < stop:
                with disk_full_is_one_line(self.out, "training run"):
                    trainer.fit(method, loader, val_loader, ckpt_path=ckpt, weights_only=True)
            steps = method.samples_seen // (cfg.batch_size * self.world)
            export = None
            if trainer.is_global_zero and steps >= cfg.steps:
                export = self.export(steps, ema=bool(cfg.ema_decay))
            last_val = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        finally:
            if self.lock is not None:
                self.lock.release()
        return TrainSummary(self.out, steps, resume_step, time.perf_counter() - t0, export, last_val)

    # 4. export -----------------------------------------------------------------------------------
    def export(self, steps: int, *, ema: bool) -> Path:
        meta = {"method": self.cfg.method, "generator": self.method.generator_config(), "steps": steps, "ema": ema,
                "options": resolved(self.options), "size": self.cfg.size}
        return export_generator(self.method.generator, meta, self.out / "export")


__all__ = ["TrainRun", "TrainSummary"]
