"""Dataset-level metrics (FID, P-IDS, U-IDS, ...), fed from the per-image pass: overall and per bucket.

An evaluation reads every image and result once: the per-image pass hands each loaded batch here.

- Feature metrics (:class:`~inpaintlab.metrics.base.FeatureMetric`: FID, P-IDS, U-IDS) share
  one extraction per image and feature key (one Inception forward pass for the result and one
  for its reference, for all three), stored with the batch's rows in the same transaction. At
  the end each scope's value comes from its images' stored features, in file order, in one go;
  P-IDS and U-IDS come from one SVM fit, as in Co-Mod-GAN's reference implementation.
- Any other dataset-level metric gets one instance per scope, fed the batches as they load.

A scope is every image ("all") or a hole-ratio bucket with at least ``min_bucket_images``
images; (scope, metric) values already stored are not computed again.

**Resume.** Images scored by an earlier, interrupted run are not scored again per image, yet
the dataset-level metrics need every image. Their features are in the store: they were
committed with their batch, so "scored" implies "features stored", and a resume (also one
killed during this final stage) reads no image again. Storing costs 16 KiB per image for
Inception (2 x 2048 float32); the alternative, reading and featurising the images already
scored again on every resume, costs a second pass over them each time. Only what the store
cannot hold is read again, once, at the end: images scored by a version that stored no
features, and, for other dataset-level metrics (which keep no state between runs), the images
scored before this run.

**One image at a time.** Features are extracted per image, as the former separate pass did:
a batched convolution may round differently from batch to batch (notably on GPU), and P-IDS /
U-IDS are counts that a round-off can flip, so extracting per image keeps every number
independent of ``--batch-size`` and of where a run was interrupted. On CPU it costs nothing
(measured: 8 images in one call and 8 single-image calls take the same time and give bit-equal
features); the per-image metrics still run batched.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..errors import InpaintlabError
from ..metrics import build_metric
from ..metrics.base import FeatureMetric, Metric, values_on_features
from .buckets import OVERALL, buckets_of
from .store import EvalStore, FeatureRow

Loader = Callable[[object], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]  # pair -> (image, hole, result)


class DatasetMetrics:
    """The dataset-level work of one run: what is still to compute and the state fed by the per-image pass."""

    def __init__(self, metrics: dict[str, Metric], pairs: list, min_bucket_images: int,
                 done: set[tuple[str, str]], device: str | torch.device = "cpu"):
        self.pairs = pairs
        self.metrics = {k: m for k, m in metrics.items() if m.dataset_level}
        scopes: dict[str, list] = {OVERALL: list(pairs)}
        for p in pairs:
            for label in buckets_of(p.hole_pixels, p.pixels):
                scopes.setdefault(label, []).append(p)
        self.scopes = {s: ps for s, ps in scopes.items() if s == OVERALL or len(ps) >= min_bucket_images}
        self.member = {p.name: {OVERALL} | {s for s in buckets_of(p.hole_pixels, p.pixels) if s in self.scopes}
                       for p in pairs}
        self.todo = sorted((s, k) for s in self.scopes for k in self.metrics if (s, k) not in done)
        #: feature key -> the metric that extracts it (metrics with one key share the features)
        self.extractors: dict[str, FeatureMetric] = {}
        for m in self.metrics.values():
            if isinstance(m, FeatureMetric):
                self.extractors.setdefault(m.feature_key, m)
        #: (scope, key) -> an instance fed images, for dataset-level metrics that are not feature metrics
        self.fed_metrics = {(s, k): build_metric(k, device=device) for s, k in self.todo
                            if not isinstance(self.metrics[k], FeatureMetric)}
        self.fed: set[str] = set()  # images given to ``fed_metrics`` in this run

    # during the per-image pass ----------------------------------------------------------------
    def batch_features(self, pairs: list, results: torch.Tensor, images: torch.Tensor) -> list[FeatureRow]:
        """Each image's (fake, real) features under each feature key, one image per forward pass (see above)."""
        rows = []
        for key, m in self.extractors.items():
            for i, p in enumerate(pairs):
                fake, real = m.extract(results[i:i + 1]), m.extract(images[i:i + 1])
                rows.append((p.name, key, _vector(fake), _vector(real)))
        return rows

    def feed(self, pairs: list, results: torch.Tensor, images: torch.Tensor, hole: torch.Tensor) -> None:
        """Add a loaded batch to the fed metrics of every scope its images are in."""
        for (s, _), m in self.fed_metrics.items():
            idx = [i for i, p in enumerate(pairs) if s in self.member[p.name]]
            if not idx:
                continue
            y, x, h = results[idx], images[idx], hole[idx]
            if m.paired:  # results and references are paired by file stem: one name for both
                names = [pairs[i].name for i in idx]
                m.update(y, x, h, names=names, reference_names=names)
            else:
                m.update(y, x, h)
        self.fed.update(p.name for p in pairs)

    # at the end ----------------------------------------------------------------------------------
    def finish(self, store: EvalStore, load: Loader, log: Callable[[str], None]) -> list[tuple[str, str, float, int]]:
        """The (scope, metric, value, n_images) rows still missing; reads only what the store lacks."""
        if not self.todo:
            return []
        keys = {m.feature_key for _, k in self.todo if isinstance(m := self.metrics[k], FeatureMetric)}
        stored = {fk: store.features(fk) for fk in keys}
        wanted = {p.name for s, _ in self.todo for p in self.scopes[s]}
        catch_up = [p for p in self.pairs if p.name in wanted and (any(p.name not in stored[fk] for fk in keys)
                                                                   or (self.fed_metrics and p.name not in self.fed))]
        new: list[FeatureRow] = []
        for p in catch_up:
            x, hole, y = load(p)
            for fk in keys:
                if p.name not in stored[fk]:
                    m = self.extractors[fk]
                    stored[fk][p.name] = (_vector(m.extract(y)), _vector(m.extract(x)))
                    new.append((p.name, fk, *stored[fk][p.name]))
            if self.fed_metrics and p.name not in self.fed:
                self.feed([p], y, x, hole)
        if new:
            store.commit_features(new)
        rows = []
        for s in sorted({s for s, _ in self.todo}):
            ps = self.scopes[s]
            names = [k for s2, k in self.todo if s2 == s]
            values: dict[str, float] = {}
            errors: dict[str, Exception] = {}
            groups: dict[str, dict[str, FeatureMetric]] = {}
            for k in names:
                if (s, k) in self.fed_metrics:
                    try:
                        values[k] = float(self.fed_metrics[s, k].compute())
                    except (InpaintlabError, ValueError) as e:
                        errors[k] = e
                else:
                    groups.setdefault(self.metrics[k].feature_key, {})[k] = self.metrics[k]
            for fk, group in groups.items():
                fake = np.stack([stored[fk][p.name][0] for p in ps])
                real = np.stack([stored[fk][p.name][1] for p in ps])
                values |= values_on_features(group, fake, real, on_error=errors.__setitem__)
            for k in names:
                if k in values:
                    rows.append((s, k, values[k], len(ps)))
                else:
                    log(f"no {k} for bucket {s}: {errors[k]}")
        return rows


def _vector(features: torch.Tensor | np.ndarray) -> np.ndarray:
    """One image's (1, d) features as a float32 (d,) vector, as the store keeps them."""
    f = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    if f.ndim != 2 or f.shape[0] != 1:
        raise InpaintlabError(f"a feature extractor returned shape {f.shape} for one image; expected (1, d)")
    return np.asarray(f[0], np.float32)


__all__ = ["DatasetMetrics"]
