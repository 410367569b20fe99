"""The one metric family (torchmetrics style): ``update`` / ``compute`` / ``reset``, and its registry.

Per-image metrics (PSNR, SSIM, LPIPS, CD, ...) return their ``(N,)`` values from ``update`` and
average them in ``compute``; dataset-level metrics (FID, P-IDS, U-IDS) accumulate statistics
in ``update`` and produce one number in ``compute``. Maths lives in pure functions; these
classes only hold state.

What a runner needs to know about a metric is declared on its class, never guessed from its
name: :attr:`~Metric.needs_hole` (CD, boundary gradient), :attr:`~Metric.reads_raw` (kept-region
drift scores the backend's output before compositing), :attr:`~Metric.weight_files` (for
``inpaintlab weights list`` and skip notes), :attr:`~Metric.dataset_level`. A per-image metric
may also split its work on the reference off (:meth:`PerImageMetric.prepare`) so that RIP, which
scores every checkpoint against the same original, does it once per image (LPIPS: the
original's backbone features).
"""

from __future__ import annotations

import abc
from typing import Any, Callable, Mapping

import numpy as np
import torch

from ..errors import InpaintlabError
from ..registry import Registry, subclass_of


class Metric(abc.ABC):
    """A metric over batches of ``images`` against ``reference`` (both (N,3,H,W) in [0, 1]).

    ``hole`` is (N,1,H,W), 1 = hole; ``region`` restricts a per-image metric to the hole, the
    kept pixels or the whole image, where the metric supports it (default: the first of
    :attr:`regions`).
    """

    name: str = ""
    higher_is_better: bool = False
    dataset_level: bool = False
    paired: bool = False  # update() also takes names=/reference_names= and checks the pairing
    regions: tuple[str, ...] = ("image",)
    needs_hole: bool = False  # True when update() cannot work without ``hole``
    reads_raw: bool = False  # True: scored on the backend's output before compositing, against its input
    weight_files: tuple[str, ...] = ()  # pretrained weight files it needs (names known to inpaintlab.weights)

    def __init__(self, *, region: str | None = None, device: str | torch.device = "cpu"):
        region = self.regions[0] if region is None else region
        if region not in self.regions:
            raise InpaintlabError(f"metric {self.name!r} supports region {', '.join(self.regions)}, not {region!r}")
        self.region = region
        self.device = torch.device(device)
        self.reset()

    @property
    def key(self) -> str:
        """The name results are stored under: ``name``, or ``name@region`` for a non-default region."""
        return self.name if self.region == self.regions[0] else f"{self.name}@{self.region}"

    @abc.abstractmethod
    def update(self, images: torch.Tensor, reference: torch.Tensor, hole: torch.Tensor | None = None) -> torch.Tensor | None:
        """Add a batch. Per-image metrics return their ``(N,)`` values; dataset-level ones None."""

    @abc.abstractmethod
    def compute(self) -> float:
        """The metric over everything added since the last :meth:`reset`."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget everything added."""


Prepared = list[torch.Tensor]  # a reference's cacheable form: tensors with a leading batch dimension


class PerImageMetric(Metric):
    """A per-image metric: ``update`` returns the batch's ``(N,)`` values, ``compute`` their mean.

    Subclasses implement :meth:`values`, or :meth:`prepare` and :meth:`score` when work on the
    reference can be cached. Values are kept in float64 on the CPU, so the mean does not depend
    on how the data was split into batches.
    """

    def reset(self) -> None:
        self._values: list[torch.Tensor] = []

    def values(self, images: torch.Tensor, reference: torch.Tensor, hole: torch.Tensor | None) -> torch.Tensor:
        """The ``(N,)`` per-image values of one batch (tensors already on :attr:`device`)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither values() nor score()")

    def prepare(self, reference: torch.Tensor) -> Prepared:
        """The cacheable work on ``reference`` (N,3,H,W), kept on the CPU; by default the images themselves."""
        return [reference]

    @torch.no_grad()
    def score(self, prepared: Prepared, images: torch.Tensor, hole: torch.Tensor | None = None) -> torch.Tensor:
        """``(N,)`` float64 CPU values of ``images`` against prepared references (leading dim N)."""
        ref = prepared[0].to(self.device)
        hole = None if hole is None else hole.to(self.device)
        return self.values(images.to(self.device), ref, hole).detach().double().cpu().reshape(-1)

    @torch.no_grad()
    def update(self, images: torch.Tensor, reference: torch.Tensor, hole: torch.Tensor | None = None) -> torch.Tensor:
        if hole is None and (self.needs_hole or self.region != "image"):
            raise ValueError(f"metric {self.key!r} needs the hole mask")
        if images.shape != reference.shape:
            raise ValueError(f"images {tuple(images.shape)} and reference {tuple(reference.shape)} differ in shape")
        v = self.score(self.prepare(reference), images, hole)
        self._values.append(v)
        return v

    def all_values(self) -> torch.Tensor:
        """Every per-image value added since the last reset, in order (float64)."""
        return torch.cat(self._values) if self._values else torch.zeros(0, dtype=torch.float64)

    def compute(self) -> float:
        """Mean of the per-image values (NaN when nothing was added)."""
        v = self.all_values()
        return float(v.mean()) if v.numel() else float("nan")


class FeatureMetric(Metric):
    """A dataset-level metric on per-image features of results (fake) and their references (real).

    :meth:`extract` maps (N,3,H,W) images to (N, d) features, each row a function of its own image
    only; :meth:`update_features` adds index-paired rows. Metrics with one :attr:`feature_key`
    extract the same features, so an evaluation computes them once per image for all of them
    (FID, P-IDS and U-IDS: one Inception pass) and may store them for a resume.
    """

    dataset_level = True
    #: the kind of features (e.g. ``"inception-pool3"``); with the extractor's identity, the :attr:`feature_key`
    feature_space: str = ""
    extractor: Callable[[torch.Tensor], torch.Tensor]

    @property
    def feature_key(self) -> str:
        """Names the features: equal keys mean equal features (same kind, same network file)."""
        identity = getattr(self.extractor, "identity", "") or type(self.extractor).__qualname__
        return f"{self.feature_space}:{identity}"

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        """(N,3,H,W) images in [0, 1] -> (N, d) features."""
        return self.extractor(images)

    @abc.abstractmethod
    def update_features(self, fake: Any, real: Any = None) -> None:
        """Add index-paired (N, d) features of fake images and their real references."""

    def compute_shared(self, shared: dict) -> float:
        """:meth:`compute`, where ``shared`` (one dict for every metric fed the same features since
        their last reset) lets one metric reuse another's work; P-IDS and U-IDS fit one SVM."""
        return self.compute()


#: rows per ``update_features`` call in :func:`values_on_features` (bounds float64 temporaries)
FEATURE_CHUNK = 1024


def values_on_features(metrics: Mapping[str, FeatureMetric], fake: np.ndarray, real: np.ndarray,
                       on_error: Callable[[str, Exception], None] | None = None) -> dict[str, float]:
    """Each metric's value on the same index-paired (N, d) ``fake`` and ``real`` features.

    Every metric is reset, fed the rows in order (in chunks of :data:`FEATURE_CHUNK`, so the
    result depends on the rows alone), computed with one shared dict (one SVM for P-IDS and
    U-IDS) and reset again. A metric that cannot be computed (too few images) raises, or with
    ``on_error`` is reported there and left out.
    """
    values: dict[str, float] = {}
    shared: dict = {}
    for key, m in metrics.items():
        m.reset()
        try:
            for i in range(0, len(fake), FEATURE_CHUNK):
                m.update_features(fake[i:i + FEATURE_CHUNK], real[i:i + FEATURE_CHUNK])
            values[key] = float(m.compute_shared(shared))
        except (InpaintlabError, ValueError) as e:
            if on_error is None:
                raise
            on_error(key, e)
        finally:
            m.reset()
    return values


def _named(name: str, cls: type) -> None:
    """A registered metric carries its registry name and a docstring (its description)."""
    if getattr(cls, "name", None) != name:
        raise TypeError(f"metric {name!r}: {cls.__qualname__}.name is {getattr(cls, 'name', None)!r}")
    if not (cls.__doc__ or "").strip():
        raise TypeError(f"metric {name!r}: {cls.__qualname__} needs a docstring")


#: name -> Metric subclass, built as ``cls(region=..., device=...)``; modules of this package register on discovery
METRICS: Registry[type[Metric]] = Registry("metric", check=subclass_of(Metric, _named), packages=("inpaintlab.metrics",),
                                         method_modules=("metric",))
