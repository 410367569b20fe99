"""LaMa's losses against NumPy / closed forms, its ADE20k encoder's checkpoint layout, and the LPIPS-VGG fallback."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inpaintlab import weights
from inpaintlab.errors import MissingWeightsError
from inpaintlab.methods.lama import losses as L
from inpaintlab.methods.lama.ade20k import ENCODER_FILE, ResNet50Dilated, lama_layout_path
from inpaintlab.metrics.lpips import load_lpips

from ..conftest import SHALLOW_RTOL, assert_close
from ..metrics.test_lpips import FILES, random_backbone, random_heads, save_torch


def sp(x: float) -> float:
    """softplus, by hand."""
    return math.log1p(math.exp(x))


# ---------------------------------------------------------------------------------------------
# pixel, adversarial and feature-matching terms


def test_masked_l1_matches_numpy():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(2, 3, 5, 6, generator=g), torch.rand(2, 3, 5, 6, generator=g)
    hole = (torch.rand(2, 1, 5, 6, generator=g) > 0.5).float()
    p, t, h = pred.double().numpy(), target.double().numpy(), hole.double().numpy()
    for wk, wm in [(10, 0), (1, 3)]:
        want = np.mean((h * wm + (1 - h) * wk) * np.abs(p - t))  # (N,1,H,W) weights broadcast over 3 channels
        assert_close(L.masked_l1(pred, target, hole, wk, wm), want, SHALLOW_RTOL, f"masked_l1 {wk},{wm}")


def test_r1_penalty_closed_form_and_trains_d():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 3, 4, 5, generator=g).requires_grad_(True)
    w = torch.randn(3, 4, 5, generator=g).requires_grad_(True)
    logits = (w * x).sum(dim=(1, 2, 3))  # D(x) = <w, x>: grad_x = w for every sample
    pen = L.r1_penalty(logits, x)
    assert_close(pen, (w.detach() ** 2).sum(), SHALLOW_RTOL, "R1 of a linear D")
    pen.backward()  # create_graph: the penalty's gradient reaches D's parameters, d||w||^2/dw = 2w
    assert_close(w.grad, 2 * w.detach(), SHALLOW_RTOL, "R1 gradient w.r.t. D's weights")

    # a logits map and a non-linear D: D(x) = w * x^2 per pixel, grad = 2 w x; mean over the batch of the sum
    x2 = torch.rand(2, 3, 4, 5, generator=g).requires_grad_(True)
    w2 = torch.randn(3, 4, 5, generator=g)
    logits2 = (w2 * x2 ** 2).sum(1, keepdim=True)
    want = ((2 * w2 * x2.detach()) ** 2).sum(dim=(1, 2, 3)).mean()
    assert_close(L.r1_penalty(logits2, x2), want, SHALLOW_RTOL, "R1, batch mean of the squared norms")
    gamma = 0.001
    real = L.discriminator_real_loss(logits2, x2, gamma)
    assert_close(real, F.softplus(-logits2).mean() + gamma * want, SHALLOW_RTOL, "real loss")

    with torch.no_grad():  # validation: LaMa's make_r1_gp gives 0
        assert L.r1_penalty((w2 * x2 ** 2).sum(), x2).item() == 0
    with pytest.raises(ValueError, match="requires_grad"):
        L.r1_penalty(logits2, x2.detach())


@pytest.fixture
def small():
    """Logits 2x2 for a 4x4 hole: nearest takes hole[2i, 2j]; hole[2, 1] = 1 is seen only by max pooling."""
    hole = torch.zeros(1, 1, 4, 4)
    hole[0, 0, 0, 0] = hole[0, 0, 2, 1] = hole[0, 0, 2, 2] = 1
    logits = torch.tensor([[[[0.5, -1.0], [2.0, 0.0]]]])
    return logits, hole


def test_discriminator_fake_loss_by_hand(small):
    logits, hole = small
    l = [0.5, -1.0, 2.0, 0.0]
    m_nearest, m_max = [1, 0, 0, 1], [1, 0, 1, 1]
    # mask_as_fake_target: hole positions fake (softplus(l)), known positions real (softplus(-l))
    want = np.mean([sp(v) if m else sp(-v) for v, m in zip(l, m_nearest)])
    assert L.discriminator_fake_loss(logits, hole).item() == pytest.approx(want, rel=1e-6)
    want_max = np.mean([sp(v) if m else sp(-v) for v, m in zip(l, m_max)])
    maxpooled = L.discriminator_fake_loss(logits, hole, mask_scale_mode="maxpool")
    assert maxpooled.item() == pytest.approx(want_max, rel=1e-6)
    # plain non-saturating: every fake logit is fake; only the hole counts with use_unmasked=False
    plain = L.discriminator_fake_loss(logits, hole, mask_as_fake_target=False)
    assert plain.item() == pytest.approx(np.mean([sp(v) for v in l]), rel=1e-6)
    hole_only = L.discriminator_fake_loss(logits, hole, mask_as_fake_target=False, use_unmasked=False)
    assert hole_only.item() == pytest.approx(np.mean([m * sp(v) for v, m in zip(l, m_nearest)]), rel=1e-6)
    with pytest.raises(ValueError):
        L.discriminator_fake_loss(logits, hole, use_unmasked=False)


def test_discriminator_total_equals_lama_formula(small):
    fake, hole = small
    real_img = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
    w = torch.tensor([0.3, -0.2, 0.5]).view(1, 3, 1, 1)
    real = F.avg_pool2d((w * real_img).sum(1, keepdim=True), 2)  # a 2x2 logits map, linear in the image
    total = L.discriminator_real_loss(real, real_img, 0.001) + L.discriminator_fake_loss(fake, hole)
    # LaMa: (softplus(-real) + gp + m*softplus(fake) + (1-m)*softplus(-fake)).mean(); grad of sum(real) = w/4 per pixel
    gp = 0.001 * (16 * (w / 4) ** 2).sum()
    m = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    lama = (F.softplus(-real) + gp + m * F.softplus(fake) + (1 - m) * F.softplus(-fake)).mean()
    assert_close(total, lama, SHALLOW_RTOL, "D loss")


def test_generator_adversarial_loss_by_hand(small):
    logits, hole = small
    l, m = [0.5, -1.0, 2.0, 0.0], [1, 0, 0, 1]
    # LaMa's configs: the hole plays no part, 10 * mean(softplus(-D(fake)))
    want = 10 * np.mean([sp(-v) for v in l])
    assert L.generator_adversarial_loss(logits, hole).item() == pytest.approx(want, rel=1e-6)
    assert L.generator_adversarial_loss(logits).item() == pytest.approx(want, rel=1e-6)
    only_hole = L.generator_adversarial_loss(logits, hole, use_unmasked=False, weight=1)
    assert only_hole.item() == pytest.approx(np.mean([k * sp(-v) for v, k in zip(l, m)]), rel=1e-6)
    extra = L.generator_adversarial_loss(logits, hole, extra_mask_weight=2, weight=1)
    assert extra.item() == pytest.approx(np.mean([(1 + 2 * k) * sp(-v) for v, k in zip(l, m)]), rel=1e-6)


def test_feature_matching_matches_numpy():
    g = torch.Generator().manual_seed(3)
    fake = [torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 6, 4, 4, generator=g)]
    real = [torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 6, 4, 4, generator=g)]
    f = [t.double().numpy() for t in fake]
    r = [t.double().numpy() for t in real]
    want = np.mean([np.mean((a - b) ** 2) for a, b in zip(f, r)])
    assert_close(L.feature_matching_loss(fake, real), want, SHALLOW_RTOL, "FM")
    hole = (torch.rand(2, 1, 8, 8, generator=g) > 0.5).float()
    h = hole.double().numpy()
    h4 = h.reshape(2, 1, 4, 2, 4, 2).mean(axis=(3, 5))  # bilinear, align_corners=False, exactly /2: 2x2 means
    want = np.mean([np.mean((f[0] - r[0]) ** 2 * (1 - h)), np.mean((f[1] - r[1]) ** 2 * (1 - h4))])
    assert_close(L.feature_matching_loss(fake, real, hole), want, SHALLOW_RTOL, "FM with a hole")


# ---------------------------------------------------------------------------------------------
# the ADE20k ResNet50-dilated encoder: layout written from LaMa's models/ade20k/{resnet,base}.py


def encoder_table() -> dict[str, tuple[int, ...]]:
    """Every state-dict key and shape of LaMa's ResnetDilated(resnet50) (deep stem, bottlenecks [3, 4, 6, 3])."""
    t: dict[str, tuple[int, ...]] = {}

    def bn(name, c):
        t.update({f"{name}.weight": (c,), f"{name}.bias": (c,), f"{name}.running_mean": (c,),
                  f"{name}.running_var": (c,), f"{name}.num_batches_tracked": ()})

    t["conv1.weight"] = (64, 3, 3, 3)
    bn("bn1", 64)
    t["conv2.weight"] = (64, 64, 3, 3)
    bn("bn2", 64)
    t["conv3.weight"] = (128, 64, 3, 3)
    bn("bn3", 128)
    inplanes = 128
    for li, (planes, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)], start=1):
        for b in range(blocks):
            p = f"layer{li}.{b}"
            t[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1)
            bn(f"{p}.bn1", planes)
            t[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            bn(f"{p}.bn2", planes)
            t[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
            bn(f"{p}.bn3", planes * 4)
            if b == 0:
                t[f"{p}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                bn(f"{p}.downsample.1", planes * 4)
            inplanes = planes * 4
    return t


def test_encoder_layout_strides_and_dilations():
    enc = ResNet50Dilated()
    got = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    assert got == encoder_table()
    # _nostride_dilate(dilate_scale=8): layer3 first 3x3 stride 2 -> 1 (dilation 1), others dilation 2;
    # layer4 first 3x3 dilation 2, others 4; downsample 1x1s lose their stride; layer2 keeps stride 2
    convs = dict(enc.named_modules())
    want = {"layer2.0.conv2": (2, 1), "layer2.0.downsample.0": (2, 1), "layer2.1.conv2": (1, 1),
            "layer3.0.conv2": (1, 1), "layer3.0.downsample.0": (1, 1), "layer3.5.conv2": (1, 2),
            "layer4.0.conv2": (1, 2), "layer4.0.downsample.0": (1, 1), "layer4.2.conv2": (1, 4)}
    for name, (stride, dil) in want.items():
        c = convs[name]
        assert (c.stride, c.dilation) == ((stride, stride), (dil, dil)), name
        if c.kernel_size == (3, 3):
            assert c.padding == (dil, dil), name
    with torch.no_grad():
        feats = enc.eval()(torch.rand(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(256, 16, 16), (512, 8, 8), (1024, 8, 8), (2048, 8, 8)]


@pytest.fixture(scope="module")
def encoder_state():
    """Random encoder weights shaped as the official file: no num_batches_tracked, sync-BN extras."""
    rng = np.random.default_rng(5)
    state = {}
    for k, shape in encoder_table().items():
        if k.endswith("num_batches_tracked"):
            continue
        if k.endswith("running_var"):
            v = rng.uniform(0.5, 1.5, shape)
        elif len(shape) == 4:
            v = rng.normal(0, math.sqrt(2 / (shape[0] * shape[2] * shape[3])), shape)
        else:
            v = rng.normal(0, 0.1, shape) + (1 if k.endswith(".weight") else 0)
        state[k] = torch.from_numpy(v.astype(np.float32))
        if k.endswith("running_mean"):
            state[k.replace("running_mean", "_tmp_running_mean")] = torch.zeros(shape)
    return state


def test_resnet_pl_loads_official_name_and_computes(encoder_state, monkeypatch, tmp_path, one_thread):
    ours = tmp_path / "weights"
    (ours / ENCODER_FILE).parent.mkdir(parents=True)
    torch.save(encoder_state, ours / ENCODER_FILE)
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(ours))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home-empty"))
    assert weights.find(ENCODER_FILE)[0] == ours / ENCODER_FILE
    logs = []
    term, name = L.perceptual_loss_for("cpu", log=logs.append)
    assert name == "resnet_pl" and isinstance(term, L.ResNetPL) and logs == []
    loaded = term.encoder.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in encoder_state.items() if not k.startswith("_") and "_tmp" not in k)
    term.train()  # a Lightning .train() must not switch the frozen BatchNorms to batch statistics
    assert not term.encoder.training and not any(p.requires_grad for p in term.parameters())

    g = torch.Generator().manual_seed(6)
    target = torch.rand(2, 3, 48, 48, generator=g)
    pred = (target + 0.1 * torch.randn(2, 3, 48, 48, generator=g)).clamp(0, 1).requires_grad_(True)
    value = term(pred, target)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)  # ImageNet statistics, as LaMa's perceptual.py
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        pf, tf = term.encoder((pred - mean) / std), term.encoder((target - mean) / std)
        want = 30 * sum(((a - b) ** 2).mean() for a, b in zip(pf, tf))
    assert_close(value, want, 1e-5, "ResNetPL")
    value.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    assert term(target, target).item() == 0

    # LaMa's own location, $TORCH_HOME/ade20k/<name>, is found too
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "lama"))
    lama_layout_path().parent.mkdir(parents=True)
    lama_layout_path().symlink_to(ours / ENCODER_FILE)
    assert L.perceptual_loss_for(log=logs.append)[1] == "resnet_pl" and logs == []


def test_encoder_file_checked(encoder_state, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home-empty"))
    broken = dict(encoder_state)
    del broken["layer4.2.conv3.weight"]
    broken["layer1.0.conv1.weight"] = torch.zeros(64, 128, 3, 3)
    torch.save(broken, tmp_path / "bad.pth")
    with pytest.raises(MissingWeightsError, match=r"missing 1 keys .*layer4\.2\.conv3.*1 shape mismatches"):
        L.perceptual_loss_for(log=print, path=tmp_path / "bad.pth")
    with pytest.raises(MissingWeightsError, match="does not exist"):  # an explicit path never falls back
        L.perceptual_loss_for(log=print, path=tmp_path / "nope.pth")


# ---------------------------------------------------------------------------------------------
# the fallback


def test_fallback_is_lpips_vgg_logged_once_and_differentiable(monkeypatch, tmp_path, one_thread):
    rng = np.random.default_rng(7)
    save_torch(random_backbone("vgg", rng), tmp_path / FILES["vgg"])
    save_torch(random_heads("vgg", rng), tmp_path / "vgg.pth")
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home-empty"))

    def offline(name, *a, **k):
        raise MissingWeightsError(f"weight file {name} could not be downloaded (offline test)")

    monkeypatch.setattr(weights, "download_file", offline)
    logs = []
    term, name = L.perceptual_loss_for("cpu", log=logs.append)
    assert name == "lpips_vgg" and isinstance(term, L.LPIPSPerceptual)
    assert len(logs) == 1 and ENCODER_FILE in logs[0] and "LPIPS-VGG instead" in logs[0] and "\n" not in logs[0]

    g = torch.Generator().manual_seed(8)
    target = torch.rand(2, 3, 32, 32, generator=g)
    pred = (target + 0.1 * torch.randn(2, 3, 32, 32, generator=g)).clamp(0, 1).requires_grad_(True)
    value = term(pred, target)
    term(pred, target)
    assert len(logs) == 1  # said once, at construction
    assert_close(value, 30 * load_lpips("vgg", device="cpu")(pred, target).mean(), SHALLOW_RTOL, "LPIPS-VGG x30")
    value.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0

    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(tmp_path / "nothing"))  # no LPIPS weights either: an error
    with pytest.raises(MissingWeightsError):
        L.perceptual_loss_for("cpu", log=logs.append)
