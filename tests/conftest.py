"""Shared fixtures: small synthetic photographs written to a temporary folder."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


def synthetic_photo(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth colour gradient with a textured disc: structure for inpainters to get wrong."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([0.2 + 0.6 * xx, 0.3 + 0.5 * yy, 0.5 + 0.3 * np.sin(6 * xx + seed)], -1)
    cy, cx, r = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w, 0.25 * min(h, w)
    disc = ((np.mgrid[0:h, 0:w][0] - cy) ** 2 + (np.mgrid[0:h, 0:w][1] - cx) ** 2) < r * r
    stripes = 0.5 + 0.5 * np.sign(np.sin(np.arange(w) * 2 * np.pi / 7))[None, :, None]
    img = np.where(disc[..., None], 0.7 * stripes + 0.3 * base, base)
    img = img + rng.normal(0, 0.02, img.shape)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


#: float32's machine epsilon (2^-23 ~ 1.2e-7): one rounding of a float32 result is at most half of it, relative
FLOAT32_EPS = float(np.finfo(np.float32).eps)
#: rtol (of the largest magnitude compared) for float32 results of a few operations (an elementwise
#: formula, one filter, a mean): a handful of roundings, 8 epsilon ~ 1e-6
SHALLOW_RTOL = 8 * FLOAT32_EPS
#: rtol for float32 results of a deep network (VAE, UNet sampling steps, Inception, a transformer): batched
#: kernels (convolutions, matmuls) sum in another order for another batch size or CPU, and dozens of layers
#: (times the sampling steps, times a guidance scale of 7.5) compound it: 80 epsilon ~ 1e-5 (measured up to
#: 3e-7 of max |value|, e.g. BLD's latents of magnitude 30-39 differing by 1.1e-5 on an AMD EPYC)
DEEP_RTOL = 80 * FLOAT32_EPS


def assert_close(actual, expected, rtol: float, what: str = "") -> None:
    """``max |actual - expected| <= rtol * max |expected|``: a float32 tolerance scaled to what is compared.

    float32 round-off is relative to the magnitude of the numbers involved, not to 1: latents of
    magnitude 39 legitimately differ by ~1e-5 between batched kernels, images in [0, 1] by ~1e-6.
    Comparing in float64 (numbers are cast first) keeps the check itself from rounding.
    """
    a, e = (t.detach().double().cpu() if torch.is_tensor(t) else torch.from_numpy(np.asarray(t, np.float64))
            for t in (actual, expected))
    assert a.shape == e.shape, f"{what}: shapes {tuple(a.shape)} and {tuple(e.shape)} differ"
    assert torch.isfinite(e).all(), f"{what}: the reference is not finite"
    scale = float(e.abs().max()) if e.numel() else 0.0
    err = float((a - e).abs().max()) if e.numel() else 0.0
    assert err <= rtol * scale, f"{what}: max |diff| {err:.3g} > {rtol:g} x max |reference| {scale:.3g}"


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    """Three small photos (one not square) in a folder."""
    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(synthetic_photo(64, 64, 1)).save(d / "a.png")
    Image.fromarray(synthetic_photo(48, 64, 2)).save(d / "b.png")
    Image.fromarray(synthetic_photo(80, 80, 3)).save(d / "c.jpg", quality=95)
    return d


@pytest.fixture
def one_thread():
    """One intra-op thread: on 2 shared, busy cores, 2 threads run several times slower (spin-waiting)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Tests are offline: any URL other than file:// fails the test that opens it."""
    real = urllib.request.urlopen

    def guarded(url, *a, **k):
        u = url if isinstance(url, str) else url.full_url
        if not u.startswith("file:"):
            raise AssertionError(f"test tried the network: {u}")
        return real(url, *a, **k)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)

    # Below urllib too (requests, httpx, huggingface_hub, raw sockets): only loopback and local sockets.
    real_connect = socket.socket.connect

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"test tried the network: {address}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)

    # Name lookups too: a hub reachability probe must fail at once, not wait on a DNS server.
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *a, **k):
        if host not in (None, "127.0.0.1", "::1", "localhost"):
            raise socket.gaierror(socket.EAI_NONAME, f"tests are offline: no lookup of {host}")
        return real_getaddrinfo(host, *a, **k)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
