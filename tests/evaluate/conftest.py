"""Fixtures of the evaluation tests: a small generated dataset, a dataset-level test metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaintlab import weights
from inpaintlab.errors import MissingWeightsError
from inpaintlab.metrics import METRICS
from inpaintlab.metrics.base import Metric

from ..conftest import synthetic_photo

N, S = 8, 64
# square holes of these sides: side^2 / 4096 = 6.2, 12.9, 20.5, 29.9, 37.1, 47.3, -, 82.1 %; im6's hole
# is the top half instead, exactly 50 %: on an edge, so it must land in [50, 60) only
SIDES = [16, 23, 29, 35, 39, 44, None, 58]


@pytest.fixture
def dataset(tmp_path, monkeypatch):
    """8 images 64x64, masks with different hole ratios, no weight files and no downloads."""
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(tmp_path / "no-weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))

    def offline(name, *a, **k):
        raise MissingWeightsError(f"weight file {name} is not in {tmp_path / 'no-weights'}; put it there")

    monkeypatch.setattr(weights, "download_file", offline)
    imgs, masks = tmp_path / "imgs", tmp_path / "masks"
    imgs.mkdir()
    masks.mkdir()
    holes = {}
    for i, side in enumerate(SIDES):
        Image.fromarray(synthetic_photo(S, S, i)).save(imgs / f"im{i}.png")
        m = np.zeros((S, S), bool)
        if side is None:
            m[:S // 2] = True
        else:
            m[3:3 + side, 5:5 + side] = True
        Image.fromarray(m.astype(np.uint8) * 255).save(masks / f"im{i}.png")
        holes[f"im{i}"] = m
    return tmp_path, holes


class PooledMSE(Metric):
    """A dataset-level test metric: the MSE pooled over every pixel of every image added."""

    name, dataset_level = "test-pooled-mse", True

    def reset(self):
        self.sum, self.count = 0.0, 0

    def update(self, images, reference, hole=None):
        self.sum += float(((images.double() - reference.double()) ** 2).sum())
        self.count += images.numel()

    def compute(self):
        return self.sum / self.count


@pytest.fixture
def pooled_mse():
    METRICS.register(PooledMSE.name, PooledMSE)
    yield
    METRICS.unregister(PooledMSE.name)


def grow(root: Path, holes: dict) -> None:
    """Two more images in the 20-30 % bin (im8, im9), which then holds 4 (im2, im3, im8, im9); every other bin holds 1."""
    for k, side in ((8, 30), (9, 31)):
        Image.fromarray(synthetic_photo(S, S, k)).save(root / "imgs" / f"im{k}.png")
        m = np.zeros((S, S), bool)
        m[2:2 + side, 1:1 + side] = True
        Image.fromarray(m.astype(np.uint8) * 255).save(root / "masks" / f"im{k}.png")
        holes[f"im{k}"] = m
