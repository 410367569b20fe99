"""The EMA of the weights: Lightning's ``WeightAveraging`` with an update interval and ema_pytorch's warm-up.

Two schedules (``--ema-decay D [--ema-every N] [--ema-warmup K]``):

* constant (no ``--ema-warmup``): every N-th optimiser step, ``avg <- D avg + (1 - D) w``; the first
  update copies the weights (torch's ``AveragedModel``);
* ema_pytorch's (``--ema-warmup K``; IR-SDE trains with ``EMA(beta=0.995, update_every=10)``, whose
  defaults are ``update_after_step=100, inv_gamma=1, power=2/3``): at the steps s = 0, N, 2N, ...
  the average copies the weights while s <= K, then decays by ``min(D, 1 - (1 + s - K)^(-2/3))``.

Written on ``WeightAveraging`` rather than by hand so that the average is saved in the checkpoint,
validated with and exported exactly as the constant EMA is.
"""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import WeightAveraging

#: ema_pytorch's warm-up exponent (``power=2/3``, with ``inv_gamma=1``)
WARMUP_POWER = 2.0 / 3.0


def ema_decay_at(step: int, decay: float, warmup: int | None) -> float:
    """The decay applied at the 0-based optimiser step ``step`` (ema_pytorch's ``get_current_decay``)."""
    if warmup is None:
        return decay
    if step <= warmup:
        return 0.0  # ema_pytorch copies the weights until update_after_step
    return min(decay, 1.0 - (1.0 + step - warmup) ** -WARMUP_POWER)


class ScheduledEMA(WeightAveraging):
    """An EMA updated every ``every`` optimiser steps, with a constant decay or ema_pytorch's warm-up."""

    def __init__(self, decay: float, every: int = 1, warmup: int | None = None):
        self.decay, self.every, self.warmup = decay, every, warmup
        self._step = 0  # the optimiser step of the update in progress (set by should_update)
        super().__init__(multi_avg_fn=self._lerp)

    @property
    def state_key(self) -> str:
        return "WeightAveraging"  # the key runs saved before this class existed: they resume unchanged

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        if step_idx is None or step_idx % self.every:
            return False
        self._step = step_idx
        return True

    @torch.no_grad()
    def _lerp(self, averaged: list[torch.Tensor], current: list[torch.Tensor], _n_averaged) -> None:
        """avg <- avg + w (current - avg), w = 1 - decay: torch's ``get_ema_multi_avg_fn`` with a varying decay.

        ``AveragedModel`` passes tensors grouped by dtype; integer buffers (BatchNorm's batch counts)
        cannot lerp and are averaged and truncated as torch's own EMA does.
        """
        weight = 1.0 - ema_decay_at(self._step, self.decay, self.warmup)
        if torch.is_floating_point(averaged[0]) or torch.is_complex(averaged[0]):
            torch._foreach_lerp_(averaged, current, weight)
        else:
            for a, c in zip(averaged, current):
                a.copy_(a * (1 - weight) + c * weight)
