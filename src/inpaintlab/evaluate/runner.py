"""The evaluation runner: pair files, (run the inpainter,) score, store, resume.

1. pair images, masks and results by file stem; read every mask (hole ratio, empty / full check);
2. load the metrics (one whose weights are missing is skipped with a note) and the inpainter;
3. check or write ``config.json``;
4. per batch of not-yet-scored images: load, inpaint (``--model``; results rounded to 8 bits
   and saved to ``OUT/results``), score the per-image metrics, extract the dataset-level
   metrics' features (or feed those metrics), commit images, rows and features together;
5. dataset-level metrics (FID, P-IDS, U-IDS) from those features at the end, overall and per
   hole-ratio bucket holding at least ``min_bucket_images`` images (:mod:`.dataset`; every
   image and result is read once, and a resume reads no image scored before).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from ..errors import BadMaskError, InpaintlabError, MissingWeightsError
from ..datasets import open_image_set
from ..datasets.folder import FolderDataset
from ..datasets.source import ImageSource
from ..images import (image_files, split_unencodable, load_mask, pad_to_square, quantize, quantize_array, read_image, resize,
                      save_image, to_tensor)
from ..metrics import build_metric, parse_metric_spec
from ..metrics.base import Metric
from ..runs import start_run, versions
from ..store import disk_full_is_one_line
from .config import RUNTIME_KEYS, UNORDERED_KEYS, EvalConfig, validate
from .dataset import DatasetMetrics
from .store import EvalStore

RESULTS_DIR = "results"


@dataclass
class Pair:
    """One evaluation item: an image of the image source, its mask and (with ``--results``) its result, by name."""

    name: str
    image: str  # the image's source (a path, or hf://...)
    mask: Path
    result: Path | None = None
    hole_pixels: int = 0
    pixels: int = 0
    index: int = 0  # the image's index in the image source


def _few(names: list[str], k: int = 3) -> str:
    shown = ", ".join(names[:k])
    return shown + (f" and {len(names) - k} more" if len(names) > k else "")


def _stem_names(paths: list[Path], what: str) -> list[str]:
    """Each file's stem; two files with one stem cannot be paired, so that is one error naming them."""
    seen: dict[str, Path] = {}
    for f in paths:
        if f.stem in seen:
            raise InpaintlabError(f"{what} {seen[f.stem].name} and {f.name} share the stem {f.stem!r}; "
                                  f"files are paired by stem, so keep one")
        seen[f.stem] = f
    return [f.stem for f in paths]


def _by_stem(spec: str, what: str, skipped: list[tuple[str, str]]) -> dict[str, Path]:
    files, bad = split_unencodable(image_files(spec))
    skipped.extend(bad)
    return dict(zip(_stem_names(files, what), files))


def pair_sources(images: ImageSource, masks: str, results: str | None = None) -> tuple[list[Pair], list[tuple[str, str]]]:
    """Pair the image source's items with mask (and result) files by name; unpaired files are one error listing them.

    Returns the pairs and the files skipped because their names are not UTF-8 (no run can store them).
    """
    skipped = list(images.skipped)
    names = _stem_names(images.paths, "images") if isinstance(images, FolderDataset) else list(images.names)
    im = {n: i for i, n in enumerate(names)}
    ma = _by_stem(masks, "masks", skipped)
    re = _by_stem(results, "results", skipped) if results is not None else None
    sets = {"images": set(im), "masks": set(ma)} | ({"results": set(re)} if re is not None else {})
    common = set.intersection(*sets.values())
    problems = []
    for what, found in sets.items():
        extra = sorted(found - common)
        if extra:
            others = " or ".join(k for k in sets if k != what)
            problems.append(f"{len(extra)} {what} without {others} ({_few(extra)})")
    if problems:
        raise InpaintlabError(f"unpaired files (paired by file stem): {'; '.join(problems)}")
    pairs = [Pair(n, images.sources[im[n]], ma[n], re[n] if re is not None else None, index=im[n])
             for n in sorted(common)]
    return pairs, skipped


def pair_files(images: str, masks: str, results: str | None = None) -> list[Pair]:
    """Pair the images of ``images`` (any image-source spec) with mask (and result) files by name."""
    return pair_sources(open_image_set(images, size=None), masks, results)[0]


def resize_hole(hole: np.ndarray, size: int) -> np.ndarray:
    """Pad a hole mask with kept pixels to a centred square (as ``pad_to_square``), then resize to ``size``.

    Area interpolation, then a pixel is hole when at least half of it was (>= 0.5).
    """
    h, w = hole.shape
    n = max(h, w)
    sq = np.zeros((n, n), np.float32)
    top, left = (n - h) // 2, (n - w) // 2
    sq[top:top + h, left:left + w] = hole
    if n != size:
        sq = cv2.resize(sq, (size, size), interpolation=cv2.INTER_AREA)
    return (sq >= 0.5).astype(np.float32)


def load_hole(pair: Pair, cfg: EvalConfig, image_hw: tuple[int, int] | None = None) -> torch.Tensor:
    """The pair's (1,1,H,W) hole at the evaluation size; empty or full is a one-line error.

    With ``--size`` a mask may be drawn at the image's native size (it is then padded and
    resized like the image) or already at the working size (``size x size``, e.g. from
    ``inpaintlab masks generate --size``), where it is used as it is.
    """
    if cfg.size is not None:
        hole = load_mask(pair.mask)
        if tuple(hole.shape[-2:]) != (cfg.size, cfg.size):
            if image_hw is not None and tuple(hole.shape[-2:]) != tuple(image_hw):
                raise BadMaskError(f"mask {pair.mask} is {hole.shape[-2]}x{hole.shape[-1]} (HxW); with --size "
                                   f"{cfg.size} it must be {cfg.size}x{cfg.size} or the image's {image_hw[0]}x{image_hw[1]}")
            hole = torch.from_numpy(resize_hole(hole[0, 0].numpy(), cfg.size))[None, None]
    else:
        hole = load_mask(pair.mask, size=image_hw)
    k = int(hole.sum())
    if k == 0 or k == hole.numel():
        raise BadMaskError(f"mask {pair.mask} {'is empty' if k == 0 else 'covers the whole image'}"
                           f"{' at --size ' + str(cfg.size) if cfg.size else ''}: nothing to evaluate")
    return hole


def image_generator(seed: int, name: str) -> torch.Generator:
    """A per-image generator from (seed, image name): independent of batch size and file order."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


@dataclass
class EvalSummary:
    out: Path
    images: int
    resumed: int
    metrics: list[str]
    skipped: dict[str, str]
    dataset_rows: int
    timings: dict[str, float] = field(default_factory=dict)


class EvalRun:
    """One evaluation in one folder; :meth:`prepare` rejects bad input, :meth:`run` does the work."""

    def __init__(self, cfg: EvalConfig, out: str | Path, *, log: Callable[[str], None] = print,
                 progress: Callable[[int, int], None] | None = None):
        validate(cfg)
        self.cfg, self.out, self.log, self.progress = cfg, Path(out), log, progress

    # 1-3. input, metrics, folder ------------------------------------------------------------
    def _load_metrics(self, specs: list[str]) -> tuple[dict[str, Metric], dict[str, str]]:
        metrics, skipped = {}, {}
        for spec in specs:
            try:
                m = build_metric(spec, device=self.cfg.device)
            except MissingWeightsError as e:
                skipped[spec] = str(e)
                continue
            metrics[m.key] = m
        return metrics, skipped

    def prepare(self) -> None:
        """Pair and check the files, load metrics and inpainter, check or write ``config.json``."""
        cfg = self.cfg
        inpainter = None
        if cfg.model is not None:  # first: a wrong name or option is the cheapest mistake to report
            from ..inpainters import load_inpainter

            inpainter = load_inpainter(cfg.model, compositing=cfg.compositing, **cfg.model_options)
        self.images = open_image_set(cfg.images, size=None, pad_color=cfg.pad_color)
        pairs, skipped_files = pair_sources(self.images, cfg.masks, cfg.results)
        for path, why in skipped_files:
            self.log(f"skipped {path}: {why}")
        for p in pairs:
            hole = load_hole(p, cfg)
            p.hole_pixels, p.pixels = int(hole.sum()), hole.numel()
        for spec in cfg.metrics:  # unknown names and regions fail before any work
            parse_metric_spec(spec)
        record = {
            # the resolved options, defaults included: a resume after a default changed is refused
            "config": asdict(cfg) | ({"model_options": inpainter.options} if inpainter is not None else {}),
            "files": [[p.name, str(p.image), str(p.mask), str(p.result) if p.result else None] for p in pairs],
            "versions": versions(),
        }
        self.lock, metrics, skipped = start_run(
            self.out, record, what="an evaluation", inputs_key="files", runtime_keys=RUNTIME_KEYS,
            unordered=UNORDERED_KEYS, requested_metrics=cfg.metrics, load_metrics=self._load_metrics, log=self.log)
        self.pairs, self.metrics, self.skipped, self.inpainter = pairs, metrics, skipped, inpainter

    # 4. per-image metrics --------------------------------------------------------------------
    def _read(self, path: Path | None, index: int = 0) -> tuple[torch.Tensor, tuple[int, int]]:
        """An image file (or, for None, item ``index`` of the image source) as (1,3,H,W) at the evaluation
        size (8-bit grid), and its native (H, W)."""
        arr = read_image(path, pad_color=self.cfg.pad_color) if path is not None else self.images.read(index)
        native = arr.shape[:2]
        if self.cfg.size is not None:
            arr = resize(pad_to_square(arr, self.cfg.pad_color), self.cfg.size)
        arr = quantize_array(arr)
        return to_tensor(arr), native

    def _load_reference(self, p: Pair) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        x, native = self._read(None, p.index)
        return x, load_hole(p, self.cfg, native), native

    def _load_result(self, p: Pair, native: tuple[int, int]) -> torch.Tensor:
        path = p.result if p.result is not None else self.out / RESULTS_DIR / f"{p.name}.png"
        y, got = self._read(path)
        if got != native:
            raise InpaintlabError(f"result {path} is {got[0]}x{got[1]} but its image is {native[0]}x{native[1]}: "
                                  f"results must have their image's size")
        return y

    def _iter_batches(self, todo: list[Pair]):
        """Consecutive same-size items, at most ``batch_size`` each: (pair, image, hole, native size)."""
        batch: list[tuple[Pair, torch.Tensor, torch.Tensor, tuple[int, int]]] = []
        for p in todo:
            x, hole, native = self._load_reference(p)
            if batch and (len(batch) == self.cfg.batch_size or batch[0][1].shape != x.shape):
                yield batch
                batch = []
            batch.append((p, x, hole, native))
        if batch:
            yield batch

    def _load_pair(self, p: Pair) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Image, hole and (saved or given) result of one pair, for the dataset-level catch-up."""
        x, hole, native = self._load_reference(p)
        return x, hole, self._load_result(p, native)

    def _score_batch(self, batch, store: EvalStore, dataset: DatasetMetrics) -> None:
        pairs = [b[0] for b in batch]
        x = torch.cat([b[1] for b in batch])
        hole = torch.cat([b[2] for b in batch])
        raw = None
        if self.inpainter is not None:
            t0 = time.perf_counter()
            gens = [image_generator(self.cfg.seed, p.name) for p in pairs]
            res = self.inpainter.run(x.to(self.cfg.device), hole.to(self.cfg.device), generator=gens)
            y, raw = quantize(res.images.cpu()), res.raw.cpu()
            self.timings["inpaint"] += time.perf_counter() - t0
            for p, yi in zip(pairs, y):
                save_image(self.out / RESULTS_DIR / f"{p.name}.png", yi[None])
            results = [str(Path(RESULTS_DIR) / f"{p.name}.png") for p in pairs]
        else:
            y = torch.cat([self._load_result(p, b[3]) for p, b in zip(pairs, batch)])
            results = [str(p.result) for p in pairs]
        t0 = time.perf_counter()
        rows = []
        for key, metric in self.metrics.items():
            if metric.dataset_level:
                continue
            # a metric that reads the raw output (kept drift) scores the backend's output before compositing
            values = metric.update(raw if metric.reads_raw and raw is not None else y, x, hole)
            metric.reset()  # values live in the database; keep no state across batches
            rows += [(p.name, key, float(v)) for p, v in zip(pairs, values)]
        # dataset-level metrics from the same loaded batch: no second read (a model's results are
        # the 8-bit values saved, the same floats a read of the saved file gives)
        features = dataset.batch_features(pairs, y, x)
        dataset.feed(pairs, y, x, hole)
        self.timings["metrics"] += time.perf_counter() - t0
        images = [(p.name, int(x.shape[-2]), int(x.shape[-1]), p.hole_pixels, p.pixels,
                   p.hole_pixels / p.pixels, r) for p, r in zip(pairs, results)]
        store.commit_batch(images, rows, features)

    # 5. dataset-level metrics -----------------------------------------------------------------
    def _dataset_metrics(self, store: EvalStore, dataset: DatasetMetrics) -> int:
        t0 = time.perf_counter()
        rows = dataset.finish(store, self._load_pair, self.log)
        if rows:
            store.commit_dataset(rows)
        self.timings["metrics"] += time.perf_counter() - t0
        return len(rows)

    def run(self) -> EvalSummary:
        """Run to the end (preparing first if needed); images already scored are skipped."""
        if not hasattr(self, "pairs"):
            self.prepare()
        self.timings = {"inpaint": 0.0, "metrics": 0.0}
        t0 = time.perf_counter()
        try:
            with disk_full_is_one_line(self.out, "evaluation"), EvalStore(self.out / "results.sqlite") as store:
                scored = store.scored()
                todo = [p for p in self.pairs if p.name not in scored]
                done = len(self.pairs) - len(todo)
                dataset = DatasetMetrics(self.metrics, self.pairs, self.cfg.min_bucket_images, store.dataset_done(),
                                         self.cfg.device)
                if self.progress:
                    self.progress(done, len(self.pairs))
                for batch in self._iter_batches(todo):
                    self._score_batch(batch, store, dataset)
                    done += len(batch)
                    if self.progress:
                        self.progress(done, len(self.pairs))
                dataset_rows = self._dataset_metrics(store, dataset)
                self.timings["total"] = time.perf_counter() - t0
                from .tables import write_tables

                write_tables(self.out)
        finally:
            self.lock.release()
        return EvalSummary(self.out, len(self.pairs), len(scored), list(self.metrics), self.skipped, dataset_rows,
                           self.timings)


__all__ = ["EvalRun", "EvalSummary", "Pair", "pair_files", "pair_sources", "resize_hole", "image_generator", "RESULTS_DIR"]
