"""The Hugging Face hub: where models and datasets are looked for, and one rule for going online.

Used by the diffusion backends (diffusers pipelines), the CLIP image encoder (transformers) and
the ``hf:`` image sets (datasets). The rule, :func:`from_cache_or_hub`:

1. **the local cache first**: the library is called with local-only settings
   (``local_files_only=True``, and huggingface_hub's and datasets' offline switches on for the
   duration of the call, see :func:`offline_mode`), so it makes no request and no retry;
2. **the network only if allowed and reachable**: when the cache does not have it, the library
   is called again with the network only if the hub is not switched off (``HF_HUB_OFFLINE``, read
   at call time, or ``local_files_only=True``) and is reachable (:func:`hub_reachable`: a TCP
   connection to the endpoint, or to the HTTPS proxy the environment names, opens within
   ~3 s; decided once per process);
3. **otherwise one line**: :class:`HubUnavailable` says why, and each caller turns it into its
   own one-line error naming the repo, the cache folder and what to do.

Without step 2's check, an unreachable hub costs huggingface_hub's retries (5, backing off to
8 s: ~25 s and ~11 lines on stderr) before the same error.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Callable, Iterator, TypeVar
from urllib.parse import urlparse

__all__ = [
    "PROBE_TIMEOUT_S",
    "SWITCHED_OFF",
    "HubUnavailable",
    "not_cached_message",
    "hub_cache_dir",
    "hub_endpoint",
    "hub_offline",
    "hub_reachable",
    "switched_off",
    "network_allowed",
    "is_local_path",
    "offline_mode",
    "from_cache_or_hub",
]

T = TypeVar("T")

PROBE_TIMEOUT_S = 3.0  # name lookup + TCP connect to the endpoint
SWITCHED_OFF = "the hub is switched off (local_files_only / HF_HUB_OFFLINE)"

_reachable: dict[tuple[str, int], bool] = {}  # (host, port) probed -> result, for this process


class HubUnavailable(Exception):
    """Not in the local cache, and the network may not be tried: ``why`` says which.

    ``switched_off``: the hub is off (HF_HUB_OFFLINE / local_files_only), else unreachable;
    ``cause``: the library's error from the cache-only attempt.
    """

    def __init__(self, why: str, *, switched_off: bool, cause: BaseException):
        super().__init__(why)
        self.why, self.switched_off, self.cause = why, switched_off, cause

    @property
    def reason(self) -> str:
        """The cache-only attempt's error, on one line."""
        return " ".join(str(self.cause).split())[:160] or type(self.cause).__name__


def hub_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The hub cache folder a load uses: ``cache_dir`` when given, else huggingface_hub's
    (``HF_HUB_CACHE`` / ``HF_HOME``, default ``~/.cache/huggingface/hub``, as read when it was imported)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hub_endpoint() -> str:
    """The hub's URL (``HF_ENDPOINT``, default https://huggingface.co)."""
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


def hub_offline() -> bool:
    """True when the user switched the hub off: ``HF_HUB_OFFLINE`` read now (1/true/yes/on), or, when
    it is unset, huggingface_hub's own switch (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE at its import)."""
    value = os.environ.get("HF_HUB_OFFLINE", "").strip()
    if value:
        return value.upper() in ("1", "ON", "YES", "TRUE")
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def switched_off(local_files_only: bool | None = None) -> bool:
    """``local_files_only`` when given (``False`` allows the network even under HF_HUB_OFFLINE), else :func:`hub_offline`."""
    return hub_offline() if local_files_only is None else bool(local_files_only)


def _probe_address() -> tuple[str, int]:
    """Where a request to the endpoint would connect first: the HTTPS proxy the environment names, else the endpoint."""
    url = urlparse(hub_endpoint())
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(url.scheme or "https") or proxies.get("all")
    if proxy and not urllib.request.proxy_bypass(host):
        p = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        if p.hostname:
            return p.hostname, p.port or (443 if p.scheme == "https" else 80)
    return host, port


def _connects(host: str, port: int, timeout: float) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds, name lookup included."""
    result: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except Exception:  # no route, refused, lookup failure, or a sandbox refusing the connect
            result.append(False)

    # In a thread, so that a name lookup that hangs (getaddrinfo has no timeout) is bounded too.
    thread = threading.Thread(target=attempt, name="inpaintlab-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def hub_reachable(timeout: float = PROBE_TIMEOUT_S, *, refresh: bool = False) -> bool:
    """Whether the hub can be reached: a TCP connection opens within ``timeout`` seconds.

    Decided once per process (per endpoint); ``refresh=True`` probes again.
    """
    address = _probe_address()
    if refresh or address not in _reachable:
        _reachable[address] = _connects(*address, timeout)
    return _reachable[address]


def network_allowed(local_files_only: bool | None = None) -> bool:
    """Step 2 of the rule: the hub is not switched off and is reachable."""
    return not switched_off(local_files_only) and hub_reachable()


def is_local_path(model_path: str) -> bool:
    """A local folder, or something that can only be meant as one (absolute, ./, ~, a/b/c)."""
    p = Path(model_path).expanduser()
    return p.exists() or p.is_absolute() or model_path.startswith((".", "~")) or model_path.count("/") != 1


@contextlib.contextmanager
def offline_mode() -> Iterator[None]:
    """huggingface_hub (and datasets, once imported) in offline mode for the duration: no request, no retry.

    Both read their switch at call time -- ``huggingface_hub.constants.HF_HUB_OFFLINE`` (through
    ``is_offline_mode()``, which transformers and diffusers use too) and
    ``datasets.config.HF_HUB_OFFLINE`` -- while the environment variables are read once, at
    import, so setting ``HF_HUB_OFFLINE`` later would change nothing. The switches are restored
    afterwards. Process-wide: another thread loading from the hub meanwhile is offline too.
    """
    from huggingface_hub import constants

    targets = [(constants, "HF_HUB_OFFLINE")]
    ds_config = sys.modules.get("datasets.config")
    if ds_config is not None:
        targets += [(ds_config, "HF_HUB_OFFLINE"), (ds_config, "HF_DATASETS_OFFLINE")]
    saved = [(module, name, getattr(module, name)) for module, name in targets if hasattr(module, name)]
    for module, name, _ in saved:
        setattr(module, name, True)
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' load reports (keys a partial load skips on purpose) and progress bars, then restore them."""
    from transformers.utils import logging

    level, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def from_cache_or_hub(
    load: Callable[[bool], T],
    *,
    local_files_only: bool | None = None,
    not_cached: tuple[type[BaseException], ...] = (OSError, ValueError),
    final: tuple[type[BaseException], ...] = (),
) -> T:
    """The one offline rule around a library call ``load(local_only)``.

    1. ``load(True)`` under :func:`offline_mode`: the cache only. Its errors in ``final`` are
       raised as they are (e.g. "this dataset does not exist"); those in ``not_cached`` mean
       "not in the cache".
    2. Not in the cache: :class:`HubUnavailable` at once when the hub is switched off
       (``local_files_only=True``, or ``None`` with HF_HUB_OFFLINE) or unreachable.
    3. Otherwise ``load(False)``: the library downloads; its errors are raised as they are.
    """
    try:
        with offline_mode():
            return load(True)
    except final:
        raise
    except not_cached as exc:
        miss = exc
    if switched_off(local_files_only):
        raise HubUnavailable(SWITCHED_OFF, switched_off=True, cause=miss)
    if not hub_reachable():
        host, port = _probe_address()
        raise HubUnavailable(f"the hub {hub_endpoint()} is unreachable (no connection to {host}:{port} "
                             f"within {PROBE_TIMEOUT_S:g} s)", switched_off=False, cause=miss)
    return load(False)


def not_cached_message(what: str, name: str, exc: HubUnavailable, cache_dir: str | os.PathLike | None = None) -> str:
    """The one line for a model that is not in the cache and may not be downloaded now, with what to do."""
    why = "the hub is switched off (HF_HUB_OFFLINE=1 or local_files_only)" if exc.switched_off else exc.why
    return (f"{what} {name!r} is not in the Hugging Face cache {hub_cache_dir(cache_dir)} and {why}; download it "
            f"once with network access (`hf download {name}`), or pass a folder saved with save_pretrained")
