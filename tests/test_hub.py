"""The hub's one offline rule: the cache first, the network only when allowed and reachable, else one line at once.

Offline like every test (conftest's no_network refuses any non-loopback connect); the hub's
reachability is either stubbed or probed against a loopback port. Models and datasets "in the
cache" are tiny ones written into temporary caches in the layout huggingface_hub / datasets use.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import time
from pathlib import Path

import datasets as hf_datasets
import datasets.config
import numpy as np
import pytest
import torch
from huggingface_hub import constants
from PIL import Image
from transformers import CLIPVisionModelWithProjection  # noqa: F401 - imported here, so timings exclude it

from inpaintlab import hub
from inpaintlab.datasets import DEFAULT_CLIP, open_image_set
from inpaintlab.datasets.clip import load_clip_vision
from inpaintlab.errors import InpaintlabError, MissingWeightsError
from inpaintlab.inpainters import load_inpainter
from inpaintlab.testing import save_tiny_pipeline

from .datasets.test_clip import save_tiny_clip, smooth_image, to_batch

FAST_S = 5.0  # an offline error within this, not after huggingface_hub's ~25 s of retries
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def caches(monkeypatch, tmp_path):
    """Empty hub and datasets caches, the hub switched on (no HF_HUB_OFFLINE) but unreachable; counts the probes."""
    hub_cache, ds_cache = tmp_path / "hub", tmp_path / "datasets"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setattr(hf_datasets.config, "HF_DATASETS_CACHE", ds_cache)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    probes = []
    monkeypatch.setattr(hub, "hub_reachable", lambda *a, **k: probes.append(1) or False)
    return hub_cache, ds_cache, probes


def put_in_hub_cache(cache: Path, repo: str, save) -> Path:
    """A model in the hub cache layout: ``models--owner--name/snapshots/<commit>/`` and ``refs/main``."""
    root = cache / f"models--{repo.replace('/', '--')}"
    save(root / "snapshots" / COMMIT)
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(COMMIT)
    return root


def no_retries(err: str) -> None:
    assert "Retry" not in err and "thrown while requesting" not in err and "huggingface.co" not in err, err


# ---------------------------------------------------------------------------------------------
# uncached and offline: one line, at once, nothing on stderr


@pytest.mark.parametrize("streaming", [False, True])
def test_uncached_hf_dataset_offline_fails_fast_and_quietly(caches, capfd, streaming):
    hub_cache, ds_cache, probes = caches
    t0 = time.perf_counter()
    with pytest.raises(InpaintlabError) as info:
        open_image_set(f"hf:huggan/wikiart?limit=3{'&streaming=1' if streaming else ''}")
    elapsed = time.perf_counter() - t0
    msg = str(info.value)
    assert elapsed < FAST_S, f"{elapsed:.1f} s to the offline error"
    assert "\n" not in msg and "'huggan/wikiart'" in msg and str(ds_cache) in msg and str(hub_cache) in msg
    assert "unreachable" in msg and "run once online" in msg
    assert probes == [1]
    no_retries(capfd.readouterr().err)


def test_uncached_clip_offline_fails_fast_and_quietly(caches, capfd):
    hub_cache, _, probes = caches
    t0 = time.perf_counter()
    with pytest.raises(MissingWeightsError) as info:
        load_clip_vision(DEFAULT_CLIP)
    elapsed = time.perf_counter() - t0
    msg = str(info.value)
    assert elapsed < FAST_S, f"{elapsed:.1f} s to the offline error"
    assert "\n" not in msg and repr(DEFAULT_CLIP) in msg and str(hub_cache) in msg and "unreachable" in msg
    assert "--clip DIR" in msg
    assert probes == [1]
    no_retries(capfd.readouterr().err)


def test_uncached_diffusion_model_offline_fails_fast_and_quietly(caches, capfd):
    hub_cache, _, probes = caches
    repo = "nobody-here/no-such-inpainting-model"
    t0 = time.perf_counter()
    with pytest.raises(MissingWeightsError) as info:
        load_inpainter("sd2-inpainting", model_path=repo, device="cpu")
    elapsed = time.perf_counter() - t0
    msg = str(info.value)
    assert elapsed < FAST_S, f"{elapsed:.1f} s to the offline error"
    assert "\n" not in msg and repr(repo) in msg and str(hub_cache) in msg and "unreachable" in msg
    assert probes == [1]
    no_retries(capfd.readouterr().err)


def test_switched_off_hub_is_not_even_probed(caches, monkeypatch):
    hub_cache, _, probes = caches
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # read at call time
    with pytest.raises(InpaintlabError, match="offline mode is on"):
        open_image_set("hf:huggan/wikiart")
    with pytest.raises(MissingWeightsError, match=r"offline mode is on \(HF_HUB_OFFLINE=1"):
        load_clip_vision("nobody-here/no-such-clip")
    with pytest.raises(MissingWeightsError, match="switched off"):
        load_inpainter("sd2-inpainting", model_path="nobody-here/no-such-model", device="cpu")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(MissingWeightsError, match="offline mode is on"):
        load_clip_vision("nobody-here/no-such-clip", local_files_only=True)
    assert probes == []


# ---------------------------------------------------------------------------------------------
# cached: loads offline, without a probe


@pytest.mark.parametrize("switch_off", [False, True])
def test_cached_clip_loads_offline(caches, monkeypatch, tmp_path, switch_off):
    hub_cache, _, probes = caches
    if switch_off:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    def save(snapshot: Path) -> None:  # a real CLIP repo: the model and its preprocessor_config.json
        save_tiny_clip(snapshot)
        (snapshot / "preprocessor_config.json").write_text(json.dumps(
            {"size": {"shortest_edge": 36}, "crop_size": {"height": 32, "width": 32}}))

    model = put_in_hub_cache(hub_cache, "someone/tiny-clip", save)
    assert (model / "snapshots" / COMMIT / "config.json").is_file()
    clip = load_clip_vision("someone/tiny-clip")
    assert (clip.shortest_edge, clip.crop, clip.dim) == (36, (32, 32), 16)
    # the cached weights are the saved ones: same embeddings as a load of the same files as a folder
    folder = load_clip_vision(str(model / "snapshots" / COMMIT), local_files_only=True)
    images = [to_batch(smooth_image(40, 56, k)) for k in range(2)]
    np.testing.assert_array_equal(clip(images), folder(images))
    assert probes == []  # found in the cache: the hub was not needed


def test_cached_diffusion_pipeline_loads_offline(caches, monkeypatch, tmp_path):
    hub_cache, _, probes = caches
    repo = "someone/tiny-inpainting"
    put_in_hub_cache(hub_cache, repo, lambda snap: shutil.copytree(save_tiny_pipeline(tmp_path / "build"), snap))
    inp = load_inpainter("sd2-inpainting", model_path=repo, steps=2, device="cpu")
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    hole = torch.zeros(1, 1, 32, 32)
    hole[..., 8:24, 8:24] = 1
    out = inp.run(x, hole, generator=[torch.Generator().manual_seed(1)])
    assert out.images.shape == x.shape and torch.equal(out.images[hole.expand_as(x) == 0], x[hole.expand_as(x) == 0])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    load_inpainter("sd2-inpainting", model_path=repo, steps=2, device="cpu")
    assert probes == []


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("streaming", [False, True])
def test_cached_hf_dataset_loads_offline(caches, tmp_path, capfd, streaming):
    """A dataset prepared before (datasets' Arrow cache ``owner___name/config/version/hash``) loads with no probe."""
    from datasets.packaged_modules.parquet.parquet import Parquet

    _, ds_cache, probes = caches
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (12, 16, 3), dtype=np.uint8) for _ in range(3)]
    table = hf_datasets.Dataset.from_dict({"image": [{"bytes": _png(a), "path": None} for a in arrays]},
                                          features=hf_datasets.Features({"image": hf_datasets.Image()}))
    table.to_parquet(tmp_path / "toy.parquet")
    builder = Parquet(data_files={"train": str(tmp_path / "toy.parquet")}, dataset_name="toy", hash="abc123",
                      cache_dir=str(tmp_path / "build"))
    builder.download_and_prepare()
    shutil.copytree(builder.cache_dir, ds_cache / "someone___toy" / "default" / "0.0.0" / "abc123")
    capfd.readouterr()

    items = list(open_image_set(f"hf:someone/toy{'?streaming=1' if streaming else ''}", size=None))
    assert [it.name for it in items] == ["train-000000", "train-000001", "train-000002"]
    assert all(it.image.shape == (1, 3, 12, 16) for it in items)
    assert probes == []
    err = capfd.readouterr().err
    no_retries(err)
    assert "Using the latest cached version" not in err  # the cache-only attempt is ours, not news


# ---------------------------------------------------------------------------------------------
# the pieces


def test_reachability_probe_and_its_per_process_cache(monkeypatch):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    assert hub._probe_address() == ("127.0.0.1", port)
    assert hub.hub_reachable() is True
    listener.close()
    assert hub.hub_reachable() is True  # decided once per process
    t0 = time.perf_counter()
    assert hub.hub_reachable(refresh=True) is False  # connection refused, at once
    assert time.perf_counter() - t0 < FAST_S
    # a non-loopback endpoint: conftest refuses the connect, which the probe takes as unreachable
    monkeypatch.setattr(constants, "ENDPOINT", "https://192.0.2.1")
    assert hub.hub_reachable(timeout=1.0) is False
    # behind a proxy, the proxy is what must be reachable
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    assert hub._probe_address() == ("proxy.example", 3128)


def test_offline_mode_switches_both_libraries_for_the_call_only(monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    from huggingface_hub import is_offline_mode

    with hub.offline_mode():
        assert is_offline_mode() and datasets.config.HF_HUB_OFFLINE and datasets.config.HF_DATASETS_OFFLINE
    assert not is_offline_mode() and not datasets.config.HF_HUB_OFFLINE


def test_from_cache_or_hub_order(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    calls = []

    def load(local_only):
        calls.append(local_only)
        if local_only:
            raise OSError("not in the cache")
        return "downloaded"

    monkeypatch.setattr(hub, "hub_reachable", lambda *a, **k: True)
    assert hub.from_cache_or_hub(load) == "downloaded" and calls == [True, False]
    calls.clear()
    with pytest.raises(hub.HubUnavailable) as info:
        hub.from_cache_or_hub(load, local_files_only=True)
    assert info.value.switched_off and calls == [True] and info.value.reason == "not in the cache"
    calls.clear()
    monkeypatch.setattr(hub, "hub_reachable", lambda *a, **k: False)
    with pytest.raises(hub.HubUnavailable, match="unreachable"):
        hub.from_cache_or_hub(load)
    assert calls == [True]
    # an error the caller marks final is not taken for "not cached"
    with pytest.raises(FileNotFoundError, match="no such dataset"):
        hub.from_cache_or_hub(lambda local_only: (_ for _ in ()).throw(FileNotFoundError("no such dataset")),
                              final=(FileNotFoundError,))
