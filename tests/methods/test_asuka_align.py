"""ASUKA's alignment module and objective (notes 2.2.2, 2.5 "Alignment"): shapes, a hand-computed block, the
frozen-MAE/frozen-UNet training step, the loss against NumPy, the full-prior schedule and draws, condition scaling."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from inpaintlab.errors import InpaintlabError
from inpaintlab.methods.asuka import align as A
from inpaintlab.methods.asuka.mae import build_mae, mae_config, mae_input, prior_features

from ..conftest import DEEP_RTOL, SHALLOW_RTOL, assert_close
from .test_asuka_mae import batch  # three 32 px images and holes (ragged rectangle, corner block, spot)

D, C, HEADS, L, SIZE = 16, 32, 4, 16, 32  # tiny MAE: decoder width 16, 4x4 tokens at 32 px; condition width 32


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest's: one intra-op thread


@pytest.fixture(scope="module")
def mae():
    return A.frozen(build_mae(mae_config("tiny"), generator=torch.Generator().manual_seed(0)))


@pytest.fixture(scope="module")
def unet():
    from diffusers import UNet2DConditionModel

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return UNet2DConditionModel(
            sample_size=8, in_channels=9, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            norm_num_groups=32, cross_attention_dim=C, attention_head_dim=8)


def sd_abar() -> np.ndarray:
    """SD-1.5's scaled-linear DDPM schedule (beta 0.00085 .. 0.012, 1000 steps), cumulative product, float64."""
    betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000) ** 2
    return np.cumprod(1.0 - betas)


def randomise(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter redrawn N(0, 0.3) (+1 for norm weights), so zero biases and unit norms cannot hide a term."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3 + (1.0 if "norm" in name and name.endswith("weight") else 0.0))
    return module


# --- shapes, block counts, parameter counts -----------------------------------------------------------

def block_params(c: int) -> int:
    """An AlignBlock: 2 LN (2c each) + qkv (3c^2 + 3c) + proj (c^2 + c) + fc1 (4c^2 + 4c) + fc2 (4c^2 + c)."""
    return 4 * c + (3 * c * c + 3 * c) + (c * c + c) + (4 * c * c + 4 * c) + (4 * c * c + c)


def cross_params(c: int) -> int:
    """A CrossBlock: 3 LN + q (c^2 + c) + kv (2c^2 + 2c) + proj (c^2 + c) + the MLP."""
    return 6 * c + (c * c + c) + (2 * c * c + 2 * c) + (c * c + c) + (4 * c * c + 4 * c) + (4 * c * c + c)


@pytest.mark.parametrize("variant, tokens, n_blocks", [("linear", L, 0), ("attn", L, 1), ("asuka", L, 4),
                                                       ("cross4", 77, 4)])
def test_shapes_and_sizes(variant, tokens, n_blocks):
    a = A.Alignment(D, C, variant, heads=HEADS, generator=torch.Generator().manual_seed(1))
    out = a(torch.randn(2, L, D, generator=torch.Generator().manual_seed(2)))
    assert out.shape == (2, tokens, C)
    assert len(a.blocks) == n_blocks
    expected = D * C + C  # the input Linear
    if variant == "cross4":
        assert all(isinstance(b, A.CrossBlock) for b in a.blocks)
        assert a.queries.shape == (77, C)
        expected += 77 * C + n_blocks * cross_params(C) + 2 * C
    elif variant != "linear":
        assert all(isinstance(b, A.AlignBlock) for b in a.blocks)
        expected += n_blocks * block_params(C) + 2 * C  # + the final LayerNorm
    assert sum(p.numel() for p in a.parameters()) == expected


def test_defaults_overrides_and_errors():
    assert (A.default_heads(768), A.default_heads(512), A.default_heads(32)) == (12, 8, 1)
    assert A.AlignBlock(128).heads == 2
    a = A.Alignment(D, C, "asuka", blocks=2, heads=HEADS)
    assert len(a.blocks) == 2 and a.config()["blocks"] == 2
    assert A.Alignment(D, C, "cross4", heads=HEADS, queries=5)(torch.zeros(3, L, D)).shape == (3, 5, C)
    q = A.Alignment(D, 768, "cross4", blocks=0).queries.detach()  # N(0, 0.02) initialisation
    assert abs(float(q.std()) - 0.02) < 0.002 and abs(float(q.mean())) < 0.002
    for kwargs in (dict(variant="mlp"), dict(variant="linear", blocks=2), dict(heads=5), dict(blocks=-1)):
        with pytest.raises(InpaintlabError):
            A.Alignment(D, C, **({"heads": HEADS} | kwargs))
    with pytest.raises(InpaintlabError):
        A.Alignment(D, C, heads=HEADS)(torch.zeros(2, L, D + 1))
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    same = [A.Alignment(D, C, heads=HEADS, generator=g()) for _ in range(2)]
    assert all(torch.equal(p, q) for p, q in zip(same[0].parameters(), same[1].parameters()))
    other = A.Alignment(D, C, heads=HEADS, generator=torch.Generator().manual_seed(4))
    assert not torch.equal(same[0].proj.weight, other.proj.weight)


# --- the blocks against explicit float64 matmuls ------------------------------------------------------

def ln(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def lin(x, layer):
    return x @ layer.weight.detach().double().numpy().T + layer.bias.detach().double().numpy()


def mha(q, k, v, heads):
    """Per head h on channels [h dh, (h+1) dh): softmax(q k^T / sqrt(dh)) v, heads concatenated."""
    dh = q.shape[-1] // heads
    out = []
    for h in range(heads):
        s = slice(h * dh, (h + 1) * dh)
        logits = q[..., s] @ np.swapaxes(k[..., s], -1, -2) / math.sqrt(dh)
        p = np.exp(logits - logits.max(-1, keepdims=True))
        out.append((p / p.sum(-1, keepdims=True)) @ v[..., s])
    return np.concatenate(out, -1)


def norm(x, layer):
    return ln(x, layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy(), layer.eps)


def test_align_block_equals_hand_computation():
    block = randomise(A.AlignBlock(C, heads=HEADS), 5)
    x = torch.randn(2, 6, C, generator=torch.Generator().manual_seed(6))
    xn = x.double().numpy()
    qkv = lin(norm(xn, block.norm1), block.qkv)
    h = xn + lin(mha(qkv[..., :C], qkv[..., C:2 * C], qkv[..., 2 * C:], HEADS), block.proj)
    ref = h + lin(gelu(lin(norm(h, block.norm2), block.mlp.fc1)), block.mlp.fc2)
    assert_close(block(x), ref, DEEP_RTOL, "AlignBlock")


def test_cross_block_equals_hand_computation():
    block = randomise(A.CrossBlock(C, heads=HEADS), 7)
    g = torch.Generator().manual_seed(8)
    q, kv = torch.randn(2, 5, C, generator=g), torch.randn(2, 9, C, generator=g)
    qn, kvn = q.double().numpy(), kv.double().numpy()
    kvp = lin(norm(kvn, block.norm_kv), block.kv)
    h = qn + lin(mha(lin(norm(qn, block.norm_q), block.q), kvp[..., :C], kvp[..., C:], HEADS), block.proj)
    ref = h + lin(gelu(lin(norm(h, block.norm2), block.mlp.fc1)), block.mlp.fc2)
    assert_close(block(q, kv), ref, DEEP_RTOL, "CrossBlock")


# --- the training property: only the alignment learns, through the frozen UNet ----------------------

def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("kind", ["asuka", "attn", "linear", "cross4", "prompt"])
def test_one_step_trains_only_the_alignment(kind, mae, unet):
    from inpaintlab.inpainters.blended import latent_hole

    A.frozen(unet)
    assert not any(p.requires_grad for p in list(mae.parameters()) + list(unet.parameters()))
    images, hole = batch(1)
    g = torch.Generator().manual_seed(9)
    if kind == "prompt":
        module = A.LearnedPrompt(torch.randn(1, 77, C, generator=g))
    else:
        module = A.Alignment(D, C, kind, heads=HEADS, generator=g)
    full = torch.tensor([True, False, False])
    features = prior_features(mae, images, A.mae_hole(hole, full))
    assert features.shape == (3, L, D) and not features.requires_grad
    n = images.shape[0]
    z0, z_known, eps = (torch.randn(n, 4, 8, 8, generator=g) for _ in range(3))
    t = torch.tensor([5, 400, 990])
    before_mae, before_unet = snapshot(mae), snapshot(unet)
    before = {k: p.detach().clone() for k, p in module.named_parameters()}

    loss = A.alignment_loss(unet, z0, latent_hole(hole, 4), z_known, t, eps, module(features),
                            torch.from_numpy(sd_abar()).float())
    assert loss.requires_grad
    loss.backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and bool((p.grad != 0).any()), f"{name} got no gradient"
    assert all(p.grad is None for p in list(mae.parameters()) + list(unet.parameters()))
    torch.optim.AdamW(module.parameters(), lr=1e-3).step()

    for name, p in module.named_parameters():
        assert not torch.equal(p, before[name]), f"{name} did not change"
    for what, model, old in (("MAE", mae, before_mae), ("UNet", unet, before_unet)):
        new = model.state_dict()
        assert all(torch.equal(new[k], v) for k, v in old.items()), f"a {what} tensor changed"


def test_key_bias_gets_no_gradient(mae):
    """Softmax is shift-invariant per query: the key slice of the qkv bias gets round-off only (documented)."""
    module = randomise(A.Alignment(D, C, "attn", heads=HEADS), 10)
    images, hole = batch(2)
    module(prior_features(mae, images, hole)).pow(2).mean().backward()
    grad = module.blocks[0].qkv.bias.grad
    assert float(grad[C:2 * C].abs().max()) < 1e-5 * float(grad[:C].abs().max())


# --- the loss against NumPy --------------------------------------------------------------------------

def test_alignment_loss_equals_numpy():
    g = torch.Generator().manual_seed(11)
    n = 2
    z0, z_known, eps = (torch.randn(n, 4, 8, 8, generator=g) for _ in range(3))
    hole_r = (torch.rand(n, 1, 8, 8, generator=g) > 0.5).float()
    cond = torch.randn(n, 7, C, generator=g)
    t = torch.tensor([3, 777])
    calls = []

    def mock(x, tt, encoder_hidden_states):
        calls.append((x, tt, encoder_hidden_states))
        out = 0.3 * x[:, :4] - 0.7 * x[:, 4:5] + 0.2 * x[:, 5:] + encoder_hidden_states.mean((1, 2)).view(-1, 1, 1, 1)
        return SimpleNamespace(sample=out + tt.float().view(-1, 1, 1, 1) / 1000)

    abar = sd_abar()
    loss = A.alignment_loss(mock, z0, hole_r, z_known, t, eps, cond, torch.from_numpy(abar).float())

    z0n, zkn, en, hn, cn = (v.double().numpy() for v in (z0, z_known, eps, hole_r, cond))
    a = abar.astype(np.float32).astype(np.float64)[[3, 777]].reshape(-1, 1, 1, 1)
    z_t = np.sqrt(a) * z0n + np.sqrt(1 - a) * en
    pred = 0.3 * z_t - 0.7 * hn + 0.2 * zkn + cn.mean((1, 2)).reshape(-1, 1, 1, 1) + np.array([3, 777]).reshape(-1, 1, 1, 1) / 1000
    assert_close(loss, np.mean((en - pred) ** 2), SHALLOW_RTOL, "loss")
    (x, tt, c_seen), = calls
    assert_close(x, np.concatenate([z_t, hn, zkn], 1), SHALLOW_RTOL, "UNet input [z_t, mask, z_known]")
    assert torch.equal(tt, t) and c_seen is cond
    # a UNet returning a plain tensor is accepted
    plain = A.alignment_loss(lambda *a, **k: mock(*a, **k).sample, z0, hole_r, z_known, t, eps, cond,
                             torch.from_numpy(abar).float())
    assert torch.equal(plain, loss)


def test_sd_inpaint_input_order_and_errors():
    z, m, k = torch.full((1, 4, 2, 2), 1.0), torch.full((1, 1, 2, 2), 2.0), torch.full((1, 4, 2, 2), 3.0)
    x = A.sd_inpaint_input(z, m, k)
    assert x.shape == (1, 9, 2, 2)
    assert x[0, :, 0, 0].tolist() == [1.0] * 4 + [2.0] + [3.0] * 4
    for bad in ((z, m.expand(1, 2, 2, 2), k), (z, m, k[..., :1]), (z, m[..., :1], k)):
        with pytest.raises(InpaintlabError):
            A.sd_inpaint_input(*bad)


# --- the full-image prior ----------------------------------------------------------------------------

def test_full_prior_schedule():
    values = [A.full_prior_probability(s) for s in (0, 1000, 2000, 5000)]
    assert values == pytest.approx([1.0, 0.55, 0.1, 0.1], abs=1e-12)
    assert A.full_prior_probability(500) == pytest.approx(1.0 - 0.9 * 0.25, abs=1e-12)
    assert A.full_prior_probability(0, warmup=0) == 0.1 and A.full_prior_probability(7, warmup=0, end=0.3) == 0.3
    assert A.full_prior_probability(50, warmup=100, start=0.0, end=1.0) == pytest.approx(0.5, abs=1e-12)
    for bad in (dict(step=-1), dict(step=0, warmup=-1), dict(step=0, end=1.5)):
        with pytest.raises(InpaintlabError):
            A.full_prior_probability(**bad)


def test_mae_hole_and_features(mae):
    images, hole = batch(3)
    full = torch.tensor([True, False, True])
    h = A.mae_hole(hole, full)
    assert h.shape == hole.shape and float(h[[0, 2]].abs().sum()) == 0.0 and torch.equal(h[1], hole[1])
    assert torch.equal(mae_input(images, h)[[0, 2]], mae_input(images)[[0, 2]])  # the full image, nothing zeroed
    got = prior_features(mae, images, h)
    empty = prior_features(mae, images, torch.zeros_like(hole))
    masked = prior_features(mae, images, hole)
    assert_close(got[[0, 2]], empty[[0, 2]], DEEP_RTOL, "full-prior samples")
    assert_close(got[1], masked[1], DEEP_RTOL, "masked sample")
    assert float((empty[0] - masked[0]).abs().max()) > 1e-3  # the hole does change the prior
    assert torch.equal(A.mae_hole(hole, torch.zeros(3, dtype=torch.bool)), hole)
    with pytest.raises(InpaintlabError):
        A.mae_hole(hole, torch.tensor([True, False]))


def test_draw_full_prior_reproducible_and_per_sample():
    gens = lambda seeds: [torch.Generator().manual_seed(s) for s in seeds]  # noqa: E731
    a = A.draw_full_prior(8, 0.5, gens(range(8)))
    assert a.dtype == torch.bool and a.shape == (8,)
    assert torch.equal(a, A.draw_full_prior(8, 0.5, gens(range(8))))
    alone = torch.cat([A.draw_full_prior(1, 0.5, gens([s])) for s in range(8)])
    assert torch.equal(a, alone)  # sample i depends on generator i only
    ref = torch.tensor([bool(torch.rand((), generator=g) < 0.5) for g in gens(range(8))])
    assert torch.equal(a, ref)
    assert not A.draw_full_prior(50, 0.0, gens(range(50))).any()
    assert A.draw_full_prior(50, 1.0, gens(range(50))).all()
    with pytest.raises(InpaintlabError):
        A.draw_full_prior(3, 0.5, gens(range(2)))


@pytest.mark.parametrize("p", [0.1, 0.55])
def test_draw_full_prior_frequency(p):
    n = 4000
    flags = A.draw_full_prior(n, p, [torch.Generator().manual_seed(100 + i) for i in range(n)])
    se = math.sqrt(p * (1 - p) / n)
    assert abs(float(flags.float().mean()) - p) < 4 * se
    one = A.draw_full_prior(n, p, torch.Generator().manual_seed(1))  # one generator for the batch
    assert abs(float(one.float().mean()) - p) < 4 * se


# --- condition scaling -------------------------------------------------------------------------------

def test_scale_condition():
    g = torch.Generator().manual_seed(12)
    c, null = torch.randn(3, L, C, generator=g), torch.randn(1, L, C, generator=g)
    assert A.scale_condition(c, null, 1.0) is c
    assert torch.equal(A.scale_condition(c, null, 0.0), null.expand_as(c))
    assert torch.equal(A.scale_condition(c, null[0], 0.0), null.expand_as(c))  # (M, c) null
    cn, nn_ = c.double().numpy(), null.double().numpy()
    for w in (-1.0, 0.25, 0.5, 2.0):
        assert_close(A.scale_condition(c, null, w), nn_ + w * (cn - nn_), SHALLOW_RTOL, f"w={w}")
    assert_close(A.scale_condition(c, None, 0.5), 0.5 * cn, SHALLOW_RTOL, "no null")
    with pytest.raises(InpaintlabError):
        A.scale_condition(c, torch.zeros(1, 77, C), 0.5)  # SD's 77-token empty prompt vs a 16-token condition


# --- config round trip -------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["asuka", "attn", "linear", "cross4"])
def test_config_round_trip(variant):
    a = randomise(A.Alignment(D, C, variant, heads=HEADS, queries=9), 13)
    config = json.loads(json.dumps(a.config()))
    b = A.build_alignment(config, generator=torch.Generator().manual_seed(99))
    x = torch.randn(2, L, D, generator=torch.Generator().manual_seed(14))
    assert not torch.equal(a(x), b(x))
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(x), b(x))
    assert A.Alignment(**config).config() == config


def test_learned_prompt_round_trip_and_api():
    table = torch.randn(1, 77, C, generator=torch.Generator().manual_seed(15))
    p = A.LearnedPrompt(table)
    assert torch.equal(p.prompt, table[0])
    out = p(torch.zeros(3, L, D))
    assert out.shape == (3, 77, C) and torch.equal(out[2], table[0]) and torch.equal(p(2), out[:2])
    q = A.build_alignment(json.loads(json.dumps(p.config())))
    q.load_state_dict(p.state_dict())
    assert isinstance(q, A.LearnedPrompt) and torch.equal(q(4), p(4))
    assert A.LearnedPrompt(table[0]).prompt.shape == (77, C)
    with pytest.raises(InpaintlabError):
        A.LearnedPrompt(torch.zeros(2, 77, C))
    with pytest.raises(InpaintlabError):
        A.build_alignment({"in_dim": D, "width": C, "depth": 3})
