"""LPIPS v0.1 against an independent NumPy reference, with random weights saved under the official names."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from inpaintlab.errors import BadImageError, InpaintlabError, MissingWeightsError
from inpaintlab.metrics.lpips import LPIPS, load_lpips

from ..conftest import DEEP_RTOL, SHALLOW_RTOL, assert_close

# ---------------------------------------------------------------------------------------------
# the reference: NumPy only, float64, written from the torchvision / lpips layer lists

# torchvision ``features`` index of each conv; the checkpoint format is the contract
ALEX_CONVS = [(0, 3, 64, 11, 4, 2), (3, 64, 192, 5, 1, 2), (6, 192, 384, 3, 1, 1), (8, 384, 256, 3, 1, 1),
              (10, 256, 256, 3, 1, 1)]  # (index, cin, cout, k, stride, pad)
VGG_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
SQUEEZE_FIRES = [(3, 64, 16, 64), (4, 128, 16, 64), (6, 128, 32, 128), (7, 256, 32, 128), (9, 256, 48, 192),
                 (10, 384, 48, 192), (11, 384, 64, 256), (12, 512, 64, 256)]  # (index, cin, squeeze, expand)
CHANNELS = {"alex": [64, 192, 384, 256, 256], "vgg": [64, 128, 256, 512, 512],
            "squeeze": [64, 128, 256, 384, 384, 512, 512]}
FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth", "squeeze": "squeezenet1_1-b8a52dc0.pth"}


def vgg_convs():
    out, idx, cin = [], 0, 3
    for v in VGG_CFG:
        if v == "M":
            idx += 1
        else:
            out.append((idx, cin, v, 3, 1, 1))
            cin, idx = v, idx + 2
    return out


def conv_np(x, w, b, stride=1, pad=0):
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(x, w.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]  # N C Ho Wo kh kw
    return np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2) + b[None, :, None, None]


def relu(x):
    return np.maximum(x, 0)


def maxpool_np(x, k, s, ceil=False):
    n, c, h, w = x.shape

    def size(L):
        if not ceil:
            return (L - k) // s + 1
        o = -(-(L - k) // s) + 1
        return o - 1 if (o - 1) * s >= L else o  # a window may not start past the input

    ho, wo = size(h), size(w)
    need_h, need_w = (ho - 1) * s + k, (wo - 1) * s + k
    xp = np.full((n, c, max(h, need_h), max(w, need_w)), -np.inf)
    xp[:, :, :h, :w] = x
    win = sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s][:, :, :ho, :wo]
    return win.max(axis=(4, 5))


def alex_taps(x, P):
    taps = []
    for j, (i, *_rest, s, p) in enumerate(ALEX_CONVS):
        if j in (1, 2):
            x = maxpool_np(x, 3, 2)
        x = relu(conv_np(x, P[f"features.{i}.weight"], P[f"features.{i}.bias"], s, p))
        taps.append(x)
    return taps


def vgg_taps(x, P):
    taps = []
    convs = iter(vgg_convs())
    count = 0
    for v in VGG_CFG[:-1]:
        if v == "M":
            x = maxpool_np(x, 2, 2)
            continue
        i, *_ = next(convs)
        x = relu(conv_np(x, P[f"features.{i}.weight"], P[f"features.{i}.bias"], 1, 1))
        if count in (1, 3, 6, 9, 12):
            taps.append(x)
        count += 1
    return taps


def fire_np(x, P, i):
    s = relu(conv_np(x, P[f"features.{i}.squeeze.weight"], P[f"features.{i}.squeeze.bias"]))
    e1 = relu(conv_np(s, P[f"features.{i}.expand1x1.weight"], P[f"features.{i}.expand1x1.bias"]))
    e3 = relu(conv_np(s, P[f"features.{i}.expand3x3.weight"], P[f"features.{i}.expand3x3.bias"], 1, 1))
    return np.concatenate([e1, e3], axis=1)


def squeeze_taps(x, P):
    x = relu(conv_np(x, P["features.0.weight"], P["features.0.bias"], 2, 0))
    taps = [x]
    x = maxpool_np(x, 3, 2, ceil=True)
    x = fire_np(fire_np(x, P, 3), P, 4)
    taps.append(x)
    x = maxpool_np(x, 3, 2, ceil=True)
    x = fire_np(fire_np(x, P, 6), P, 7)
    taps.append(x)
    x = maxpool_np(x, 3, 2, ceil=True)
    for i in (9, 10, 11, 12):
        x = fire_np(x, P, i)
        taps.append(x)
    return taps


TAPS = {"alex": alex_taps, "vgg": vgg_taps, "squeeze": squeeze_taps}


def lpips_np(net, x, y, P, heads):
    """Zhang et al. 2018, Eq. 1, in float64 NumPy."""
    shift = np.array([-0.030, -0.088, -0.188])[None, :, None, None]
    scale = np.array([0.458, 0.448, 0.450])[None, :, None, None]
    fx = TAPS[net]((2 * x - 1 - shift) / scale, P)
    fy = TAPS[net]((2 * y - 1 - shift) / scale, P)
    total = 0.0
    for k, (a, b) in enumerate(zip(fx, fy)):
        a = a / (np.sqrt((a**2).sum(1, keepdims=True)) + 1e-10)
        b = b / (np.sqrt((b**2).sum(1, keepdims=True)) + 1e-10)
        w = heads[f"lin{k}.model.1.weight"].reshape(-1)
        total = total + np.einsum("nchw,c->nhw", (a - b) ** 2, w).mean(axis=(1, 2))
    return total


# ---------------------------------------------------------------------------------------------
# random weights, saved as torchvision / lpips would


def random_backbone(net, rng):
    P = {}

    def conv(prefix, cin, cout, k):
        P[prefix + ".weight"] = rng.normal(0, np.sqrt(2.0 / (cin * k * k)), (cout, cin, k, k)).astype(np.float32)
        P[prefix + ".bias"] = rng.normal(0, 0.05, cout).astype(np.float32)

    if net == "alex":
        for i, cin, cout, k, _, _ in ALEX_CONVS:
            conv(f"features.{i}", cin, cout, k)
    elif net == "vgg":
        for i, cin, cout, k, _, _ in vgg_convs():
            conv(f"features.{i}", cin, cout, k)
    else:
        conv("features.0", 3, 64, 3)
        for i, cin, sq, ex in SQUEEZE_FIRES:
            conv(f"features.{i}.squeeze", cin, sq, 1)
            conv(f"features.{i}.expand1x1", sq, ex, 1)
            conv(f"features.{i}.expand3x3", sq, ex, 3)
    return P


def random_heads(net, rng):
    return {f"lin{k}.model.1.weight": rng.uniform(0, 1, (1, c, 1, 1)).astype(np.float32) / c
            for k, c in enumerate(CHANNELS[net])}


def save_torch(d, path, extra=None):
    state = {k: torch.from_numpy(v) for k, v in d.items()}
    state.update(extra or {})
    torch.save(state, path)


@pytest.fixture(scope="module")
def weight_dir(tmp_path_factory):
    """Random backbones and heads for the three nets under the official file names."""
    d = tmp_path_factory.mktemp("weights")
    rng = np.random.default_rng(1234)
    params = {}
    for net in ("alex", "squeeze", "vgg"):
        P, H = random_backbone(net, rng), random_heads(net, rng)
        # torchvision files also hold the classifier; it must be ignored
        save_torch(P, d / FILES[net], extra={"classifier.1.weight": torch.zeros(3, 5)})
        save_torch(H, d / f"{net}.pth")
        params[net] = (P, H)
    return d, params


@pytest.fixture
def env(weight_dir, monkeypatch, tmp_path):
    d, params = weight_dir
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(d))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home-empty"))
    return params


def images(seed, n=2, h=64, w=64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, h, w, generator=g)
    y = (x + 0.15 * torch.randn(n, 3, h, w, generator=g)).clamp(0, 1)
    return x, y


@pytest.mark.parametrize("net", ["alex", "squeeze", "vgg"])
def test_matches_numpy_reference(env, net):
    model = load_lpips(net, device="cpu")
    P, H = env[net]
    x, y = images(0, h=64, w=72 if net != "vgg" else 64)
    ours = model(x, y).numpy()
    ref = lpips_np(net, x.double().numpy(), y.double().numpy(), {k: v.astype(np.float64) for k, v in P.items()},
                   {k: v.astype(np.float64) for k, v in H.items()})
    assert ours.shape == (2,)
    assert np.all(ref > 0)
    np.testing.assert_allclose(ours, ref, rtol=1e-4)


@pytest.mark.parametrize("net", ["alex", "squeeze", "vgg"])
def test_identity_symmetry_and_batching(env, net):
    model = load_lpips(net, device="cpu", download=False)
    x, y = images(1, n=3, h=48, w=40)
    with torch.no_grad():
        d = model(x, y)
        # LPIPS with these random heads is ~2e-3, not ~1: tolerances relative to it (an absolute 1e-7
        # was 5e-5 of it); batched float32 convolutions round differently per batch size and CPU
        singles = torch.cat([model(x[i : i + 1], y[i : i + 1]) for i in range(3)])
        assert_close(singles, d, DEEP_RTOL, f"{net}: single images vs a batch")
        # the feature / distance split (used to cache a reference's features) gives the same numbers
        fx, fy = model.features(x), model.features(y)
        assert_close(model.distance_from_features(fx, fy), d, DEEP_RTOL, f"{net}: from features")
        assert_close(model.distance_from_features(fy, fx), d, DEEP_RTOL, f"{net}: from features, swapped")
        assert torch.all(model.distance_from_features(fx, fx) == 0)
        # x against itself in one batch of two: the two copies' features may differ by round-off, which
        # the squared difference makes negligible (~1e-12)
        assert torch.all(model(x[:1], x[:1]).abs() <= SHALLOW_RTOL * d.max())
    assert all(d > 0)


def test_frozen_but_differentiable(env):
    model = load_lpips("alex", device="cpu")
    assert not any(p.requires_grad for p in model.parameters())
    assert not model.training
    x, y = images(2, n=1, h=40, w=40)
    x.requires_grad_(True)
    d = model(x, y).sum()
    d.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # identical inputs: zero-norm feature vectors must not turn the gradient into NaN
    z = torch.zeros(1, 3, 40, 40, requires_grad=True)
    model(z, torch.zeros(1, 3, 40, 40)).sum().backward()
    assert torch.isfinite(z.grad).all()


def test_bad_inputs(env):
    model = load_lpips("alex", device="cpu")
    x, _ = images(3, n=1)
    with pytest.raises(BadImageError, match=r"\[0, 1\]"):
        model(x * 2 - 1, x)
    with pytest.raises(BadImageError, match="at least 31x31"):
        model(x[..., :20, :20], x[..., :20, :20])
    with pytest.raises(BadImageError, match="same shape"):
        model(x, x[..., :40])
    with pytest.raises(BadImageError, match=r"\(N, 3, H, W\)"):
        model(x[:, :1], x[:, :1])
    with pytest.raises(InpaintlabError, match="choose one of"):
        LPIPS("resnet")


def test_missing_and_broken_weight_files(weight_dir, monkeypatch, tmp_path):
    empty = tmp_path / "empty"
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(empty))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    with pytest.raises(MissingWeightsError) as e:
        load_lpips("squeeze", download=False)
    msg = str(e.value)
    assert "squeezenet1_1-b8a52dc0.pth" in msg and str(empty) in msg and "\n" not in msg

    # a backbone file with a missing feature key / a wrong shape names the file
    d, params = weight_dir
    P, _ = params["alex"]
    broken = dict(P)
    del broken["features.10.bias"]
    save_torch(broken, tmp_path / "missing.pth")
    with pytest.raises(MissingWeightsError, match="missing.pth.*features.10.bias"):
        load_lpips("alex", backbone_path=tmp_path / "missing.pth", head_path=d / "alex.pth")
    broken = dict(P)
    broken["features.0.weight"] = np.zeros((64, 3, 3, 3), np.float32)
    save_torch(broken, tmp_path / "shape.pth")
    with pytest.raises(MissingWeightsError, match="shape.pth.*features.0.weight"):
        load_lpips("alex", backbone_path=tmp_path / "shape.pth", head_path=d / "alex.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(MissingWeightsError, match="junk.pth"):
        load_lpips("alex", backbone_path=tmp_path / "junk.pth", head_path=d / "alex.pth")
    # heads of the wrong net
    with pytest.raises(MissingWeightsError, match="vgg.pth"):
        load_lpips("alex", backbone_path=d / FILES["alex"], head_path=d / "vgg.pth")


def test_explicit_paths_win(weight_dir, monkeypatch, tmp_path):
    d, _ = weight_dir
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(tmp_path / "nothing-here"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    model = load_lpips("alex", device="cpu", backbone_path=d / FILES["alex"], head_path=d)  # a folder works too
    x, y = images(4, n=1)
    assert model(x, y).item() > 0
