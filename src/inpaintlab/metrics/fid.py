"""Frechet Inception Distance (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule").

``FID = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))`` between Gaussians fitted to the
2048-d pool3 features of :mod:`.inception` (pytorch-fid's network, weights and resize).

- :func:`frechet_distance` is pytorch-fid's ``calculate_frechet_distance`` in float64:
  ``scipy.linalg.sqrtm`` of ``S_1 S_2``; a non-finite root is retried with ``1e-6`` added to both
  diagonals; an imaginary part is dropped when the diagonal's is within ``1e-3`` of 0, and is an
  error otherwise. ``method="eigh"`` is an equivalent closed form for PSD matrices,
  ``Tr (S_1 S_2)^(1/2) = sum_i sqrt(lambda_i(S_1^(1/2) S_2 S_1^(1/2)))``, with symmetric
  eigen-decompositions only (faster, never complex); the default stays pytorch-fid's.
- :class:`RunningStats` keeps float64 sums (``sum x`` and ``sum x x^T``, shifted by the first
  feature vector seen for accuracy), so memory does not grow with the data and the statistics do
  not depend on how the data were batched; the covariance is ``np.cov``'s (``ddof=1``).
- :func:`reference_statistics` computes a dataset's statistics once and caches them in
  ``<cache>/fid-stats/<key>.npz`` (``mu``, ``sigma`` and ``n``: pytorch-fid's ``.npz`` layout
  plus the count). ``<cache>`` is ``$INPAINTLAB_CACHE`` or ``~/.cache/inpaintlab``. The key is
  the SHA-256 of the *dataset fingerprint* (:func:`dataset_fingerprint`: SHA-256 over the
  sorted relative paths, byte sizes and modification times in ns; file contents are not read,
  so fingerprinting is instant, and any rewrite of a file changes its mtime) together with the
  network's identity (weights file, size, mtime) and :data:`PIPELINE_VERSION`.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from ..atomic import atomic_write
from ..errors import InpaintlabError
from ..images import read_image, to_tensor, validate_images
from .base import METRICS, FeatureMetric

__all__ = [
    "PIPELINE_VERSION",
    "CACHE_ENV_VAR",
    "GaussianStats",
    "RunningStats",
    "frechet_distance",
    "cache_dir",
    "dataset_fingerprint",
    "reference_statistics",
    "FID",
]

#: changes whenever the features of a file could change (reading, resize, network input handling)
PIPELINE_VERSION = "inpaintlab-fid-1:read_image/float32:bilinear299-align_corners=False:2x-1:pool3"
CACHE_ENV_VAR = "INPAINTLAB_CACHE"
SINGULAR_EPS = 1e-6  # pytorch-fid's diagonal offset for a singular product
IMAG_ATOL = 1e-3  # pytorch-fid's tolerance on the imaginary part of the root's diagonal

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------------------------
# the Frechet distance


@dataclass(frozen=True)
class GaussianStats:
    """Mean ``mu`` (d,), covariance ``sigma`` (d, d) and sample count ``n`` of a feature set (float64)."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``mu``, ``sigma``, ``n`` atomically as ``.npz`` (pytorch-fid reads ``mu`` and ``sigma``)."""
        def write(f) -> None:
            buf = io.BytesIO()
            np.savez(buf, mu=self.mu, sigma=self.sigma, n=np.int64(self.n))
            f.write(buf.getvalue())

        return atomic_write(path, write)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "GaussianStats":
        """Read an ``.npz`` with ``mu`` and ``sigma`` (ours or pytorch-fid's; ``n`` is 0 when absent)."""
        try:
            with np.load(path) as f:
                mu, sigma = np.asarray(f["mu"], np.float64), np.asarray(f["sigma"], np.float64)
                n = int(f["n"]) if "n" in f.files else 0
        except (OSError, KeyError, ValueError) as exc:
            raise InpaintlabError(f"cannot read FID statistics {path}: need an .npz with mu and sigma ({exc})") from None
        if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
            raise InpaintlabError(f"FID statistics {path} have mu {mu.shape} and sigma {sigma.shape}; need (d,) and (d, d)")
        return cls(mu, sigma, n)


def _trace_sqrt_product_sqrtm(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> float:
    """``Tr sqrtm(S1 S2)`` exactly as pytorch-fid's ``calculate_frechet_distance`` (Dougal Sutherland's stable version)."""
    from scipy import linalg

    def root(a: np.ndarray) -> np.ndarray:
        try:
            return linalg.sqrtm(a)
        except (linalg.LinAlgError, ValueError):
            return np.full_like(a, np.nan)

    covmean = root(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        warnings.warn(f"FID: singular product of covariances; adding {eps} to their diagonals", RuntimeWarning,
                      stacklevel=3)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = root((sigma1 + offset) @ (sigma2 + offset))
        if not np.isfinite(covmean).all():
            raise InpaintlabError("FID: the covariance product has no finite square root, even regularised")
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=IMAG_ATOL):
            m = float(np.max(np.abs(covmean.imag)))
            raise InpaintlabError(f"FID: the matrix square root has an imaginary component of {m:.3g}")
        covmean = covmean.real
    return float(np.trace(covmean))


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    """Symmetric PSD square root by eigen-decomposition (negative round-off eigenvalues clipped to 0)."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def _trace_sqrt_product_eigh(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``Tr (S1 S2)^(1/2) = sum sqrt(eig(S1^(1/2) S2 S1^(1/2)))``: S1 S2 is similar to that PSD matrix."""
    r1 = _psd_sqrt(sigma1)
    m = r1 @ sigma2 @ r1
    w = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(w, 0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2, *, eps: float = SINGULAR_EPS, method: str = "sqrtm") -> float:
    """``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` in float64 (Heusel et al. 2017, Eq. 6; pytorch-fid)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise InpaintlabError(
            f"FID statistics do not match: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}"
        )
    if method == "sqrtm":
        tr_covmean = _trace_sqrt_product_sqrtm(sigma1, sigma2, eps)
    elif method == "eigh":
        tr_covmean = _trace_sqrt_product_eigh(sigma1, sigma2)
    else:
        raise ValueError(f"method must be 'sqrtm' or 'eigh', not {method!r}")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


# --------------------------------------------------------------------------------------------
# running statistics


class RunningStats:
    """Float64 running sums of features for their mean and covariance; memory is O(d^2), not O(n d)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self._shift: np.ndarray | None = None  # the first vector seen: keeps the sums small (less cancellation)
        self._sum: np.ndarray | None = None
        self._outer: np.ndarray | None = None

    def update(self, features: torch.Tensor | np.ndarray) -> None:
        """Add (N, d) features: ``sum (x - s)`` and ``sum (x - s)(x - s)^T`` in float64."""
        x = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
        x = np.asarray(x, np.float64)
        if x.ndim != 2:
            raise ValueError(f"features must be (N, d), got shape {x.shape}")
        if x.shape[0] == 0:
            return
        if self._shift is None:
            self._shift = x[0].copy()
            d = x.shape[1]
            self._sum, self._outer = np.zeros(d), np.zeros((d, d))
        elif x.shape[1] != self._shift.size:
            raise ValueError(f"features have {x.shape[1]} dimensions, earlier ones {self._shift.size}")
        c = x - self._shift
        self._sum += c.sum(axis=0)
        self._outer += c.T @ c
        self.n += x.shape[0]

    def mean(self) -> np.ndarray:
        self._need(1)
        return self._shift + self._sum / self.n

    def cov(self) -> np.ndarray:
        """The unbiased sample covariance (``np.cov(x, rowvar=False)``, ddof=1); shift-invariant."""
        self._need(2)
        m = self._sum / self.n
        cov = (self._outer - self.n * np.outer(m, m)) / (self.n - 1)
        return (cov + cov.T) / 2  # exact symmetry; round-off in the sums may break it

    def stats(self) -> GaussianStats:
        self._need(2)
        return GaussianStats(self.mean(), self.cov(), self.n)

    def _need(self, k: int) -> None:
        if self.n < k:
            raise InpaintlabError(f"FID needs at least {k} images per set, got {self.n}")


# --------------------------------------------------------------------------------------------
# reference statistics cached by dataset fingerprint


def cache_dir() -> Path:
    """The inpaintlab cache folder: ``$INPAINTLAB_CACHE`` or ``~/.cache/inpaintlab``."""
    env = os.environ.get(CACHE_ENV_VAR)
    return Path(env).expanduser() if env else Path("~/.cache/inpaintlab").expanduser()


def _common_root(paths: Sequence[Path]) -> Path:
    absolute = [p.absolute() for p in paths]
    return Path(os.path.commonpath([str(a.parent) for a in absolute]))


def dataset_fingerprint(paths: Iterable[str | os.PathLike], root: str | os.PathLike | None = None) -> str:
    """SHA-256 over the sorted ``(relative path, size, mtime_ns)`` of the files (contents are not read)."""
    files = [Path(p) for p in paths]
    if not files:
        raise InpaintlabError("cannot fingerprint an empty dataset")
    base = Path(root).absolute() if root is not None else _common_root(files)
    rows = []
    for p in files:
        try:
            st = p.stat()
        except OSError as exc:
            raise InpaintlabError(f"cannot read {p} for the dataset fingerprint ({exc.strerror})") from None
        rows.append((p.absolute().relative_to(base).as_posix(), st.st_size, st.st_mtime_ns))
    h = hashlib.sha256()
    for rel, size, mtime in sorted(rows):
        h.update(f"{rel}\0{size}\0{mtime}\n".encode())
    return h.hexdigest()


def _features_of_files(paths: Sequence[Path], extractor: FeatureFn, batch_size: int) -> RunningStats:
    """Read, batch consecutive same-size images, and accumulate features (pytorch-fid: one file, one image)."""
    from rich.console import Console
    from rich.progress import Progress

    stats = RunningStats()
    batch: list[torch.Tensor] = []

    def flush() -> None:
        if batch:
            stats.update(extractor(torch.cat(batch)))
            batch.clear()

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("FID reference features", total=len(paths))
        for p in paths:
            img = to_tensor(read_image(p))
            if batch and (img.shape != batch[0].shape or len(batch) >= batch_size):
                flush()
            batch.append(img)
            bar.advance(task)
        flush()
    return stats


def reference_statistics(
    paths: Iterable[str | os.PathLike],
    extractor: FeatureFn | None = None,
    *,
    device: str | torch.device = "cpu",
    root: str | os.PathLike | None = None,
    batch_size: int = 50,
    cache: bool = True,
    cache_folder: str | os.PathLike | None = None,
) -> GaussianStats:
    """FID statistics of image files, from the cache when the dataset fingerprint and network are unchanged.

    ``extractor`` maps (N,3,H,W) images to (N, d) features (default: the FID Inception on
    ``device``); its ``identity`` attribute (the weights file for
    :func:`~.inception.load_inception`) is part of the cache key.
    """
    if extractor is None:
        from .inception import load_inception

        extractor = load_inception(device, batch_size=batch_size)
    files = sorted(Path(p) for p in paths)
    if not files:
        raise InpaintlabError("no reference images for FID statistics")
    key_src = "\n".join([PIPELINE_VERSION, str(getattr(extractor, "identity", type(extractor).__qualname__)),
                         dataset_fingerprint(files, root)])
    key = hashlib.sha256(key_src.encode()).hexdigest()
    target = Path(cache_folder).expanduser() if cache_folder is not None else cache_dir() / "fid-stats"
    target = target / f"{key}.npz"
    if cache and target.is_file():
        try:
            return GaussianStats.load(target)
        except InpaintlabError:
            pass  # a damaged cache entry is recomputed and overwritten
    stats = _features_of_files(files, extractor, batch_size).stats()
    if cache:
        stats.save(target)
    return stats


# --------------------------------------------------------------------------------------------
# the stateful metric


class FID(FeatureMetric):
    """Frechet Inception Distance between ``images`` (fake) and ``reference`` (real), lower is better.

    ``reference_stats`` (a :class:`GaussianStats` or an ``.npz`` path) replaces the real set:
    ``update`` then ignores ``reference``. ``extractor`` overrides the feature network (default:
    :func:`~.inception.load_inception` on ``device``, which raises MissingWeightsError when the
    weights are absent). ``method`` picks :func:`frechet_distance`'s square root.
    """

    name = "fid"
    higher_is_better = False
    dataset_level = True
    weight_files = ("pt_inception-2015-12-05-6726825d.pth",)
    feature_space = "inception-pool3"  # shared with P-IDS / U-IDS: one Inception pass per image
    regions = ("image",)

    def __init__(
        self,
        *,
        region: str = "image",
        device: str | torch.device = "cpu",
        reference_stats: GaussianStats | str | os.PathLike | None = None,
        extractor: FeatureFn | None = None,
        weights_path: str | os.PathLike | None = None,
        batch_size: int = 50,
        method: str = "sqrtm",
    ):
        if extractor is None:
            from .inception import load_inception

            extractor = load_inception(device, path=weights_path, batch_size=batch_size)
        self.extractor = extractor
        if reference_stats is not None and not isinstance(reference_stats, GaussianStats):
            reference_stats = GaussianStats.load(reference_stats)
        self.reference_stats = reference_stats
        self.method = method
        super().__init__(region=region, device=device)

    def reset(self) -> None:
        self.fake = RunningStats()
        self.real = RunningStats()

    def update(self, images: torch.Tensor, reference: torch.Tensor | None = None,
               hole: torch.Tensor | None = None) -> None:
        """Add a batch of fake ``images`` and, without precomputed statistics, their ``reference`` images."""
        validate_images(images)
        if self.reference_stats is None:
            if reference is None:
                raise InpaintlabError("FID needs reference images, or reference statistics given up front")
            validate_images(reference, "reference")
            real = self.extractor(reference)
        else:
            real = None
        self.update_features(self.extractor(images), real)

    def update_features(self, fake: torch.Tensor | np.ndarray, real: torch.Tensor | np.ndarray | None = None) -> None:
        """Add precomputed (N, d) features of fake and (optionally) real images."""
        self.fake.update(fake)
        if real is not None:
            self.real.update(real)

    def fake_stats(self) -> GaussianStats:
        return self.fake.stats()

    def real_stats(self) -> GaussianStats:
        return self.reference_stats if self.reference_stats is not None else self.real.stats()

    def compute(self) -> float:
        fake, real = self.fake_stats(), self.real_stats()
        return frechet_distance(fake.mu, fake.sigma, real.mu, real.sigma, method=self.method)


METRICS.register("fid", FID)
