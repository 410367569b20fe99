"""Aesthetic Score: a tiny random CLIP and a random LAION-shaped head, saved to disk and loaded back.

The tiny CLIP keeps ``projection_dim`` 768, the official head's input size, so the random head has
exactly the official file's shapes (``weight`` (1, 768), ``bias`` (1,)) and the same code path
checks it; the metric reads the head's input size from the loaded CLIP's ``projection_dim``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from huggingface_hub import constants
from PIL import Image
from scipy.ndimage import gaussian_filter
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from inpaintlab import weights
from inpaintlab.errors import InpaintlabError, MissingWeightsError
from inpaintlab.metrics import METRICS
from inpaintlab.metrics.aesthetic import (CLIP_MEAN, CLIP_STD, DEFAULT_CLIP, HEAD_FILE, AestheticScore,
                                          clip_preprocess)

from ..conftest import DEEP_RTOL, SHALLOW_RTOL, assert_close

TINY = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2, image_size=30,
            patch_size=6, projection_dim=768)
N_PX = TINY["image_size"]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def save_tiny_clip(folder, seed: int = 0) -> CLIPVisionModelWithProjection:
    """A randomly initialised tiny CLIP vision tower with 768-d embeddings, saved with save_pretrained."""
    torch.manual_seed(seed)
    model = CLIPVisionModelWithProjection(CLIPVisionConfig(**TINY)).eval()
    model.save_pretrained(folder)
    return model


def put_tiny_clip_in_hub_cache(cache, repo: str = DEFAULT_CLIP, seed: int = 0) -> None:
    """The tiny CLIP under a hub id, in huggingface_hub's cache layout (``models--a--b/snapshots/<commit>``)."""
    root = cache / f"models--{repo.replace('/', '--')}"
    save_tiny_clip(root / "snapshots" / COMMIT, seed)
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(COMMIT)


def save_random_head(path, seed: int = 0, in_features: int = 768) -> dict[str, torch.Tensor]:
    """A random head with the official file's keys and shapes; scores near LAION's range (5 +- a few)."""
    g = torch.Generator().manual_seed(seed)
    state = {"weight": 2 * torch.randn(1, in_features, generator=g), "bias": torch.tensor([5.0])}
    torch.save(state, path)
    return state


def smooth_images(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """``n`` smooth random images in [0, 1] (bicubic implementations agree closely on smooth data)."""
    rng = np.random.default_rng(seed)
    x = np.clip(gaussian_filter(rng.random((n, 3, h, w)), (0, 0, 2, 2)) * 3 - 1, 0, 1)
    return torch.from_numpy(x).float()


@pytest.fixture
def files(tmp_path, monkeypatch):
    """A tiny CLIP folder and a random head file; empty weight folders, so nothing else is found."""
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(tmp_path / "weights-empty"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-empty"))
    model = save_tiny_clip(tmp_path / "clip")
    state = save_random_head(tmp_path / HEAD_FILE)
    return tmp_path / "clip", tmp_path / HEAD_FILE, model, state


# ---------------------------------------------------------------------------------------------
# the value


def test_value_is_the_head_on_the_normalised_clip_embedding(files, one_thread):
    clip_dir, head_file, model, state = files
    metric = AestheticScore(clip_model=clip_dir, head_path=head_file)
    images = smooth_images(3, 40, 52)
    values = metric.update(images, images)
    assert values.shape == (3,) and values.dtype == torch.float64
    # by hand: the in-memory model on the same preprocessed batch, then w . e / ||e|| + b in float64
    with torch.no_grad():
        emb = model(pixel_values=clip_preprocess(images, N_PX)).image_embeds.double().numpy()
    w, b = state["weight"].double().numpy()[0], float(state["bias"])
    expected = emb @ w / np.linalg.norm(emb, axis=1) + b
    assert_close(values, expected, SHALLOW_RTOL, "metric vs head(normalize(image_embeds))")
    assert metric.compute() == pytest.approx(float(values.mean()), rel=1e-12)


def test_the_reference_and_the_hole_are_ignored(files):
    clip_dir, head_file, _, _ = files
    metric = AestheticScore(clip_model=str(clip_dir), head_path=head_file.parent)  # a folder holding the head
    images = smooth_images(2, 36, 36, seed=1)
    hole = torch.zeros(2, 1, 36, 36)
    hole[..., 5:20, 8:30] = 1
    a = metric.update(images, images)
    b = metric.update(images, torch.rand(2, 3, 36, 36), hole)
    assert torch.equal(a, b)


def test_registered_as_aesthetic():
    cls = METRICS.get("aesthetic")
    assert cls is AestheticScore and cls.name == "aesthetic" and cls.higher_is_better
    assert cls.regions == ("image",) and not cls.needs_hole and not cls.dataset_level
    assert cls.weight_files == (HEAD_FILE,) and HEAD_FILE in weights.WEIGHT_FILES
    assert not weights.WEIGHT_FILES[HEAD_FILE].sha256  # no published hash: never downloaded


# ---------------------------------------------------------------------------------------------
# preprocessing


def reference_preprocess(images: torch.Tensor, n_px: int) -> np.ndarray:
    """OpenAI CLIP's transform on float images, from PIL and NumPy: PIL bicubic resize of each channel
    ("F" mode, no uint8 rounding), clip to [0, 1] as a uint8 image would be, centre crop, normalise."""
    out = []
    for img in images.numpy():
        h, w = img.shape[1:]
        if min(h, w) == n_px:
            nh, nw = h, w
        elif w <= h:
            nh, nw = h * n_px // w, n_px
        else:
            nh, nw = n_px, w * n_px // h
        chans = [np.asarray(Image.fromarray(c.astype(np.float32), mode="F").resize((nw, nh), Image.BICUBIC))
                 for c in img] if (nh, nw) != (h, w) else list(img)
        x = np.clip(np.stack(chans), 0, 1)
        top, left = round((nh - n_px) / 2), round((nw - n_px) / 2)  # torchvision's center_crop
        x = x[:, top:top + n_px, left:left + n_px]
        out.append((x - np.reshape(CLIP_MEAN, (3, 1, 1))) / np.reshape(CLIP_STD, (3, 1, 1)))
    return np.stack(out)


@pytest.mark.parametrize("hw", [(50, 70), (90, 40), (30, 47), (20, 25), (61, 61), (224, 300)])
def test_preprocess_matches_pil_bicubic_resize_and_centre_crop(hw):
    images = smooth_images(2, *hw, seed=sum(hw))
    mine = clip_preprocess(images, N_PX)
    ref = reference_preprocess(images, N_PX)
    assert mine.shape == ref.shape == (2, 3, N_PX, N_PX)
    # torch's antialiased bicubic is a port of PIL's; what remains is float32 round-off of two sums
    assert_close(mine, ref, 1e-5, f"{hw}: torch vs PIL")


@pytest.mark.parametrize("width, left", [(33, 2), (35, 2), (37, 4), (31, 0), (32, 1)])
def test_centre_crop_rounds_the_offset_as_torchvision(width, left):
    """CLIP's CenterCrop offset is ``int(round((W - n) / 2))``: half to even (1.5 -> 2, 2.5 -> 2, 3.5 -> 4)."""
    cols = torch.arange(width, dtype=torch.float32) / 100
    images = cols.view(1, 1, 1, width).expand(1, 3, N_PX, width)  # short side = n_px: no resize
    x = clip_preprocess(images, N_PX) * torch.tensor(CLIP_STD).view(1, 3, 1, 1) + torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    assert_close(x[0, 0, 0], cols[left:left + N_PX], SHALLOW_RTOL, f"width {width}")


# ---------------------------------------------------------------------------------------------
# batches


def test_values_do_not_depend_on_the_batch_size(files, one_thread):
    clip_dir, head_file, _, _ = files
    images = smooth_images(5, 44, 38, seed=2)
    whole = AestheticScore(clip_model=clip_dir, head_path=head_file).update(images, images)
    chunked = AestheticScore(clip_model=clip_dir, head_path=head_file, batch_size=2).update(images, images)
    singles = AestheticScore(clip_model=clip_dir, head_path=head_file)
    alone = torch.cat([singles.update(images[i:i + 1], images[i:i + 1]) for i in range(5)])
    assert_close(chunked, whole, DEEP_RTOL, "batch_size 2 vs 32")
    assert_close(alone, whole, DEEP_RTOL, "one image per update vs five")
    assert singles.compute() == pytest.approx(float(whole.mean()), rel=DEEP_RTOL)


def test_bad_batch_size_is_one_line(files):
    clip_dir, head_file, _, _ = files
    with pytest.raises(InpaintlabError, match="batch_size"):
        AestheticScore(clip_model=clip_dir, head_path=head_file, batch_size=0)


# ---------------------------------------------------------------------------------------------
# weights: found by the real loading path, or one clear line


def test_default_clip_is_found_in_the_hub_cache_and_the_head_in_the_weights_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-empty"))
    put_tiny_clip_in_hub_cache(tmp_path / "hub")
    (tmp_path / "weights").mkdir()
    save_random_head(tmp_path / "weights" / HEAD_FILE)
    save_tiny_clip(tmp_path / "clip")  # the same seed: the same weights as the cached one
    images = smooth_images(2, 32, 40, seed=3)
    cached = AestheticScore().update(images, images)
    folder = AestheticScore(clip_model=tmp_path / "clip").update(images, images)
    assert torch.equal(cached, folder)


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert msg and "\n" not in msg, msg
    return msg


def test_missing_head_is_one_line_naming_it_before_clip_is_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(weights, "download_file", lambda *a, **k: pytest.fail("tried to download"))
    with pytest.raises(MissingWeightsError) as e:
        AestheticScore(clip_model=tmp_path / "no-such-clip")
    msg = one_line(e)
    assert HEAD_FILE in msg and weights.WEIGHT_FILES[HEAD_FILE].url in msg and "no-such-clip" not in msg
    with pytest.raises(MissingWeightsError) as e:
        AestheticScore(head_path=tmp_path / "nowhere" / HEAD_FILE)
    assert HEAD_FILE in one_line(e)


def test_missing_clip_folder_is_one_line(files, tmp_path):
    _, head_file, _, _ = files
    with pytest.raises(MissingWeightsError) as e:
        AestheticScore(clip_model=tmp_path / "no-such-clip", head_path=head_file)
    assert str(tmp_path / "no-such-clip") in one_line(e)


def test_uncached_hub_clip_offline_is_one_line(files, tmp_path, monkeypatch):
    _, head_file, _, _ = files
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingWeightsError) as e:
        AestheticScore(head_path=head_file)
    msg = one_line(e)
    assert repr(DEFAULT_CLIP) in msg and str(tmp_path / "hub-empty") in msg and "clip_model=DIR" in msg


def test_head_of_the_wrong_shape_is_one_line(files, tmp_path):
    clip_dir, _, _, _ = files
    save_random_head(tmp_path / "small.pth", in_features=512)
    with pytest.raises(MissingWeightsError) as e:
        AestheticScore(clip_model=clip_dir, head_path=tmp_path / "small.pth")
    msg = one_line(e)
    assert "768" in msg and "512" in msg and HEAD_FILE in msg


_executed: list[str] = []


def _record_execution() -> dict:
    _executed.append("ran")
    return {}


class _Payload:
    """Unpickling this calls ``_record_execution``: what a malicious checkpoint would do."""

    def __reduce__(self):
        return _record_execution, ()


def test_head_file_is_loaded_without_running_code(files, tmp_path):
    clip_dir, _, _, _ = files
    torch.save({"weight": torch.zeros(1, 768), "bias": torch.zeros(1), "x": _Payload()}, tmp_path / "evil.pth")
    with pytest.raises(MissingWeightsError) as e:
        AestheticScore(clip_model=clip_dir, head_path=tmp_path / "evil.pth")
    assert "evil.pth" in one_line(e) and _executed == []
