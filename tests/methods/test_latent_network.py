"""Latent inpainting's network: the split of LaMa's generator, mask control, the latent loss, the visualisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inpaintlab.methods.lama.ffc import build_generator
from inpaintlab.methods.latent_inpainting.method import init_from_autoencoder
from inpaintlab.methods.latent_inpainting.network import (LatentInpaintingNet, LatentNetConfig, inject,
                                                          join_lama_state, latent_l1, split_lama_state)
from inpaintlab.methods.latent_inpainting.visualize import latent_panels

from ..conftest import DEEP_RTOL, assert_close


def randomise_batchnorm(net: torch.nn.Module, seed: int) -> None:
    """Non-trivial running statistics and affine parameters, so that copies and no-ops are really tested."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
            m.weight.data.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
            m.bias.data.copy_(0.1 * torch.randn(m.bias.shape, generator=g))


def batch(n=2, h=32, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, h, w, generator=g)
    hole = torch.zeros(n, 1, h, w)
    hole[:, :, h // 4: h // 2, w // 3: 2 * w // 3] = 1
    return images, hole


def test_the_split_is_lamas_generator_module_for_module():
    cfg = LatentNetConfig(ngf=4, n_blocks=2, input="alpha", reference=False)
    lama = build_generator(cfg.lama(4)).eval()
    randomise_batchnorm(lama, 1)
    net = LatentInpaintingNet(cfg).eval()
    split = split_lama_state(lama.state_dict(), cfg)
    net.load_state_dict(split, strict=True)  # LaMa's model.N keys map one to one
    assert join_lama_state(net.state_dict(), cfg).keys() == lama.state_dict().keys()
    images, hole = batch()
    assert torch.equal(net(images, hole), lama(torch.cat([images * (1 - hole), hole], 1)))
    # the code's split: encoder = model[:5], decoder = model[-13:] (concat, 3 x [upconv, BN, ReLU], pad, conv, sigmoid)
    assert len(net.encoder) == 5 and len(net.decoder) == 13 and len(net.refiner) == 2
    local, global_ = net.encode(net.encoder_input(images, hole))
    assert local.shape == (2, 8, 4, 6) and global_.shape == (2, 24, 4, 6)  # 8 ngf at H/8, 3/4 global


@pytest.mark.parametrize("ngf", [4, 8, 16])
def test_mask_encoder_features_match_the_encoder_at_every_injection_point(ngf):
    net = LatentInpaintingNet(LatentNetConfig(ngf=ngf, n_blocks=1, control=True)).eval()
    images, hole = batch(h=40, w=24)
    controls = net.mask_encoder(hole)
    pad, stem, *downs = net.encoder
    feature = stem(pad(images * (1 - hole)))
    shapes = [torch.cat([t for t in feature if torch.is_tensor(t)], 1).shape]
    for down in downs:
        feature = down(feature)
        shapes.append(torch.cat([t for t in feature if torch.is_tensor(t)], 1).shape)
    assert [c.shape for c in controls] == shapes
    assert [c.shape[1] for c in controls] == [ngf, 2 * ngf, 4 * ngf, 8 * ngf]
    # the last injection: the first C_local channels go to the local branch, the rest to the global one
    c_local = 8 * ngf - int(8 * ngf * 0.75)
    assert feature[0].shape[1] == c_local
    ctrl = torch.arange(8 * ngf, dtype=torch.float32).view(1, -1, 1, 1).expand_as(torch.cat(feature, 1))
    new_l, new_g = inject((torch.zeros_like(feature[0]), torch.zeros_like(feature[1])), ctrl)
    assert torch.equal(new_l, ctrl[:, :c_local]) and torch.equal(new_g, ctrl[:, c_local:])


def control_pair(seed=3):
    """A mask-controlled network and the same weights without the control branch."""
    torch.manual_seed(seed)
    with_control = LatentInpaintingNet(LatentNetConfig(ngf=4, n_blocks=1, control=True, reference=False))
    randomise_batchnorm(with_control, seed)
    plain = LatentInpaintingNet(LatentNetConfig(ngf=4, n_blocks=1, reference=False))
    plain.load_state_dict({k: v for k, v in with_control.state_dict().items()
                           if k.split(".")[0] in ("encoder", "refiner", "decoder")}, strict=True)
    return with_control, plain


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_the_control_branch_is_an_exact_no_op_at_initialisation(mode):
    with_control, plain = control_pair()
    getattr(with_control, mode)(), getattr(plain, mode)()
    images, hole = batch()
    lat_c = with_control.encode(with_control.encoder_input(images, hole), hole)
    lat_p = plain.encode(plain.encoder_input(images, hole))
    assert all(torch.equal(a, b) for a, b in zip(lat_c, lat_p))
    assert torch.equal(with_control(images, hole), plain(images, hole))


def test_zero_convs_learn_first_and_the_mask_encoder_waits_one_step():
    """ControlNet's property: with zero convs at 0, only they get a gradient; Adam leaves the mask encoder alone."""
    net, _ = control_pair()
    images, hole = batch()
    net.train()
    net(images, hole).mean().backward()
    assert all(z.weight.grad is not None and z.weight.grad.abs().sum() > 0 for z in net.zero_convs)
    assert all(p.grad is not None and not p.grad.any() for p in net.mask_encoder.parameters())
    before = {k: v.clone() for k, v in net.mask_encoder.named_parameters()}
    torch.optim.Adam(net.parameters(), lr=1e-2).step()
    assert all(torch.equal(before[k], v) for k, v in net.mask_encoder.named_parameters())
    assert all(z.weight.abs().sum() > 0 for z in net.zero_convs)


def test_latent_l1_matches_numpy_on_a_hand_built_pair():
    rng = np.random.default_rng(0)
    a_l, a_g, b_l, b_g = (rng.normal(size=s).astype(np.float32) for s in [(2, 2, 3, 3), (2, 6, 3, 3)] * 2)
    expected = (np.abs(a_l - b_l).sum() + np.abs(a_g - b_g).sum()) / (a_l.size + a_g.size)
    got = latent_l1((torch.from_numpy(a_l), torch.from_numpy(a_g)), (torch.from_numpy(b_l), torch.from_numpy(b_g)))
    assert_close(got, expected, 1e-6, "latent L1")


def autoencoder_state(ngf=4, seed=5):
    torch.manual_seed(seed)
    ae = LatentInpaintingNet(LatentNetConfig(ngf=ngf, n_blocks=0, reference=False))
    randomise_batchnorm(ae, seed)
    return ae.eval(), ae.state_dict()


def test_a_copied_four_channel_stem_starts_as_the_autoencoder_on_the_masked_image():
    ae, state = autoencoder_state()
    net = LatentInpaintingNet(LatentNetConfig(ngf=4, n_blocks=1, input="alpha"))
    init_from_autoencoder(net, state, "copy")
    net.eval()
    images, hole = batch()
    got = net.encode(net.encoder_input(images, hole))
    want = ae.encode(images * (1 - hole))
    for a, b in zip(got, want):
        assert_close(a, b, DEEP_RTOL, "latent of the 4-channel stem")
    assert torch.equal(net.encoder[1].ffc.convl2l.weight[:, 3:], torch.zeros(4, 1, 7, 7))
    # the reference encoder and the decoder are the autoencoder's, bit for bit
    assert all(torch.equal(a, b) for a, b in zip(net.reference_latent(images), ae.encode(images)))
    assert all(torch.equal(v, state[f"decoder.{k}"]) for k, v in net.decoder.state_dict().items())
    random_stem = LatentInpaintingNet(LatentNetConfig(ngf=4, n_blocks=1, input="alpha"))
    init_from_autoencoder(random_stem, state, "random")
    assert not torch.equal(random_stem.encoder[1].ffc.convl2l.weight[:, :3], state["encoder.1.ffc.convl2l.weight"])


def test_the_codes_mask_conv_bypasses_the_stems_norm_and_activation():
    net = LatentInpaintingNet(LatentNetConfig(ngf=4, n_blocks=1, input="alpha", stem="mask_conv")).eval()
    images, hole = batch()
    x = net.encoder_input(images, hole)
    want = net.encoder[2:](net.mask_conv(net.encoder[0](x)))  # the code: encoder[2:](mask_conv(pad(x)))
    assert all(torch.equal(a, b) for a, b in zip(net.encode(x, hole), want))
    with pytest.raises(ValueError, match="4-channel"):
        LatentNetConfig(stem="mask_conv")


def test_the_visualisation_decodes_latent_differences():
    ae, _ = autoencoder_state()
    images, hole = batch()
    panels = latent_panels(ae, images, hole)
    gt, masked = ae.encode(images), ae.encode(images * (1 - hole))
    assert torch.equal(panels["D[E(gt) - E(masked)]"], ae.decode((gt[0] - masked[0], gt[1] - masked[1])))
    d0 = panels["D(0)"]
    assert (d0 - 0.5).abs().max() > 0  # the decoder's bias image is not black (nor exactly grey)
    # nothing masked: the difference is the zero latent, decoded to D(0)
    empty = latent_panels(ae, images, torch.zeros_like(hole))
    assert torch.equal(empty["D[E(gt) - E(masked)]"], empty["D(0)"])
    assert set(panels) == {"image", "masked", "D[E(gt) - E(masked)]", "D(0)"}  # an autoencoder has no refiner
