"""Hugging Face hub datasets through the ``datasets`` library (e.g. ``huggan/wikiart`` for RIP).

``HubDataset(name, split=..., streaming=...)`` calls ``datasets.load_dataset`` by the rule of
:mod:`inpaintlab.hub`: first from the ``datasets`` cache alone (a dataset downloaded before
without streaming; no request), then, when it is not there, from the hub (download, or stream)
only if the hub is not switched off (``HF_HUB_OFFLINE=1``) and is reachable; otherwise it fails
at once with one line naming the dataset, the cache folders and what to do. Streaming needs the
network unless the dataset is cached; use it with ``limit`` to take a few images from a large set
without downloading it.
"""

from __future__ import annotations

import contextlib
import io
import itertools
from typing import Any, Iterator, Sequence

import numpy as np
from PIL import Image

from . import DATASETS
from .. import hub
from ..errors import BadImageError, InpaintlabError
from ..hub import hub_cache_dir
from ..images import array_from_pil, pad_rgb, shape_image  # the same decoding rules as image files
from .source import ImageSource, Item

__all__ = ["HubDataset", "detect_image_column"]

_PREFERRED_COLUMNS = ("image", "img", "images", "picture")


def _datasets_cache() -> str:
    try:
        import datasets.config

        return str(datasets.config.HF_DATASETS_CACHE)
    except Exception:  # pragma: no cover - only the message needs it
        return "~/.cache/huggingface/datasets"


def _offline_message(name: str, split: str, streaming: bool, exc: BaseException | str) -> str:
    reason = " ".join(str(exc).split())[:240] or type(exc).__name__
    stream = " (streaming always needs the network)" if streaming else ""
    return (f"cannot load Hugging Face dataset {name!r} (split {split!r}){stream}: the hub cannot be reached "
            f"or offline mode is on (HF_HUB_OFFLINE=1), and it is not in the local caches {_datasets_cache()} / "
            f"{hub_cache_dir()} ({reason}); run once online without --streaming to cache it, or use a folder of images")


@contextlib.contextmanager
def _quiet_cache_notices():
    """Hide datasets' warnings that a cache-only load is "using the latest cached version" (we asked for it)."""
    from datasets.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)


def detect_image_column(features: dict[str, Any] | None, example: dict[str, Any] | None) -> str:
    """The image column: the only ``datasets.Image`` feature (or image-valued field); with several, one named 'image'."""
    candidates: list[str] = []
    if features:
        import datasets

        candidates = [k for k, f in features.items() if isinstance(f, datasets.Image)]
    if not candidates and example:
        candidates = [k for k, v in example.items()
                      if isinstance(v, Image.Image) or (isinstance(v, dict) and isinstance(v.get("bytes"), bytes))]
    if len(candidates) == 1:
        return candidates[0]
    columns = sorted((features or example or {}).keys())
    if not candidates:
        raise InpaintlabError(f"no image column found among {', '.join(columns) or 'no columns'}; "
                              f"name it with image_column=...")
    for preferred in _PREFERRED_COLUMNS:
        if preferred in candidates:
            return preferred
    raise InpaintlabError(f"several image columns ({', '.join(candidates)}); choose one with image_column=...")


def _to_pil(value: Any) -> Image.Image:
    """A decoded ``datasets.Image`` value (PIL image) or an undecoded one (``{"bytes", "path"}``) to PIL."""
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict) and value.get("bytes"):
        return Image.open(io.BytesIO(value["bytes"]))
    if isinstance(value, dict) and value.get("path"):
        return Image.open(value["path"])
    raise ValueError(f"not an image ({type(value).__name__})")


@DATASETS.register("hf")
class HubDataset(ImageSource):
    """Images of a Hugging Face hub dataset, decoded with ``inpaintlab.images``' rules (EXIF, modes, alpha).

    ``image_column`` is detected when not given; ``limit`` takes the first N rows; ``sample`` takes
    N rows drawn uniformly without replacement with ``seed`` (the RIP paper's "100 images randomly
    chosen"; not with streaming); ``config`` is the dataset's subset name. Items are named
    ``<split>-<row:06d>`` after their row in the split; unreadable rows are skipped and listed in
    ``failed`` as ``(name, reason)``. Without streaming, items can be read by index (``[i]``,
    :meth:`read`); a streaming dataset can only be iterated, and needs ``limit`` for its names.
    """

    def __init__(self, name: str, *, split: str = "train", streaming: bool = False, image_column: str | None = None,
                 limit: int | None = None, config: str | None = None, size: int | None = None,
                 pad_color: Sequence[int] = (0, 0, 0), quantize: bool = True, sample: int | None = None,
                 seed: int = 0):
        if limit is not None and limit <= 0:
            raise InpaintlabError(f"limit must be a positive number of images, got {limit}")
        if sample is not None and (sample <= 0 or streaming):
            raise InpaintlabError(f"sample must be a positive number of images, without streaming; got {sample}"
                                  f"{' with streaming' if streaming else ''}")
        super().__init__(size=size, pad_color=pad_rgb(pad_color), quantize=quantize)
        self.name, self.split, self.streaming, self.limit = name, split, streaming, limit
        self.data = self._load(config)
        self.image_column = image_column or detect_image_column(self._features(), self._peek())
        columns = self._features() or self._peek() or {}
        if columns and self.image_column not in columns:
            raise InpaintlabError(f"dataset {name!r} has no column {self.image_column!r}; "
                                  f"columns: {', '.join(sorted(columns))}")
        self._undecoded()
        self.rows: list[int] | None = None  # the split's row of each item, when sampled
        if sample is not None:
            n = len(self.data)
            self.rows = sorted(np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False).tolist())
            self.data = self.data.select(self.rows)

    @classmethod
    def from_spec(cls, spec: str, **options) -> "HubDataset":
        """``NAME[?key=value&...]``: ``huggan/wikiart?sample=100&seed=0``, ``NAME?split=test&limit=50``."""
        from urllib.parse import parse_qsl

        name, _, query = spec.partition("?")
        params: dict[str, object] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key in ("limit", "sample", "seed"):
                if not value.isdigit():
                    raise InpaintlabError(f"hf:{spec}: {key} must be a whole number, got {value!r}")
                params[key] = int(value)
            elif key == "streaming":
                params[key] = value.lower() in ("1", "true", "yes")
            elif key in ("split", "image_column", "config"):
                params[key] = value
            else:
                raise InpaintlabError(f"hf:{spec}: unknown option {key!r}; use split, config, image_column, limit, "
                                      f"sample, seed or streaming")
        if not name:
            raise InpaintlabError(f"'hf:{spec}' names no dataset; write hf:OWNER/NAME, e.g. hf:huggan/wikiart")
        return cls(name, **params, **options)

    @property
    def names(self) -> list[str]:
        """``<split>-<row:06d>`` of every item that will be read."""
        return [f"{self.split}-{r:06d}" for r in self._row_numbers()]

    @property
    def sources(self) -> list[str]:
        return [f"hf://{self.name}/{self.split}/{r}" for r in self._row_numbers()]

    def _row_numbers(self) -> list[int]:
        if self.rows is not None:
            return self.rows[:self.limit]
        return list(range(len(self)))

    def read(self, i: int) -> np.ndarray:
        """Item ``i`` decoded (native size); a streaming dataset cannot be read by index."""
        if self.streaming:
            raise InpaintlabError(f"Hugging Face dataset {self.name!r} is streamed, so its images can only be read in "
                                  f"order; drop streaming (it needs a download into the cache) for this command")
        try:
            with _to_pil(self.data[i][self.image_column]) as im:
                return array_from_pil(im, pad_color=self.pad_color)
        except BadImageError:
            raise
        except Exception as exc:  # decoders raise many types on corrupt data; all mean "unreadable"
            raise BadImageError(f"cannot read image {self.sources[i]}: {exc}") from None

    def _load(self, config: str | None):
        """``datasets.load_dataset``, the cache first (:func:`inpaintlab.hub.from_cache_or_hub`); errors in one line."""
        import datasets

        def load(local_only: bool):
            with _quiet_cache_notices() if local_only else contextlib.nullcontext():
                return datasets.load_dataset(self.name, config, split=self.split, streaming=self.streaming)

        try:
            return hub.from_cache_or_hub(load, final=(datasets.exceptions.DatasetNotFoundError,))
        except hub.HubUnavailable as exc:
            # Why the hub was not tried; and what the cache said, unless only "not cached" (a ConnectionError).
            seen = "" if isinstance(exc.cause, ConnectionError) else f"; from the cache: {exc.reason}"
            raise InpaintlabError(_offline_message(self.name, self.split, self.streaming, exc.why + seen)) from None
        except datasets.exceptions.DatasetNotFoundError as exc:
            reason = " ".join(str(exc).split())[:200]
            raise InpaintlabError(f"Hugging Face dataset {self.name!r} was not found ({reason}); check the name, "
                                  f"or log in (`hf auth login`) for a gated dataset") from None
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise InpaintlabError(_offline_message(self.name, self.split, self.streaming, exc)) from None
        except ValueError as exc:  # e.g. an unknown split or subset
            reason = " ".join(str(exc).split())[:200]
            raise InpaintlabError(f"cannot load Hugging Face dataset {self.name!r} (split {self.split!r}): {reason}") from None

    def _undecoded(self) -> None:
        # Decode the image bytes ourselves: a corrupt row is then skipped and listed, instead of
        # raising inside the library's iterator, and the decoding rules are inpaintlab's.
        import datasets

        feature = (self._features() or {}).get(self.image_column)
        if isinstance(feature, datasets.Image) and feature.decode:
            self.data = self.data.cast_column(self.image_column, datasets.Image(decode=False))

    def _features(self) -> dict[str, Any] | None:
        return getattr(self.data, "features", None) or None

    def _peek(self) -> dict[str, Any] | None:
        if self._features():
            return None
        return next(iter(self.data), None)

    def __len__(self) -> int:
        """Rows that will be read (``limit`` applied); a streaming dataset without ``limit`` has no length."""
        if self.streaming:
            if self.limit is None:
                raise TypeError("a streaming dataset without limit has no length")
            return self.limit
        n = len(self.data)
        return n if self.limit is None else min(n, self.limit)

    def __iter__(self) -> Iterator[Item]:
        if not self.streaming:
            yield from super().__iter__()
            return
        # a stream is read in order, once
        self.failed = []
        for position, row in enumerate(itertools.islice(iter(self.data), self.limit)):
            name, source = f"{self.split}-{position:06d}", f"hf://{self.name}/{self.split}/{position}"
            try:
                with _to_pil(row[self.image_column]) as im:
                    tensor = shape_image(array_from_pil(im, pad_color=self.pad_color), size=self.size,
                                         pad_color=self.pad_color, quantize=self.quantize)
            except Exception as exc:  # decoders raise many types on corrupt data; all mean "unreadable"
                self.failed.append((source, str(exc).removeprefix("cannot decode image: ")))
                continue
            yield Item(name=name, image=tensor, source=source)

    def __repr__(self) -> str:
        return f"HubDataset({self.name!r}, split={self.split!r}, streaming={self.streaming})"
