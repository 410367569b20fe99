"""MISATO-style benchmark builder (ASUKA, Sec. 4): representative images per domain, with masks.

For each domain (a folder or glob of images), :func:`build_misato`:

1. embeds every readable image with CLIP's image encoder (``image_embeds``, float32, batched);
   unreadable files are skipped and listed;
2. L2-normalises the embeddings (CLIP's cosine space) and clusters them with scikit-learn's
   ``BisectingKMeans(n_clusters=per_domain, random_state=seed)``;
3. takes, for each cluster, the member with the smallest **Euclidean distance between its
   normalised embedding and the cluster centre** (the k-means objective's own metric; ties go
   to the first file in sorted order);
4. centre-crops each chosen image to a square and resizes it to ``size`` (area interpolation
   when shrinking, bicubic when enlarging, as ``inpaintlab.images.resize``), and saves
   ``OUT/images/<domain>/<name>.png``;
5. draws a mask per image with ``MASKS.get(mask_kind)(**mask_params)`` and the generator
   ``np.random.default_rng(np.random.SeedSequence([seed, domain_index, i]))``, where
   ``domain_index`` is the domain's position in the given order and ``i`` the image's rank
   among its domain's chosen images in sorted file order, and saves it as
   ``OUT/masks/<domain>/<name>.png`` (white = hole);
6. writes ``OUT/manifest.json``: the settings, every item (domain, source, cluster id and size,
   distance to the centre, hole ratio, image and mask files), the skipped files.

**Masks.** The default ``mask_kind`` is ``misato``, ASUKA's training mixture, and the builder's
default parameters for it are :data:`BUILDER_MASK_DEFAULTS` ``{"rectangles": False}``: MISATO's
masks are the mixture *without* the rectangle and complement-rectangle families (ASUKA, Sec. 4).
``mask_params`` are applied on top (``--mask-param rectangles=true`` gives the training mixture);
the manifest records the resolved parameters, so a build made before this default (whose record
has no ``rectangles``) is a different build and a rerun into its folder is refused. The mixture's
hole-ratio range (``lo``, ``hi``) applies to the drawn mask, before a foreground is removed.

**Background domains** (ASUKA's COCO domain: "we identify the foreground with provided
segmentation and remove it from the generated masks"). ``foreground`` maps a domain name to a
folder of per-image foreground masks, ``<image stem>.png`` (or .jpg / .jpeg / .bmp / .webp, as
``inpaintlab train --foreground``; white = foreground, read by
:func:`inpaintlab.masks.background.read_foreground` at the image's native size). For such a
domain each foreground mask is centre-cropped exactly as its image and resized to ``size`` with
pixel-centre nearest-neighbour (``cv2.INTER_NEAREST_EXACT``, PIL's ``NEAREST``), and the hole is
``drawn hole AND NOT foreground``: the foreground is never in the hole. When that leaves a hole of
at most ``foreground_min_hole`` of the image (default 0.01; 0 refuses only an empty hole), the
mask is drawn again *from the same generator* (so a result depends on the seed alone), at most
:data:`FOREGROUND_MAX_TRIES` draws, after which the build stops with one line naming the image.
Such items also record ``foreground`` (the mask file), ``foreground_ratio``, ``drawn_hole_ratio``
(the accepted draw, before removal) and ``draws``; their ``hole_ratio`` is after removal. A
chosen image without its foreground mask is an error (before any image is written), never a
silent skip: a benchmark's domains must hold the images it says. Domains without a folder are
built exactly as before. ``foreground_min_hole`` is recorded only when a domain has a folder.

A domain with fewer readable images than ``per_domain`` is an error, unless ``allow_fewer``,
which takes all of that domain's images (each its own cluster, distance 0). Every file is written
atomically; CLIP embeddings are cached in ``OUT/embeddings/<domain>.npz`` so a rerun of an
interrupted build does not embed again. Rerunning into a folder that holds a build with other
settings is refused, naming the keys that differ; ``batch_size`` and ``device`` may change.
Caveat: CLIP's float arithmetic may differ in the last bits between batch sizes and devices,
which can flip a near-tie in the clustering.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import torch

from ..atomic import atomic_write
from ..errors import InpaintlabError
from ..images import resize, save_image, save_mask, to_tensor
from ..masks.background import foreground_file
from ..runs import check_compatible, versions
from .clip import DEFAULT_CLIP, load_clip_vision
from . import open_image_set
from .folder import FolderDataset
from .source import ImageSource

__all__ = ["MisatoConfig", "BuildSummary", "build_misato", "select_representatives", "centre_crop",
           "mask_rng", "effective_mask_params", "crop_resize_foreground", "BUILDER_MASK_DEFAULTS", "Embed"]

#: A feature function: a list of ``(1, 3, H, W)`` images in [0, 1] -> float32 ``(N, D)``.
Embed = Callable[[Sequence[torch.Tensor]], np.ndarray]

MANIFEST = "manifest.json"
#: the builder's default mask parameters per mask kind, under the given ``mask_params``: MISATO has no rectangles
BUILDER_MASK_DEFAULTS: dict[str, dict[str, Any]] = {"misato": {"rectangles": False}}
#: draws of one background-domain mask before giving up (each from the same generator)
FOREGROUND_MAX_TRIES = 100
_DOMAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class MisatoConfig:
    """Everything that determines a MISATO-style build (defaults: the paper's 500 per domain at 512)."""

    domains: list[tuple[str, str]]  # (name, folder or glob), in order: the order seeds the masks
    per_domain: int = 500
    size: int = 512
    seed: int = 0
    clip: str = DEFAULT_CLIP
    mask_kind: str = "misato"
    mask_params: dict[str, Any] = field(default_factory=dict)  # on top of BUILDER_MASK_DEFAULTS[mask_kind]
    foreground: dict[str, str] = field(default_factory=dict)  # domain name -> folder of <image stem>.png, white
    foreground_min_hole: float = 0.01  # a background hole must cover more than this share of the image
    allow_fewer: bool = False
    # Run-time options below: they never change a result, so a rerun may change them.
    batch_size: int = 32
    device: str = "cpu"


RUNTIME_KEYS = frozenset({"batch_size", "device"})


@dataclass
class BuildSummary:
    """What a build did: items per domain, skipped files, and where the manifest is."""

    out: Path
    counts: dict[str, int]
    skipped: list[tuple[str, str]]
    manifest: Path


# ------------------------------------------------------------------------------------------------
# validation


def validate(cfg: MisatoConfig) -> None:
    """Reject impossible settings early, one line each."""
    if not cfg.domains:
        raise InpaintlabError("no domains given; add at least one --domain NAME=DIR")
    names = [name for name, _ in cfg.domains]
    for name in names:
        if not _DOMAIN_NAME.match(name):
            raise InpaintlabError(f"domain name {name!r} must be letters, digits, '.', '_' or '-' (it names a folder)")
    if len(set(names)) != len(names):
        raise InpaintlabError(f"domain names repeat: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    for what, value in (("per-domain", cfg.per_domain), ("size", cfg.size), ("batch-size", cfg.batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InpaintlabError(f"--{what} must be a positive integer, got {value!r}")
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise InpaintlabError(f"--seed must be a non-negative integer, got {cfg.seed!r}")
    if not isinstance(cfg.foreground, dict):
        raise InpaintlabError(f"foreground must map domain names to folders, got {type(cfg.foreground).__name__}")
    for name, folder in cfg.foreground.items():
        if name not in names:
            raise InpaintlabError(f"--foreground {name}={folder}: there is no domain {name!r} (domains: "
                                  f"{', '.join(names)})")
        if not Path(folder).expanduser().is_dir():
            raise InpaintlabError(f"--foreground {name}={folder}: no such folder (one mask per image, "
                                  f"<image stem>.png, white = foreground)")
    m = cfg.foreground_min_hole
    if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 <= m < 1:
        raise InpaintlabError(f"--foreground-min-hole must be a number in [0, 1), got {m!r}")


def effective_mask_params(cfg: MisatoConfig) -> dict[str, Any]:
    """The mask parameters a build uses: :data:`BUILDER_MASK_DEFAULTS` of its kind, then ``cfg.mask_params``."""
    return {**BUILDER_MASK_DEFAULTS.get(cfg.mask_kind, {}), **cfg.mask_params}


def make_mask_generator(kind: str, params: dict[str, Any]):
    """The mask generator ``kind`` with ``params`` checked against its typed signature (one line if wrong)."""
    from ..masks.base import make_generator

    return make_generator(kind, **params)


def mask_rng(seed: int, domain_index: int, i: int) -> np.random.Generator:
    """The generator of item ``i`` of domain ``domain_index``: ``default_rng(SeedSequence([seed, d, i]))``."""
    return np.random.default_rng(np.random.SeedSequence([seed, domain_index, i]))


# ------------------------------------------------------------------------------------------------
# the output folder


def _config_record(cfg: MisatoConfig) -> dict[str, Any]:
    from ..masks.base import resolved_params

    record = asdict(cfg)
    record["domains"] = [[name, spec] for name, spec in cfg.domains]
    # typed, defaults included: "16" on the command line and 16 from Python are one build
    record["mask_params"] = resolved_params(cfg.mask_kind, effective_mask_params(cfg))
    record["foreground"] = {name: str(Path(folder).expanduser().resolve()) for name, folder in cfg.foreground.items()}
    if not cfg.foreground:
        del record["foreground_min_hole"]  # no effect without a foreground: builds made before it stay comparable
    return record


def _read_manifest(out: Path) -> dict[str, Any] | None:
    path = out / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InpaintlabError(f"cannot read {path} ({exc}); use another --out, or delete that folder") from None


def prepare_out(out: Path, config: dict[str, Any], sources: dict[str, list[str]]) -> None:
    """Refuse a non-empty ``out`` that is not a build with the same settings and source files."""
    if out.exists() and not out.is_dir():
        raise InpaintlabError(f"--out {out} is a file, not a folder")
    saved = _read_manifest(out) if out.is_dir() else None
    if saved is None:
        if out.is_dir() and any(out.iterdir()):
            raise InpaintlabError(f"--out {out} is not empty and holds no MISATO build ({MANIFEST}); "
                                  f"use an empty or new folder")
        return
    if not saved.get("complete") and not (out / "images").exists():
        return  # an earlier attempt stopped before writing any image (e.g. a domain had too few): start over
    check_compatible({"config": saved.get("config", {}), "sources": saved.get("sources")},
                     {"config": config, "sources": sources}, out, runtime_keys=RUNTIME_KEYS, inputs_key="sources",
                     what="a MISATO build")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=False).encode()
    atomic_write(path, lambda f: f.write(text))


# ------------------------------------------------------------------------------------------------
# steps


def embed_domain(dataset: ImageSource, embed: Embed, batch_size: int,
                 advance: Callable[[int], None] = lambda n: None) -> tuple[list[int], np.ndarray, list[tuple[str, str]]]:
    """Embed every readable image of ``dataset`` in batches: (item indices, float32 (N, D), skipped)."""
    index_of = {s: k for k, s in enumerate(dataset.sources)}
    kept: list[int] = []
    chunks: list[np.ndarray] = []
    batch: list[torch.Tensor] = []
    seen = 0

    def flush() -> None:
        if batch:
            chunks.append(np.asarray(embed(batch), dtype=np.float32).reshape(len(batch), -1))
            batch.clear()

    for item in dataset:
        kept.append(index_of[item.source])
        batch.append(item.image)
        if len(batch) == batch_size:
            flush()
        done = len(kept) + len(dataset.failed)
        advance(done - seen)
        seen = done
    flush()
    advance(len(dataset) - seen)
    features = np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)
    return kept, features, list(dataset.failed)


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (CLIP features are compared by cosine similarity)."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, np.finfo(x.dtype).tiny)


def select_representatives(features: np.ndarray, k: int, seed: int) -> list[tuple[int, int, int, float]]:
    """Bisecting k-means (Steinbach et al. 2000) into ``k`` clusters; per cluster the row nearest its centre.

    Returns ``(row, cluster, cluster_size, distance)`` per non-empty cluster, sorted by row. With
    no more rows than ``k``, every row is its own cluster (distance 0).
    """
    n = features.shape[0]
    if n <= k:
        return [(r, r, 1, 0.0) for r in range(n)]
    from sklearn.cluster import BisectingKMeans

    x = l2_normalise(features.astype(np.float32))
    km = BisectingKMeans(n_clusters=k, random_state=seed).fit(x)
    labels, centres = km.labels_, km.cluster_centers_
    picks = []
    for c in range(k):
        members = np.flatnonzero(labels == c)
        if members.size == 0:
            continue
        dist = np.linalg.norm(x[members].astype(np.float64) - centres[c].astype(np.float64), axis=1)
        best = int(np.argmin(dist))  # first minimum: the earliest file wins a tie
        picks.append((int(members[best]), c, int(members.size), float(dist[best])))
    return sorted(picks)


def centre_crop(image: np.ndarray) -> np.ndarray:
    """The largest centred square of an HxWxC array (an odd remainder goes to the bottom / right)."""
    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return image[top:top + s, left:left + s]


def _cached_embeddings(path: Path, clip: str, sources: list[str]) -> tuple[list[int], np.ndarray, list] | None:
    """Embeddings saved by an earlier run of the same build, or None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["clip"]) != clip or z["sources"].tolist() != sources:
                return None
            failed = [tuple(row) for row in z["failed"].tolist()]
            return z["kept"].astype(int).tolist(), z["features"].astype(np.float32), failed
    except (OSError, KeyError, ValueError):
        return None


def _save_embeddings(path: Path, clip: str, sources: list[str], kept: list[int], features: np.ndarray,
                     failed: list[tuple[str, str]]) -> None:
    def write(f) -> None:
        np.savez(f, clip=np.asarray(clip), sources=np.asarray(sources, dtype=str), kept=np.asarray(kept, np.int64),
                 features=features, failed=np.asarray(failed, dtype=str).reshape(-1, 2))

    atomic_write(path, write)


def write_item(source: np.ndarray, name: str, out: Path, domain: str, size: int, hole: np.ndarray) -> dict[str, str]:
    """Centre crop + resize the source image (HxWx3, native size), save it and its mask; return the relative names."""
    image = resize(centre_crop(source), size)
    rel_image = Path("images") / domain / f"{name}.png"
    rel_mask = Path("masks") / domain / f"{name}.png"
    save_image(out / rel_image, to_tensor(image))
    save_mask(out / rel_mask, hole)
    return {"image": rel_image.as_posix(), "mask": rel_mask.as_posix()}


def draw_mask(generate, size: int, rng: np.random.Generator, kind: str) -> np.ndarray:
    """One HxW hole mask from the generator, checked: the right shape, binary (1 = hole)."""
    hole = np.asarray(generate(size, size, rng))
    if hole.shape != (size, size) or not np.isin(hole, (0, 1)).all():
        raise InpaintlabError(f"mask kind {kind!r} returned a {hole.shape} mask that is not binary {size}x{size}")
    return hole.astype(np.float32)


def crop_resize_foreground(foreground: np.ndarray, size: int) -> np.ndarray:
    """A native-size boolean foreground cut as its image is: centre square, then pixel-centre nearest to ``size``."""
    square = centre_crop(np.asarray(foreground, bool))
    if square.shape != (size, size):
        # INTER_NEAREST_EXACT samples at pixel centres (as PIL's NEAREST), the grid INTER_AREA / INTER_CUBIC use
        square = cv2.resize(square.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST_EXACT) > 0
    return square


def background_mask(generate, size: int, rng: np.random.Generator, kind: str, foreground: np.ndarray,
                    min_hole: float, what: str) -> tuple[np.ndarray, dict[str, Any]]:
    """``drawn hole AND NOT foreground``, drawn again from ``rng`` while it covers at most ``min_hole``.

    Returns the hole and what the manifest records of it (ratios, draws); after
    :data:`FOREGROUND_MAX_TRIES` draws, one :class:`HoleRatioError` line naming ``what``.
    """
    from ..masks.background import background_hole
    from ..masks.base import HoleRatioError

    drawn: list[float] = []

    def draw(height: int, width: int, r: np.random.Generator) -> np.ndarray:
        hole = draw_mask(generate, size, r, kind)
        drawn.append(float(hole.mean()))
        return hole

    try:
        hole = background_hole(draw, foreground, rng, lo=min_hole, hi=1.0, max_tries=FOREGROUND_MAX_TRIES)
    except HoleRatioError:
        raise HoleRatioError(f"{what}: none of {FOREGROUND_MAX_TRIES} masks drawn left more than {min_hole:g} of the "
                             f"image outside the foreground ({foreground.mean():.0%} of the image; the drawn holes "
                             f"covered {min(drawn):.0%}-{max(drawn):.0%}); lower --foreground-min-hole, or check "
                             f"that mask") from None
    return hole, {"foreground_ratio": float(foreground.mean()), "drawn_hole_ratio": drawn[-1], "draws": len(drawn)}


def check_foreground_files(cfg: MisatoConfig, datasets: list[ImageSource], embedded, selections) -> dict[str, list]:
    """Each background domain's foreground file per chosen image, in pick order; a missing one is one error line."""
    files: dict[str, list] = {}
    for (name, _), ds, (kept, _, _), picks in zip(cfg.domains, datasets, embedded, selections):
        folder = cfg.foreground.get(name)
        if folder is None:
            continue
        files[name] = [foreground_file(folder, ds.names[kept[row]]) for row, *_ in picks]
        missing = [ds.names[kept[row]] for (row, *_), f in zip(picks, files[name]) if f is None]
        if missing:
            first = Path(folder).expanduser() / f"{Path(missing[0]).stem}.png"
            more = f" (and {len(missing) - 1} more chosen images)" if len(missing) > 1 else ""
            raise InpaintlabError(f"domain {name!r}: no foreground mask {first} for image {missing[0]}{more}; "
                                  f"add <image stem>.png (white = foreground) to {folder}")
    return files


# ------------------------------------------------------------------------------------------------
# the build


def source_ids(dataset: ImageSource) -> list[str]:
    """Each item's source as recorded in the manifest: absolute paths for files, the source itself otherwise."""
    return [str(Path(s).resolve()) if isinstance(dataset, FolderDataset) else s for s in dataset.sources]


def build_misato(cfg: MisatoConfig, out: str | Path, *, embed: Embed | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 log: Callable[[str], None] = lambda message: None) -> BuildSummary:
    """Build a MISATO-style benchmark into ``out`` (see the module docstring for the steps).

    ``embed`` replaces the CLIP encoder (for tests or other features); the default loads
    ``cfg.clip`` with :func:`load_clip_vision` on ``cfg.device``. ``progress(done, total)``
    counts the images embedded over all domains.
    """
    out = Path(out)
    # 1. settings, mask generator and source files: every input error before any work
    validate(cfg)
    generate = make_mask_generator(cfg.mask_kind, effective_mask_params(cfg))
    datasets = [open_image_set(spec, size=None) for _, spec in cfg.domains]
    for (name, spec), ds in zip(cfg.domains, datasets):
        if len(ds) < cfg.per_domain and not cfg.allow_fewer:
            raise InpaintlabError(f"domain {name!r} has {len(ds)} images in {spec}, fewer than "
                                  f"--per-domain {cfg.per_domain}; add images, lower --per-domain, or --allow-fewer")
    config = _config_record(cfg)
    sources = {name: source_ids(ds) for (name, _), ds in zip(cfg.domains, datasets)}
    prepare_out(out, config, sources)
    if embed is None:
        embed = load_clip_vision(cfg.clip, device=cfg.device)  # a missing model fails before anything is written
        cache_key: str | None = cfg.clip
    else:
        cache_key = None  # an injected feature function is not cached
    base = {"config": config, "versions": versions(), "sources": sources}
    _write_json(out / MANIFEST, {**base, "complete": False})

    # 2. embeddings per domain
    embedded = []
    total, done = sum(len(ds) for ds in datasets), 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    for (name, _), ds in zip(cfg.domains, datasets):
        cache = out / "embeddings" / f"{name}.npz"
        hit = _cached_embeddings(cache, cache_key, sources[name]) if cache_key else None
        if hit is None:
            hit = embed_domain(ds, embed, cfg.batch_size, advance)
            if cache_key:
                _save_embeddings(cache, cache_key, sources[name], *hit)
        else:
            advance(len(ds))
        embedded.append(hit)

    # 3. clusters and representatives of every domain (all count checks before any image is written)
    selections = []
    skipped: list[tuple[str, str]] = []
    for (name, spec), (kept, features, failed) in zip(cfg.domains, embedded):
        skipped.extend(failed)
        for path, why in failed:
            log(f"skipped unreadable image {path}: {why}")
        if len(kept) < cfg.per_domain and not cfg.allow_fewer:
            raise InpaintlabError(f"domain {name!r} has {len(kept)} readable images in {spec} ({len(failed)} "
                                  f"unreadable), fewer than --per-domain {cfg.per_domain}; add images, lower "
                                  f"--per-domain, or --allow-fewer")
        picks = select_representatives(features, cfg.per_domain, cfg.seed)
        if len(picks) < cfg.per_domain and not cfg.allow_fewer:
            raise InpaintlabError(f"domain {name!r} gave only {len(picks)} non-empty clusters of {cfg.per_domain} "
                                  f"(duplicate images?); lower --per-domain, or --allow-fewer")
        selections.append(picks)
    foreground_files = check_foreground_files(cfg, datasets, embedded, selections)

    # 4. images and masks
    items: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for d, ((name, _), ds, (kept, _, _), picks) in enumerate(zip(cfg.domains, datasets, embedded, selections)):
        for i, (row, cluster, cluster_size, distance) in enumerate(picks):
            k = kept[row]
            source = ds.read(k)
            rng = mask_rng(cfg.seed, d, i)
            extra: dict[str, Any] = {}
            if name in foreground_files:
                from ..masks.background import read_foreground

                fg_path = foreground_files[name][i]
                fg = crop_resize_foreground(read_foreground(fg_path, *source.shape[:2]), cfg.size)
                hole, extra = background_mask(generate, cfg.size, rng, cfg.mask_kind, fg, cfg.foreground_min_hole,
                                              f"domain {name!r}, image {ds.names[k]} (foreground {fg_path})")
                extra = {"foreground": str(fg_path.resolve()), **extra}
            else:
                hole = draw_mask(generate, cfg.size, rng, cfg.mask_kind)
            files = write_item(source, ds.names[k], out, name, cfg.size, hole)
            items.append({"domain": name, "name": ds.names[k], **files, "source": sources[name][k],
                          "cluster": cluster, "cluster_size": cluster_size, "distance": distance,
                          "hole_ratio": float(hole.mean()), **extra})
        counts[name] = len(picks)
        log(f"domain {name}: {len(picks)} images from {len(kept)} readable files")

    # 5. the manifest, last: its 'complete' flag says the build finished
    skipped_rows = [{"path": p, "reason": r} for p, r in skipped]
    _write_json(out / MANIFEST, {**base, "complete": True, "counts": counts, "items": items, "skipped": skipped_rows})
    return BuildSummary(out=out, counts=counts, skipped=skipped, manifest=out / MANIFEST)
