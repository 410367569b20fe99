"""CLIP loading and preprocessing: a tiny random CLIP saved to disk and loaded back offline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModelWithProjection
from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from inpaintlab.datasets.clip import CLIP_STD, load_clip_vision
from inpaintlab.errors import InpaintlabError, MissingWeightsError

from ..conftest import DEEP_RTOL, SHALLOW_RTOL, assert_close

TINY = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=32,
            patch_size=8, projection_dim=16)


def save_tiny_clip(folder, seed: int = 0):
    """A randomly initialised tiny CLIP vision tower, saved with save_pretrained."""
    torch.manual_seed(seed)
    model = CLIPVisionModelWithProjection(CLIPVisionConfig(**TINY))
    model.save_pretrained(folder)
    return model


def smooth_image(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth random uint8 RGB image (bicubic implementations agree closely on smooth data)."""
    rng = np.random.default_rng(seed)
    return (np.clip(gaussian_filter(rng.random((h, w, 3)), (3, 3, 0)) * 3 - 1, 0, 1) * 255).round().astype(np.uint8)


def to_batch(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255


def test_tiny_clip_loads_from_folder_and_embeds(tmp_path):
    model = save_tiny_clip(tmp_path / "clip")
    clip = load_clip_vision(str(tmp_path / "clip"), local_files_only=True)
    assert (clip.shortest_edge, clip.crop, clip.dim) == (32, (32, 32), 16)
    # no preprocessor_config.json: OpenAI's normalisation, as transformers has it (an independent copy)
    assert clip.mean == pytest.approx(OPENAI_CLIP_MEAN) and clip.std == pytest.approx(OPENAI_CLIP_STD)
    images = [to_batch(smooth_image(40 + 3 * k, 56, k)) for k in range(5)]
    feats = clip(images)
    assert feats.shape == (5, 16) and feats.dtype == np.float32
    # The loaded weights are the saved ones: same output as the in-memory model on the same input.
    with torch.no_grad():
        direct = model.eval()(pixel_values=torch.cat([clip.preprocess(im) for im in images])).image_embeds
    assert_close(feats, direct.numpy(), SHALLOW_RTOL, "loaded vs in-memory model")  # same weights, same batch
    # Batch size does not change an embedding beyond float32 round-off of the batched kernels (embeddings
    # reach ~2.3 here: relative to that).
    one_by_one = np.concatenate([clip([im]) for im in images])
    assert_close(feats, one_by_one, DEEP_RTOL, "batch of 5 vs one by one")


@pytest.mark.parametrize("hw", [(50, 70), (90, 40), (32, 32), (20, 25)])
def test_preprocess_matches_transformers_clip_processor(tmp_path, hw):
    """Our torch preprocessing equals transformers' (PIL) CLIP processor up to its uint8 rounding."""
    save_tiny_clip(tmp_path / "clip")
    clip = load_clip_vision(str(tmp_path / "clip"), local_files_only=True)
    img = smooth_image(*hw, seed=sum(hw))
    ref = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})(
        images=[img], return_tensors="pt")["pixel_values"]
    mine = clip.preprocess(to_batch(img))
    assert mine.shape == ref.shape == (1, 3, 32, 32)
    one_level = 1 / 255 / min(CLIP_STD)  # one uint8 step in normalised units
    assert float((mine - ref).abs().max()) <= 1.5 * one_level
    assert float((mine - ref).abs().mean()) <= 0.5 * one_level


def test_preprocessor_config_overrides_defaults(tmp_path):
    save_tiny_clip(tmp_path / "clip")
    (tmp_path / "clip" / "preprocessor_config.json").write_text(json.dumps(
        {"size": {"shortest_edge": 40}, "crop_size": {"height": 32, "width": 32},
         "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25]}))
    clip = load_clip_vision(str(tmp_path / "clip"), local_files_only=True)
    assert (clip.shortest_edge, clip.crop, clip.mean, clip.std) == (40, (32, 32), (0.5,) * 3, (0.25,) * 3)
    x = clip.preprocess(torch.full((1, 3, 50, 60), 0.75))
    assert x.shape == (1, 3, 32, 32)
    assert torch.allclose(x, torch.ones_like(x), atol=1e-5)  # (0.75 - 0.5) / 0.25


def test_missing_hub_model_offline_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = tmp_path / "hub-cache"
    with pytest.raises(MissingWeightsError) as info:
        load_clip_vision("nobody-here/no-such-clip", cache_dir=cache)  # offline read from the environment
    msg = str(info.value)
    assert "\n" not in msg
    assert "nobody-here/no-such-clip" in msg and str(cache) in msg and "offline" in msg


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(MissingWeightsError, match="does not exist") as info:
        load_clip_vision(str(tmp_path / "nope" / "clip"), local_files_only=True)
    assert "\n" not in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InpaintlabError, match="holds no loadable CLIP") as info:
        load_clip_vision(str(tmp_path / "empty"), local_files_only=True)
    assert "\n" not in str(info.value)
