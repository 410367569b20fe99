"""Samplers of IR-SDE and StrDiffusion: short functions over networks, a schedule, states and a noise source.

The networks are callables (``eps(x, mu, t[, S])`` predicts the noise, ``disc(t, y, x)`` scores one
logit per sample). Every random draw comes from :class:`Noise`, one generator per sample, and a
sample that has stopped resampling draws nothing more: a sample's result does not depend on the
batch it ran in. Each sampler counts network evaluations per sample (:class:`Counts`).

- :func:`irsde_sample`: IR-SDE's reverse SDE from ``mu + lambda z`` (``reverse_sde``).
- :func:`repaint_irsde_sample`: IR-SDE with RePaint's known-region pinning and jumps back in time
  (the paper's Table 2 case A).
- :func:`strdiffusion_reference_sample`: the public StrDiffusion sampler step for step
  (``test.py`` + ``sde_utils.py::reverse_sde`` at the notes' snapshot, A6): structure guidance for
  t >= 0.4 T, then the texture's channel mean; the structure's known region pinned to noisy known
  grayscale; resampling on a fixed schedule (``jump``, ``re``, ``u_max``, ``u_min``) with its accept
  rule (a candidate whose logit is *below* the first one's is kept).
- :func:`strdiffusion_paper_sample`: the paper's Eq. 17 reading: structure guidance at every step,
  and while the discriminator's probability for the pair is below ``threshold``, the structure
  state is re-noised by one forward step, denoised again and the texture step redone (at most
  ``max_tries`` times).
- :func:`strdiffusion_oracle_sample`: a diagnostic: case C guided by the closed-form structure state
  of the ground truth instead of the structure network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from .sde import (Schedule, forward_euler_step, optimal_reverse_state, reverse_sde_step, sample_state,
                  score_from_noise, terminal_state)

Eps = Callable[..., torch.Tensor]
Disc = Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = ["Noise", "Counts", "ResamplingKnobs", "REFERENCE_KNOBS", "irsde_sample", "repaint_irsde_sample",
           "strdiffusion_reference_sample", "strdiffusion_paper_sample", "strdiffusion_oracle_sample",
           "guidance_start"]


class Noise:
    """Standard normal draws, one generator per sample; inactive samples draw nothing (and get zeros)."""

    def __init__(self, generators: list[torch.Generator], device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32):
        self.generators, self.device, self.dtype = generators, torch.device(device), dtype

    def like(self, x: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
        """(N, ...) noise shaped like ``x``; rows of inactive samples are zero and consume no randomness."""
        rows = []
        for i, g in enumerate(self.generators):
            if active is None or bool(active[i]):
                rows.append(torch.randn(x.shape[1:], generator=g, dtype=self.dtype))
            else:
                rows.append(torch.zeros(x.shape[1:], dtype=self.dtype))
        return torch.stack(rows).to(self.device)


@dataclass
class Counts:
    """Network evaluations per sample (texture, structure, discriminator) and forward re-noising steps."""

    n: int
    texture: list[int] = field(default_factory=list)
    structure: list[int] = field(default_factory=list)
    disc: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.texture, self.structure, self.disc = [0] * self.n, [0] * self.n, [0] * self.n

    def add(self, kind: str, active: torch.Tensor | None = None) -> None:
        values = getattr(self, kind)
        for i in range(self.n):
            if active is None or bool(active[i]):
                values[i] += 1

    @property
    def nfe(self) -> list[int]:
        """Texture + structure network evaluations per sample (the discriminator is counted apart)."""
        return [a + b for a, b in zip(self.texture, self.structure)]


def _step(s: Schedule, eps: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, t: int, z: torch.Tensor) -> torch.Tensor:
    return reverse_sde_step(s, x, mu, score_from_noise(s, eps, t), t, z)


def irsde_sample(eps_net: Eps, s: Schedule, mu: torch.Tensor, noise: Noise,
                 counts: Counts | None = None) -> torch.Tensor:
    """IR-SDE: y_T = mu + lambda z, then T reverse-SDE steps with the predicted noise (T evaluations)."""
    y = terminal_state(s, mu, noise.like(mu))
    for t in range(s.T, 0, -1):
        y = _step(s, eps_net(y, mu, t), y, mu, t, noise.like(mu))
        if counts is not None:
            counts.add("texture")
    return y


def repaint_irsde_sample(eps_net: Eps, s: Schedule, mu: torch.Tensor, known: torch.Tensor, hole: torch.Tensor,
                         noise: Noise, jump: int = 10, resample: int = 5, counts: Counts | None = None) -> torch.Tensor:
    """IR-SDE with RePaint's resampling: after each step the known region is replaced by a draw of the known
    image's marginal at t - 1; every ``jump`` steps the state goes ``jump`` steps forward (exact OU transitions)
    and back, ``resample - 1`` times (Lugmayr et al. 2022, on the mean-reverting SDE)."""
    from .sde import exact_forward_step

    keep = 1 - hole

    def down(y: torch.Tensor, t: int) -> torch.Tensor:
        y = _step(s, eps_net(y, mu, t), y, mu, t, noise.like(mu))
        if counts is not None:
            counts.add("texture")
        known_prev = sample_state(s, known, mu, t - 1, noise.like(mu)) if t > 1 else known
        return known_prev * keep + y * hole

    y = terminal_state(s, mu, noise.like(mu))
    t = s.T
    while t > 0:
        top, stop = t, max(t - jump, 0) if jump > 0 else 0
        while t > stop:
            y = down(y, t)
            t -= 1
        if t > 0 and resample > 1:
            for _ in range(resample - 1):
                for u in range(t + 1, top + 1):  # back up to the start of this stretch
                    y = exact_forward_step(s, y, mu, u, noise.like(mu))
                for u in range(top, t, -1):
                    y = down(y, u)
    return y


@dataclass(frozen=True)
class ResamplingKnobs:
    """The reference sampler's hard-coded schedule (``sde_utils.py``, comment at its lines 295-296)."""

    u_max: int
    u_min: int
    jump: int
    re: int


#: T -> knobs, as the reference hard-codes them (notes A6); other T take the T=100 knobs
REFERENCE_KNOBS = {100: ResamplingKnobs(25, 4, 2, 2), 400: ResamplingKnobs(6, 3, 5, 5)}


def guidance_start(T: int) -> int:
    """The last step of the structure-guided stage: floor(0.4 T) (the reference's early/late split)."""
    return int(math.floor(0.4 * T))


def strdiffusion_reference_sample(texture: Eps, structure: Eps, disc: Disc | None, s_y: Schedule, s_x: Schedule,
                                  mu_y: torch.Tensor, gray_known: torch.Tensor, mu_x: torch.Tensor,
                                  hole: torch.Tensor, noise: Noise, knobs: ResamplingKnobs | None = None,
                                  resampling: bool = True, counts: Counts | None = None) -> torch.Tensor:
    """The public StrDiffusion sampler (notes A6), per sample; returns the raw texture state y_0.

    ``texture(y, mu_y, t, S)``, ``structure(x, mu_x, t)`` predict noise; ``disc(t, y, x)`` one logit
    per sample; ``gray_known`` is the grayscale image x keep (the structure's x0 in the known
    region), ``mu_x`` the masked edges. ``resampling=False`` is the paper's Table 2 case C.
    """
    keep, n = 1 - hole, mu_y.shape[0]
    knobs = knobs or REFERENCE_KNOBS.get(s_y.T, REFERENCE_KNOBS[100])
    y = terminal_state(s_y, mu_y, noise.like(mu_y))
    x = terminal_state(s_x, mu_x, noise.like(mu_x))
    add = counts.add if counts is not None else (lambda kind, active=None: None)
    last_guided = guidance_start(s_y.T)
    for t in range(s_y.T, last_guided - 1, -1):
        xk = sample_state(s_x, gray_known, mu_x, t - 1, noise.like(mu_x))  # q(x_{t-1} | x0 = gray * k)
        x = xk * keep + x * hole
        x = _step(s_x, structure(x, mu_x, t), x, mu_x, t, noise.like(mu_x))
        add("structure")
        xs_t = x
        y_t = y
        y1 = _step(s_y, texture(y_t, mu_y, t, x), y_t, mu_y, t, noise.like(mu_y))
        add("texture")
        step = knobs.re if t % knobs.jump == 0 else 0
        if step + t > s_y.T:
            step = s_y.T - t + 1
        if not resampling or disc is None:  # case C: no discriminator, no resampling
            y, x = y1, xk * keep + xs_t * hole
            continue
        d_first = disc(t, y1 * keep, x)
        add("disc")
        active = torch.full((n,), step > 0, dtype=torch.bool)
        for i in range(1, knobs.u_max):
            if not bool(active.any()):
                break
            x1 = xs_t
            for j in range(step):  # the reference's forward_step indices t-1+j (as coded)
                x1 = forward_euler_step(s_x, x1, mu_x, t - 1 + j, noise.like(mu_x, active))
            for z in range(step - 1, -1, -1):
                x1 = xk * keep + x1 * hole
                x1 = _step(s_x, structure(x1, mu_x, t + z), x1, mu_x, t + z, noise.like(mu_x, active))
                add("structure", active)
            y2 = _step(s_y, texture(y_t, mu_y, t, x1), y_t, mu_y, t, noise.like(mu_y, active))
            add("texture", active)
            d_next = disc(t, y2 * keep, x1)
            add("disc", active)
            better = (d_next < d_first) & active
            pick = better.view(-1, 1, 1, 1)
            if i >= knobs.u_min:
                y1, xs_t = torch.where(pick, y2, y1), torch.where(pick, x1, xs_t)
                active = better  # the others stop here ("else: break")
            else:
                average = (active & ~better).view(-1, 1, 1, 1)
                y1 = torch.where(pick, y2, torch.where(average, (y1 + y2) / 2, y1))
                xs_t = torch.where(pick, x1, torch.where(average, (xs_t + x1) / 2, xs_t))
        y = y1
        x = xk * keep + xs_t * hole
    for t in range(last_guided - 1, 0, -1):  # late stage: the texture guides itself
        guide = y.mean(dim=1, keepdim=True)
        y = _step(s_y, texture(y, mu_y, t, guide), y, mu_y, t, noise.like(mu_y))
        add("texture")
    return y


def strdiffusion_oracle_sample(texture: Eps, s_y: Schedule, s_x: Schedule, mu_y: torch.Tensor, gray: torch.Tensor,
                               mu_x: torch.Tensor, noise: Noise, counts: Counts | None = None) -> torch.Tensor:
    """A diagnostic (notes A10), not a result: case C with the structure network replaced by the truth.

    For t >= 0.4 T the texture is guided by x*_{t-1} = Eq. 4 (x_t ~ q(x_t | gray), gray, mu_x): the
    condition it was trained on, built from the complete image's grayscale (hole included). The late
    stage is the reference's (the texture's own channel mean). If this does not beat IR-SDE, the
    texture network has not learned to use the guidance, and no structure network can help it.
    """
    add = counts.add if counts is not None else (lambda kind, active=None: None)
    y = terminal_state(s_y, mu_y, noise.like(mu_y))
    last_guided = guidance_start(s_y.T)
    for t in range(s_y.T, 0, -1):
        if t >= last_guided:
            x_t = sample_state(s_x, gray, mu_x, t, noise.like(mu_x))
            guide = optimal_reverse_state(s_x, x_t, gray, mu_x, t)
        else:
            guide = y.mean(dim=1, keepdim=True)
        y = _step(s_y, texture(y, mu_y, t, guide), y, mu_y, t, noise.like(mu_y))
        add("texture")
    return y


def strdiffusion_paper_sample(texture: Eps, structure: Eps, disc: Disc | None, s_y: Schedule, s_x: Schedule,
                              mu_y: torch.Tensor, gray_known: torch.Tensor, mu_x: torch.Tensor, hole: torch.Tensor,
                              noise: Noise, threshold: float = 0.5, max_tries: int = 5,
                              counts: Counts | None = None) -> torch.Tensor:
    """The paper's reading (Sec. 2.4, Eq. 17): structure guidance at every step; where sigmoid(D) < ``threshold``
    the structure state goes one forward step back (Eq. 17), is denoised again and the texture step redone.

    The threshold and the number of tries are not in the paper (ours: 0.5, 5). Without ``disc`` no resampling.
    """
    keep = 1 - hole
    y = terminal_state(s_y, mu_y, noise.like(mu_y))
    x = terminal_state(s_x, mu_x, noise.like(mu_x))
    add = counts.add if counts is not None else (lambda kind, active=None: None)
    for t in range(s_y.T, 0, -1):
        # the structure's known region: a draw of the known grayscale's marginal at t
        x_in = sample_state(s_x, gray_known, mu_x, t, noise.like(mu_x)) * keep + x * hole
        x_prev = _step(s_x, structure(x_in, mu_x, t), x_in, mu_x, t, noise.like(mu_x))
        add("structure")
        y_prev = _step(s_y, texture(y, mu_y, t, x_prev), y, mu_y, t, noise.like(mu_y))
        add("texture")
        if disc is not None:
            active = torch.sigmoid(disc(t, y_prev * keep, x_prev)) < threshold
            add("disc")
            for _ in range(max_tries):
                if not bool(active.any()):
                    break
                pick = active.view(-1, 1, 1, 1)
                renoised = forward_euler_step(s_x, x_prev, mu_x, t, noise.like(mu_x, active))  # Eq. 17
                renoised = sample_state(s_x, gray_known, mu_x, t, noise.like(mu_x, active)) * keep + renoised * hole
                x_new = _step(s_x, structure(renoised, mu_x, t), renoised, mu_x, t, noise.like(mu_x, active))
                add("structure", active)
                y_new = _step(s_y, texture(y, mu_y, t, x_new), y, mu_y, t, noise.like(mu_y, active))
                add("texture", active)
                x_prev, y_prev = torch.where(pick, x_new, x_prev), torch.where(pick, y_new, y_prev)
                add("disc", active)
                active = active & (torch.sigmoid(disc(t, y_prev * keep, x_prev)) < threshold)
        x, y = x_prev, y_prev
    return y
