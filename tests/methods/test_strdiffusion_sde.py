"""The mean-reverting SDE against independent derivations: NumPy formulas, exact OU algebra, Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from inpaintlab.methods.strdiffusion.sde import (SDEConfig, Schedule, eq11_target, exact_forward_step,
                                                 forward_euler_step, marginal_mean, matching_loss,
                                                 noise_for_mean_step, optimal_reverse_state, posterior_std,
                                                 reverse_mean_step, reverse_sde_step, sample_state,
                                                 score_from_noise)

from ..conftest import assert_close


def numpy_schedule(T: int, lam: float, eps: float, s: float = 0.008):
    """The notes' A2 formulas, written again in float64 NumPy."""
    n = T + 2
    a = np.cos((np.arange(n + 1) / n + s) / (1 + s) * np.pi / 2) ** 2
    a = a / a[0]
    theta = np.array([1 - a[i + 1] for i in range(T + 1)])
    Theta = np.array([theta[1:t + 1].sum() for t in range(T + 1)])
    delta = -np.log(eps) / Theta[T]
    return theta, Theta, delta, lam * np.sqrt(2 * theta), lam * np.sqrt(1 - np.exp(-2 * Theta * delta))


@pytest.mark.parametrize("T", [50, 100, 400])
def test_the_schedule_matches_the_formulas_and_the_notes_table(T):
    s = Schedule(SDEConfig(T=T))
    theta, Theta, delta, sigma, sigmabar = numpy_schedule(T, 30 / 255, 0.005)
    np.testing.assert_allclose(s.theta.numpy(), theta, rtol=1e-12)
    np.testing.assert_allclose(s.Theta.numpy(), Theta, rtol=1e-12, atol=1e-15)
    assert s.delta == pytest.approx(delta, rel=1e-12)
    np.testing.assert_allclose(s.sigma.numpy(), sigma, rtol=1e-12)
    np.testing.assert_allclose(s.sigmabar.numpy(), sigmabar, rtol=1e-12, atol=1e-15)
    assert float(s.Theta[0]) == 0.0
    assert math.exp(-float(s.thetabar[T])) == pytest.approx(0.005, rel=1e-12)
    np.testing.assert_allclose((s.sigma ** 2 / s.theta).numpy(), 2 * (30 / 255) ** 2, rtol=1e-12)
    assert float(s.sigmabar[T]) == pytest.approx(30 / 255 * math.sqrt(1 - 0.005 ** 2), rel=1e-12)
    golden = {100: (0.104094, 0.563), 400: (0.026219, 0.109), 50: (0.206142, 1.372)}[T]  # notes A2 table
    assert s.delta == pytest.approx(golden[0], abs=1e-6)
    assert float(s.sigmabar[1]) * 255 == pytest.approx(golden[1], abs=1e-3)


def ou_moments(s: Schedule, x0: float, mu: float, t: int, euler: bool = False) -> tuple[float, float]:
    """Mean and variance after t forward steps by the linear recursion (exact OU, or the code's Euler step)."""
    m, v = x0, 0.0
    for i in range(1, t + 1):
        tp = float(s.theta_prime[i])
        if euler:
            m, v = mu + (1 - tp) * (m - mu), (1 - tp) ** 2 * v + float(s.sigma[i]) ** 2 * s.delta
        else:
            a = math.exp(-tp)
            m, v = mu + a * (m - mu), a * a * v + s.lam ** 2 * (1 - a * a)
    return m, v


def test_composing_exact_ou_steps_gives_the_closed_form_marginal():
    s = Schedule(SDEConfig(T=100))
    x0, mu = 0.8, 0.2
    for t in (1, 7, 50, 100):
        m, v = ou_moments(s, x0, mu, t)
        f64 = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
        closed = float(marginal_mean(s, f64(x0), f64(mu), t)[0])
        assert abs(m - closed) < 1e-12 and abs(math.sqrt(v) - float(s.sigmabar[t])) < 1e-12


def test_monte_carlo_of_exact_steps_is_within_four_standard_errors():
    s = Schedule(SDEConfig(T=100))
    g = torch.Generator().manual_seed(0)
    n, t_end = 100_000, 40
    x = torch.full((n,), 0.9, dtype=torch.float64)
    mu = torch.full_like(x, 0.1)
    for t in range(1, t_end + 1):
        x = exact_forward_step(s, x, mu, t, torch.randn(n, generator=g, dtype=torch.float64))
    sd = float(s.sigmabar[t_end])
    mean = float(marginal_mean(s, torch.tensor(0.9, dtype=torch.float64), torch.tensor(0.1, dtype=torch.float64),
                               t_end))
    assert abs(float(x.mean()) - mean) < 4 * sd / math.sqrt(n)
    assert abs(float(x.std()) - sd) < 4 * sd / math.sqrt(2 * n)  # the std's standard error is sd / sqrt(2n)
    # the closed-form sampler draws the same distribution
    direct = sample_state(s, torch.full((n,), 0.9, dtype=torch.float64), torch.full((n,), 0.1, dtype=torch.float64),
                          t_end, torch.randn(n, generator=g, dtype=torch.float64))
    assert abs(float(direct.mean()) - mean) < 4 * sd / math.sqrt(n)


def test_the_codes_euler_step_is_off_by_its_known_discretisation_error():
    """Euler-Maruyama (``forward_step``) is not the exact marginal: within 1 % of (x0 - mu) and 3 % of lambda at T=100."""
    s = Schedule(SDEConfig(T=100))
    x0, mu = 1.0, 0.0
    worst_mean = worst_std = 0.0
    for t in range(1, 101):
        m_e, v_e = ou_moments(s, x0, mu, t, euler=True)
        m, v = ou_moments(s, x0, mu, t)
        worst_mean, worst_std = max(worst_mean, abs(m_e - m)), max(worst_std, abs(math.sqrt(v_e) - math.sqrt(v)))
    assert 1e-3 < worst_mean < 0.01 * (x0 - mu)  # the notes measured 0.0072
    assert 1e-3 * s.lam < worst_std < 0.03 * s.lam  # and 2.7 % of lambda
    # the functional step follows the recursion it is: mean part with zero noise
    x = torch.tensor([x0], dtype=torch.float64)
    one = forward_euler_step(s, x, torch.zeros_like(x), 1, torch.zeros_like(x))
    assert float(one[0]) == pytest.approx(mu + (1 - float(s.theta_prime[1])) * (x0 - mu), rel=1e-14)


@pytest.mark.parametrize("t", [1, 2, 10, 60, 100])
def test_eq4_is_the_gaussian_posterior_mean_by_explicit_conditioning(t):
    s = Schedule(SDEConfig(T=100))
    x0, mu, xt = 0.7, 0.25, 0.4
    m_prev, v_prev = ou_moments(s, x0, mu, t - 1)
    a = math.exp(-float(s.theta_prime[t]))
    # joint of (x_{t-1}, x_t): x_t = mu + a (x_{t-1} - mu) + noise of variance lambda^2 (1 - a^2)
    m_t = mu + a * (m_prev - mu)
    v_t = a * a * v_prev + s.lam ** 2 * (1 - a * a)
    cov = a * v_prev
    post_mean = m_prev + cov / v_t * (xt - m_t)
    post_var = v_prev - cov * cov / v_t
    f = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    got = float(optimal_reverse_state(s, f(xt), f(x0), f(mu), t)[0])
    assert got == pytest.approx(post_mean, rel=1e-12, abs=1e-13)
    std = float(posterior_std(s, t, f(0)).reshape(-1)[0])
    assert std == pytest.approx(math.sqrt(max(post_var, 0.0)), rel=1e-9, abs=1e-13)


def test_eq4_returns_x0_at_t_1_and_iterating_it_from_any_state_returns_x0():
    s = Schedule(SDEConfig(T=100))
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(2, 3, 4, 4, generator=g, dtype=torch.float64)
    mu = torch.rand(2, 3, 4, 4, generator=g, dtype=torch.float64)
    assert_close(optimal_reverse_state(s, torch.rand(2, 3, 4, 4, dtype=torch.float64), x0, mu, 1), x0, 1e-15, "t=1")
    x = mu + 0.3 * torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    for t in range(100, 0, -1):
        x = optimal_reverse_state(s, x, x0, mu, t)
    assert_close(x, x0, 1e-12, "Eq. 4 iterated")


def test_the_loss_is_zero_at_the_noise_that_lands_on_the_optimum_and_the_sde_step_adds_its_noise():
    s = Schedule(SDEConfig(T=100))
    g = torch.Generator().manual_seed(2)
    x0, mu = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)
    t = torch.tensor([5, 80])
    xt = sample_state(s, x0, mu, t, torch.randn(2, 3, 8, 8, generator=g))
    target = optimal_reverse_state(s, xt, x0, mu, t)
    eps = noise_for_mean_step(s, xt, mu, target, t)
    step = reverse_mean_step(s, xt, mu, score_from_noise(s, eps, t), t)
    assert_close(step, target, 1e-5, "mean step at the exact noise")
    assert float(matching_loss(step, target)) < 1e-5
    z = torch.randn(2, 3, 8, 8, generator=g)
    with_noise = reverse_sde_step(s, xt, mu, score_from_noise(s, eps, t), t, z)
    sigma = s.sigma[t].float().view(-1, 1, 1, 1)
    assert_close(with_noise, step - sigma * math.sqrt(s.delta) * z, 1e-6, "reverse SDE step")


def test_the_matching_losses_match_numpy():
    rng = np.random.default_rng(3)
    pred, target = rng.random((2, 3, 5, 5)).astype(np.float32), rng.random((2, 3, 5, 5)).astype(np.float32)
    hole = (rng.random((2, 1, 5, 5)) < 0.4).astype(np.float32)
    d = np.abs(pred - target)
    weighted = np.mean([(d[i] * (1 - hole[i])).mean() + 10 * (d[i] * hole[i]).mean() for i in range(2)])
    t = torch.from_numpy
    assert float(matching_loss(t(pred), t(target))) == pytest.approx(d.mean(), rel=1e-6)
    assert float(matching_loss(t(pred), t(target), t(hole))) == pytest.approx(weighted, rel=1e-6)


@pytest.mark.parametrize("t", [2, 10, 50, 100])
def test_eq11_is_the_stationarity_solution_of_eq9(t):
    """Eq. 11 = m_y(t-1) + (v_y(t-1) / v_x(t-1)) (x*_{t-1} - m_x(t-1)) with equal lambda (notes A3)."""
    s = Schedule(SDEConfig(T=100))
    g = torch.Generator().manual_seed(t)
    d = dict(dtype=torch.float64)
    y0, mu_y = torch.rand(1, 3, 4, 4, generator=g, **d), torch.rand(1, 3, 4, 4, generator=g, **d)
    x0, mu_x = torch.rand(1, 1, 4, 4, generator=g, **d), torch.rand(1, 1, 4, 4, generator=g, **d)
    xt = sample_state(s, x0, mu_x, t, torch.randn(1, 1, 4, 4, generator=g, **d))
    x_star = optimal_reverse_state(s, xt, x0, mu_x, t)
    e = math.exp(-float(s.thetabar[t - 1]))
    v = s.lam ** 2 * (1 - e * e)
    m_y, m_x = mu_y + (y0 - mu_y) * e, mu_x + (x0 - mu_x) * e
    expected = m_y + (v / v) * (x_star - m_x)
    assert_close(eq11_target(s, s, y0, mu_y, xt, x0, mu_x, t), expected, 1e-12, "Eq. 11")
    # restricted to the hole: the known region's target is mu_y there (y0 where mu_y = y0 * keep)
    hole = torch.zeros(1, 1, 4, 4, **d)
    hole[..., :2, :] = 1
    mu_known = y0 * (1 - hole)
    got = eq11_target(s, s, y0, mu_known, xt, x0, mu_x, t, hole=hole)
    assert torch.equal(got[..., 2:, :], y0[..., 2:, :])
    assert_close(got[..., :2, :], eq11_target(s, s, y0, mu_known, xt, x0, mu_x, t)[..., :2, :], 1e-12, "hole part")
