"""The samplers' control flow on stub networks: per-sample results, the reference's resampling schedule, NFE."""

from __future__ import annotations

import torch

from inpaintlab.methods.strdiffusion.sampler import (REFERENCE_KNOBS, Counts, Noise, guidance_start, irsde_sample,
                                                     repaint_irsde_sample, strdiffusion_oracle_sample,
                                                     strdiffusion_paper_sample, strdiffusion_reference_sample)
from inpaintlab.methods.strdiffusion.sde import SDEConfig, Schedule, marginal_mean, posterior_std


def texture(y, mu, t, s):
    return 0.1 * (y - mu) + 0.01 * s


def structure(x, mu, t):
    return 0.1 * (x - mu)


def data_disc(t, y, x):
    """A per-sample score that depends on the data only (so batches cannot change it)."""
    return y.mean(dim=(1, 2, 3)) - x.mean(dim=(1, 2, 3))


def inputs(n=2, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, size, size, generator=g)
    hole = torch.zeros(n, 1, size, size)
    hole[..., 2:6, 1:5] = 1
    keep = 1 - hole
    gray = image.mean(dim=1, keepdim=True)
    edges = (torch.rand(n, 1, size, size, generator=g) > 0.7).float() * keep
    return image * keep, gray * keep, edges, hole


def gens(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_irsde_runs_t_steps_and_a_batch_equals_its_samples_alone():
    s = Schedule(SDEConfig(T=20))
    mu, _, _, hole = inputs()
    mu = mu + hole  # IR-SDE's fill: holes white
    counts = Counts(2)

    def texture_free(y, m, t):
        return 0.1 * (y - m)

    both = irsde_sample(texture_free, s, mu, Noise(gens([1, 2])), counts)
    one = irsde_sample(texture_free, s, mu[:1], Noise(gens([1])))
    two = irsde_sample(texture_free, s, mu[1:], Noise(gens([2])))
    assert torch.equal(both, torch.cat([one, two]))
    assert counts.texture == [20, 20]
    again = irsde_sample(texture_free, s, mu, Noise(gens([1, 2])))
    assert torch.equal(both, again)


def test_repaint_counts_its_jumps_and_pins_nothing_into_the_result_twice():
    s = Schedule(SDEConfig(T=20))
    known, _, _, hole = inputs(1)
    counts = Counts(1)
    out = repaint_irsde_sample(lambda y, m, t: 0.1 * (y - m), s, known + hole, known, hole, Noise(gens([3])),
                               jump=5, resample=3, counts=counts)
    # 4 stretches of 5 steps; the first three go back and forth twice more: 20 + 3 x 2 x 5
    assert counts.texture == [20 + 3 * 2 * 5]
    assert torch.equal(out * (1 - hole), known * (1 - hole))  # at t = 0 the known region is the image's


def scripted_disc(plan):
    """A discriminator whose logits follow ``plan(k)`` for the k-th call at one t (k = 0: the first candidate)."""
    state = {"t": None, "k": 0}

    def disc(t, y, x):
        state["k"] = state["k"] + 1 if state["t"] == t else 0
        state["t"] = t
        return plan(state["k"])

    return disc


def test_the_reference_schedule_accepts_averages_and_breaks_per_sample_as_traced_by_hand():
    T = 100
    s = Schedule(SDEConfig(T=T))
    mu_y, gray, edges, hole = inputs()
    knobs = REFERENCE_KNOBS[T]
    # sample 0: every later candidate scores below the first (always kept: u_max - 1 tries);
    # sample 1: every later candidate scores above (averaged while i < u_min, then it stops at i = u_min)
    disc = scripted_disc(lambda k: torch.tensor([0.0, 0.0]) if k == 0 else torch.tensor([-1.0, 1.0]))
    counts = Counts(2)
    strdiffusion_reference_sample(texture, structure, disc, s, s, mu_y, gray, edges, hole, Noise(gens([1, 2])),
                                  counts=counts)
    early = list(range(T, guidance_start(T) - 1, -1))
    scheduled = [t for t in early if t % knobs.jump == 0]
    depth = {t: min(knobs.re, T - t + 1) for t in scheduled}  # "if step + t > T: step = T - t + 1"
    assert depth[100] == 1 and guidance_start(T) == 40 and len(early) == 61 and len(scheduled) == 31
    tries = [knobs.u_max - 1, knobs.u_min]
    late = guidance_start(T) - 1
    for i in range(2):
        assert counts.structure[i] == len(early) + tries[i] * sum(depth.values())
        assert counts.texture[i] == len(early) + late + tries[i] * len(scheduled)
        assert counts.disc[i] == len(early) + tries[i] * len(scheduled)
    # the notes' range of extra evaluations per image at T = 100: about 370 to 2,230
    extra = [n - (len(early) + len(early) + late) for n in counts.nfe]
    assert 360 <= extra[1] <= 380 and 2200 <= extra[0] <= 2240


def test_the_reference_sampler_without_resampling_is_case_c():
    s = Schedule(SDEConfig(T=20))
    mu_y, gray, edges, hole = inputs(1)
    counts = Counts(1)
    out = strdiffusion_reference_sample(texture, structure, data_disc, s, s, mu_y, gray, edges, hole,
                                        Noise(gens([4])), resampling=False, counts=counts)
    guided = 20 - guidance_start(20) + 1
    assert counts.structure == [guided] and counts.texture == [20] and counts.disc == [0]
    without_d = strdiffusion_reference_sample(texture, structure, None, s, s, mu_y, gray, edges, hole,
                                              Noise(gens([4])), resampling=True)
    assert torch.equal(out, without_d)  # no discriminator: no resampling either


def test_both_strdiffusion_samplers_give_each_sample_the_result_it_gets_alone():
    s = Schedule(SDEConfig(T=30))
    mu_y, gray, edges, hole = inputs(3)
    for sample in (strdiffusion_reference_sample, strdiffusion_paper_sample):
        kw = {} if sample is strdiffusion_reference_sample else {"threshold": 0.52}
        batch = sample(texture, structure, data_disc, s, s, mu_y, gray, edges, hole, Noise(gens([5, 6, 7])), **kw)
        alone = [sample(texture, structure, data_disc, s, s, mu_y[i:i + 1], gray[i:i + 1], edges[i:i + 1],
                        hole[i:i + 1], Noise(gens([5 + i])), **kw) for i in range(3)]
        assert torch.equal(batch, torch.cat(alone)), sample.__name__


def test_the_paper_sampler_resamples_only_below_the_threshold():
    s = Schedule(SDEConfig(T=10))
    mu_y, gray, edges, hole = inputs(2)
    never = Counts(2)
    strdiffusion_paper_sample(texture, structure, lambda t, y, x: torch.tensor([5.0, 5.0]), s, s, mu_y, gray, edges,
                              hole, Noise(gens([1, 2])), counts=never)
    assert never.structure == [10, 10] and never.texture == [10, 10]
    always = Counts(2)
    strdiffusion_paper_sample(texture, structure, lambda t, y, x: torch.tensor([-5.0, 5.0]), s, s, mu_y, gray,
                              edges, hole, Noise(gens([1, 2])), max_tries=3, counts=always)
    assert always.structure == [10 + 10 * 3, 10] and always.texture == [10 + 10 * 3, 10]


def test_the_oracle_guides_with_the_structure_states_the_texture_was_trained_on():
    """Over many draws, the oracle's guide at step t has the mean and spread of x*_{t-1} of the true grayscale.

    x*_{t-1} = E[x_{t-1} | x_t, x0] with x_t ~ q(x_t | x0): its mean is E[x_{t-1} | x0] (the marginal mean at
    t - 1) and its variance Var(x_{t-1} | x0) - posterior variance = sigmabar_{t-1}^2 - posterior_std_t^2.
    """
    T, n = 20, 4000
    s = Schedule(SDEConfig(T=T))
    gray = torch.full((n, 1, 1, 1), 0.8, dtype=torch.float64)
    mu_x = torch.full_like(gray, 0.1)
    mu_y = torch.zeros(n, 3, 1, 1, dtype=torch.float64)
    guides: dict[int, torch.Tensor] = {}
    states: dict[int, torch.Tensor] = {}

    def recording_texture(y, mu, t, guide):
        guides[t], states[t] = guide.clone(), y.clone()
        return torch.zeros_like(y)

    counts = Counts(n)
    strdiffusion_oracle_sample(recording_texture, s, s, mu_y, gray, mu_x,
                               Noise(gens(range(n)), dtype=torch.float64), counts)
    assert counts.texture == [T] * n and counts.structure == [0] * n
    for t in range(guidance_start(T), T + 1):
        g = guides[t].flatten()
        mean = float(marginal_mean(s, gray[:1], mu_x[:1], t - 1).flatten()[0])
        var = float(s.sigmabar[t - 1]) ** 2 - float(posterior_std(s, t, gray[:1]).flatten()[0]) ** 2
        se = (var / n) ** 0.5
        assert abs(float(g.mean()) - mean) < 4 * se + 1e-12, t
        assert abs(float(g.var()) / var - 1) < 4 * (2 / n) ** 0.5, t
    late = guidance_start(T) - 1  # the late stage: the texture's own channel mean, as the reference
    assert torch.equal(guides[late], states[late].mean(dim=1, keepdim=True))
