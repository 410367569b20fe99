"""ASUKA's colour jitter: each op against Pillow, identities, parameter ranges, generator use, batch independence."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance

from inpaintlab.methods.asuka.augment import (ColorJitter, JitterParams, adjust_brightness, adjust_contrast,
                                              adjust_hue, adjust_saturation, color_jitter, hsv_to_rgb, rgb_to_hsv)

TOL = 2  # on the 8-bit scale


def photo_u8(seed: int, h: int = 24, w: int = 32) -> np.ndarray:
    """Random uint8 RGB pixels plus a grey band and saturated primaries (H = S = 0 and the hue sectors)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    a[0, :, :] = rng.integers(0, 256, (w, 1), dtype=np.uint8)  # grey pixels
    a[1, :6] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255], [255, 0, 255]]
    return a


def to_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(2, 0, 1).float() / 255


def to_u8(t: torch.Tensor) -> np.ndarray:
    return np.round(t.permute(1, 2, 0).double().numpy() * 255).astype(np.int64)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("factor", [0.0, 0.5, 0.85, 1.0, 1.15, 1.7])
@pytest.mark.parametrize("op, enhancer", [(adjust_brightness, ImageEnhance.Brightness),
                                          (adjust_contrast, ImageEnhance.Contrast),
                                          (adjust_saturation, ImageEnhance.Color)])
def test_blend_ops_match_pillow(op, enhancer, factor, seed):
    # Pillow: Brightness blends with black, Contrast with a flat image of round(mean of the "L" image)
    # (L = 0.299 R + 0.587 G + 0.114 B), Color with the "L" image; uint8 results, clipped
    a = photo_u8(seed)
    want = np.asarray(enhancer(Image.fromarray(a)).enhance(factor)).astype(np.int64)
    got = op(to_tensor(a), factor)
    assert got.min() >= 0 and got.max() <= 1
    assert np.abs(to_u8(got) - want).max() <= TOL


def test_rgb_to_hsv_matches_pillow():
    # Pillow's HSV (Convert.c rgb2hsv) truncates H * 255 and S * 255 to uint8; V = max(R, G, B)
    a = photo_u8(3)
    want = np.asarray(Image.fromarray(a).convert("HSV")).astype(np.float64)
    got = rgb_to_hsv(to_tensor(a)).permute(1, 2, 0).double().numpy() * 255
    dh = np.abs(got[..., 0] - want[..., 0])
    dh = np.minimum(dh, 255 - dh)  # hue is circular
    assert dh.max() <= TOL
    assert np.abs(got[..., 1:] - want[..., 1:]).max() <= TOL


def test_hsv_to_rgb_matches_pillow():
    rng = np.random.default_rng(4)
    hsv = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    hsv[0, :, 1] = 0  # grey pixels
    want = np.asarray(Image.fromarray(hsv, "HSV").convert("RGB")).astype(np.int64)
    got = hsv_to_rgb(to_tensor(hsv))
    assert np.abs(to_u8(got) - want).max() <= TOL


@pytest.mark.parametrize("k", [-8, -3, 3, 8, 100])
def test_hue_shift_matches_pillow_hsv(k):
    # Pillow's route: RGB -> HSV (uint8), H + k (a rotation: mod 255, the H scale), HSV -> RGB. Its
    # uint8 H and S lose up to 1/255 each, and an error of 1/255 in H moves RGB by up to 6/255, so
    # both sides start from the same HSV values: Pillow's uint8 HSV of a photo, as an image (ours
    # to floats, exact; Pillow's as is). torchvision's Pillow path wraps H mod 256 instead (a
    # 1/255 hue glitch on wrapping pixels), which is not the rotation ColorJitter means.
    hsv = np.asarray(Image.fromarray(photo_u8(5)).convert("HSV")).copy()
    start = hsv_to_rgb(to_tensor(hsv))  # the image whose HSV is exactly hsv / 255
    assert torch.allclose(rgb_to_hsv(start)[1:], to_tensor(hsv)[1:], atol=1e-5)
    shifted = hsv.copy()
    shifted[..., 0] = (hsv[..., 0].astype(np.int64) + k) % 255
    want = np.asarray(Image.fromarray(shifted, "HSV").convert("RGB")).astype(np.int64)
    got = adjust_hue(start, k / 255)
    assert np.abs(to_u8(got) - want).max() <= TOL


def test_hue_rotation_by_hand():
    prim = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).t()[:, :, None]  # red, green, blue
    assert torch.allclose(adjust_hue(prim, 1 / 3), prim[:, [1, 2, 0]], atol=1e-6)  # red -> green -> blue -> red
    cyan = torch.tensor([0.0, 1.0, 1.0])[:, None, None]
    assert torch.allclose(adjust_hue(prim[:, :1], 0.5), cyan, atol=1e-6)
    # a half-saturated orange: H = 1/12, S = 0.5, V = 0.8 -> (0.8, 0.6, 0.4); + 1/3 -> H = 5/12 -> (0.4, 0.8, 0.6)
    orange = torch.tensor([0.8, 0.6, 0.4])[:, None, None]
    assert torch.allclose(adjust_hue(orange, 1 / 3), torch.tensor([0.4, 0.8, 0.6])[:, None, None], atol=1e-6)


def test_identity_at_neutral_factors():
    x = torch.rand(2, 3, 16, 20, generator=torch.Generator().manual_seed(0))
    for op in (adjust_brightness, adjust_contrast, adjust_saturation):
        assert torch.equal(op(x, 1.0), x)
    assert torch.allclose(adjust_hue(x, 0.0), x, atol=1e-6)
    params = JitterParams(order=(3, 1, 0, 2), brightness=1.0, contrast=1.0, saturation=1.0, hue=0.0)
    assert torch.allclose(ColorJitter.apply(x, params), x, atol=1e-6)
    off = ColorJitter(0, 0, 0, 0)  # every op off: nothing drawn but the order, the image unchanged
    assert torch.equal(off(x, [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)]), x)


def test_contrast_uses_one_mean_per_image():
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    x[1] *= 0.3
    together = adjust_contrast(x, 0.5)
    alone = torch.cat([adjust_contrast(x[i:i + 1], 0.5) for i in range(2)])
    assert torch.equal(together, alone)


def test_factors_stay_in_their_ranges_and_every_order_occurs():
    jitter = ColorJitter()
    g = torch.Generator().manual_seed(0)
    draws = [jitter.sample(g) for _ in range(3000)]
    ranges = {"brightness": (0.85, 1.15), "contrast": (0.8, 1.2), "saturation": (0.9, 1.1), "hue": (-0.03, 0.03)}
    for name, (lo, hi) in ranges.items():
        v = np.array([getattr(d, name) for d in draws])
        assert v.min() >= lo and v.max() <= hi
        assert v.min() < lo + 0.01 * (hi - lo) and v.max() > hi - 0.01 * (hi - lo)  # the whole range is used
        assert abs(v.mean() - (lo + hi) / 2) < 0.03 * (hi - lo)
    orders = {d.order for d in draws}
    assert orders == set(itertools.permutations(range(4)))
    assert ColorJitter(brightness=2.0).ranges["brightness"] == (0.0, 3.0)  # clipped at 0, as torchvision


def test_draws_follow_torchvision_get_params_from_the_generator():
    # torchvision's ColorJitter.get_params: randperm(4), then one uniform_ per enabled op in the order
    # brightness, contrast, saturation, hue; disabled ops draw nothing
    g = torch.Generator().manual_seed(123)
    p = ColorJitter().sample(g)
    h = torch.Generator().manual_seed(123)
    order = tuple(torch.randperm(4, generator=h).tolist())
    want = [float(torch.empty(1).uniform_(lo, hi, generator=h))
            for lo, hi in ((0.85, 1.15), (0.8, 1.2), (0.9, 1.1), (-0.03, 0.03))]
    assert p.order == order and [p.brightness, p.contrast, p.saturation, p.hue] == want
    q = ColorJitter(brightness=0.0).sample(torch.Generator().manual_seed(123))
    h = torch.Generator().manual_seed(123)
    torch.randperm(4, generator=h)
    first = float(torch.empty(1).uniform_(0.8, 1.2, generator=h))  # the contrast takes brightness's draw
    assert q.brightness is None and q.order == order and q.contrast == first


def test_order_and_factors_come_from_the_generator():
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    a = color_jitter(x, torch.Generator().manual_seed(7))
    b = color_jitter(x, torch.Generator().manual_seed(7))
    c = color_jitter(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    # the result is exactly the sample's draw applied in its order
    gens = [torch.Generator().manual_seed(s) for s in (10, 11, 12)]
    got = ColorJitter()(x, gens)
    jitter = ColorJitter()
    for i, s in enumerate((10, 11, 12)):
        p = jitter.sample(torch.Generator().manual_seed(s))
        y = x[i]
        for j in p.order:
            op = {0: adjust_brightness, 1: adjust_contrast, 2: adjust_saturation, 3: adjust_hue}[j]
            y = op(y, [p.brightness, p.contrast, p.saturation, p.hue][j])
        assert torch.equal(got[i], y)
    # the order matters: the same factors in another order give another image
    p = jitter.sample(torch.Generator().manual_seed(10))
    other = JitterParams(order=tuple(reversed(p.order)), brightness=p.brightness, contrast=p.contrast,
                         saturation=p.saturation, hue=p.hue)
    assert not torch.allclose(ColorJitter.apply(x[0], p), ColorJitter.apply(x[0], other), atol=1e-6)


def test_each_sample_gets_its_own_draw_and_batch_size_does_not_matter():
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(3)).repeat(4, 1, 1, 1)
    gens = lambda: [torch.Generator().manual_seed(100 + i) for i in range(4)]  # noqa: E731
    whole = ColorJitter()(x, gens())
    assert not torch.equal(whole[0], whole[1])  # same image, different draws
    alone = torch.cat([ColorJitter()(x[i:i + 1], gens()[i:i + 1]) for i in range(4)])
    assert torch.equal(whole, alone)
    # one generator is split per sample the same way for every batch size
    four = color_jitter(x, torch.Generator().manual_seed(9))
    two = color_jitter(x[:2], torch.Generator().manual_seed(9))
    assert torch.equal(four[:2], two)
