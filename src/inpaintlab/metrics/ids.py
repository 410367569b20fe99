"""Paired / Unpaired Inception Discriminative Score (P-IDS / U-IDS; Zhao et al. 2021, Co-Mod-GAN, Sec. 4).

Both use the 2048-d pool3 features of :mod:`.inception` and one linear SVM,
``sklearn.svm.LinearSVC(dual=False)``, fitted on real (label 1) vs inpainted (label 0) features,
as in Co-Mod-GAN's ``metrics/inception_discriminative_score.py``. With ``d`` its decision
function:

- **U-IDS** = the SVM's misclassification rate, ``0.5 * (mean[d(real) <= 0] + mean[d(fake) > 0])``
  (the classes are equal in size here, so this is Co-Mod-GAN's ``1 - svm.score``; ``d = 0``
  predicts label 0, so a real image exactly on the boundary counts as misclassified, as in
  sklearn's ``predict``). 0 = perfectly separable, 0.5 = indistinguishable.
- **P-IDS** = ``mean[d(fake_i) > d(real_i)]`` over index-paired (real, inpainted) images: the
  share of inpainted images that look *more real* than their own original. Ties count as 0, so
  identical sets give U-IDS 0.5 and P-IDS 0.

Pairing is by index within the batches given to ``update``; pass ``names`` and
``reference_names`` (file stems) to have every pair checked, and a mismatch raises
:class:`PairingError` instead of scoring wrong pairs.
"""

from __future__ import annotations

import warnings
from typing import Callable, Sequence

import numpy as np
import torch

from ..errors import InpaintlabError
from ..images import validate_images
from .base import METRICS, FeatureMetric

__all__ = ["PairingError", "check_pairing", "svm_decisions", "ids_scores", "u_ids", "p_ids", "PIDS", "UIDS"]

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


class PairingError(InpaintlabError):
    """Inpainted images and reference images that are not the same files, or not as many."""


def check_pairing(names: Sequence[str], reference_names: Sequence[str]) -> None:
    """Raise :class:`PairingError` unless ``names[i] == reference_names[i]`` for every i (same length)."""
    names, reference_names = list(names), list(reference_names)
    if len(names) != len(reference_names):
        raise PairingError(f"P-IDS/U-IDS pairing: {len(names)} inpainted names for {len(reference_names)} references")
    bad = [(i, a, b) for i, (a, b) in enumerate(zip(names, reference_names)) if a != b]
    if bad:
        i, a, b = bad[0]
        raise PairingError(
            f"P-IDS/U-IDS pairing: {len(bad)} of {len(names)} pairs differ, first at index {i}: "
            f"inpainted {a!r} vs reference {b!r}"
        )


def svm_decisions(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``LinearSVC(dual=False)`` on real (1) vs fake (0) features; return both sets' decision values (Co-Mod-GAN)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise InpaintlabError(f"P-IDS/U-IDS need (N, d) features of one width, got {real.shape} and {fake.shape}")
    if len(real) < 1 or len(fake) < 1:
        raise InpaintlabError("P-IDS/U-IDS need at least one real and one inpainted image")
    x = np.concatenate([real, fake])
    y = np.concatenate([np.ones(len(real), np.int64), np.zeros(len(fake), np.int64)])
    svm = LinearSVC(dual=False)
    with warnings.catch_warnings():
        # liblinear's iteration cap (as in Co-Mod-GAN's default settings); the fit is still used
        warnings.simplefilter("ignore", ConvergenceWarning)
        svm.fit(x, y)
    return svm.decision_function(real), svm.decision_function(fake)


def u_ids(d_real: np.ndarray, d_fake: np.ndarray) -> float:
    """U-IDS: the SVM error rate, ``0.5 * (share of real with d <= 0 + share of fake with d > 0)``."""
    return float(0.5 * (np.mean(d_real <= 0) + np.mean(d_fake > 0)))


def p_ids(d_real: np.ndarray, d_fake: np.ndarray) -> float:
    """P-IDS: share of index pairs whose inpainted decision value strictly exceeds its real one."""
    if d_real.shape != d_fake.shape:
        raise PairingError(f"P-IDS needs as many inpainted as real images, got {d_fake.size} and {d_real.size}")
    return float(np.mean(d_fake > d_real))


def ids_scores(real: np.ndarray, fake: np.ndarray) -> tuple[float, float]:
    """``(P-IDS, U-IDS)`` of index-paired real and fake (N, d) features (Co-Mod-GAN's definition)."""
    real, fake = np.asarray(real), np.asarray(fake)
    if real.shape != fake.shape:
        raise PairingError(f"P-IDS/U-IDS need paired features, got {real.shape} real and {fake.shape} inpainted")
    d_real, d_fake = svm_decisions(real, fake)
    return p_ids(d_real, d_fake), u_ids(d_real, d_fake)


class _IDS(FeatureMetric):
    """Collects paired Inception features; subclasses pick P-IDS or U-IDS from the same SVM."""

    higher_is_better = True
    dataset_level = True
    paired = True
    weight_files = ("pt_inception-2015-12-05-6726825d.pth",)
    feature_space = "inception-pool3"  # shared with FID: one Inception pass per image
    _index = 0  # position in ``scores()``: 0 P-IDS, 1 U-IDS
    regions = ("image",)

    def __init__(
        self,
        *,
        region: str = "image",
        device: str | torch.device = "cpu",
        extractor: FeatureFn | None = None,
        weights_path=None,
        batch_size: int = 50,
    ):
        if extractor is None:
            from .inception import load_inception

            extractor = load_inception(device, path=weights_path, batch_size=batch_size)
        self.extractor = extractor
        super().__init__(region=region, device=device)

    def reset(self) -> None:
        self._real: list[np.ndarray] = []
        self._fake: list[np.ndarray] = []

    def update(self, images: torch.Tensor, reference: torch.Tensor | None = None, hole: torch.Tensor | None = None,
               *, names: Sequence[str] | None = None, reference_names: Sequence[str] | None = None) -> None:
        """Add index-paired inpainted ``images`` and their ``reference``; names, when given, are checked pair by pair."""
        validate_images(images)
        if reference is None:
            raise InpaintlabError(f"{self.name} needs the reference image of every inpainted image")
        validate_images(reference, "reference")
        if images.shape[0] != reference.shape[0]:
            raise PairingError(f"{self.name}: {images.shape[0]} inpainted images for {reference.shape[0]} references")
        self._check_names(images.shape[0], names, reference_names)
        self.update_features(self.extractor(images), self.extractor(reference))

    def _check_names(self, n: int, names, reference_names) -> None:
        if names is None and reference_names is None:
            return
        if names is None or reference_names is None:
            raise PairingError(f"{self.name}: give both names and reference_names to check the pairing")
        check_pairing(names, reference_names)
        if len(names) != n:
            raise PairingError(f"{self.name}: {len(names)} names for a batch of {n} images")

    def update_features(self, fake, real, *, names: Sequence[str] | None = None,
                        reference_names: Sequence[str] | None = None) -> None:
        """Add precomputed index-paired (N, d) features of inpainted and real images."""
        fake = np.asarray(fake.detach().cpu() if isinstance(fake, torch.Tensor) else fake, np.float32)
        real = np.asarray(real.detach().cpu() if isinstance(real, torch.Tensor) else real, np.float32)
        if fake.shape != real.shape or fake.ndim != 2:
            raise PairingError(f"{self.name}: paired features must have one (N, d) shape, got {fake.shape} and {real.shape}")
        self._check_names(fake.shape[0], names, reference_names)
        self._fake.append(fake)
        self._real.append(real)

    def features(self) -> tuple[np.ndarray, np.ndarray]:
        """All ``(real, fake)`` features added so far, in order."""
        if not self._real:
            raise InpaintlabError(f"{self.name} has no images; call update first")
        return np.concatenate(self._real), np.concatenate(self._fake)

    def scores(self) -> tuple[float, float]:
        """``(P-IDS, U-IDS)`` of everything added."""
        return ids_scores(*self.features())

    def compute(self) -> float:
        return self.scores()[self._index]

    def compute_shared(self, shared: dict) -> float:
        """As :meth:`compute`; P-IDS and U-IDS fed the same features share one SVM fit (as Co-Mod-GAN)."""
        if "ids" not in shared:
            shared["ids"] = self.scores()
        return shared["ids"][self._index]


class PIDS(_IDS):
    """Paired Inception Discriminative Score (Co-Mod-GAN): higher = inpainted images pass for real more often."""

    name = "p-ids"
    _index = 0


class UIDS(_IDS):
    """Unpaired Inception Discriminative Score (Co-Mod-GAN): the linear SVM's error rate, 0.5 at best."""

    name = "u-ids"
    _index = 1


METRICS.register("p-ids", PIDS)
METRICS.register("u-ids", UIDS)
