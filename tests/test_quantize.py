"""Tests for the 8-bit grid helpers (inpaintlab.images.quantization) against an independent NumPy model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import features

from inpaintlab.images import load_image, quantize, quantize_array, save_image, to_numpy_uint8, to_uint8

OUT_OF_RANGE = [-np.inf, -5.0, -1.0, -1e-7, -0.0, 0.0, 1.0, 1 + 1e-7, 1.5, 7.0, 3e38, np.inf]


def ref_uint8(x: np.ndarray) -> np.ndarray:
    """The reference: clip to [0, 1], scale by 255 in float32, np.rint (half to even), uint8."""
    x = np.asarray(x, dtype=np.float32)
    return np.rint(np.clip(x, np.float32(0), np.float32(1)) * np.float32(255)).astype(np.uint8)


def half_levels() -> np.ndarray:
    """All k/510 (levels and half-levels) in float32, each with its two float32 neighbours."""
    k = (np.arange(511, dtype=np.float64) / 510).astype(np.float32)
    return np.concatenate([k, np.nextafter(k, np.float32(2)), np.nextafter(k, np.float32(-1))])


def test_to_uint8_matches_rint_at_and_around_half_levels():
    x = half_levels()
    got = to_uint8(torch.from_numpy(x))
    assert got.dtype == torch.uint8
    np.testing.assert_array_equal(got.numpy(), ref_uint8(x))


def test_to_uint8_matches_rint_on_random_values():
    x = np.random.default_rng(0).uniform(-0.2, 1.2, size=200_000).astype(np.float32)
    np.testing.assert_array_equal(to_uint8(torch.from_numpy(x)).numpy(), ref_uint8(x))


def test_exact_halves_round_to_even():
    found = 0
    for m in range(255):
        x = np.float32((m + 0.5) / 255)
        for _ in range(4):  # the float32 whose product with 255 is exactly m + 0.5, if any
            if x * np.float32(255) == np.float32(m + 0.5):
                break
            x = np.nextafter(x, np.float32(2) if x * np.float32(255) < m + 0.5 else np.float32(-1))
        else:
            continue
        found += 1
        want = m if m % 2 == 0 else m + 1
        assert int(to_uint8(torch.tensor([x]))[0]) == want, (m, float(x))
        assert float(quantize(torch.tensor([x]))[0]) == np.float32(want) / np.float32(255)
    assert found > 100  # most half-levels have an exact float32 representative


def test_clamps_out_of_range():
    x = np.array(OUT_OF_RANGE, dtype=np.float32)
    got = to_uint8(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(got, ref_uint8(x))
    assert got.tolist() == [0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255]
    q = quantize(torch.from_numpy(x)).numpy()
    assert q.tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    np.testing.assert_array_equal(quantize_array(x), q)


@pytest.mark.parametrize("shape", [(), (7,), (3, 4, 5), (2, 3, 8, 6), (0, 3, 2, 2)])
def test_shape_dtype_device_kept(shape):
    x = torch.rand(shape)
    u = to_uint8(x)
    assert u.shape == x.shape and u.dtype == torch.uint8 and u.device == x.device
    q = quantize(x)
    assert q.shape == x.shape and q.dtype == torch.float32
    assert quantize(x.double()).dtype == torch.float64
    a = quantize_array(x.numpy())
    assert a.shape == tuple(shape) and a.dtype == np.float32


def test_to_uint8_leaves_input_alone_and_takes_views_and_grad():
    base = torch.rand(3, 16, 16)
    view = base[:, 2:10, 3:11]  # non-contiguous, as the RIP engine's cell slices
    before = base.clone()
    np.testing.assert_array_equal(to_uint8(view).numpy(), ref_uint8(view.numpy()))
    assert torch.equal(base, before)
    g = torch.rand(3, 4, 4, requires_grad=True)
    assert not to_uint8(g).requires_grad


def test_to_uint8_refuses_integer_tensors():
    with pytest.raises(TypeError):
        to_uint8(torch.zeros(3, 2, 2, dtype=torch.uint8))


def test_quantize_is_the_uint8_grid():
    x = torch.from_numpy(np.concatenate([half_levels(), np.array(OUT_OF_RANGE, np.float32)]))
    q = quantize(x)
    assert torch.equal(q, to_uint8(x).float() / 255)
    np.testing.assert_array_equal(q.numpy(), ref_uint8(x.numpy()).astype(np.float32) / np.float32(255))
    assert torch.equal(quantize(q), q)  # idempotent


def test_quantize_array_matches_quantize():
    x = np.concatenate([half_levels(), np.random.default_rng(1).random(10_000, dtype=np.float32)])
    a = quantize_array(x)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, quantize(torch.from_numpy(x)).numpy())
    np.testing.assert_array_equal(a, ref_uint8(x).astype(np.float32) / np.float32(255))


def test_to_numpy_uint8_is_to_uint8_hwc():
    x = torch.rand(1, 3, 9, 11)
    np.testing.assert_array_equal(to_numpy_uint8(x), to_uint8(x[0]).permute(1, 2, 0).numpy())


SUFFIXES = [".png", ".bmp", ".tif"] + ([".webp"] if features.check("webp") else [])


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_save_then_load_gives_back_the_quantized_tensor(tmp_path, suffix):
    x = torch.rand(1, 3, 17, 23, generator=torch.Generator().manual_seed(2))
    x[0, :, 0, :] = torch.linspace(0, 1, 23)  # both ends and levels across the range
    x.view(-1)[:256] = torch.arange(256) / 255  # every 8-bit level
    q = quantize(x)
    path = tmp_path / f"q{suffix}"
    save_image(path, q)
    back = load_image(path, size=None)
    assert back.dtype == torch.float32 and back.shape == q.shape
    assert torch.equal(back, q)
