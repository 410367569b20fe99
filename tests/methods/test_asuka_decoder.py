"""ASUKA's mask-unmask consistent decoder (notes 2.2.3, 2.5 "Decoder") against diffusers and NumPy references."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from inpaintlab.errors import InpaintlabError, MissingWeightsError
from inpaintlab.inpainters.blended import latent_hole
from inpaintlab.methods.asuka import decoder as D
from inpaintlab.methods.seamless.models import load_state

from ..conftest import DEEP_RTOL, SHALLOW_RTOL, assert_close

SIZE = 32


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest's: one intra-op thread


def seeded(build, seed: int):
    """``build()`` under a fixed global seed, leaving the global random state as it was."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build().eval()


@pytest.fixture(scope="module")
def asym():
    """The notes' tiny AsymmetricAutoencoderKL (2.5): widths (32, 64), one layer per block, factor 2."""
    from diffusers import AsymmetricAutoencoderKL

    return seeded(lambda: AsymmetricAutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 2, down_block_out_channels=(32, 64), layers_per_down_block=1,
        up_block_types=("UpDecoderBlock2D",) * 2, up_block_out_channels=(32, 64), layers_per_up_block=1,
        latent_channels=4, norm_num_groups=8), seed=0)


@pytest.fixture(scope="module")
def kl():
    """A tiny KL VAE of three blocks (32, 64, 64), factor 4, as the small-scale protocol's."""
    from diffusers import AutoencoderKL

    return seeded(lambda: AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 64, 64), layers_per_block=1, latent_channels=4, norm_num_groups=16), seed=1)


def inputs(factor: int, n: int = 2, seed: int = 0):
    """Images in [0, 1], unscaled latents for a ``factor`` decoder, and a ragged hole with odd-pixel spots."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, SIZE, SIZE, generator=g)
    z = torch.randn(n, 4, SIZE // factor, SIZE // factor, generator=g)
    hole = torch.zeros(n, 1, SIZE, SIZE)
    hole[0, :, 5:20, 7:22] = 1  # a block whose edges cut 2x2 cells
    hole[-1, :, 1, 1] = hole[-1, :, 9, 23] = hole[-1, :, 27, 3] = 1  # odd-pixel spots: nearest sampling misses them
    hole[-1, :, 12:19, 13:30] = 1
    return images, z, hole


def maxpool_np(hole: np.ndarray, f: int) -> np.ndarray:
    """The independent reference: a cell is hole if any of its f x f pixels is."""
    n, c, h, w = hole.shape
    return hole.reshape(n, c, h // f, f, w // f, f).max(axis=(3, 5))


# --- the decoder against diffusers -----------------------------------------------------------------------

def test_nearest_with_zero_mask_channel_is_diffusers(asym):
    images, z, hole = inputs(factor=2)
    net = D.from_asymmetric(asym, downsample="nearest")
    with torch.no_grad():
        want = asym.decode(z, image=images * 2 - 1, mask=hole).sample
        got = net.decode_hole(z, images, hole)
        # the model-space API (diffusers' decode) is the same computation
        assert_close(net.decode(z, image=images * 2 - 1, mask=hole).sample, want, SHALLOW_RTOL, "decode")
    assert_close(got, want, SHALLOW_RTOL, "decode_hole (nearest) vs AsymmetricAutoencoderKL.decode")
    assert net.config.downsample == "nearest"


def test_any_differs_only_where_nearest_misses_cells(asym):
    images, z, hole = inputs(factor=2)
    # the constructed hole has cells that nearest sampling (top-left pixel) misses and max-pooling catches
    h = hole.numpy()
    assert (maxpool_np(h, 2) != h[:, :, ::2, ::2]).any()
    nearest, anypix = D.from_asymmetric(asym, "nearest"), D.from_asymmetric(asym, "any")
    aligned = torch.zeros_like(hole)
    aligned[0, :, 4:20, 6:22] = 1  # whole 2x2 cells only: both rules agree
    aligned[1, :, 10:12, 24:28] = 1
    with torch.no_grad():
        a, b = nearest.decode_hole(z, images, hole), anypix.decode_hole(z, images, hole)
        assert (a - b).abs().max() > 1e-2 * b.abs().max()
        assert_close(nearest.decode_hole(z, images, aligned), anypix.decode_hole(z, images, aligned), SHALLOW_RTOL,
                     "cell-aligned hole")


@pytest.mark.parametrize("f", [1, 2, 4, 8])
def test_downsample_hole_is_maxpool_or_nearest(f):
    g = torch.Generator().manual_seed(f)
    hole = (torch.rand(2, 1, 32, 48, generator=g) > 0.9).float()
    size = (32 // f, 48 // f)
    want = maxpool_np(hole.numpy(), f)
    assert np.array_equal(D.downsample_hole(hole, size, "any").numpy(), want)
    assert np.array_equal(latent_hole(hole, f).numpy(), want)  # the house rule, for binary holes
    assert np.array_equal(D.downsample_hole(hole, size, "nearest").numpy(), hole.numpy()[:, :, ::f, ::f])
    with pytest.raises(InpaintlabError, match="unknown mask downsampling"):
        D.downsample_hole(hole, size, "bilinear")


def test_any_masks_at_every_decoder_scale(asym, monkeypatch):
    # the decoder asks for the hole at each scale it blends at; every answer must be the max-pool
    images, z, hole = inputs(factor=2)
    net = D.from_asymmetric(asym, "any")
    seen = []
    original = D.downsample_hole

    def recording(mask, size, mode="any"):
        out = original(mask, size, mode)
        seen.append((tuple(size), mode, out))
        return out

    monkeypatch.setattr(D, "downsample_hole", recording)
    with torch.no_grad():
        net.decode_hole(z, images, hole)
    assert [(s, m) for s, m, _ in seen] == [((16, 16), "any"), ((32, 32), "any")]  # before each of the 2 up blocks
    for size, _, out in seen:
        assert np.array_equal(out.numpy(), maxpool_np(hole.numpy(), SIZE // size[0]))


def test_any_equals_diffusers_with_maxpooled_masks(asym, monkeypatch):
    # independent forward: diffusers' own decoder, its nearest mask resize replaced by a NumPy max-pool
    images, z, hole = inputs(factor=2)
    with torch.no_grad():
        got = D.from_asymmetric(asym, "any").decode_hole(z, images, hole)
    interpolate = torch.nn.functional.interpolate

    def maxpool_masks(x, size=None, scale_factor=None, mode="nearest", **kw):
        if mode == "nearest" and size is not None and x.shape[1] == 1:  # only diffusers' mask resize
            f = x.shape[-1] // size[-1]
            return torch.from_numpy(maxpool_np(x.numpy(), f)).to(x)
        return interpolate(x, size=size, scale_factor=scale_factor, mode=mode, **kw)

    monkeypatch.setattr(torch.nn.functional, "interpolate", maxpool_masks)
    with torch.no_grad():
        want = asym.decode(z, image=images * 2 - 1, mask=hole).sample
    assert_close(got, want, SHALLOW_RTOL, "any-pixel decoder vs diffusers with max-pooled masks")


# --- loading -------------------------------------------------------------------------------------------

def test_load_asymmetric_pads_only_the_condition_conv(asym, tmp_path):
    folder = tmp_path / "asym"
    asym.save_pretrained(folder)
    net = D.from_asymmetric(D.load_asymmetric(str(folder)))
    theirs, ours = asym.state_dict(), net.state_dict()
    assert set(theirs) == set(ours)
    for key, value in theirs.items():
        if key == D.CONDITION_WEIGHT:
            continue
        assert torch.equal(ours[key], value), key
    w, w0 = ours[D.CONDITION_WEIGHT], theirs[D.CONDITION_WEIGHT]
    assert w.shape == (w0.shape[0], 4, *w0.shape[2:])
    assert torch.equal(w[:, :3], w0) and not w[:, 3].any()
    assert net.config.downsample == "any" and isinstance(net, D.AsukaDecoder)


def test_missing_weights_are_one_line(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(MissingWeightsError) as e:
        D.load_asymmetric(str(missing))
    assert str(missing) in str(e.value) and "\n" not in str(e.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text(json.dumps({"_class_name": "AsymmetricAutoencoderKL"}))
    with pytest.raises(MissingWeightsError) as e:  # a config without weights
        D.load_asymmetric(str(empty))
    assert str(empty) in str(e.value) and "\n" not in str(e.value)
    repo = "inpaintlab-tests/no-such-asymmetric-vae"
    with pytest.raises(MissingWeightsError) as e:  # not cached, hub switched off: no request
        D.load_asymmetric(repo, local_files_only=True)
    assert repo in str(e.value) and "\n" not in str(e.value)


# --- the mask input --------------------------------------------------------------------------------------

def test_mask_channel_gets_gradient_and_is_used(asym):
    images, z, hole = inputs(factor=2)
    net = D.from_asymmetric(asym).train()
    conv = net.decoder.condition_encoder.layers[0]
    # zero-initialised, yet trainable: the gradient through the mask input is not zero
    net.decode_hole(z, images, hole).square().mean().backward()
    assert conv.weight.grad[:, 3].abs().max() > 0
    net.eval()
    encoder = net.decoder.condition_encoder
    x = (images * 2 - 1) * (1 - hole)
    other = torch.zeros_like(hole)
    other[:, :, 2:9, 3:30] = 1
    with torch.no_grad():
        before = net.decode_hole(z, images, hole)
        same = [torch.equal(a, b) for a, b in zip(encoder(x, hole).values(), encoder(x, other).values())]
        assert all(same)  # zero channel: the mask cannot matter to the encoder
        conv.weight[:, 3] = torch.randn(conv.weight[:, 3].shape, generator=torch.Generator().manual_seed(5))
        same = [torch.equal(a, b) for a, b in zip(encoder(x, hole).values(), encoder(x, other).values())]
        assert not any(same)  # the same masked image, another mask: other features at every scale
        after = net.decode_hole(z, images, hole)
    assert (after - before).abs().max() > 1e-3 * before.abs().max()


def test_encoder_frozen_trains_the_decoder_only(kl):
    # the KL-built decoder has no idle condition layer (stride 8 for factor 4), so every decoder weight learns
    net = D.encoder_frozen(D.from_kl(kl).train())
    images, z, hole = inputs(factor=4)
    posterior = net.encode(images * 2 - 1).latent_dist
    net.decode_hole(posterior.mode(), images, hole).square().mean().backward()
    for name, p in net.named_parameters():
        trains = name.startswith("decoder.")
        assert p.requires_grad == trains, name
        assert (p.grad is not None and bool(p.grad.any())) == trains, name
    assert D.encoder_frozen(D.from_kl(kl), post_quant_conv=False).post_quant_conv.weight.requires_grad


# --- the small-scale decoder from a KL VAE -------------------------------------------------------------

def test_from_kl_copies_the_kl_vae(kl):
    net = D.from_kl(kl, generator=torch.Generator().manual_seed(3))
    theirs, ours = kl.state_dict(), net.state_dict()
    for key, value in theirs.items():
        assert torch.equal(ours[key], value), key
    assert set(ours) - set(theirs) == {f"decoder.condition_encoder.layers.{i}.{p}" for i in range(4)
                                       for p in ("weight", "bias")}  # stride 8: scales 1, 1, 1/2, 1/4 only
    assert not ours[D.CONDITION_WEIGHT][:, 3].any()
    images, z, _ = inputs(factor=4)
    with torch.no_grad():
        # all hole: every blend keeps the decoder's own features, so this is the KL VAE's decoder
        for mode in D.DOWNSAMPLE_MODES:
            got = D.from_kl(kl, mode).decode_hole(z, images, torch.ones(2, 1, SIZE, SIZE))
            assert_close(got, kl.decode(z).sample, SHALLOW_RTOL, f"all-hole decode ({mode})")
        # no hole: every blend takes the condition features, so the latents cannot matter
        empty = torch.zeros(2, 1, SIZE, SIZE)
        assert torch.equal(net.decode_hole(z, images, empty), net.decode_hole(-3 * z, images, empty))


def test_from_kl_draws_only_from_its_generator(kl):
    def condition_weights(seed, global_seed):
        torch.manual_seed(global_seed)
        net = D.from_kl(kl, generator=torch.Generator().manual_seed(seed))
        return [p.detach().clone() for p in net.decoder.condition_encoder.parameters()]

    with torch.random.fork_rng():
        a, b, c = condition_weights(7, 0), condition_weights(7, 1), condition_weights(8, 0)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not any(torch.equal(x, y) for x, y in zip(a[1:], c[1:]))


@pytest.mark.parametrize("mode", D.DOWNSAMPLE_MODES)
def test_config_round_trip(kl, mode, tmp_path):
    net = D.from_kl(kl, mode, generator=torch.Generator().manual_seed(4))
    config = json.loads(json.dumps(D.decoder_config(net)))  # plain JSON values
    assert config["downsample"] == mode and config["condition_stride"] == 8
    rebuilt = load_state(D.build_asuka_decoder(config), net.state_dict(), "ASUKA decoder").eval()
    images, z, hole = inputs(factor=4)
    with torch.no_grad():
        want = net.decode_hole(z, images, hole)
        assert torch.equal(rebuilt.decode_hole(z, images, hole), want)
    # a save_pretrained folder's config.json (private keys, diffusers' derived keys) builds the same model
    net.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert D.decoder_config(D.build_asuka_decoder(saved)) == config
    with torch.no_grad():
        assert torch.equal(D.AsukaDecoder.from_pretrained(tmp_path).eval().decode_hole(z, images, hole), want)
    with pytest.raises(InpaintlabError, match="unknown ASUKA decoder config keys: downsampling"):
        D.build_asuka_decoder(config | {"downsampling": "any"})
    with pytest.raises(InpaintlabError, match="unknown mask downsampling"):
        D.build_asuka_decoder(config | {"downsample": "area"})


def test_decode_hole_checks_shapes(asym):
    net = D.from_asymmetric(asym)
    images, z, hole = inputs(factor=2)
    with pytest.raises(InpaintlabError, match="decode to images"):
        net.decode_hole(z[:, :, :8], images, hole)
    with pytest.raises(InpaintlabError, match="hole must be"):
        net.decode_hole(z, images, hole[:, :, :16])


# --- latent augmentation (ASUKA Eq. 1) -----------------------------------------------------------------

def sd_schedulers():
    """SD-1.5's schedule as diffusers builds it: scaled_linear betas 0.00085..0.012 over 1000 steps."""
    from diffusers import DDIMScheduler, DDPMScheduler

    kw = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
              clip_sample=False)
    ddim = DDIMScheduler(**kw, set_alpha_to_one=False)
    ddim.set_timesteps(1000)
    return ddim, DDPMScheduler(**kw)


class MockUNet(nn.Module):
    """A stand-in for the 9-channel SD-inpainting UNet: eps from a fixed rule, every call recorded."""

    def __init__(self, rule):
        super().__init__()
        self.rule, self.calls = rule, []

    def forward(self, x, t, encoder_hidden_states=None):
        self.calls.append((x.clone(), t.clone(), encoder_hidden_states))
        return SimpleNamespace(sample=self.rule(x[:, :4], t, x[:, 5:]))


def oracle(alphas_cumprod):
    """The true eps of z_t = sqrt(abar) z + sqrt(1 - abar) eps, given the clean z as the masked-image latent."""
    def rule(z_t, t, z_known):
        abar = alphas_cumprod[t].view(-1, 1, 1, 1)
        return (z_t - abar.sqrt() * z_known) / (1 - abar).sqrt()
    return rule


def latents(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return 3 * torch.randn(n, 4, 8, 8, generator=g), torch.randn(n, 5, 16, generator=g)


def test_one_step_estimate_is_ddim_pred_original_sample():
    ddim, _ = sd_schedulers()
    ts = torch.tensor([0, 10, 500, 999])
    z_t, cond = latents(4)
    eps = torch.randn(z_t.shape, generator=torch.Generator().manual_seed(9))
    got = D.one_step_estimate(MockUNet(lambda *_: eps), z_t, ts, torch.zeros_like(z_t), cond, ddim.alphas_cumprod)
    for i, t in enumerate(ts.tolist()):
        want = ddim.step(eps[i:i + 1], t, z_t[i:i + 1]).pred_original_sample
        assert_close(got[i:i + 1], want, SHALLOW_RTOL, f"t={t}")


def replay(seeds, shape, p, t_range):
    """The documented draws per sample, redone: u ~ U[0,1), t ~ U{lo..hi}, eps ~ N(0, I)."""
    out = []
    for s in seeds:
        g = torch.Generator().manual_seed(s)
        u = float(torch.rand((), generator=g))
        t = int(torch.randint(t_range[0], t_range[1] + 1, (), generator=g))
        out.append((u < p, t, torch.randn(shape, generator=g)))
    return out


def generators(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_latent_augmentation_with_true_eps_returns_z():
    _, ddpm = sd_schedulers()
    seeds = list(range(20, 28))
    z, cond = latents(len(seeds))
    unet = MockUNet(oracle(ddpm.alphas_cumprod))
    out = D.latent_augmentation(unet, z, cond, ddpm.alphas_cumprod, generators(seeds))
    applied = torch.tensor([a for a, _, _ in replay(seeds, z.shape[1:], 0.5, (0, 999))])
    assert 0 < applied.sum() < len(seeds)
    assert torch.equal(out.applied, applied)
    assert torch.equal(out.latents[~applied], z[~applied])
    assert_close(out.latents[applied], z[applied], DEEP_RTOL, "one-step estimate with the true eps")
    # one UNet call, applied samples only: zero mask channel, the clean z as the masked-image latent
    (x, t, c), = unet.calls
    assert x.shape == (int(applied.sum()), 9, 8, 8)
    assert not x[:, 4].any()
    assert torch.equal(x[:, 5:], z[applied])
    assert torch.equal(t, out.t[applied]) and (out.t[~applied] == -1).all()
    assert torch.equal(c, cond[applied])


@pytest.mark.parametrize("p, t_range", [(0.5, (0, 999)), (0.7, (100, 200))])
def test_latent_augmentation_matches_a_replay_through_diffusers(p, t_range):
    ddim, ddpm = sd_schedulers()
    seeds = [3, 1, 4, 1, 5, 9]
    z, cond = latents(len(seeds), seed=1)
    rule = lambda z_t, t, z_known: 0.3 * z_t - 0.1 * z_known  # not the true eps: the schedule and draws show
    out = D.latent_augmentation(MockUNet(rule), z, cond[:1], ddim.alphas_cumprod, generators(seeds), p=p,
                                t_range=t_range)
    for i, (applied, t, eps) in enumerate(replay(seeds, z.shape[1:], p, t_range)):
        assert bool(out.applied[i]) == applied
        if not applied:
            assert torch.equal(out.latents[i], z[i]) and out.t[i] == -1
            continue
        assert out.t[i] == t and t_range[0] <= t <= t_range[1]
        z_t = ddpm.add_noise(z[i:i + 1], eps[None], torch.tensor([t]))
        want = ddim.step(rule(z_t, t, z[i:i + 1]), t, z_t).pred_original_sample
        assert_close(out.latents[i:i + 1], want, SHALLOW_RTOL, f"sample {i}, t={t}")
    assert out.applied.any() and not out.applied.all()


def test_latent_augmentation_p_extremes():
    _, ddpm = sd_schedulers()
    z, cond = latents(3)
    unet = MockUNet(oracle(ddpm.alphas_cumprod))
    none = D.latent_augmentation(unet, z, cond, ddpm.alphas_cumprod, generators([1, 2, 3]), p=0.0)
    assert not none.applied.any() and torch.equal(none.latents, z) and not unet.calls
    every = D.latent_augmentation(unet, z, cond, ddpm.alphas_cumprod, generators([1, 2, 3]), p=1.0)
    assert every.applied.all() and len(unet.calls) == 1
    with pytest.raises(InpaintlabError, match="t_range"):
        D.latent_augmentation(unet, z, cond, ddpm.alphas_cumprod, generators([1, 2, 3]), t_range=(0, 1000))


def test_latent_augmentation_is_batch_independent():
    from diffusers import UNet2DConditionModel

    _, ddpm = sd_schedulers()
    unet = seeded(lambda: UNet2DConditionModel(
        sample_size=8, in_channels=9, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        norm_num_groups=32, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16, attention_head_dim=8), seed=2)
    seeds = [40, 41, 42, 43]
    z, cond = latents(4, seed=3)
    batch = D.latent_augmentation(unet, z, cond, ddpm.alphas_cumprod, generators(seeds))
    assert batch.applied.any() and not batch.applied.all()
    for i, s in enumerate(seeds):
        one = D.latent_augmentation(unet, z[i:i + 1], cond[i:i + 1], ddpm.alphas_cumprod, generators([s]))
        assert one.applied[0] == batch.applied[i] and one.t[0] == batch.t[i]
        assert_close(one.latents, batch.latents[i:i + 1], DEEP_RTOL, f"sample {i} alone vs in the batch")
