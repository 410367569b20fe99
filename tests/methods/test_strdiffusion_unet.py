"""The IR-SDE UNet and StrDiffusion's SPADE texture UNet, offline and small (nf=8, depth 2-3, <= 32x32).

The references are written from IR-SDE's ``DenoisingUNet_arch.py`` / ``module_util.py`` and StrDiffusion's
texture ``DenoisingUNet_arch.py`` independently of inpaintlab's modules: NumPy for the positional norm, the
nearest resize, the sinusoidal embedding, the linear attention and the reflect padding; functional torch ops
for the spectral-normalised SPADE block and the ResBlock; a key/shape table enumerated from the reference
constructors (which also gives the exact parameter count).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inpaintlab.inpainters.architectures import count_parameters
from inpaintlab.methods.strdiffusion.unet import (SPADE, ConditionalUNet, LinearAttention, PositionalNorm2d,
                                                  ResBlock, SPADEBlock, UNetConfig, reflect_pad_to_multiple,
                                                  sinusoidal_embedding, unet_config_from_dict,
                                                  unet_config_to_dict)

from ..conftest import DEEP_RTOL, FLOAT32_EPS, SHALLOW_RTOL, assert_close


@pytest.fixture(autouse=True)
def _seed(one_thread):
    """A fixed seed, one intra-op thread (2 busy cores)."""
    torch.manual_seed(0)


def small(spade: bool = False, depth: int = 3, in_nc: int = 3) -> ConditionalUNet:
    """A tiny UNet in eval mode (eval: spectral norm does not run its power iteration on each call)."""
    return ConditionalUNet(UNetConfig(in_nc=in_nc, out_nc=in_nc, nf=8, depth=depth, spade=spade)).eval()


def inputs(n: int, h: int, w: int, c: int = 3, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    xt, cond = torch.randn(n, c, h, w, generator=g), torch.rand(n, c, h, w, generator=g)
    structure = torch.rand(n, 1, h, w, generator=g)
    return xt, cond, structure


# -- 1. the reference's state-dict layout, enumerated from its constructors -----------------------------------


def reference_keys(in_nc: int, out_nc: int, nf: int, depth: int, spade: bool) -> dict[str, tuple[int, ...]]:
    """Every state-dict entry of the reference ``ConditionalUNet`` and its shape.

    ``default_conv`` has no bias; ``Downsample`` (4x4 s2), ``Upsample``'s conv, LinearAttention's output conv,
    ``final_conv`` and all SPADE convs do. ``ResBlock.mlp`` is ``Sequential(SiLU, Linear)``; ``Upsample`` is
    ``Sequential(nn.Upsample, Conv2d)``; ``Residual(PreNorm(dim, fn))`` nests ``fn.fn`` and ``fn.norm``.
    SPADEBlock(fin == fout) builds no shortcut; spectral norm stores ``weight_orig`` + buffers ``weight_u/_v``.
    """
    keys: dict[str, tuple[int, ...]] = {}
    td = 4 * nf

    def conv(p, cin, cout, k, bias):
        keys[f"{p}.weight"] = (cout, cin, k, k)
        if bias:
            keys[f"{p}.bias"] = (cout,)

    def resblock(p, din, dout):
        keys[f"{p}.mlp.1.weight"], keys[f"{p}.mlp.1.bias"] = (2 * dout, td), (2 * dout,)
        conv(f"{p}.block1.proj", din, dout, 3, False)
        conv(f"{p}.block2.proj", dout, dout, 3, False)
        if din != dout:
            conv(f"{p}.res_conv", din, dout, 1, False)

    def attention(p, dim):
        keys[f"{p}.fn.norm.g"] = (1, dim, 1, 1)
        conv(f"{p}.fn.fn.to_qkv", dim, 3 * 128, 1, False)
        conv(f"{p}.fn.fn.to_out.0", 128, dim, 1, True)
        keys[f"{p}.fn.fn.to_out.1.g"] = (1, dim, 1, 1)

    def spade_block(p, c):
        for j in (0, 1):
            keys[f"{p}.conv_{j}.weight_orig"] = (c, c, 3, 3)
            keys[f"{p}.conv_{j}.weight_u"], keys[f"{p}.conv_{j}.weight_v"] = (c,), (c * 9,)
            keys[f"{p}.conv_{j}.bias"] = (c,)
            conv(f"{p}.norm_{j}.mlp_shared.0", 1, 16, 3, True)
            conv(f"{p}.norm_{j}.mlp_gamma", 16, c, 3, True)
            conv(f"{p}.norm_{j}.mlp_beta", 16, c, 3, True)

    conv("init_conv", 2 * in_nc, nf, 7, False)
    keys["time_mlp.1.weight"], keys["time_mlp.1.bias"] = (td, nf), (td,)
    keys["time_mlp.3.weight"], keys["time_mlp.3.bias"] = (td, td), (td,)
    for i in range(depth):
        di, do = nf * 2 ** i, nf * 2 ** (i + 1)
        resblock(f"downs.{i}.0", di, di)
        resblock(f"downs.{i}.1", di, di)
        attention(f"downs.{i}.2", di)
        if i != depth - 1:
            conv(f"downs.{i}.3", di, do, 4, True)
        else:
            conv(f"downs.{i}.3", di, do, 3, False)
        if spade:
            spade_block(f"downs.{i}.4", do)
        u = depth - 1 - i  # ups.insert(0, ...): level i sits at index depth-1-i
        resblock(f"ups.{u}.0", do + di, do)
        resblock(f"ups.{u}.1", do + di, do)
        attention(f"ups.{u}.2", do)
        if i != 0:
            conv(f"ups.{u}.3.1", do, di, 3, True)
        else:
            conv(f"ups.{u}.3", do, di, 3, False)
    mid = nf * 2 ** depth
    resblock("mid_block1", mid, mid)
    attention("mid_attn", mid)
    resblock("mid_block2", mid, mid)
    resblock("final_res_block", 2 * nf, nf)
    conv("final_conv", nf, out_nc, 3, True)
    return keys


def reference_parameter_count(**kw) -> int:
    return sum(math.prod(s) for k, s in reference_keys(**kw).items() if not k.endswith(("weight_u", "weight_v")))


@pytest.mark.parametrize("spade", [False, True])
def test_state_dict_keys_and_shapes_are_the_references(spade):
    net = ConditionalUNet(UNetConfig(nf=8, depth=3, spade=spade))
    got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    want = reference_keys(in_nc=3, out_nc=3, nf=8, depth=3, spade=spade)
    assert sorted(set(got) - set(want)) == [] and sorted(set(want) - set(got)) == []
    assert got == want
    # a few keys quoted from the reference code, spelled out
    assert "mid_attn.fn.fn.to_out.1.g" in got and "downs.0.2.fn.fn.to_qkv.weight" in got
    assert "ups.0.3.1.weight" in got and "ups.2.3.weight" in got and "ups.2.3.bias" not in got
    assert "downs.2.3.weight" in got and "downs.2.3.bias" not in got and "init_conv.bias" not in got
    if spade:
        assert got["downs.0.4.norm_0.mlp_shared.0.weight"] == (16, 1, 3, 3)
        assert {"downs.1.4.conv_1.weight_orig", "downs.1.4.conv_1.weight_u", "downs.1.4.conv_1.weight_v"} <= set(got)
        assert not any(".conv_s." in k or ".norm_s." in k for k in got)


def test_reference_state_dict_loads_strictly():
    """A state dict with the reference's keys (here another instance's) loads strictly and reproduces it."""
    a, b = small(spade=True), small(spade=True)
    b.load_state_dict(a.state_dict(), strict=True)
    xt, cond, s = inputs(1, 16, 16)
    with torch.no_grad():
        assert torch.equal(a(xt, cond, torch.tensor([5]), s), b(xt, cond, torch.tensor([5]), s))


def test_parameter_counts():
    # the notes: nf=16 / depth 3 / RGB is 2.41 M
    net = ConditionalUNet(UNetConfig(nf=16, depth=3))
    assert count_parameters(net) == reference_parameter_count(in_nc=3, out_nc=3, nf=16, depth=3, spade=False)
    assert abs(count_parameters(net) / 1e6 - 2.41) <= 0.01
    spade = ConditionalUNet(UNetConfig(nf=16, depth=3, spade=True))
    assert count_parameters(spade) == reference_parameter_count(in_nc=3, out_nc=3, nf=16, depth=3, spade=True)
    # the full-size networks on the meta device (no memory): the notes' 137 M for nf=64 / depth 4
    with torch.device("meta"):
        big = ConditionalUNet(UNetConfig(nf=64, depth=4))
        big_spade = ConditionalUNet(UNetConfig(nf=64, depth=4, spade=True))
    assert count_parameters(big) == reference_parameter_count(in_nc=3, out_nc=3, nf=64, depth=4, spade=False)
    assert round(count_parameters(big) / 1e6) == 137
    assert count_parameters(big_spade) == reference_parameter_count(in_nc=3, out_nc=3, nf=64, depth=4, spade=True)


# -- 2. SPADE -----------------------------------------------------------------------------------------------


def numpy_positional_norm(x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    mean = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, ddof=1, keepdims=True)  # torch.var's default: unbiased
    return (x - mean) / np.sqrt(var + eps)


def test_positional_norm_is_per_pixel_over_channels_with_unbiased_variance():
    x = torch.randn(2, 5, 4, 3) * 3 + 1
    got = PositionalNorm2d()(x)
    assert_close(got, numpy_positional_norm(x.double().numpy()), SHALLOW_RTOL, "positional norm")
    # the biased variance would differ by sqrt(C / (C - 1)) ~ 12 %: the check above tells them apart
    biased = (x - x.mean(1, keepdim=True)) / (x.var(1, unbiased=False, keepdim=True) + 1e-5).sqrt()
    assert (got - biased).abs().max() > 0.05


def test_spade_with_zero_gamma_and_beta_is_the_positional_norm():
    spade = SPADE(6, 1)
    with torch.no_grad():
        for conv in (spade.mlp_gamma, spade.mlp_beta):
            conv.weight.zero_()
            conv.bias.zero_()
    x, s = torch.randn(2, 6, 5, 7), torch.rand(2, 1, 9, 11)
    assert_close(spade(x, s), numpy_positional_norm(x.double().numpy()), SHALLOW_RTOL, "SPADE(gamma=beta=0)")


def numpy_nearest(s: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """PyTorch's legacy 'nearest': source index floor(dst * in / out)."""
    in_h, in_w = s.shape[-2:]
    rows = np.minimum(np.floor(np.arange(out_h) * (in_h / out_h)).astype(int), in_h - 1)
    cols = np.minimum(np.floor(np.arange(out_w) * (in_w / out_w)).astype(int), in_w - 1)
    return s[..., rows[:, None], cols[None, :]]


@pytest.mark.parametrize("size", [(4, 3), (14, 10), (7, 5)])  # shrink (non-integer ratio), enlarge, same
def test_spade_resizes_the_structure_map_nearest(size):
    """With gamma = 0 and beta = the structure map (via center-tap convs): out = PN(x) + nearest(s)."""
    c = 4
    spade = SPADE(c, 1)
    with torch.no_grad():
        for conv in (spade.mlp_shared[0], spade.mlp_gamma, spade.mlp_beta):
            conv.weight.zero_()
            conv.bias.zero_()
        spade.mlp_shared[0].weight[0, 0, 1, 1] = 1.0  # hidden 0 = ReLU(s) = s (s >= 0)
        spade.mlp_beta.weight[:, 0, 1, 1] = 1.0  # beta = hidden 0 on every channel
    s = torch.arange(35, dtype=torch.float32).reshape(1, 1, 7, 5)  # every pixel distinct
    x = torch.randn(1, c, *size)
    want = numpy_positional_norm(x.double().numpy()) + numpy_nearest(s.double().numpy(), *size)
    assert_close(spade(x, s), want, SHALLOW_RTOL, f"SPADE structure resize to {size}")


def spectral_weight(conv: nn.Conv2d) -> torch.Tensor:
    """Eval-mode spectral norm: weight_orig / (u . W v) with the stored u, v."""
    w = conv.weight_orig
    sigma = torch.dot(conv.weight_u, w.reshape(w.shape[0], -1) @ conv.weight_v)
    return w / sigma


def test_spade_block_is_the_reference_residual_with_spectral_norm():
    blk = SPADEBlock(6, 1).eval()
    x, s = torch.randn(2, 6, 5, 4), torch.rand(2, 1, 10, 8)

    def spade(m, h):
        sd = F.interpolate(s, size=h.shape[-2:], mode="nearest")
        a = F.relu(F.conv2d(sd, m.mlp_shared[0].weight, m.mlp_shared[0].bias, padding=1))
        gamma = F.conv2d(a, m.mlp_gamma.weight, m.mlp_gamma.bias, padding=1)
        beta = F.conv2d(a, m.mlp_beta.weight, m.mlp_beta.bias, padding=1)
        return torch.from_numpy(numpy_positional_norm(h.double().numpy())).float() * (1 + gamma) + beta

    with torch.no_grad():
        dx = F.conv2d(F.leaky_relu(spade(blk.norm_0, x), 0.2), spectral_weight(blk.conv_0), blk.conv_0.bias, padding=1)
        dx = F.conv2d(F.leaky_relu(spade(blk.norm_1, dx), 0.2), spectral_weight(blk.conv_1), blk.conv_1.bias, padding=1)
        assert_close(blk(x, s), x + dx, 1e-5, "SPADEBlock")


def test_spade_block_initialisation_is_normal_002_with_zero_biases():
    blk = SPADEBlock(64, 1)
    convs = [blk.norm_0.mlp_gamma, blk.norm_1.mlp_beta, blk.norm_0.mlp_shared[0]]
    # >= 9216 samples each: the std estimate is within ~1 % (the 144-weight mlp_shared is left out of it)
    for w in [blk.conv_0.weight_orig, blk.conv_1.weight_orig] + [c.weight for c in convs[:2]]:
        w = w.detach()
        assert abs(float(w.std()) - 0.02) < 0.02 * 0.05 and abs(float(w.mean())) < 0.001
    assert float(blk.norm_0.mlp_shared[0].weight.detach().abs().max()) < 0.02 * 5
    for b in [blk.conv_0.bias, blk.conv_1.bias] + [c.bias for c in convs]:
        assert torch.count_nonzero(b) == 0


# -- 3. time embedding, attention, ResBlock -------------------------------------------------------------------


@pytest.mark.parametrize("dim", [8, 64])
def test_time_embedding_is_sinusoidal(dim):
    t = np.array([0, 1, 7, 399], dtype=np.float64)
    half = dim // 2
    freqs = np.exp(-np.log(10000.0) * np.arange(half) / (half - 1))
    want = np.concatenate([np.sin(t[:, None] * freqs), np.cos(t[:, None] * freqs)], axis=1)
    got = sinusoidal_embedding(torch.tensor([0, 1, 7, 399]), dim)
    # float32 rounds the argument t * f by ~eps * t: the error is absolute and grows with t
    err = float(np.abs(got.double().numpy() - want).max())
    assert err <= 4 * FLOAT32_EPS * t.max(), err
    # float steps embed exactly like integer ones, and the UNet's time_mlp starts with this embedding (nf wide)
    assert torch.equal(sinusoidal_embedding(torch.tensor([0.0, 1.0, 7.0, 399.0]), dim), got)
    net = ConditionalUNet(UNetConfig(nf=dim, depth=1))
    assert torch.equal(net.time_mlp[0](torch.tensor([0, 1, 7, 399])), got)


def numpy_linear_attention(x, wqkv, wout, bout, g, heads=4, dim_head=32):
    """The reference LinearAttention, head by head in NumPy (float64)."""
    b, c, h, w = x.shape
    n = h * w
    qkv = np.einsum("oc,bcn->bon", wqkv, x.reshape(b, c, n))
    q, k, v = np.split(qkv, 3, axis=1)
    out = np.zeros((b, heads * dim_head, n))
    for bi in range(b):
        for hd in range(heads):
            sl = slice(hd * dim_head, (hd + 1) * dim_head)
            qh = np.exp(q[bi, sl]) / np.exp(q[bi, sl]).sum(0, keepdims=True) * dim_head ** -0.5  # over channels
            kh = np.exp(k[bi, sl]) / np.exp(k[bi, sl]).sum(1, keepdims=True)  # over positions
            vh = v[bi, sl] / n
            context = kh @ vh.T  # (d, e)
            out[bi, sl] = context.T @ qh  # (e, n)
    y = np.einsum("oc,bcn->bon", wout, out) + bout[None, :, None]
    mean, var = y.mean(1, keepdims=True), y.var(1, keepdims=True)  # channel LayerNorm, biased variance
    return ((y - mean) / np.sqrt(var + 1e-5) * g.reshape(1, -1, 1)).reshape(b, -1, h, w)


def test_linear_attention_against_numpy():
    attn = LinearAttention(6)
    with torch.no_grad():
        attn.to_out[1].g.copy_(torch.rand(1, 6, 1, 1) + 0.5)
    x = torch.randn(2, 6, 3, 5)
    p = {k: v.detach().double().numpy() for k, v in attn.state_dict().items()}
    want = numpy_linear_attention(x.double().numpy(), p["to_qkv.weight"][:, :, 0, 0], p["to_out.0.weight"][:, :, 0, 0],
                                  p["to_out.0.bias"], p["to_out.1.g"])
    assert_close(attn(x), want, 1e-5, "LinearAttention")


def test_resblock_is_time_modulated_conv_silu_twice_plus_1x1_shortcut():
    blk = ResBlock(4, 6, time_emb_dim=8)
    x, temb = torch.randn(2, 4, 5, 5), torch.randn(2, 8)
    with torch.no_grad():
        ss = F.linear(F.silu(temb), blk.mlp[1].weight, blk.mlp[1].bias)
        scale, shift = ss[:, :6, None, None], ss[:, 6:, None, None]
        h = F.silu(F.conv2d(x, blk.block1.proj.weight, padding=1) * (1 + scale) + shift)
        h = F.silu(F.conv2d(h, blk.block2.proj.weight, padding=1))
        assert_close(blk(x, temb), h + F.conv2d(x, blk.res_conv.weight), 1e-5, "ResBlock")


# -- 4. the whole UNet: shapes, padding, SPADE resolutions, determinism ----------------------------------------


@pytest.mark.parametrize("spade", [False, True])
def test_output_shape_for_sizes_that_need_padding(spade):
    net = small(spade=spade)
    seen = []
    if spade:
        for level in net.downs:
            level[4].register_forward_hook(lambda m, args, out: seen.append(tuple(args[0].shape)))
    xt, cond, s = inputs(2, 20, 28)
    with torch.no_grad():
        out = net(xt, cond, torch.tensor([3, 9]), s if spade else None)
    assert out.shape == (2, 3, 20, 28)
    if spade:
        # padded to 24x32 (a multiple of 2**depth = 8); SPADE after each level's down conv, the last not strided
        assert seen == [(2, 16, 12, 16), (2, 32, 6, 8), (2, 64, 6, 8)]


def test_input_is_reflect_padded_to_a_multiple_of_2_pow_depth():
    """The output on 20x28 is the output on NumPy's reflect padding to 24x32, cropped (2**depth, not 2**(depth-1))."""
    net = small()
    xt, cond, _ = inputs(1, 20, 28)
    pad = ((0, 0), (0, 0), (0, 4), (0, 4))
    xt_p, cond_p = (torch.from_numpy(np.pad(a.numpy(), pad, mode="reflect")) for a in (xt, cond))
    with torch.no_grad():
        out = net(xt, cond, torch.tensor([4]))
        padded = net(xt_p, cond_p, torch.tensor([4]))
    assert_close(out, padded[..., :20, :28], DEEP_RTOL, "padding")
    assert reflect_pad_to_multiple(torch.zeros(1, 1, 16, 16), 8).shape == (1, 1, 16, 16)


def test_input_is_xt_minus_cond_and_cond():
    """The network sees cat[xt - cond, cond]: init_conv on that equals the model's first activation."""
    net = small(depth=2)
    xt, cond, _ = inputs(1, 16, 16)
    got = []
    net.init_conv.register_forward_hook(lambda m, args, out: got.append(args[0]))
    with torch.no_grad():
        net(xt, cond, torch.tensor([1]))
    assert torch.equal(got[0], torch.cat([xt - cond, cond], 1))


@pytest.mark.parametrize("spade", [False, True])
def test_deterministic_and_batch_independent(spade):
    net = small(spade=spade)
    xt, cond, s = inputs(2, 16, 16)
    s = s if spade else None
    t = torch.tensor([2, 11])
    with torch.no_grad():
        a, b = net(xt, cond, t, s), net(xt, cond, t, s)
        as_float = net(xt, cond, t.double(), s)  # float steps (any float dtype) are the same steps
        one = [net(xt[i:i + 1], cond[i:i + 1], t[i:i + 1], None if s is None else s[i:i + 1]) for i in range(2)]
        # a (1,) or scalar step broadcasts over the batch, as in the reference
        same_t = net(xt, cond, torch.tensor([5, 5]), s)
        broadcast, scalar = net(xt, cond, torch.tensor([5]), s), net(xt, cond, 5, s)
    assert torch.equal(a, b) and torch.equal(a, as_float)
    assert_close(a, torch.cat(one), DEEP_RTOL, "batch of 2 vs two of 1")
    assert_close(broadcast, same_t, DEEP_RTOL, "t of shape (1,)")
    assert torch.equal(broadcast, scalar)


def test_structure_changes_the_spade_output_only():
    net = small(spade=True)
    xt, cond, s = inputs(1, 16, 16)
    with torch.no_grad():
        a, b = net(xt, cond, torch.tensor([3]), s), net(xt, cond, torch.tensor([3]), 1 - s)
    assert (a - b).abs().max() > 1e-6


# -- 5. validation and configuration ------------------------------------------------------------------------


def test_structure_is_required_by_spade_and_refused_otherwise():
    xt, cond, s = inputs(1, 16, 16)
    with pytest.raises(ValueError, match="structure"):
        small(spade=True, depth=2)(xt, cond, torch.tensor([1]))
    with pytest.raises(ValueError, match="structure"):
        small(spade=True, depth=2)(xt, cond, torch.tensor([1]), s[:, :, :8])
    with pytest.raises(ValueError, match="no SPADE"):
        small(depth=2)(xt, cond, torch.tensor([1]), s)


def test_bad_inputs_are_refused():
    net = small(depth=2)
    xt, cond, _ = inputs(2, 16, 16)
    with pytest.raises(ValueError, match="cond"):
        net(xt, cond[:, :2], torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="xt"):
        net(xt[:, :1], cond[:, :1], torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="shape"):
        net(xt, cond, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="too small"):  # 3 -> 8 needs a reflection of 5 pixels
        small(depth=3)(xt[..., :3, :3], cond[..., :3, :3], torch.tensor([1, 2]))


def test_config_validation_and_round_trip():
    cfg = UNetConfig(in_nc=1, out_nc=1, nf=8, depth=2, spade=True)
    assert unet_config_from_dict(unet_config_to_dict(cfg)) == cfg
    assert unet_config_from_dict({}) == UNetConfig(3, 3, 64, 4, False)
    assert cfg.pad_multiple == 4
    for bad in ({"nf": 6.0}, {"nf": 2}, {"nf": 7}, {"depth": 0}, {"in_nc": True}, {"spade": 1}):
        with pytest.raises(ValueError):
            UNetConfig(**bad)
    with pytest.raises(ValueError, match="unknown"):
        unet_config_from_dict({"nf": 8, "width": 3})
