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
