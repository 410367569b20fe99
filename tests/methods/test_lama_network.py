"""LaMa's network (FFC generator, pix2pixHD discriminator) and safe checkpoint loading, offline.

The references here are written from LaMa's ``ffc.py`` / ``pix2pixhd.py`` / ``big-lama.yaml``
independently of inpaintlab's modules: numpy's FFT for the Fourier unit's layout, a functional
re-implementation of LaMa's FourierUnit / FFCResnetBlock forward, and a key/shape table enumerated
from LaMa's constructor logic.
"""

from __future__ import annotations

import json
import os
import pickle
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inpaintlab.errors import InpaintlabError
from inpaintlab.inpainters.architectures import count_parameters
from inpaintlab.methods.lama.checkpoint import (InertGlobal, lama_generator_state, load_checkpoint_state,
                                                load_lama_generator, read_lama_config)
from inpaintlab.methods.lama.discriminator import DiscriminatorConfig, build_discriminator
from inpaintlab.methods.lama.ffc import (FFC, FFC_BN_ACT, GENERATOR_PRESETS, FFCResNetGenerator, FFCResnetBlock,
                                         FourierUnit, GeneratorConfig, SpectralTransform, build_generator,
                                         config_from_dict, config_to_dict)

from ..conftest import SHALLOW_RTOL, assert_close


@pytest.fixture(autouse=True)
def _seed(one_thread):
    """A fixed seed, one intra-op thread (2 busy cores)."""
    torch.manual_seed(0)


def randomize_bn(module: nn.Module) -> None:
    """Non-trivial BatchNorm statistics and affine parameters, so eval-mode BN is not the identity."""
    g = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


# -- 1. the Fourier unit against numpy ---------------------------------------------------------------


@pytest.mark.parametrize("w", [10, 9])  # even and odd widths: irfftn needs s=(H, W)
def test_fourier_unit_is_numpy_rfft2_with_interleaved_channels(w):
    c, h = 3, 8
    fu = FourierUnit(c, c).eval()
    with torch.no_grad():
        fu.conv_layer.weight.copy_(torch.eye(2 * c).view(2 * c, 2 * c, 1, 1))
        fu.bn.running_mean.zero_()
        fu.bn.running_var.fill_(1 - fu.bn.eps)  # (x - 0) / sqrt(1 - eps + eps) = x
        fu.bn.weight.fill_(1)
        fu.bn.bias.zero_()
    fu.relu = nn.Identity()
    seen = {}
    fu.conv_layer.register_forward_hook(lambda mod, inp, out: seen.setdefault("spectrum", inp[0].detach().clone()))
    x = torch.randn(2, c, h, w, dtype=torch.float32)
    with torch.no_grad():
        y = fu(x)
    assert_close(y, x, SHALLOW_RTOL, "identity Fourier unit")

    ref = np.fft.rfft2(x.double().numpy(), norm="ortho")  # (N, C, H, W//2+1)
    spectrum = seen["spectrum"]
    assert spectrum.shape == (2, 2 * c, h, w // 2 + 1)
    for ch in range(c):  # the layout pinned channel by channel: [Re c0, Im c0, Re c1, Im c1, ...]
        assert_close(spectrum[:, 2 * ch], ref.real[:, ch], SHALLOW_RTOL, f"Re of channel {ch}")
        assert_close(spectrum[:, 2 * ch + 1], ref.imag[:, ch], SHALLOW_RTOL, f"Im of channel {ch}")
    interleaved = np.stack([ref.real, ref.imag], axis=2).reshape(2, 2 * c, h, w // 2 + 1)
    assert_close(spectrum, interleaved, SHALLOW_RTOL, "interleaved spectrum")


# -- 2. LaMa's computation, re-implemented functionally from ffc.py ---------------------------------


def lama_bn(x, p, name, training=False):
    return F.batch_norm(x, p[f"{name}.running_mean"].clone(), p[f"{name}.running_var"].clone(), p[f"{name}.weight"],
                        p[f"{name}.bias"], training=training, momentum=0.1, eps=1e-5)


def lama_fourier_unit(x, p, name, training=False):
    """LaMa's FourierUnit.forward (torch.fft; stack / permute / view exactly as ffc.py)."""
    batch = x.shape[0]
    ffted = torch.fft.rfftn(x, dim=(-2, -1), norm="ortho")
    ffted = torch.stack((ffted.real, ffted.imag), dim=-1)
    ffted = ffted.permute(0, 1, 4, 2, 3).contiguous()  # (batch, c, 2, h, w/2+1)
    ffted = ffted.view((batch, -1) + ffted.size()[3:])
    ffted = F.conv2d(ffted, p[f"{name}.conv_layer.weight"])
    ffted = F.relu(lama_bn(ffted, p, f"{name}.bn", training))
    ffted = ffted.view((batch, -1, 2) + ffted.size()[2:]).permute(0, 1, 3, 4, 2).contiguous()
    ffted = torch.complex(ffted[..., 0], ffted[..., 1])
    return torch.fft.irfftn(ffted, s=x.shape[-2:], dim=(-2, -1), norm="ortho")


def lama_spectral(x, p, name, stride=1, lfu=False):
    if stride == 2:
        x = F.avg_pool2d(x, 2, 2)
    x = F.relu(lama_bn(F.conv2d(x, p[f"{name}.conv1.0.weight"]), p, f"{name}.conv1.1"))
    out = lama_fourier_unit(x, p, f"{name}.fu")
    xs = 0
    if lfu:  # LaMa's local Fourier unit, split exactly as ffc.py splits it
        n, c, h, w = x.shape
        split_s = h // 2
        xs = torch.cat(torch.split(x[:, : c // 4], split_s, dim=-2), dim=1).contiguous()
        xs = torch.cat(torch.split(xs, split_s, dim=-1), dim=1).contiguous()
        xs = lama_fourier_unit(xs, p, f"{name}.lfu").repeat(1, 1, 2, 2).contiguous()
    return F.conv2d(x + out + xs, p[f"{name}.conv2.weight"])


def reflect_conv(x, w, pad=1, stride=1):
    return F.conv2d(F.pad(x, (pad,) * 4, mode="reflect"), w, stride=stride)


def lama_ffc_bn_act(x_l, x_g, p, name):
    """FFC (ratio 0.75/0.75, 3x3, reflect padding 1) + BN + ReLU per branch."""
    out_l = reflect_conv(x_l, p[f"{name}.ffc.convl2l.weight"]) + reflect_conv(x_g, p[f"{name}.ffc.convg2l.weight"])
    out_g = reflect_conv(x_l, p[f"{name}.ffc.convl2g.weight"]) + lama_spectral(x_g, p, f"{name}.ffc.convg2g")
    return F.relu(lama_bn(out_l, p, f"{name}.bn_l")), F.relu(lama_bn(out_g, p, f"{name}.bn_g"))


@pytest.mark.parametrize("training", [False, True])
def test_fourier_unit_matches_lama_forward(training):
    fu = FourierUnit(5, 7)
    randomize_bn(fu)
    fu.train(training)
    p = {k: v.detach().clone() for k, v in fu.state_dict().items()}
    x = torch.randn(3, 5, 12, 10)
    with torch.no_grad():
        ours = fu(x)
        ref = lama_fourier_unit(x, {f"fu.{k}": v for k, v in p.items()}, "fu", training)
    assert ours.shape == (3, 7, 12, 10)
    assert_close(ours, ref, SHALLOW_RTOL, "FourierUnit vs LaMa's forward")


@pytest.mark.parametrize("stride,lfu", [(1, False), (2, False), (1, True), (2, True)])
def test_spectral_transform_matches_lama_forward(stride, lfu):
    st = SpectralTransform(12, 16, stride=stride, enable_lfu=lfu)
    randomize_bn(st)
    st.eval()
    p = {f"st.{k}": v.detach() for k, v in st.state_dict().items()}
    x = torch.randn(2, 12, 16, 16)
    with torch.no_grad():
        assert_close(st(x), lama_spectral(x, p, "st", stride, lfu), SHALLOW_RTOL, "SpectralTransform vs LaMa's")


def test_ffc_resnet_block_matches_lama_formulas():
    dim = 16  # 4 local + 12 global channels
    block = FFCResnetBlock(dim, padding_type="reflect", norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU,
                           ratio_gin=0.75, ratio_gout=0.75, enable_lfu=False)
    randomize_bn(block)
    block.eval()
    p = {k: v.detach() for k, v in block.state_dict().items()}
    x_l, x_g = torch.randn(2, 4, 12, 16), torch.randn(2, 12, 12, 16)
    with torch.no_grad():
        out_l, out_g = block((x_l, x_g))
        a_l, a_g = lama_ffc_bn_act(x_l, x_g, p, "conv1")
        b_l, b_g = lama_ffc_bn_act(a_l, a_g, p, "conv2")
        ref_l, ref_g = x_l + b_l, x_g + b_g
    assert_close(out_l, ref_l, SHALLOW_RTOL, "local branch")
    assert_close(out_g, ref_g, SHALLOW_RTOL, "global branch")


# -- 3. shapes, splits, the generator ----------------------------------------------------------------


@pytest.mark.parametrize("cin,cout,rin,rout", [(16, 32, 0.75, 0.75), (10, 6, 0.75, 0.75), (8, 16, 0.0, 0.75),
                                               (8, 16, 0.0, 0.0), (12, 12, 0.5, 0.25)])
def test_ffc_channel_split(cin, cout, rin, rout):
    ffc = FFC(cin, cout, 3, rin, rout, padding=1, enable_lfu=False)
    in_cg, out_cg = int(cin * rin), int(cout * rout)
    in_cl, out_cl = cin - in_cg, cout - out_cg
    assert ffc.global_in_num == in_cg
    for name, (a, b) in {"convl2l": (in_cl, out_cl), "convl2g": (in_cl, out_cg), "convg2l": (in_cg, out_cl)}.items():
        layer = getattr(ffc, name)
        if a == 0 or b == 0:
            assert type(layer) is nn.Identity, name
        else:
            assert isinstance(layer, nn.Conv2d) and layer.weight.shape == (b, a, 3, 3), name
            assert layer.bias is None and layer.padding_mode == "reflect", name
    assert isinstance(ffc.convg2g, SpectralTransform if in_cg and out_cg else nn.Identity)
    x = (torch.randn(2, in_cl, 8, 8), torch.randn(2, in_cg, 8, 8)) if in_cg else torch.randn(2, cin, 8, 8)
    out_l, out_g = ffc(x)
    assert out_l.shape == (2, out_cl, 8, 8)
    if out_cg:
        assert out_g.shape == (2, out_cg, 8, 8)
    else:
        assert out_g == 0  # LaMa carries a missing global branch as the integer 0
    block = FFC_BN_ACT(cin, cout, 3, rin, rout, padding=1, activation_layer=nn.ReLU, enable_lfu=False)
    if out_cl and rout != 1:
        assert block.bn_l.num_features == out_cl
    if out_cg:
        assert block.bn_g.num_features == out_cg
    else:
        assert type(block.bn_g) is nn.Identity


@pytest.mark.parametrize("stride,lfu", [(1, False), (2, False), (1, True), (2, True)])
def test_spectral_transform_shapes(stride, lfu):
    st = SpectralTransform(12, 16, stride=stride, enable_lfu=lfu)  # LFU: out/2 divisible by 4, square maps
    assert st.conv1[0].weight.shape == (8, 12, 1, 1) and st.conv2.weight.shape == (16, 8, 1, 1)
    assert st.fu.conv_layer.weight.shape == (16, 16, 1, 1) and hasattr(st, "lfu") == lfu
    if lfu:
        assert st.lfu.conv_layer.weight.shape == (16, 16, 1, 1)
    y = st(torch.randn(2, 12, 16, 16))
    assert y.shape == (2, 16, 16 // stride, 16 // stride)


def test_gated_ffc_runs():
    ffc = FFC(16, 16, 3, 0.5, 0.5, padding=1, gated=True, enable_lfu=False)
    assert isinstance(ffc.gate, nn.Conv2d) and ffc.gate.weight.shape == (2, 16, 1, 1)
    out_l, out_g = ffc((torch.randn(1, 8, 8, 8), torch.randn(1, 8, 8, 8)))
    assert out_l.shape == out_g.shape == (1, 8, 8, 8)


@pytest.mark.parametrize("h,w", [(64, 64), (40, 56)])
def test_generator_output_shape_and_range(h, w):
    gen = build_generator("small").eval()
    x = torch.cat([torch.rand(2, 3, h, w), (torch.rand(2, 1, h, w) > 0.5).float()], 1)
    with torch.no_grad():
        y = gen(x)
    assert y.shape == (2, 3, h, w) and y.dtype == torch.float32
    assert float(y.min()) >= 0 and float(y.max()) <= 1  # sigmoid output
    gen.train()
    y = gen(x)  # batch statistics, and a backward pass reaches the stem
    y.mean().backward()
    assert gen.model[1].ffc.convl2l.weight.grad is not None


def test_generator_refuses_unsupported_options():
    base = dict(input_nc=4, output_nc=3, ngf=8, n_blocks=1,
                init_conv_kwargs=dict(ratio_gin=0, ratio_gout=0),
                downsample_conv_kwargs=dict(ratio_gin=0, ratio_gout=0),
                resnet_conv_kwargs=dict(ratio_gin=0.75, ratio_gout=0.75))
    FFCResNetGenerator(**base)
    for bad in (dict(spatial_transform_layers=[0]), dict(out_ffc=True),
                dict(resnet_conv_kwargs=dict(ratio_gin=0.75, ratio_gout=0.75, use_se=True)),
                dict(add_out_act="relu")):
        with pytest.raises(ValueError):
            FFCResNetGenerator(**{**base, **bad})
    with pytest.raises(ValueError, match="unknown LaMa generator config key"):
        config_from_dict({"ngf": 8, "spatial_transform_layers": [1]})


def test_config_dict_round_trip_and_presets():
    for name, cfg in GENERATOR_PRESETS.items():
        data = json.loads(json.dumps(config_to_dict(cfg)))
        assert config_from_dict(data) == cfg, name
    assert GENERATOR_PRESETS["lama-fourier"] == GeneratorConfig()
    assert GENERATOR_PRESETS["big-lama"] == GeneratorConfig(n_blocks=18)
    assert config_from_dict({}) == GeneratorConfig()


# -- 4. the Big-LaMa key/shape table, enumerated from LaMa's constructor -------------------------------


def lama_generator_table(input_nc=4, output_nc=3, ngf=64, n_downsampling=3, n_blocks=18, ratio=0.75,
                         max_features=1024):
    """Every state-dict key and shape of LaMa's FFCResNetGenerator, in registration order.

    Derived by hand from ffc.py: FFC registers convl2l, convl2g, convg2l, convg2g (SpectralTransform:
    conv1 = [Conv 1x1, BN], fu = [conv_layer, bn], conv2), gate (Identity when not gated); a zero-width
    branch is an Identity without keys; FFC_BN_ACT adds bn_l (unless ratio_gout == 1) and bn_g
    (unless ratio_gout == 0); convs in FFCs have no bias; ConvTranspose2d and the last conv have one.
    """
    table: list[tuple[str, tuple[int, ...], bool]] = []  # key, shape, learnable

    def bn(prefix, c):
        table.extend([(f"{prefix}.weight", (c,), True), (f"{prefix}.bias", (c,), True),
                      (f"{prefix}.running_mean", (c,), False), (f"{prefix}.running_var", (c,), False),
                      (f"{prefix}.num_batches_tracked", (), False)])

    def ffc_bn_act(prefix, cin, cout, k, rin, rout):
        in_cg, out_cg = int(cin * rin), int(cout * rout)
        in_cl, out_cl = cin - in_cg, cout - out_cg
        if in_cl and out_cl:
            table.append((f"{prefix}.ffc.convl2l.weight", (out_cl, in_cl, k, k), True))
        if in_cl and out_cg:
            table.append((f"{prefix}.ffc.convl2g.weight", (out_cg, in_cl, k, k), True))
        if in_cg and out_cl:
            table.append((f"{prefix}.ffc.convg2l.weight", (out_cl, in_cg, k, k), True))
        if in_cg and out_cg:
            half = out_cg // 2
            table.append((f"{prefix}.ffc.convg2g.conv1.0.weight", (half, in_cg, 1, 1), True))
            bn(f"{prefix}.ffc.convg2g.conv1.1", half)
            table.append((f"{prefix}.ffc.convg2g.fu.conv_layer.weight", (2 * half, 2 * half, 1, 1), True))
            bn(f"{prefix}.ffc.convg2g.fu.bn", 2 * half)
            table.append((f"{prefix}.ffc.convg2g.conv2.weight", (out_cg, half, 1, 1), True))
        if rout != 1:
            bn(f"{prefix}.bn_l", out_cl)
        if rout != 0:
            bn(f"{prefix}.bn_g", out_cg)

    idx = 1  # model.0 is ReflectionPad2d(3)
    ffc_bn_act(f"model.{idx}", input_nc, ngf, 7, 0, 0)
    for i in range(n_downsampling):
        idx += 1
        mult = 2 ** i
        ffc_bn_act(f"model.{idx}", min(max_features, ngf * mult), min(max_features, ngf * mult * 2), 3, 0,
                   ratio if i == n_downsampling - 1 else 0)
    dim = min(max_features, ngf * 2 ** n_downsampling)
    for _ in range(n_blocks):
        idx += 1
        ffc_bn_act(f"model.{idx}.conv1", dim, dim, 3, ratio, ratio)
        ffc_bn_act(f"model.{idx}.conv2", dim, dim, 3, ratio, ratio)
    idx += 1  # ConcatTupleLayer
    for i in range(n_downsampling):
        mult = 2 ** (n_downsampling - i)
        cin, cout = min(max_features, ngf * mult), min(max_features, int(ngf * mult / 2))
        idx += 1
        table.extend([(f"model.{idx}.weight", (cin, cout, 3, 3), True), (f"model.{idx}.bias", (cout,), True)])
        idx += 1
        bn(f"model.{idx}", cout)
        idx += 1  # ReLU
    idx += 2  # ReflectionPad2d(3), then the output conv
    table.extend([(f"model.{idx}.weight", (output_nc, ngf, 7, 7), True), (f"model.{idx}.bias", (output_nc,), True)])
    return table, idx + 2  # + Sigmoid: the number of modules in model


BIG_LAMA_PARAMETERS = 50_975_875  # from the table below (the paper rounds it to 51 M)


def test_big_lama_state_dict_is_lamas():
    table, n_modules = lama_generator_table()
    with torch.device("meta"):
        gen = build_generator(GENERATOR_PRESETS["big-lama"])
    ours = [(k, tuple(v.shape)) for k, v in gen.state_dict().items()]
    assert ours == [(k, s) for k, s, _ in table]  # same keys, same shapes, same order
    assert len(gen.model) == n_modules == 36
    params = sum(int(np.prod(s)) for _, s, learnable in table if learnable)
    assert params == BIG_LAMA_PARAMETERS == count_parameters(gen)
    # a few keys spelled out as LaMa's checkpoint has them (generator.<these>)
    keys = dict(ours)
    assert keys["model.5.conv1.ffc.convl2l.weight"] == (128, 128, 3, 3)
    assert keys["model.4.ffc.convl2g.weight"] == (384, 256, 3, 3)
    assert keys["model.22.conv2.ffc.convg2g.fu.conv_layer.weight"] == (384, 384, 1, 1)
    assert keys["model.24.weight"] == (512, 256, 3, 3)  # ConvTranspose2d: (in, out, k, k)
    assert keys["model.34.weight"] == (3, 64, 7, 7)
    assert isinstance(gen.model[35], nn.Sigmoid) and isinstance(gen.model[23], nn.Module)


def test_lama_fourier_and_small_tables():
    for name, blocks, ngf in (("lama-fourier", 9, 64), ("small", 4, 16)):
        table, n_modules = lama_generator_table(ngf=ngf, n_blocks=blocks)
        with torch.device("meta"):
            gen = build_generator(name)
        assert [(k, tuple(v.shape)) for k, v in gen.state_dict().items()] == [(k, s) for k, s, _ in table], name
        assert len(gen.model) == n_modules


def test_discriminator_is_lamas():
    disc = build_discriminator(DiscriminatorConfig())
    expected = [("model0.0", 3, 64, False), ("model1.0", 64, 128, True), ("model2.0", 128, 256, True),
                ("model3.0", 256, 512, True), ("model4.0", 512, 512, True), ("model5.0", 512, 1, False)]
    sd = disc.state_dict()
    want = {}
    for name, cin, cout, has_bn in expected:
        want[f"{name}.weight"], want[f"{name}.bias"] = (cout, cin, 4, 4), (cout,)  # every conv has a bias
        if has_bn:
            bn = name[:-1] + "1"
            want.update({f"{bn}.weight": (cout,), f"{bn}.bias": (cout,), f"{bn}.running_mean": (cout,),
                         f"{bn}.running_var": (cout,), f"{bn}.num_batches_tracked": ()})
    assert {k: tuple(v.shape) for k, v in sd.items()} == want
    for m in disc.modules():
        if isinstance(m, nn.Conv2d):
            assert m.padding == (2, 2) and m.kernel_size == (4, 4)
        if isinstance(m, nn.LeakyReLU):
            assert m.negative_slope == 0.2
    disc.eval()
    x = torch.randn(2, 3, 64, 64)
    seen = []
    for n in range(5):
        getattr(disc, f"model{n}").register_forward_hook(lambda mod, inp, out: seen.append(out))
    logits, feats = disc(x)
    assert logits.shape == (2, 1, 7, 7)
    assert [tuple(f.shape) for f in feats] == [(2, 64, 33, 33), (2, 128, 17, 17), (2, 256, 9, 9), (2, 512, 5, 5),
                                               (2, 512, 6, 6)]
    assert all(a is b for a, b in zip(feats, seen))


# -- 5. checkpoints --------------------------------------------------------------------------------------


class Trap:
    """Unpickled by plain pickle, this creates a directory: proof that code from the file ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


class HParams:
    """Stands in for an OmegaConf object: an ordinary class, pickled with its __dict__."""

    def __init__(self):
        self.generator = {"kind": "ffc_resnet", "ngf": 16}


def lama_like_checkpoint(path: Path, gen: nn.Module, marker: Path) -> None:
    disc = build_discriminator(DiscriminatorConfig(ndf=8, n_layers=2))
    state = {f"generator.{k}": v for k, v in gen.state_dict().items()}
    state.update({f"discriminator.{k}": v for k, v in disc.state_dict().items()})
    state["val_evaluator.scores.0.weight"] = torch.ones(2)
    opt = torch.optim.Adam(gen.parameters())
    torch.save({"epoch": 3, "global_step": 1000, "pytorch-lightning_version": "1.2.9", "state_dict": state,
                "hyper_parameters": Trap(marker), "hparams": HParams(), "callbacks": {HParams: {"best": 1.0}},
                "optimizer_states": [opt.state_dict()], "lr_schedulers": []}, path)


def test_lama_checkpoint_loads_without_running_code(tmp_path):
    marker = tmp_path / "code-ran"
    assert not marker.exists()
    pickle.loads(pickle.dumps(Trap(tmp_path / "trap-is-live")))  # the trap works with plain pickle...
    assert (tmp_path / "trap-is-live").is_dir()

    gen = build_generator("small")
    randomize_bn(gen)
    ckpt_path = tmp_path / "best.ckpt"
    lama_like_checkpoint(ckpt_path, gen, marker)
    with pytest.raises(pickle.UnpicklingError):  # ...and weights_only refuses this file
        torch.load(ckpt_path, map_location="cpu", weights_only=True)

    ckpt = load_checkpoint_state(ckpt_path)
    assert not marker.exists()  # no code from the file ran
    assert isinstance(ckpt["hyper_parameters"], InertGlobal) and "mkdir" in ckpt["hyper_parameters"].pickled_global
    assert ckpt["hyper_parameters"].args == (str(marker),)
    assert isinstance(ckpt["hparams"], InertGlobal) and ckpt["hparams"].state == {"generator": {"kind": "ffc_resnet",
                                                                                               "ngf": 16}}
    assert ckpt["global_step"] == 1000

    state = lama_generator_state(ckpt, GENERATOR_PRESETS["small"])
    ref = gen.state_dict()
    assert list(state) == list(ref)
    for k, v in ref.items():
        assert state[k].dtype == v.dtype and torch.equal(state[k], v), k
    loaded = build_generator("small")
    loaded.load_state_dict(state, strict=True)
    x = torch.rand(1, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), gen.eval()(x))
    assert not marker.exists()


def test_checkpoint_errors_are_one_line(tmp_path):
    small = GENERATOR_PRESETS["small"]
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(InpaintlabError, match="not a readable PyTorch checkpoint"):
        load_checkpoint_state(text)
    with pytest.raises(InpaintlabError, match="does not exist"):
        load_checkpoint_state(tmp_path / "absent.ckpt")
    with pytest.raises(InpaintlabError, match="holds a list"):
        torch.save([torch.ones(1)], tmp_path / "list.ckpt")
        load_checkpoint_state(tmp_path / "list.ckpt")

    with pytest.raises(InpaintlabError, match="no LaMa generator"):
        lama_generator_state({"state_dict": {"discriminator.model0.0.weight": torch.ones(1)}}, small)
    good = {f"generator.{k}": v for k, v in build_generator("small").state_dict().items()}
    assert len(lama_generator_state(good, small)) == len(good)  # a bare state dict works too
    broken = dict(good)
    del broken["generator.model.5.conv1.ffc.convl2l.weight"]
    broken["generator.model.5.conv1.ffc.extra.weight"] = torch.ones(1)
    broken["generator.model.34.bias"] = torch.ones(5)
    with pytest.raises(InpaintlabError) as err:
        lama_generator_state({"state_dict": broken}, small)
    msg = str(err.value)
    assert "\n" not in msg and "model.5.conv1.ffc.convl2l.weight" in msg and "ffc.extra.weight" in msg
    with pytest.raises(InpaintlabError, match="missing 1 keys"):
        lama_generator_state({"state_dict": broken}, small)
    with pytest.raises(InpaintlabError, match="missing"):  # small weights, big-lama config
        lama_generator_state({"state_dict": good})


BIG_LAMA_CONFIG = textwrap.dedent("""\
    run_title: ''
    training_model:
      kind: default
      concat_mask: true
    losses:
      resnet_pl:
        weight: 30
        weights_path: ${env:TORCH_HOME}
    generator:
      kind: ffc_resnet
      input_nc: 4
      output_nc: 3
      ngf: 64
      n_downsampling: 3
      n_blocks: 18
      add_out_act: sigmoid
      init_conv_kwargs:
        ratio_gin: 0
        ratio_gout: 0
        enable_lfu: false
      downsample_conv_kwargs:
        ratio_gin: ${generator.init_conv_kwargs.ratio_gout}
        ratio_gout: ${generator.downsample_conv_kwargs.ratio_gin}
        enable_lfu: false
      resnet_conv_kwargs:
        ratio_gin: 0.75
        ratio_gout: ${generator.resnet_conv_kwargs.ratio_gin}
        enable_lfu: false
    discriminator:
      kind: pix2pixhd_nlayer
      input_nc: 3
      ndf: 64
      n_layers: 4
    """)


def test_read_lama_config(tmp_path):
    folder = tmp_path / "big-lama"
    (folder / "models").mkdir(parents=True)
    assert read_lama_config(folder) == GENERATOR_PRESETS["big-lama"]  # no config.yaml: the big-lama preset
    (folder / "config.yaml").write_text(BIG_LAMA_CONFIG)
    (folder / "models" / "best.ckpt").write_bytes(b"")
    assert read_lama_config(folder) == GENERATOR_PRESETS["big-lama"]
    assert read_lama_config(folder / "models" / "best.ckpt") == GENERATOR_PRESETS["big-lama"]
    (folder / "config.yaml").write_text(BIG_LAMA_CONFIG.replace("ngf: 64", "ngf: 16").replace("n_blocks: 18",
                                                                                              "n_blocks: 4"))
    assert read_lama_config(folder) == GENERATOR_PRESETS["small"]
    (folder / "config.yaml").write_text(BIG_LAMA_CONFIG.replace("kind: ffc_resnet", "kind: pix2pixhd_global"))
    with pytest.raises(InpaintlabError, match="not LaMa's FFC generator"):
        read_lama_config(folder)
    (folder / "config.yaml").write_text(BIG_LAMA_CONFIG.replace("n_blocks: 18", "n_blocks: 18\n  out_ffc: true"))
    with pytest.raises(InpaintlabError, match="out_ffc"):
        read_lama_config(folder)


def test_load_lama_generator_from_a_model_folder(tmp_path):
    folder = tmp_path / "my-lama"
    (folder / "models").mkdir(parents=True)
    (folder / "config.yaml").write_text(BIG_LAMA_CONFIG.replace("ngf: 64", "ngf: 16").replace("n_blocks: 18",
                                                                                              "n_blocks: 4"))
    gen = build_generator("small")
    randomize_bn(gen)
    lama_like_checkpoint(folder / "models" / "best.ckpt", gen, tmp_path / "code-ran")
    loaded = load_lama_generator(folder)
    assert not loaded.training and not (tmp_path / "code-ran").exists()
    x = torch.rand(1, 4, 24, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), gen.eval()(x))
