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


# ------------------------------------------------------------------------------------------------
# MISATO's masks: the mixture without rectangles; background domains with a foreground folder

PIXEL_EMBED = lambda images: np.stack([im.numpy().reshape(-1)[:7] for im in images])  # noqa: E731


def test_misato_masks_by_default_leave_out_rectangles(tmp_path):
    folder = write_domain(tmp_path / "d", [noise_image(20, 24, k) for k in range(4)])
    out = tmp_path / "out"
    build_misato(MisatoConfig(domains=[("d", str(folder))], per_domain=3, size=64, seed=3), out, embed=PIXEL_EMBED)
    m = manifest(out)
    assert m["config"]["mask_kind"] == "misato"
    assert m["config"]["mask_params"] == {"object_folder": None, "lo": 0.1, "hi": 0.7, "max_tries": 1000,
                                          "rectangles": False}
    assert "foreground_min_hole" not in m["config"] and m["config"]["foreground"] == {}
    mix = MASKS.get("misato")(rectangles=False)
    for i, it in enumerate(m["items"]):
        expected, family = mix.draw(64, 64, np.random.default_rng(np.random.SeedSequence([3, 0, i])))
        assert family not in ("rectangle", "complement-rectangle")
        assert np.array_equal(load_mask(out / it["mask"])[0, 0].numpy(), expected)
    # The training mixture on request; a different build, so its folder is not reused.
    cfg = MisatoConfig(domains=[("d", str(folder))], per_domain=3, size=64, seed=3, mask_params={"rectangles": "true"})
    with pytest.raises(ConfigMismatchError, match=r"config\.mask_params\.rectangles \(false -> true\)"):
        build_misato(cfg, out, embed=PIXEL_EMBED)
    build_misato(cfg, tmp_path / "out2", embed=PIXEL_EMBED)
    assert manifest(tmp_path / "out2")["config"]["mask_params"]["rectangles"] is True


def foreground_native(h: int, w: int, seed: int) -> np.ndarray:
    """A disc and a bar at random places; seed 0: all foreground but a 9x9 corner of the centre square."""
    if seed == 0:
        fg = np.ones((h, w), np.uint8) * 255
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        fg[top + s - 9:top + s, left + s - 9:left + s] = 0
        return fg
    rng = np.random.default_rng(seed)
    fg = np.zeros((h, w), np.uint8)
    cv2.circle(fg, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(min(h, w) * 0.3), 255, -1)
    y = int(rng.integers(0, h - 6))
    fg[y:y + 6, : w // 2] = 255
    return fg


def reference_foreground(path: Path, size: int) -> np.ndarray:
    """Independent reference: centre square with PIL, PIL's nearest (pixel centres) to ``size``, white = foreground."""
    im = Image.open(path).convert("L")
    w, h = im.size
    s = min(h, w)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    return np.asarray(im.crop(box).resize((size, size), Image.NEAREST)) >= 128


@pytest.fixture
def two_domains(tmp_path):
    """A plain domain and a background domain (different image shapes) with one foreground mask per image."""
    shapes = [(40, 56), (56, 40), (64, 64), (45, 60), (40, 56)]
    plain = write_domain(tmp_path / "plain", [noise_image(30, 30, 50 + k) for k in range(4)])
    bg = tmp_path / "bg"
    bg.mkdir()
    fgdir = tmp_path / "fg"
    fgdir.mkdir()
    for k, (h, w) in enumerate(shapes):
        Image.fromarray(noise_image(h, w, k)).save(bg / f"im{k:02d}.png")
        Image.fromarray(foreground_native(h, w, k)).save(fgdir / f"im{k:02d}.png")
    return plain, bg, fgdir


def test_background_hole_never_touches_the_foreground(tmp_path, two_domains):
    plain, bg, fgdir = two_domains
    domains = [("plain", str(plain)), ("bg", str(bg))]
    common = dict(domains=domains, per_domain=5, size=64, seed=4, allow_fewer=True)
    out, ref = tmp_path / "out", tmp_path / "ref"
    build_misato(MisatoConfig(foreground={"bg": str(fgdir)}, **common), out, embed=PIXEL_EMBED)
    build_misato(MisatoConfig(**common), ref, embed=PIXEL_EMBED)  # the same build without a foreground
    m, r = manifest(out), manifest(ref)
    assert m["config"]["foreground"] == {"bg": str(fgdir.resolve())} and m["config"]["foreground_min_hole"] == 0.01

    mix = MASKS.get("misato")(rectangles=False)
    items = [it for it in m["items"] if it["domain"] == "bg"]
    unrestricted = {it["name"]: it for it in r["items"] if it["domain"] == "bg"}
    assert len(items) == 5
    for i, it in enumerate(items):
        fg = reference_foreground(fgdir / f"{it['name']}.png", 64)
        hole = load_mask(out / it["mask"])[0, 0].numpy()
        assert not (hole.astype(bool) & fg).any()  # pixel-exact: the saved hole never touches the foreground
        # Reference redraw rule: draws from the same generator until the restricted hole covers > 1 %.
        rng = np.random.default_rng(np.random.SeedSequence([4, 1, i]))
        for draws in range(1, 101):
            drawn = mix(64, 64, rng)
            expected = drawn * ~fg
            if expected.mean() > 0.01:
                break
        assert np.array_equal(hole, expected) and it["draws"] == draws
        assert it["hole_ratio"] == pytest.approx(hole.mean()) and it["foreground_ratio"] == pytest.approx(fg.mean())
        assert it["drawn_hole_ratio"] == pytest.approx(drawn.mean())
        assert it["foreground"] == str((fgdir / f"{it['name']}.png").resolve())
        if draws == 1:  # the first draw is the unrestricted build's mask, minus the foreground
            first = load_mask(ref / unrestricted[it["name"]]["mask"])[0, 0].numpy()
            assert np.array_equal(hole, first * ~fg)
        # The image itself is the same as without a foreground.
        assert np.array_equal(np.asarray(Image.open(out / it["image"])), np.asarray(Image.open(ref / it["image"])))
    assert max(it["draws"] for it in items) > 1  # the nearly-all-foreground image needed redraws
    assert all(it["foreground_ratio"] > 0 for it in items)
    # A domain without a foreground folder is built exactly as before.
    assert [it for it in m["items"] if it["domain"] == "plain"] == [it for it in r["items"] if it["domain"] == "plain"]
    for it in (it for it in r["items"] if it["domain"] == "plain"):
        assert (out / it["mask"]).read_bytes() == (ref / it["mask"]).read_bytes()
    assert not any("foreground" in it for it in r["items"])


def test_background_domain_errors_are_one_line(tmp_path, two_domains):
    plain, bg, fgdir = two_domains
    domains = [("plain", str(plain)), ("bg", str(bg))]
    common = dict(domains=domains, per_domain=5, size=64, allow_fewer=True)
    (fgdir / "im03.png").unlink()
    with pytest.raises(InpaintlabError, match=r"domain 'bg': no foreground mask .*fg/im03\.png for image im03") as info:
        build_misato(MisatoConfig(foreground={"bg": str(fgdir)}, **common), tmp_path / "out", embed=PIXEL_EMBED)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out" / "images").exists()  # refused before any image is written
    for fg, pattern in [({"nope": str(fgdir)}, r"--foreground nope=.*there is no domain 'nope' \(domains: plain, bg\)"),
                        ({"bg": str(tmp_path / "none")}, r"--foreground bg=.*none: no such folder")]:
        with pytest.raises(InpaintlabError, match=pattern) as info:
            build_misato(MisatoConfig(foreground=fg, **common), tmp_path / "out2", embed=PIXEL_EMBED)
        assert "\n" not in str(info.value)
    with pytest.raises(InpaintlabError, match=r"--foreground-min-hole must be a number in \[0, 1\)"):
        build_misato(MisatoConfig(foreground={"bg": str(fgdir)}, foreground_min_hole=1.0, **common), tmp_path / "out2",
                     embed=PIXEL_EMBED)
    # An image that is all foreground: no hole can be drawn; the error names the image.
    Image.fromarray(np.full((40, 56), 255, np.uint8)).save(fgdir / "im03.png")
    with pytest.raises(InpaintlabError, match=r"domain 'bg', image im03 \(foreground .*im03\.png\): none of 100 masks "
                                              r"drawn left more than 0\.01 of the image outside the foreground "
                                              r"\(100% of the image;.*lower --foreground-min-hole") as info:
        build_misato(MisatoConfig(foreground={"bg": str(fgdir)}, **common), tmp_path / "out3", embed=PIXEL_EMBED)
    assert "\n" not in str(info.value)


def test_cli_foreground(tmp_path, tiny_clip, two_domains):
    plain, bg, fgdir = two_domains
    app = typer.Typer()
    app.add_typer(datasets_app, name="datasets")
    base = ["datasets", "build-misato", "--domain", f"plain={plain}", "--domain", f"bg={bg}", "--per-domain", "2",
            "--clip", tiny_clip, "--size", "64"]
    out = tmp_path / "bench"
    result = CliRunner().invoke(app, base + ["--out", str(out), "--foreground", f"bg={fgdir}",
                                             "--foreground-min-hole", "0.02"])
    assert result.exit_code == 0, result.output
    m = manifest(out)
    assert m["config"]["foreground"] == {"bg": str(fgdir.resolve())} and m["config"]["foreground_min_hole"] == 0.02
    assert m["config"]["mask_params"]["rectangles"] is False
    for it in m["items"]:
        hole = load_mask(out / it["mask"])[0, 0].numpy().astype(bool)
        if it["domain"] == "bg":
            assert it["hole_ratio"] > 0.02 and not (hole & reference_foreground(fgdir / f"{it['name']}.png", 64)).any()
        else:
            assert "foreground" not in it
    for extra, pattern in [(["--foreground", "bg"], "--foreground 'bg' is not NAME=DIR"),
                           (["--foreground", f"bg={fgdir}", "--foreground", f"bg={plain}"],
                            "--foreground names domain bg more than once")]:
        result = CliRunner().invoke(app, base + ["--out", str(tmp_path / "x")] + extra)
        assert isinstance(result.exception, InpaintlabError) and pattern in str(result.exception), result.output
