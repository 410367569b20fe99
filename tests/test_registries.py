"""Every registered extension is held to its contract, read from the registries at collection time.

A new backend, metric or mask kind is one module with one ``register`` call (the registries discover
it); these tests pick it up without editing a list. Tests of a particular backend's or metric's
maths live next to it (tests/inpainters, tests/metrics, tests/masks).
"""

from __future__ import annotations

import inspect
import math
import types
import typing

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from inpaintlab import weights
from inpaintlab.errors import InpaintlabError, MissingWeightsError
from inpaintlab.inpainters import COMPOSITORS, INPAINTERS, NumpyBackend, load_inpainter
from inpaintlab.masks import MASKS, MaskParamError, make_rng
from inpaintlab.masks.base import make_generator
from inpaintlab.metrics import METRICS, PerImageMetric
from inpaintlab.options import NO_DEFAULT, OptionError, OptionSpec, specs_of

from .conftest import DEEP_RTOL, SHALLOW_RTOL, assert_close, synthetic_photo

# ----------------------------------------------------------------------------------------------
# inpainters

#: backends that build without pretrained hub weights (the diffusion ones run on tiny pipelines in
#: tests/inpainters/test_diffusion*.py)
BUILDABLE = [n for n, c in INPAINTERS.items() if not c.needs_weights]
SIDE = 48


def photos(n: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` synthetic 48x48 photographs on the 8-bit grid and one rectangular hole per image."""
    x = torch.stack([torch.from_numpy(synthetic_photo(SIDE, SIDE, s)).permute(2, 0, 1) for s in range(n)])
    x = x.float() / 255
    hole = torch.zeros(n, 1, SIDE, SIDE)
    for i in range(n):
        r, c = 8 + 4 * i, 10 + 3 * i
        hole[i, :, r:r + 16, c:c + 20] = 1
    return x, hole


def gens(n: int, base: int = 0) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(base + i) for i in range(n)]


@pytest.mark.parametrize("compositing", COMPOSITORS.names())
@pytest.mark.parametrize("name", BUILDABLE)
def test_backend_fills_the_hole_and_keeps_every_other_pixel(name, compositing):
    x, hole = photos()
    out = load_inpainter(name, compositing=compositing).run(x, hole, generator=gens(3))
    assert out.images.shape == x.shape and out.images.dtype == torch.float32
    assert out.raw.shape == x.shape and out.kept_drift.shape == (3,)
    for t in (out.images, out.raw):
        assert torch.isfinite(t).all() and t.min() >= 0 and t.max() <= 1
    assert torch.isfinite(out.kept_drift).all() and (out.kept_drift >= 0).all()
    keep = hole.expand_as(x) == 0
    assert torch.equal(out.images[keep], x[keep])  # bit for bit, whatever the backend did there
    for i in range(3):  # something was filled in: no image's hole is left as it was
        inside = ~keep[i]
        assert not torch.equal(out.images[i][inside], x[i][inside])


@pytest.mark.parametrize("name", BUILDABLE)
def test_backend_is_seeded_and_batch_independent(name):
    x, hole = photos()
    inp = load_inpainter(name)
    first = inp.run(x, hole, generator=gens(3, base=5))
    again = inp.run(x, hole, generator=gens(3, base=5))
    assert torch.equal(first.images, again.images) and torch.equal(first.raw, again.raw)
    alone = torch.cat([inp.run(x[i:i + 1], hole[i:i + 1], generator=gens(3, base=5)[i:i + 1]).raw
                       for i in range(3)])
    one_gen = inp.run(x, hole, generator=torch.Generator().manual_seed(9)).raw
    first_two = inp.run(x[:2], hole[:2], generator=torch.Generator().manual_seed(9)).raw
    if issubclass(INPAINTERS.get(name), NumpyBackend):
        # a NumPy backend works one uint8 image at a time: nothing batched, so exactly equal
        assert torch.equal(first.raw, alone)
        assert torch.equal(one_gen[:2], first_two)
    else:
        # batched float32 kernels round differently for another batch size or CPU
        assert_close(first.raw, alone, DEEP_RTOL, f"{name}: batch of 3 vs single images")
        assert_close(one_gen[:2], first_two, DEEP_RTOL, f"{name}: one generator, batch of 3 vs 2")


def wrong_value(spec: OptionSpec) -> object:
    """A value of the wrong type for ``spec``: a number for text, text for everything else."""
    base = spec.type
    if typing.get_origin(base) in (typing.Union, types.UnionType):  # X | None: X
        (base,) = [a for a in typing.get_args(base) if a is not type(None)]
    if base is str:
        return 12345
    return "abc-not-a-choice" if typing.get_origin(base) is typing.Literal else "abc"


@pytest.mark.parametrize("name", INPAINTERS.names())
def test_backend_options_are_documented_defaulted_and_typed(name):
    """Every option has a one-line help and a default; a wrong type is one OptionError line naming it.

    Options are checked before anything is built, so this runs for the weight-needing backends too;
    building with the defaults only for those that need no weights.
    """
    cls = INPAINTERS.get(name)
    specs = specs_of(cls.Options)
    for s in specs.values():
        assert s.help.strip() and "\n" not in s.help, f"{name}: option {s.name} has no one-line help"
        assert s.default is not NO_DEFAULT, f"{name}: option {s.name} has no default"
    if not cls.needs_weights:
        assert load_inpainter(name).options == {k: s.default for k, s in specs.items()}
    for s in specs.values():
        bad = wrong_value(s)
        with pytest.raises(OptionError) as e:
            load_inpainter(name, **{s.name: bad})
        msg = str(e.value)
        assert "\n" not in msg and s.name in msg, msg


# ----------------------------------------------------------------------------------------------
# metrics

N = 4
METRIC_SIDE = 176  # MS-SSIM's five scales need at least 161 px


def metric_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(result, reference, hole): results noisier in the hole than outside it, a different hole each."""
    g = torch.Generator().manual_seed(0)
    ref = torch.stack([torch.from_numpy(synthetic_photo(METRIC_SIDE, METRIC_SIDE, 10 + s)).permute(2, 0, 1)
                       for s in range(N)]).float() / 255
    hole = torch.zeros(N, 1, METRIC_SIDE, METRIC_SIDE)
    for i in range(N):
        r, c = 20 + 15 * i, 30 + 10 * i
        hole[i, :, r:r + 50 + 5 * i, c:c + 60] = 1
    res = (ref + 0.1 * torch.randn(ref.shape, generator=g) * (0.3 + hole)).clamp(0, 1)
    return res, ref, hole


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """Random weights under the official file names of every metric's weights (LPIPS, Inception, the
    aesthetic head) and a tiny random CLIP under its official hub id in a hub cache (``hf-hub``): each
    metric's real loading code runs, whether or not this machine has the pretrained files."""
    from .metrics.test_aesthetic import HEAD_FILE as AESTHETIC_HEAD, put_tiny_clip_in_hub_cache, save_random_head
    from .metrics.test_fid import FILE as INCEPTION, random_pytorch_fid_state
    from .metrics.test_lpips import FILES, random_backbone, random_heads, save_torch

    folder = tmp_path_factory.mktemp("random-weights")
    rng = np.random.default_rng(3)
    for net in ("alex", "squeeze", "vgg"):
        save_torch(random_backbone(net, rng), folder / FILES[net])
        save_torch(random_heads(net, rng), folder / f"{net}.pth")
    torch.save(random_pytorch_fid_state(), folder / INCEPTION)
    save_random_head(folder / AESTHETIC_HEAD)
    put_tiny_clip_in_hub_cache(folder / "hf-hub")
    return folder


@pytest.fixture
def with_random_weights(random_weights, monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(random_weights))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home-empty"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(random_weights / "hf-hub"))  # read at call time
    return random_weights


@pytest.mark.parametrize("name", METRICS.names())
def test_metric_weight_files_are_known(name):
    for f in METRICS.get(name).weight_files:
        assert f in weights.WEIGHT_FILES, f"metric {name!r} needs {f}, unknown to inpaintlab.weights"


@pytest.mark.parametrize("name", [n for n, c in METRICS.items() if c.weight_files])
def test_metric_without_its_weights_names_the_file(name, monkeypatch, tmp_path):
    """Offline with empty weight folders: building is one MissingWeightsError line naming a file it needs."""
    cls = METRICS.get(name)
    (tmp_path / "weights").mkdir()
    (tmp_path / "torch").mkdir()
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    asked = []

    def offline(file_name, *a, **k):  # what an offline machine gets from the download step
        asked.append(file_name)
        raise MissingWeightsError(f"weight file {file_name} is missing and could not be downloaded")

    monkeypatch.setattr(weights, "download_file", offline)
    with pytest.raises(MissingWeightsError) as e:
        cls()
    msg = str(e.value)
    assert "\n" not in msg and any(f in msg for f in cls.weight_files), msg
    assert set(asked) <= set(cls.weight_files)  # it asked for its own files only


@pytest.mark.parametrize("name", METRICS.names())
def test_metric_builds_and_per_image_values_behave(name, with_random_weights):
    """Per-image metrics: (N,) finite values, the same for any batch size, reset forgets, and the
    identity value (best possible) for an image against itself where the reference matters."""
    cls = METRICS.get(name)
    metric = cls()
    assert metric.key == name and (cls.__doc__ or "").strip()
    if cls.dataset_level:
        return
    assert issubclass(cls, PerImageMetric)
    res, ref, hole = metric_data()
    # a network's float32 features round differently per batch size; plain maths in float64 / per plane
    rtol = DEEP_RTOL if cls.weight_files else SHALLOW_RTOL
    for region in cls.regions:
        what = f"{name}@{region}"
        m = cls(region=region)
        values = m.update(res, ref, hole)
        assert values.shape == (N,) and torch.isfinite(values).all(), (what, values)
        singles = torch.cat([cls(region=region).update(res[i:i + 1], ref[i:i + 1], hole[i:i + 1]) for i in range(N)])
        assert_close(singles, values, rtol, f"{what}: single images vs a batch")
        for bs in (1, 3):
            chunked = cls(region=region)
            for s in range(0, N, bs):
                chunked.update(res[s:s + bs], ref[s:s + bs], hole[s:s + bs])
            assert chunked.compute() == pytest.approx(m.compute(), rel=rtol)
        assert m.compute() == pytest.approx(float(values.mean()), rel=1e-12)
        m.reset()
        assert math.isnan(m.compute())

        same = cls(region=region).update(ref, ref, hole)
        against_itself = cls(region=region).update(res, res, hole)
        if torch.equal(against_itself, values):
            continue  # the reference does not enter (CD: a seam measure of the result alone)
        scale = float(values.abs().max())
        if cls.higher_is_better:  # a similarity: +inf (PSNR) or 1 (SSIM, MS-SSIM) for identical images
            assert torch.isinf(same).all() and (same > 0).all() or (same - 1).abs().max() <= SHALLOW_RTOL, (what, same)
            assert (same >= values).all()
        else:  # a distance: 0 up to round-off relative to its values on the noisy results
            assert same.abs().max() <= SHALLOW_RTOL * scale, (what, same)
            assert (values > same).all()


# ----------------------------------------------------------------------------------------------
# masks

MASK_SIDE = 64


@pytest.fixture
def object_dir(tmp_path):
    """A few binary object masks (an L, a ring, a cross) as 0/255 and 0/1 PNGs."""
    d = tmp_path / "objects"
    d.mkdir()
    m = np.zeros((40, 50), np.uint8)
    m[5:35, 5:15] = 255
    m[25:35, 5:45] = 255
    Image.fromarray(m).save(d / "l.png")
    m = np.zeros((40, 40), np.uint8)
    cv2.circle(m, (20, 20), 15, 255, 5)
    Image.fromarray(m).save(d / "ring.png")
    m = np.zeros((30, 44), np.uint8)
    m[12:18, 4:40] = 1
    m[2:28, 20:25] = 1
    Image.fromarray(m).save(d / "cross.png")
    return d


def folder_params(kind: str) -> list[str]:
    """The factory's parameters that name a folder (of object masks)."""
    return [p for p in inspect.signature(MASKS.get(kind)).parameters if p.endswith("folder")]


def check_kind(kind: str, params: dict) -> None:
    generate = make_generator(kind, **params)
    masks, drew = [], False
    for i in range(6):
        rng = make_rng(3, i)
        before = rng.bit_generator.state
        hole = generate(MASK_SIDE, MASK_SIDE, rng)
        drew |= rng.bit_generator.state != before
        assert isinstance(hole, np.ndarray) and hole.dtype == np.float32 and hole.shape == (MASK_SIDE, MASK_SIDE)
        assert np.isin(hole, (0.0, 1.0)).all(), f"{kind}: not binary"
        masks.append(hole)
    assert any(h.any() for h in masks), f"{kind}: no hole in any draw"
    fresh = make_generator(kind, **params)
    for i in reversed(range(6)):  # (seed, index) alone decides, in any order, from a new generator
        np.testing.assert_array_equal(fresh(MASK_SIDE, MASK_SIDE, make_rng(3, i)), masks[i])
    if drew:
        assert any(not np.array_equal(masks[0], h) for h in masks[1:]), f"{kind}: different indices, same mask"
    else:  # draws nothing (outpaint; one grid cell fits): the same mask for every index, by design
        assert all(np.array_equal(masks[0], h) for h in masks[1:])


@pytest.mark.parametrize("kind", MASKS.names())
def test_mask_kind_is_binary_seeded_and_varied(kind, object_dir):
    params = {p: str(object_dir) for p in folder_params(kind)}
    check_kind(kind, params)
    if params:  # an optional folder (misato's objects): without it too
        try:
            make_generator(kind)
        except MaskParamError:
            return  # the folder is required (object, convex-hull)
        check_kind(kind, {})


@pytest.mark.parametrize("kind", MASKS.names())
def test_mask_kind_rejects_an_unknown_parameter_in_one_line(kind):
    with pytest.raises(InpaintlabError) as e:
        make_generator(kind, nosuch=1)
    msg = str(e.value)
    assert isinstance(e.value, MaskParamError) and "\n" not in msg and "nosuch" in msg, msg
