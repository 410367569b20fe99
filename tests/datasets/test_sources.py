"""Dataset sources: the registry, image folders (broken files skipped and listed), Hugging Face hub datasets."""

from __future__ import annotations

import io
from pathlib import Path

import datasets as hf_datasets
import numpy as np
import pytest
import torch
from PIL import Image

from inpaintlab.datasets import DATASETS
from inpaintlab.errors import BadImageError, InpaintlabError
from inpaintlab.images import builtin_images, load_image


def test_registry_has_the_three_sources():
    assert {"builtin", "folder", "hf"} <= set(DATASETS.names())
    with pytest.raises(InpaintlabError, match="unknown dataset source 'nope'.*builtin"):
        DATASETS.get("nope")


def test_folder_names_are_unique_and_failures_collected(tmp_path):
    for name, value in [("a.png", 10), ("a.jpg", 20), ("b.png", 30)]:
        Image.new("RGB", (8, 6), (value,) * 3).save(tmp_path / name, quality=100)
    (tmp_path / "broken.png").write_bytes(b"nope")
    ds = DATASETS.get("folder")(str(tmp_path), size=16)
    items = list(ds)
    assert [it.name for it in items] == ["a.jpg", "a.png", "b"]  # clashing stems keep their suffix
    assert all(it.image.shape == (1, 3, 16, 16) for it in items)
    assert float(items[2].image[0, 0, 8, 8]) == pytest.approx(30 / 255, abs=1e-7)
    assert [Path(p).name for p, _ in ds.failed] == ["broken.png"] and ds.failed[0][1]
    assert ds[2].name == "b" and ds.names == ["a.jpg", "a.png", "b", "broken"]
    with pytest.raises(BadImageError, match="broken.png"):
        ds[3]  # read by index: the error is the caller's to handle


def test_same_file_name_in_two_folders_is_named_by_its_path(tmp_path):
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        Image.new("RGB", (4, 4)).save(tmp_path / sub / "a.png")
    ds = DATASETS.get("folder")(str(tmp_path / "**" / "*.png"))
    assert ds.names == ["x/a.png", "y/a.png"] and [it.name for it in ds] == ds.names and ds.failed == []


def test_builtin_dataset_is_the_images_builtin_set():
    ds = DATASETS.get("builtin")(size=32)
    assert [str(p) for p in ds.paths] == [str(p) for p in builtin_images()]
    first = next(iter(ds))
    assert first.name == builtin_images()[0].stem and first.image.shape == (1, 3, 32, 32)


def test_folder_skips_broken_files_and_lists_them(image_dir):
    (image_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (image_dir / "empty.jpg").write_bytes(b"")
    (image_dir / "notes.txt").write_text("not an image suffix: never listed")
    ds = DATASETS.get("folder")(str(image_dir))
    assert len(ds) == 5  # a, b, broken, c, empty: supported suffixes only
    items = list(ds)
    assert [it.name for it in items] == ["a", "b", "c"]
    assert sorted(p.rsplit("/", 1)[1] for p, _ in ds.failed) == ["broken.png", "empty.jpg"]
    assert all(reason and "\n" not in reason for _, reason in ds.failed)
    # Same loading rules as inpaintlab.images: native size by default, equal to load_image.
    for it in items:
        assert torch.equal(it.image, load_image(it.source, size=None))
    # A glob works too, and a size pads / resizes like load_image.
    sized = list(DATASETS.get("folder")(str(image_dir / "*.png"), size=16))
    assert [it.name for it in sized] == ["a", "b"]
    assert torch.equal(sized[1].image, load_image(image_dir / "b.png", size=16))


def test_folder_without_images_is_one_line(tmp_path):
    with pytest.raises(InpaintlabError, match="no images found") as info:
        DATASETS.get("folder")(str(tmp_path))
    assert "\n" not in str(info.value)


def _png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_hf_dataset_offline_error_is_one_line(monkeypatch):
    calls = []

    def offline(name, *args, **kwargs):
        calls.append((name, kwargs))
        # What datasets raises with HF_HUB_OFFLINE=1 and nothing cached (datasets 5.x).
        raise ConnectionError(f"Couldn't reach '{name}' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(hf_datasets, "load_dataset", offline)
    with pytest.raises(InpaintlabError) as info:
        DATASETS.get("hf")("huggan/wikiart", split="train", streaming=True, limit=10)
    msg = str(info.value)
    assert "\n" not in msg
    assert "huggan/wikiart" in msg and str(hf_datasets.config.HF_DATASETS_CACHE) in msg
    assert "offline" in msg and "streaming always needs the network" in msg
    assert calls == [("huggan/wikiart", {"split": "train", "streaming": True})]


def test_hf_dataset_not_found_is_one_line(monkeypatch):
    def missing(name, *args, **kwargs):
        raise hf_datasets.exceptions.DatasetNotFoundError(f"Dataset '{name}' doesn't exist on the Hub\nor is gated")

    monkeypatch.setattr(hf_datasets, "load_dataset", missing)
    with pytest.raises(InpaintlabError, match="'someone/nothing' was not found") as info:
        DATASETS.get("hf")("someone/nothing")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("streaming", [False, True])
def test_hf_dataset_detects_the_image_column_decodes_and_skips_bad_rows(monkeypatch, tmp_path, streaming):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (12 + k, 20, 3), dtype=np.uint8) for k in range(4)]
    rows = [{"bytes": _png_bytes(a), "path": None} for a in arrays]
    rows.insert(2, {"bytes": b"\x89PNG\r\n\x1a\n corrupt", "path": None})
    table = hf_datasets.Dataset.from_dict(
        {"label": list(range(5)), "picture": rows},
        features=hf_datasets.Features({"label": hf_datasets.Value("int64"), "picture": hf_datasets.Image()}))
    source = table.to_iterable_dataset() if streaming else table
    monkeypatch.setattr(hf_datasets, "load_dataset", lambda name, *a, **k: source)

    ds = DATASETS.get("hf")("local/toy", streaming=streaming, limit=4)
    assert ds.image_column == "picture"
    items = list(ds)
    assert [it.name for it in items] == ["train-000000", "train-000001", "train-000003"]
    assert len(ds.failed) == 1 and ds.failed[0][0] == "hf://local/toy/train/2"
    # Decoded exactly as inpaintlab.images decodes the same PNG file.
    for it, arr in zip(items, [arrays[0], arrays[1], arrays[2]]):
        path = tmp_path / f"{it.name}.png"
        Image.fromarray(arr).save(path)
        assert torch.equal(it.image, load_image(path, size=None))
    with pytest.raises(InpaintlabError, match="no column 'nope'"):
        DATASETS.get("hf")("local/toy", streaming=streaming, image_column="nope")


def test_hf_dataset_with_two_image_columns_asks_which(monkeypatch):
    img = {"bytes": _png_bytes(np.zeros((4, 4, 3), np.uint8)), "path": None}
    table = hf_datasets.Dataset.from_dict(
        {"a": [img], "b": [img]}, features=hf_datasets.Features({"a": hf_datasets.Image(), "b": hf_datasets.Image()}))
    monkeypatch.setattr(hf_datasets, "load_dataset", lambda name, *a, **k: table)
    with pytest.raises(InpaintlabError, match=r"several image columns \(a, b\)"):
        DATASETS.get("hf")("local/two")
    assert DATASETS.get("hf")("local/two", image_column="b").image_column == "b"


def _toy_table(n: int, h: int = 16, w: int = 16):
    rng = np.random.default_rng(1)
    rows = [{"bytes": _png_bytes(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)), "path": None} for _ in range(n)]
    return hf_datasets.Dataset.from_dict({"image": rows}, features=hf_datasets.Features({"image": hf_datasets.Image()}))


def test_open_image_set_hf_sample_is_seeded_uniform_and_named_by_row(monkeypatch):
    from inpaintlab.datasets import open_image_set

    table = _toy_table(20)
    monkeypatch.setattr(hf_datasets, "load_dataset", lambda name, *a, **k: table)
    a = [it.name for it in open_image_set("hf:local/toy?sample=5&seed=3")]
    b = [it.name for it in open_image_set("hf:local/toy?sample=5&seed=3")]
    c = [it.name for it in open_image_set("hf:local/toy?sample=5&seed=4")]
    assert a == b != c and len(a) == len(set(a)) == 5
    # The same rows numpy's generator picks (an independent draw of the same definition).
    rows = sorted(np.random.default_rng(3).choice(20, size=5, replace=False).tolist())
    assert a == [f"train-{r:06d}" for r in rows]
    # Each item is the image of the row it is named after.
    first = next(iter(open_image_set("hf:local/toy?limit=20")))
    assert first.name == "train-000000"
    items = {it.name: it.image for it in open_image_set("hf:local/toy", size=None)}
    for it in open_image_set("hf:local/toy?sample=5&seed=3", size=None):
        assert torch.equal(it.image, items[it.name])


@pytest.mark.parametrize("spec,fragment", [("hf:local/toy?sample=x", "whole number"),
                                           ("hf:local/toy?colour=red", "unknown option 'colour'"),
                                           ("hf:", "names no dataset"),
                                           ("hf:local/toy?sample=3&streaming=1", "without streaming")])
def test_open_image_set_bad_hf_specs_are_one_line(monkeypatch, spec, fragment):
    from inpaintlab.datasets import open_image_set

    table = _toy_table(4)
    monkeypatch.setattr(hf_datasets, "load_dataset", lambda name, *a, **k: table)
    with pytest.raises(InpaintlabError, match=fragment) as e:
        open_image_set(spec)
    assert "\n" not in str(e.value)


def identity(item):
    return item


def test_a_source_feeds_a_data_loader_with_worker_processes(image_dir):
    """Sources are indexable and picklable: a torch DataLoader with 2 workers reads the same items."""
    from torch.utils.data import DataLoader

    ds = DATASETS.get("folder")(str(image_dir), size=32)
    direct = [ds[i] for i in range(len(ds))]
    loaded = list(DataLoader(ds, batch_size=None, num_workers=2, collate_fn=identity))
    assert [it.name for it in loaded] == [it.name for it in direct] == ["a", "b", "c"]
    for a, b in zip(loaded, direct):
        assert torch.equal(a.image, b.image) and a.source == b.source
