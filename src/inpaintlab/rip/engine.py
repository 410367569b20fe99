"""The Recursive InPainting (RIP) engine: every trajectory advances in lockstep.

A *trajectory* is one (image, cell size, seed). Each iteration it inpaints one grid cell drawn
from its own random stream, pastes back only that cell, and feeds the result (rounded to uint8
by default, as a saved image would be) to the next iteration. All trajectories advance
together and the inpainter is called on batches of them, so a GPU backend gets full batches;
per-trajectory random streams make the results independent of the batch size.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import InpaintlabError, MissingWeightsError
from ..datasets import open_image_set
from ..images import save_image, to_uint8
from ..inpainters import Inpainter, load_inpainter
from ..metrics import PerImageMetric, build_metric, check_reference_metric
from ..runs import start_run, versions
from .config import RUNTIME_KEYS, UNORDERED_KEYS, RipConfig, validate
from .schedule import Grid, checkpoint_iterations, draw_cells, iteration_generator, iterations_for, percent_per_iteration
from ..store import disk_full_is_one_line
from .store import Checkpoint, RipStore

Log = Callable[[str], None]
Progress = Callable[[int, int], None]  # (done, total) inpainter calls


@dataclass
class Trajectory:
    """One (image, cell size, seed) and where it stands."""

    image: str
    mask_size: int
    seed: int
    grid: Grid
    cells: np.ndarray  # the cell of each iteration, index 0 = iteration 1
    checkpoints: frozenset[int]
    iteration: int  # last completed iteration
    state: torch.Tensor  # (3,H,W) uint8 when quantising, else float32
    pending: list[tuple[int, int, int, int, float]] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.image, self.mask_size, self.seed)

    @property
    def n_iter(self) -> int:
        return len(self.cells)

    def percent(self, iteration: int) -> float:
        return iteration * percent_per_iteration(self.grid.size, self.mask_size)


@dataclass
class RunSummary:
    """What a run did: counts, skipped metrics and files, and where time went."""

    out: Path
    trajectories: int
    calls: int
    resumed: int
    metrics: list[str]
    skipped_metrics: dict[str, str]
    failed_images: list[tuple[str, str]]
    timings: dict[str, float]


class FeatureCache:
    """Prepared references per (metric, image), least recently used evicted past a byte budget."""

    def __init__(self, max_bytes: float):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str], list[torch.Tensor]] = OrderedDict()
        self._bytes = 0

    def get(self, key: tuple[str, str], make: Callable[[], list[torch.Tensor]]) -> list[torch.Tensor]:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = make()
        size = sum(t.numel() * t.element_size() for t in value)
        self._items[key] = value
        self._bytes += size
        while self._bytes > self.max_bytes and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self._bytes -= sum(t.numel() * t.element_size() for t in old)
        return value


class CheckpointWriter:
    """Writes kept images and commits checkpoints on one background thread, in order.

    PNG encoding and SQLite commits then overlap the next iterations' inpainting. The images of
    a checkpoint are on disk before its rows are committed, so the database never names a
    missing file; leaving the ``with`` block waits for everything submitted.
    """

    def __init__(self, store: RipStore):
        self.store = store
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rip-writer")
        self.pending: list[Future] = []
        self.max_pending = 4

    def submit(self, images: list[tuple[Path, torch.Tensor]], checkpoints: list[Checkpoint]) -> None:
        still = []
        for f in self.pending:
            if f.done():
                f.result()  # surface a failed write now rather than at the end of a long run
            else:
                still.append(f)
        # Bound the queue so copies of states cannot pile up behind a slow disk.
        while len(still) >= self.max_pending:
            still.pop(0).result()
        self.pending = still + [self.pool.submit(self._write, images, checkpoints)]

    def _write(self, images: list[tuple[Path, torch.Tensor]], checkpoints: list[Checkpoint]) -> None:
        for path, state in images:
            save_image(path, state_to_image(state))
        self.store.commit(checkpoints)

    def __enter__(self) -> "CheckpointWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.pool.shutdown(wait=True)
        if exc[0] is None:
            for f in self.pending:
                f.result()


class RipRun:
    """One RIP run into one folder; :meth:`run` starts it or resumes it."""

    def __init__(self, cfg: RipConfig, out: str | Path, *, log: Log = print, progress: Progress | None = None):
        validate(cfg)
        self.cfg = cfg
        self.out = Path(out)
        self.log = log
        self.progress = progress
        self.timings = {"inpaint": 0.0, "metrics": 0.0, "total": 0.0}

    # 1. inputs -------------------------------------------------------------------------
    def _load_images(self) -> tuple[dict[str, torch.Tensor], dict[str, str], list[tuple[str, str]]]:
        """The originals by name, their sources, and the unreadable ones with the reason."""
        images = open_image_set(self.cfg.images, size=self.cfg.size, pad_color=tuple(self.cfg.pad_color), quantize=True)
        originals, sources = {}, {}
        for item in images:
            originals[item.name], sources[item.name] = item.image, item.source
        return originals, sources, list(images.failed)

    def _load_metrics(self, names: list[str]) -> tuple[dict[str, PerImageMetric], dict[str, str]]:
        metrics, skipped = {}, {}
        for name in names:
            check_reference_metric(name)
            try:
                metrics[name] = build_metric(name, device=self.cfg.device)
            except MissingWeightsError as e:
                skipped[name] = str(e)
        return metrics, skipped

    # 2. the run -------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Load images, metrics and the inpainter, and check or write the run folder.

        Everything that can reject the input happens here, before any work is done.
        """
        self._t0 = time.perf_counter()
        # The inpainter first: a wrong name or option is the cheapest mistake to report.
        inpainter = load_inpainter(self.cfg.model, compositing=self.cfg.compositing, **self.cfg.model_options)
        originals, sources, failed = self._load_images()
        if not originals:
            raise InpaintlabError(f"no readable image in {self.cfg.images!r} ({len(failed)} unreadable)")
        # the resolved options, defaults included: a resume after a default changed is refused
        record = {"config": asdict(self.cfg) | {"model_options": inpainter.options},
                  "images": [[name, sources[name]] for name in sources], "failed_images": failed,
                  "versions": versions()}
        self.lock, metrics, skipped = start_run(
            self.out, record, what="a RIP run", inputs_key="images", runtime_keys=RUNTIME_KEYS,
            unordered=UNORDERED_KEYS, requested_metrics=self.cfg.metrics, load_metrics=self._load_metrics, log=self.log)
        self.originals, self.failed, self.metrics, self.skipped = originals, failed, metrics, skipped
        self.inpainter = inpainter

    def run(self) -> RunSummary:
        """Run to the end (preparing first if :meth:`prepare` was not called)."""
        if not hasattr(self, "inpainter"):
            self.prepare()
        originals, metrics = self.originals, self.metrics
        try:
            with disk_full_is_one_line(self.out, "RIP run"), RipStore(self.out / "results.sqlite") as store:
                trajs, resumed = self._trajectories(originals, store)
                self._keep_originals(originals)
                cache = FeatureCache(self.cfg.feature_cache_gb * 2**30)
                with CheckpointWriter(store) as writer:
                    fresh = [t for t in trajs if t.iteration == 0 and t.key not in resumed]
                    if fresh:
                        self._checkpoint(writer, fresh, originals, metrics, cache)
                    calls = self._advance(writer, trajs, originals, metrics, cache, self.inpainter)
        finally:
            self.lock.release()
        self.timings["total"] = time.perf_counter() - self._t0
        return RunSummary(out=self.out, trajectories=len(trajs), calls=calls, resumed=len(resumed),
                          metrics=list(metrics), skipped_metrics=self.skipped, failed_images=self.failed,
                          timings=dict(self.timings))

    def _trajectories(self, originals: dict[str, torch.Tensor], store: RipStore) -> tuple[list[Trajectory], set]:
        """All trajectories, resumed from the store's last committed state where there is one."""
        saved = store.progress()
        trajs = []
        for image, orig in originals.items():
            for s in self.cfg.mask_sizes:
                grid = Grid(self.cfg.size, s)
                n = iterations_for(self.cfg.percent, self.cfg.size, s)
                marks = frozenset(checkpoint_iterations(self.cfg.percent, self.cfg.checkpoint_every, self.cfg.size, s))
                for seed in self.cfg.seeds:
                    cells = draw_cells(image, s, seed, grid, n, self.cfg.sampling)
                    it, state = 0, self._encode(orig[0])
                    if (image, s, seed) in saved:
                        it, arr = saved[(image, s, seed)]
                        state = torch.from_numpy(arr.copy())  # writable: updated in place
                    trajs.append(Trajectory(image, s, seed, grid, cells, marks, it, state))
        return trajs, set(saved)

    def _encode(self, image: torch.Tensor) -> torch.Tensor:
        """Float image(s) in [0, 1] as the state the engine feeds forward (uint8 when quantising)."""
        if self.cfg.quantize:
            return to_uint8(image)
        return image.float().clone()

    def _decode(self, states: list[torch.Tensor]) -> torch.Tensor:
        return state_to_image(torch.stack(states))

    def _advance(self, writer, trajs, originals, metrics, cache, inpainter: Inpainter) -> int:
        """Iterate every trajectory to its end, committing at its checkpoints."""
        total = sum(t.n_iter for t in trajs)
        done = sum(t.iteration for t in trajs)
        if self.progress:
            self.progress(done, total)
        calls = 0
        bs = self.cfg.batch_size
        for it in range(1, max(t.n_iter for t in trajs) + 1):
            active = [t for t in trajs if t.iteration == it - 1 and it <= t.n_iter]
            for i in range(0, len(active), bs):
                batch = active[i:i + bs]
                self._step(batch, it, inpainter)
                calls += 1
                done += len(batch)
                if self.progress:
                    self.progress(done, total)
            due = [t for t in active if it in t.checkpoints]
            if due:
                self._checkpoint(writer, due, originals, metrics, cache)
        return calls

    def _step(self, batch: list[Trajectory], it: int, inpainter: Inpainter) -> None:
        """One iteration for a batch: inpaint each trajectory's cell and paste it back."""
        device = torch.device(self.cfg.device)
        x = self._decode([t.state for t in batch]).to(device)
        cells = [int(t.cells[it - 1]) for t in batch]
        hole = torch.cat([t.grid.hole(c) for t, c in zip(batch, cells)]).to(device)
        gens = [iteration_generator(t.image, t.mask_size, t.seed, it) for t in batch]
        t0 = time.perf_counter()
        out = inpainter.run(x, hole, generator=gens)
        self.timings["inpaint"] += time.perf_counter() - t0
        # The wrapper guarantees that only hole pixels differ from the input, so pasting back
        # means copying the cell alone into the state: 1/64 of the work for 64-cells at 512.
        result = out.images.cpu()
        for j, t in enumerate(batch):
            r, c = t.grid.row_col(cells[j])
            rows, cols = slice(r * t.mask_size, (r + 1) * t.mask_size), slice(c * t.mask_size, (c + 1) * t.mask_size)
            t.state[:, rows, cols] = self._encode(result[j, :, rows, cols])
            t.pending.append((it, cells[j], r, c, float(out.kept_drift[j])))
            t.iteration = it

    def _checkpoint(self, writer: "CheckpointWriter", due: list[Trajectory], originals, metrics, cache) -> None:
        """Score the trajectories at a checkpoint, keep their images, and commit them at once."""
        t0 = time.perf_counter()
        values: dict[tuple, dict[str, float]] = {t.key: {} for t in due}
        # Sorting by image lets the cache serve each image's references for a whole batch.
        due_sorted = sorted(due, key=lambda t: t.key)
        bs = self.cfg.batch_size
        for name, metric in metrics.items():
            for i in range(0, len(due_sorted), bs):
                batch = due_sorted[i:i + bs]
                refs = [cache.get((name, t.image), lambda t=t: metric.prepare(originals[t.image])) for t in batch]
                prepared = [torch.cat(parts) for parts in zip(*refs)]
                scores = metric.score(prepared, self._decode([t.state for t in batch]))
                for t, v in zip(batch, scores.tolist()):
                    values[t.key][name] = v
        self.timings["metrics"] += time.perf_counter() - t0
        cps, images = [], []
        for t in due:
            kept = self._kept_path(t)
            if kept is not None:
                images.append((self.out / kept, t.state.clone()))
            # Copies: the state is updated in place by the next iterations while the writer works.
            cps.append(Checkpoint(key=t.key, iteration=t.iteration, percent=t.percent(t.iteration),
                                  values=values[t.key], cells=t.pending, state=t.state.numpy().copy(), kept_path=kept))
            t.pending = []
        writer.submit(images, cps)

    # 3. kept images ------------------------------------------------------------------------------
    def _kept_path(self, t: Trajectory) -> str | None:
        """Where this checkpoint's image goes, relative to the run folder (None: not kept)."""
        policy = self.cfg.keep_images
        if policy == "none" or (policy == "ends" and t.iteration not in (0, t.n_iter)):
            return None
        return (Path("kept") / safe_name(t.image) / f"m{t.mask_size}_seed{t.seed}_it{t.iteration:04d}.png").as_posix()

    def _keep_originals(self, originals: dict[str, torch.Tensor]) -> None:
        if self.cfg.keep_images == "none":
            return
        for name, img in originals.items():
            path = self.out / "kept" / safe_name(name) / "original.png"
            if not path.exists():
                save_image(path, img)


def state_to_image(state: torch.Tensor) -> torch.Tensor:
    """A trajectory state (uint8, or float when not quantising) as a float image in [0, 1]."""
    return state.float() / 255.0 if state.dtype == torch.uint8 else state


def safe_name(name: str) -> str:
    """A file-system-safe folder name for an image name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "image"


def run_rip(cfg: RipConfig, out: str | Path, *, log: Log = print, progress: Progress | None = None) -> RunSummary:
    """Run (or resume) the RIP benchmark described by ``cfg`` into the folder ``out``."""
    return RipRun(cfg, out, log=log, progress=progress).run()
