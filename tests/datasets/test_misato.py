"""The MISATO-style builder: counts, planted clusters, masks, manifest, reruns and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import typer
from PIL import Image
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
from typer.testing import CliRunner

from inpaintlab.datasets.commands import app as datasets_app
from inpaintlab.datasets.misato import MisatoConfig, build_misato, l2_normalise
from inpaintlab.errors import ConfigMismatchError, InpaintlabError, MissingWeightsError
from inpaintlab.images import load_mask
from inpaintlab.masks import MASKS

TINY = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=32,
            patch_size=8, projection_dim=16)
MASK = dict(mask_kind="grid-cell", mask_params={"cell": 16})  # until the 'misato' mixture lands


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> str:
    """A randomly initialised tiny CLIP vision tower saved with save_pretrained (loaded back by the builder)."""
    folder = tmp_path_factory.mktemp("clip")
    torch.manual_seed(0)
    CLIPVisionModelWithProjection(CLIPVisionConfig(**TINY)).save_pretrained(folder)
    return str(folder)


def noise_image(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def planted_image(group: int, rng: np.random.Generator, h: int = 40, w: int = 56) -> np.ndarray:
    """Four very different looks (red, blue, checkerboard, gradient) plus a little noise."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = [np.zeros((h, w, 3)) + [0.9, 0.1, 0.1], np.zeros((h, w, 3)) + [0.1, 0.2, 0.9],
            np.repeat(((yy // 6 + xx // 6) % 2)[..., None] * 1.0, 3, 2), np.stack([xx / w, yy / h, 0.5 + 0 * xx], -1)]
    img = base[group] + rng.normal(0, 0.01, (h, w, 3))
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def write_domain(folder: Path, arrays: list[np.ndarray], prefix: str = "im") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k, arr in enumerate(arrays):
        Image.fromarray(arr).save(folder / f"{prefix}{k:02d}.png")
    return folder


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def reference_crop_resize(path: Path, size: int) -> np.ndarray:
    """Independent reference: centre square with OpenCV, area interpolation, uint8."""
    arr = np.asarray(Image.open(path).convert("RGB")).astype(np.float32) / 255
    h, w = arr.shape[:2]
    s = min(h, w)
    crop = arr[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    out = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


def test_three_domains_requested_count_masks_and_manifest(tmp_path, tiny_clip):
    specs = []
    for d, (name, n, hw) in enumerate([("indoor", 9, (48, 64)), ("landscape", 7, (64, 40)), ("building", 6, (50, 50))]):
        folder = write_domain(tmp_path / name, [noise_image(*hw, seed=100 * d + k) for k in range(n)])
        specs.append((name, str(folder)))
    (tmp_path / "indoor" / "zz_broken.png").write_bytes(b"not a png at all")
    cfg = MisatoConfig(domains=specs, per_domain=5, size=32, seed=7, clip=tiny_clip, batch_size=4, **MASK)
    out = tmp_path / "out"
    summary = build_misato(cfg, out)

    assert summary.counts == {"indoor": 5, "landscape": 5, "building": 5}
    m = manifest(out)
    assert m["complete"] is True
    assert m["config"]["clip"] == tiny_clip and m["config"]["seed"] == 7 and m["config"]["size"] == 32
    assert [s["path"].rsplit("/", 1)[1] for s in m["skipped"]] == ["zz_broken.png"]
    assert len(summary.skipped) == 1
    for d, (name, folder) in enumerate(specs):
        items = [it for it in m["items"] if it["domain"] == name]
        assert len(items) == 5 and len({it["cluster"] for it in items}) == 5
        assert sorted(p.name for p in (out / "images" / name).iterdir()) == sorted(f"{it['name']}.png" for it in items)
        n_readable = len(list(Path(folder).glob("im*.png")))
        assert sum(it["cluster_size"] for it in items) == n_readable  # the clusters partition the domain
        for i, it in enumerate(items):
            assert it["source"] == str((Path(folder) / f"{it['name']}.png").resolve())
            img = np.asarray(Image.open(out / it["image"]))
            assert img.shape == (32, 32, 3)
            assert np.abs(img.astype(int) - reference_crop_resize(Path(it["source"]), 32)).max() <= 1
            # The mask is the generator's draw with SeedSequence([seed, domain_index, i]).
            expected = MASKS.get("grid-cell")(cell=16)(32, 32, np.random.default_rng(np.random.SeedSequence([7, d, i])))
            hole = load_mask(out / it["mask"])[0, 0].numpy()
            assert np.array_equal(hole, expected)
            assert it["hole_ratio"] == pytest.approx(expected.mean())
            assert it["distance"] >= 0
    # The embeddings are cached; a rerun with the same settings reproduces the same items.
    assert sorted(p.name for p in (out / "embeddings").iterdir()) == ["building.npz", "indoor.npz", "landscape.npz"]
    build_misato(cfg, out)
    assert manifest(out)["items"] == m["items"]


def test_planted_clusters_one_image_each_with_tiny_clip(tmp_path, tiny_clip):
    rng = np.random.default_rng(3)
    groups = [0, 1, 2, 3] * 5
    arrays = [planted_image(g, rng) for g in groups]
    folder = write_domain(tmp_path / "toy", arrays)
    # Precondition: the random CLIP separates the planted groups (within-group << between-group).
    from inpaintlab.datasets.clip import load_clip_vision

    clip = load_clip_vision(tiny_clip, local_files_only=True)
    x = l2_normalise(clip([torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255 for a in arrays]))
    dist = np.linalg.norm(x[:, None] - x[None], axis=2)
    same = np.equal.outer(groups, groups)
    assert dist[same].max() < 0.2 * dist[~same].min()

    for batch_size in (1, 6):
        out = tmp_path / f"out{batch_size}"
        build_misato(MisatoConfig(domains=[("toy", str(folder))], per_domain=4, size=32, clip=tiny_clip,
                                  batch_size=batch_size, **MASK), out)
        items = manifest(out)["items"]
        picked = [groups[int(it["name"][2:])] for it in items]
        assert sorted(picked) == [0, 1, 2, 3]
        assert [it["cluster_size"] for it in items] == [5, 5, 5, 5]


def test_picks_the_member_nearest_each_centre_with_injected_features(tmp_path):
    """An injected feature function plants 6 groups of uneven size; the pick is the member nearest
    the group mean of the normalised features (independent NumPy reference)."""
    rng = np.random.default_rng(11)
    sizes = [3, 7, 4, 5, 9, 6]  # no pairs: both members of a pair tie
    groups = np.repeat(np.arange(6), sizes)
    rng.shuffle(groups)
    centres = np.eye(8)[:6] * 5
    feats = (centres[groups] + rng.normal(0, 0.3, (len(groups), 8))).astype(np.float32)
    folder = write_domain(tmp_path / "toy", [noise_image(20, 24, k) for k in range(len(groups))])
    # The images carry their row in the red channel of the top-left pixel.
    for k in range(len(groups)):
        arr = np.asarray(Image.open(folder / f"im{k:02d}.png")).copy()
        arr[0, 0, 0] = k
        Image.fromarray(arr).save(folder / f"im{k:02d}.png")

    def embed(images):
        rows = [int(round(float(im[0, 0, 0, 0]) * 255)) for im in images]
        return feats[rows]

    out = tmp_path / "out"
    build_misato(MisatoConfig(domains=[("toy", str(folder))], per_domain=6, size=16, batch_size=5, **MASK),
                 out, embed=embed)
    items = manifest(out)["items"]
    x = l2_normalise(feats.astype(np.float64))
    expected = set()
    for g in range(6):
        members = np.flatnonzero(groups == g)
        d = np.linalg.norm(x[members] - x[members].mean(axis=0), axis=1)
        expected.add(int(members[np.argmin(d)]))
        assert any(int(it["name"][2:]) == members[np.argmin(d)] and it["cluster_size"] == sizes[g]
                   and it["distance"] == pytest.approx(d.min(), abs=1e-5) for it in items)
    assert {int(it["name"][2:]) for it in items} == expected
    assert not (out / "embeddings").exists()  # injected features are not cached


def test_too_few_images_is_an_error_unless_allow_fewer(tmp_path):
    folder = write_domain(tmp_path / "small", [noise_image(20, 20, k) for k in range(3)])
    embed = lambda images: np.stack([im.numpy().reshape(-1)[:5] for im in images])  # noqa: E731
    cfg = MisatoConfig(domains=[("small", str(folder))], per_domain=4, size=16, **MASK)
    with pytest.raises(InpaintlabError, match="domain 'small' has 3 images.*fewer than --per-domain 4") as info:
        build_misato(cfg, tmp_path / "out", embed=embed)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()  # refused before writing anything
    # Readable count matters too: 4 files, one broken.
    (folder / "im03.png").write_bytes(b"broken")
    with pytest.raises(InpaintlabError, match="has 3 readable images .*1 unreadable"):
        build_misato(cfg, tmp_path / "out2", embed=embed)
    assert not (tmp_path / "out2" / "images").exists()  # every count is checked before any image is written
    # That failed attempt wrote no image, so the same folder takes the corrected settings.
    cfg.allow_fewer = True
    summary = build_misato(cfg, tmp_path / "out2", embed=embed)
    assert summary.counts == {"small": 3}
    assert [it["cluster_size"] for it in manifest(tmp_path / "out2")["items"]] == [1, 1, 1]


def test_missing_clip_model_fails_before_writing(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = write_domain(tmp_path / "d", [noise_image(20, 20, k) for k in range(3)])
    cfg = MisatoConfig(domains=[("d", str(folder))], per_domain=2, size=16, clip="nobody-here/no-such-clip", **MASK)
    with pytest.raises(MissingWeightsError, match="'nobody-here/no-such-clip' is not in the Hugging Face cache") as info:
        build_misato(cfg, tmp_path / "out")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_rerun_with_other_settings_is_refused_naming_the_keys(tmp_path):
    folder = write_domain(tmp_path / "d", [noise_image(20, 20, k) for k in range(5)])
    embed = lambda images: np.stack([im.numpy().reshape(-1)[:7] for im in images])  # noqa: E731
    cfg = MisatoConfig(domains=[("d", str(folder))], per_domain=3, size=16, seed=1, **MASK)
    out = tmp_path / "out"
    build_misato(cfg, out, embed=embed)
    cfg.seed, cfg.size = 2, 32
    with pytest.raises(ConfigMismatchError, match=r"differs in: config\.seed \(.*\), config\.size \(.*\)") as info:
        build_misato(cfg, out, embed=embed)
    assert "\n" not in str(info.value)
    # Run-time options may change.
    cfg.seed, cfg.size, cfg.batch_size = 1, 16, 2
    build_misato(cfg, out, embed=embed)
    # New source files are a different build too.
    Image.fromarray(noise_image(20, 20, 99)).save(folder / "new.png")
    with pytest.raises(ConfigMismatchError, match=r"sources \(resolved files\)"):
        build_misato(cfg, out, embed=embed)
    # A non-empty folder that is not a build is refused.
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(InpaintlabError, match="not empty and holds no MISATO build"):
        build_misato(cfg, other, embed=embed)


def test_bad_settings_are_one_line(tmp_path):
    folder = write_domain(tmp_path / "d", [noise_image(20, 20, k) for k in range(2)])
    for cfg, pattern in [
        (MisatoConfig(domains=[], **MASK), "no domains"),
        (MisatoConfig(domains=[("a/b", str(folder))], **MASK), "domain name 'a/b'"),
        (MisatoConfig(domains=[("a", str(folder)), ("a", str(folder))], **MASK), "domain names repeat: a"),
        (MisatoConfig(domains=[("a", str(folder))], per_domain=0, **MASK), "--per-domain must be a positive"),
        (MisatoConfig(domains=[("a", str(folder))], mask_kind="no-such-mask"), "unknown mask generator 'no-such-mask'"),
        (MisatoConfig(domains=[("a", str(folder))], mask_kind="grid-cell", mask_params={"bogus": 1}),
         "mask generator 'grid-cell' has no parameter bogus"),
    ]:
        with pytest.raises(InpaintlabError, match=pattern) as info:
            build_misato(cfg, tmp_path / "out", embed=lambda ims: np.zeros((len(ims), 2)))
        assert "\n" not in str(info.value)


def test_cli_build_misato_end_to_end(tmp_path, tiny_clip):
    app = typer.Typer()
    app.add_typer(datasets_app, name="datasets")  # as cli.py wires it
    a = write_domain(tmp_path / "a", [noise_image(30, 40, k) for k in range(5)])
    b = write_domain(tmp_path / "b", [noise_image(40, 30, 50 + k) for k in range(4)])
    out = tmp_path / "bench"

    def args(seed: int) -> list[str]:
        return ["datasets", "build-misato", "--domain", f"alpha={a}", "--domain", f"beta={b}", "--per-domain", "3",
                "--out", str(out), "--clip", tiny_clip, "--size", "32", "--seed", str(seed), "--mask-kind",
                "grid-cell", "--mask-param", "cell=16", "--batch-size", "2"]

    result = CliRunner().invoke(app, args(5))
    assert result.exit_code == 0, result.output
    assert "MISATO build done" in result.output
    m = manifest(out)
    assert m["config"]["domains"] == [["alpha", str(a)], ["beta", str(b)]]
    assert m["config"]["mask_params"] == {"cell": 16} and m["config"]["per_domain"] == 3
    assert sorted(len(list((out / kind / d).iterdir())) for kind in ("images", "masks") for d in ("alpha", "beta")) == [3] * 4
    # A different seed into the same folder: refused as a one-line user error (the main CLI prints `error: ...`).
    result = CliRunner().invoke(app, args(6))
    assert result.exit_code != 0 and isinstance(result.exception, ConfigMismatchError)
    assert "config.seed" in str(result.exception)
    result = CliRunner().invoke(app, ["datasets", "build-misato", "--domain", "oops", "--out", str(tmp_path / "x")])
    assert isinstance(result.exception, InpaintlabError) and "not NAME=DIR" in str(result.exception)
    result = CliRunner().invoke(app, ["datasets", "list"])
    assert result.exit_code == 0 and "folder" in result.output and "hf" in result.output
