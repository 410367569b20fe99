"""Runs are data: the pieces every run folder shares (RIP runs, evaluations, benchmark builds).

A run folder holds its resolved configuration in JSON. Running the same command again resumes;
running a different one into the same folder is refused, naming the keys that differ. The keys
that never change a result (batch size, device, ...) may differ between a run and its resume.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Collection

from .atomic import atomic_write
from .errors import ConfigMismatchError, InpaintlabError

#: Packages whose versions can change a result; recorded with every run.
RECORDED_PACKAGES = ("inpaintlab", "torch", "numpy", "opencv-python-headless", "scikit-image", "pillow",
                     "scikit-learn", "transformers", "diffusers")


def versions() -> dict[str, str]:
    """Versions of Python and of the installed packages that can change a result."""
    out = {"python": platform.python_version()}
    for pkg in RECORDED_PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def result_view(record: dict[str, Any], runtime_keys: Collection[str], inputs_key: str) -> dict[str, Any]:
    """What must match for a resume: the config minus run-time keys, and the resolved inputs."""
    cfg = {k: v for k, v in record.get("config", {}).items() if k not in runtime_keys}
    return {**{f"config.{k}": v for k, v in cfg.items()}, f"{inputs_key} (resolved files)": record.get(inputs_key)}


def check_compatible(saved: dict[str, Any], new: dict[str, Any], out: Path, *, runtime_keys: Collection[str],
                     inputs_key: str, what: str = "run") -> None:
    """Refuse to resume into ``out`` with a different configuration, naming the keys."""
    a, b = (result_view(r, runtime_keys, inputs_key) for r in (saved, new))
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if diff:
        raise ConfigMismatchError(
            f"{out} holds a {what} with a different configuration (differs in: {', '.join(diff)}); "
            f"use another --out, or delete that folder to start over")


def read_record(path: Path) -> dict[str, Any] | None:
    """A saved ``config.json``, or None when there is none yet."""
    return json.loads(path.read_text()) if path.exists() else None


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write ``config.json`` atomically."""
    text = json.dumps(record, indent=2, sort_keys=True).encode()
    atomic_write(path, lambda f: f.write(text))


Loader = Callable[[list[str]], tuple[dict[str, Any], dict[str, str]]]


def metrics_for_run(record: dict[str, Any], saved: dict[str, Any] | None, requested: list[str], load: Loader,
                    out: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The metrics a run scores with: the first run's on a resume, so every row has the same set.

    ``load(names) -> (metrics, skipped)`` builds what it can and says why it skipped the rest;
    a fresh run skips what is missing, a resume refuses to go on without a metric it used.
    Records ``metrics_used`` (and the first run's versions) in ``record``.
    """
    if saved is not None and saved.get("metrics_used") is not None:
        record["metrics_used"] = saved["metrics_used"]
        record["versions_first_run"] = saved.get("versions_first_run", saved.get("versions"))
        metrics, skipped = load(record["metrics_used"])
        if skipped:
            raise InpaintlabError(f"cannot resume {out}: it was scored with {', '.join(skipped)}, "
                                  f"now unavailable ({next(iter(skipped.values()))})")
        return metrics, {}
    metrics, skipped = load(requested)
    record["metrics_used"] = [name for name in requested if name not in skipped]
    return metrics, skipped
