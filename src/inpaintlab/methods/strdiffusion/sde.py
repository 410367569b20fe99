"""The mean-reverting SDE of IR-SDE (Luo et al. 2023), exactly as its code discretises it, as pure functions.

Reference: ``Algolzw/image-restoration-sde``, ``codes/utils/sde_utils.py::IRSDE`` (StrDiffusion's copies
are the same); notes ``strdiffusion-latent.md`` A2. Time steps are integers ``t = 1..T``; index 0 is
never a state. With ``N = T + 2`` and ``s = 0.008``:

- ``a_i = cos^2((i/N + s)/(1 + s) pi/2) / cos^2(s/(1 + s) pi/2)``, ``theta_t = 1 - a_{t+1}`` (t = 0..T);
- ``Theta_t = sum_{i=1..t} theta_i`` (``Theta_0 = 0``), ``Delta = -ln(eps) / Theta_T``;
- ``theta'_t = theta_t Delta``, ``thetabar_t = Theta_t Delta`` (so ``exp(-thetabar_T) = eps``);
- ``sigma_t = lambda sqrt(2 theta_t)``, ``sigmabar_t = lambda sqrt(1 - exp(-2 thetabar_t))``.

The schedule is computed in float64 (the reference: float32) and applied in the states' dtype.
Every sampler step takes its noise as an argument: the caller owns the random generators.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
import torch

__all__ = ["SDEConfig", "Schedule", "marginal_mean", "sample_state", "optimal_reverse_state", "posterior_std",
           "score_from_noise", "reverse_drift", "reverse_sde_step", "reverse_mean_step", "forward_euler_step",
           "exact_forward_step", "terminal_state", "noise_for_mean_step", "matching_loss", "eq11_target"]


@dataclass(frozen=True)
class SDEConfig:
    """The SDE's constants (IR-SDE's inpainting config: T 100, max_sigma 30 (/255), eps 0.005, cosine)."""

    T: int = 100
    max_sigma: float = 30.0
    eps: float = 0.005

    def __post_init__(self) -> None:
        if isinstance(self.T, bool) or not isinstance(self.T, int) or self.T < 2:
            raise ValueError(f"T must be an integer >= 2, got {self.T!r}")
        if not (self.max_sigma > 0 and math.isfinite(self.max_sigma)):
            raise ValueError(f"max_sigma must be positive, got {self.max_sigma}")
        if not 0 < self.eps < 1:
            raise ValueError(f"eps must be in (0, 1), got {self.eps}")

    @property
    def lam(self) -> float:
        """lambda, the stationary noise level: ``max_sigma / 255`` when given on the 0-255 scale (as the code)."""
        return self.max_sigma / 255 if self.max_sigma > 1 else self.max_sigma


def cosine_thetas(T: int, s: float = 0.008) -> torch.Tensor:
    """theta_t for t = 0..T: one minus the cosine schedule's cumulative product over T + 2 steps (float64)."""
    n = T + 2
    i = torch.arange(n + 1, dtype=torch.float64)
    a = torch.cos((i / n + s) / (1 + s) * math.pi * 0.5) ** 2
    return 1 - (a / a[0])[1:-1]


class Schedule:
    """The per-step quantities of one :class:`SDEConfig` (tensors indexed by t = 0..T)."""

    def __init__(self, cfg: SDEConfig = SDEConfig()):
        self.cfg, self.T, self.lam = cfg, cfg.T, cfg.lam
        self.theta = cosine_thetas(cfg.T)
        self.Theta = torch.cumsum(self.theta, 0) - self.theta[0]  # the code: theta_0 is not a step
        self.delta = -math.log(cfg.eps) / float(self.Theta[-1])
        self.theta_prime = self.theta * self.delta
        self.thetabar = self.Theta * self.delta
        self.sigma = self.lam * torch.sqrt(2 * self.theta)
        self.sigmabar = self.lam * torch.sqrt(1 - torch.exp(-2 * self.thetabar))

    def at(self, values: torch.Tensor, t: torch.Tensor | int, like: torch.Tensor) -> torch.Tensor:
        """``values[t]`` shaped to broadcast over ``like`` (t: an int or one index per sample)."""
        t = torch.as_tensor(t, dtype=torch.long)
        v = values[t.cpu()].to(device=like.device, dtype=like.dtype)
        return v.reshape(-1, *([1] * (like.dim() - 1))) if v.dim() else v


def marginal_mean(s: Schedule, x0: torch.Tensor, mu: torch.Tensor, t) -> torch.Tensor:
    """E[x_t | x0] = mu + (x0 - mu) exp(-thetabar_t)  (IR-SDE Eq. 3; ``mu_bar``)."""
    return mu + (x0 - mu) * torch.exp(-s.at(s.thetabar, t, x0))


def sample_state(s: Schedule, x0: torch.Tensor, mu: torch.Tensor, t, noise: torch.Tensor) -> torch.Tensor:
    """x_t = mu + (x0 - mu) exp(-thetabar_t) + sigmabar_t n: the closed-form marginal (``generate_random_states``)."""
    return marginal_mean(s, x0, mu, t) + s.at(s.sigmabar, t, x0) * noise


def terminal_state(s: Schedule, mu: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The code's sampling start x_T = mu + lambda z (``noise_state``; not the exact marginal at T)."""
    return mu + s.lam * noise


def _abc(s: Schedule, t, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    t = torch.as_tensor(t, dtype=torch.long)
    a = torch.exp(-s.at(s.theta_prime, t, like))
    b = torch.exp(-s.at(s.thetabar, t, like))
    c = torch.exp(-s.at(s.thetabar, t - 1, like))
    return a, b, c


def optimal_reverse_state(s: Schedule, xt: torch.Tensor, x0: torch.Tensor, mu: torch.Tensor, t) -> torch.Tensor:
    """x*_{t-1} = mu + A(1 - C^2)/(1 - B^2) (x_t - mu) + C(1 - A^2)/(1 - B^2) (x0 - mu)  (IR-SDE / StrDiffusion Eq. 4).

    ``A = exp(-theta'_t)``, ``B = exp(-thetabar_t)``, ``C = exp(-thetabar_{t-1})``: the mean of the
    Gaussian posterior q(x_{t-1} | x_t, x0) of the exact OU transitions.
    """
    a, b, c = _abc(s, t, xt)
    return mu + a * (1 - c ** 2) / (1 - b ** 2) * (xt - mu) + c * (1 - a ** 2) / (1 - b ** 2) * (x0 - mu)


def posterior_std(s: Schedule, t, like: torch.Tensor) -> torch.Tensor:
    """The std of q(x_{t-1} | x_t, x0): lambda sqrt((1 - A^2)(1 - C^2)/(1 - B^2))  (``reverse_optimum_std``)."""
    a, b, c = _abc(s, t, like)
    return s.lam * torch.sqrt((1 - a ** 2) * (1 - c ** 2) / (1 - b ** 2))


def score_from_noise(s: Schedule, noise: torch.Tensor, t) -> torch.Tensor:
    """The score from the predicted noise: -eps_hat / sigmabar_t  (``get_score_from_noise``)."""
    return -noise / s.at(s.sigmabar, t, noise)


def reverse_drift(s: Schedule, x: torch.Tensor, mu: torch.Tensor, score: torch.Tensor, t) -> torch.Tensor:
    """(theta_t (mu - x) - sigma_t^2 score) Delta: the reverse SDE's drift over one step (IR-SDE Eq. 2)."""
    return (s.at(s.theta, t, x) * (mu - x) - s.at(s.sigma, t, x) ** 2 * score) * s.delta


def reverse_mean_step(s: Schedule, x: torch.Tensor, mu: torch.Tensor, score: torch.Tensor, t) -> torch.Tensor:
    """x - drift: the reverse step without its noise (``reverse_sde_step_mean``; what the loss matches)."""
    return x - reverse_drift(s, x, mu, score, t)


def reverse_sde_step(s: Schedule, x: torch.Tensor, mu: torch.Tensor, score: torch.Tensor, t,
                     noise: torch.Tensor) -> torch.Tensor:
    """x_{t-1} = x - drift - sigma_t sqrt(Delta) z  (``reverse_sde_step``; ``noise`` is z)."""
    return reverse_mean_step(s, x, mu, score, t) - s.at(s.sigma, t, x) * math.sqrt(s.delta) * noise


def forward_euler_step(s: Schedule, x: torch.Tensor, mu: torch.Tensor, t, noise: torch.Tensor) -> torch.Tensor:
    """x_t = x_{t-1} + theta'_t (mu - x_{t-1}) + sigma_t sqrt(Delta) z: the code's ``forward_step`` (Euler)."""
    return x + s.at(s.theta_prime, t, x) * (mu - x) + s.at(s.sigma, t, x) * math.sqrt(s.delta) * noise


def exact_forward_step(s: Schedule, x: torch.Tensor, mu: torch.Tensor, t, noise: torch.Tensor) -> torch.Tensor:
    """x_t = mu + (x_{t-1} - mu) e^{-theta'_t} + lambda sqrt(1 - e^{-2 theta'_t}) z: the exact OU transition."""
    a = torch.exp(-s.at(s.theta_prime, t, x))
    return mu + (x - mu) * a + s.lam * torch.sqrt(1 - a ** 2) * noise


def noise_for_mean_step(s: Schedule, xt: torch.Tensor, mu: torch.Tensor, target: torch.Tensor, t) -> torch.Tensor:
    """The eps_hat whose mean reverse step lands on ``target`` (the loss's exact minimiser; for tests and diagnostics).

    x - theta'_t (mu - x) - 2 lambda^2 theta'_t eps_hat / sigmabar_t = target, solved for eps_hat.
    """
    tp = s.at(s.theta_prime, t, xt)
    return (xt - tp * (mu - xt) - target) * s.at(s.sigmabar, t, xt) / (2 * s.lam ** 2 * tp)


def matching_loss(pred: torch.Tensor, target: torch.Tensor, hole: torch.Tensor | None = None,
                  w_known: float = 1.0, w_hole: float = 10.0) -> torch.Tensor:
    """The L1 matching loss of Eq. 5 with beta = 1, p = 1 (``MatchingLoss``).

    ``hole=None``: IR-SDE's plain mean |d|. With a hole: StrDiffusion's ``mean(|d| k) w_known +
    mean(|d| h) w_hole`` where each mean runs over all C x H x W elements (not over the masked area).
    """
    d = (pred - target).abs()
    if hole is None:
        return d.mean()
    dims = tuple(range(1, d.dim()))
    return (w_known * (d * (1 - hole)).mean(dims) + w_hole * (d * hole).mean(dims)).mean()


def eq11_target(s_y: Schedule, s_x: Schedule, y0: torch.Tensor, mu_y: torch.Tensor, xt: torch.Tensor,
                x0: torch.Tensor, mu_x: torch.Tensor, t, hole: torch.Tensor | None = None) -> torch.Tensor:
    """StrDiffusion's structure-guided target (paper Eq. 11), restricted to the hole when ``hole`` is given.

    ``c_t (x_t - mu_x) - c_t e^{-deltabar_t} (x0 - mu_x) + e^{-thetabar_{t-1}} (y0 - mu_y) + mu_y`` with
    ``c_t = (1 - e^{-2 thetabar_{t-1}}) / (1 - e^{-2 deltabar_t}) e^{-delta'_t}`` (theta: the texture's
    schedule ``s_y``, delta: the structure's ``s_x``; 1-channel structure terms broadcast over RGB).
    The paper labels the first three terms "masked regions" and the last "unmasked regions": with a
    hole, the structure terms act in the hole only (the semantics term is zero outside it anyway, as
    ``mu_y = y0 * keep``), so the known region's target is ``mu_y``, i.e. y0.
    """
    t = torch.as_tensor(t, dtype=torch.long)
    tb_prev = s_y.at(s_y.thetabar, t - 1, y0)
    db = s_x.at(s_x.thetabar, t, y0)
    c = (1 - torch.exp(-2 * tb_prev)) / (1 - torch.exp(-2 * db)) * torch.exp(-s_x.at(s_x.theta_prime, t, y0))
    structure = c * (xt - mu_x) - c * torch.exp(-db) * (x0 - mu_x)
    if hole is not None:
        structure = structure * hole
    return structure + torch.exp(-tb_prev) * (y0 - mu_y) + mu_y

