"""The stateful metric interface (torchmetrics style): ``update`` / ``compute`` / ``reset``.

Per-image metrics (PSNR, SSIM, LPIPS, CD, ...) return their ``(N,)`` values from ``update`` and
average them in ``compute``; dataset-level metrics (FID, P-IDS, U-IDS) accumulate statistics
in ``update`` and produce one number in ``compute``. Maths lives in pure functions; these
classes only hold state.
"""

from __future__ import annotations

import abc

import torch

REGIONS = ("image", "hole", "kept")


class Metric(abc.ABC):
    """A metric over batches of ``images`` against ``reference`` (both (N,3,H,W) in [0, 1]).

    ``hole`` is (N,1,H,W), 1 = hole; ``region`` restricts a per-image metric to the hole, the
    kept pixels or the whole image, where the metric supports it.
    """

    name: str = ""
    higher_is_better: bool = False
    dataset_level: bool = False
    regions: tuple[str, ...] = ("image",)

    def __init__(self, *, region: str = "image", device: str | torch.device = "cpu"):
        if region not in self.regions:
            raise ValueError(f"metric {self.name!r} supports region {', '.join(self.regions)}, not {region!r}")
        self.region = region
        self.device = torch.device(device)
        self.reset()

    @abc.abstractmethod
    def update(self, images: torch.Tensor, reference: torch.Tensor, hole: torch.Tensor | None = None) -> torch.Tensor | None:
        """Add a batch. Per-image metrics return their ``(N,)`` values; dataset-level ones None."""

    @abc.abstractmethod
    def compute(self) -> float:
        """The metric over everything added since the last :meth:`reset`."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget everything added."""


#: name -> Metric subclass (stateful metrics for evaluation tables; ``cls(region=..., device=...)``)
from ..registry import Registry  # noqa: E402

METRIC_CLASSES: Registry[type[Metric]] = Registry("metric")
