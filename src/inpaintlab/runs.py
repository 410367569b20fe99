"""Runs are data: the pieces every run folder shares (RIP runs, evaluations, benchmark builds).

A run folder holds its resolved configuration in JSON. Running the same command again resumes;
running a different one into the same folder is refused, naming the keys that differ. The keys
that never change a result (batch size, device, ...) may differ between a run and its resume.
"""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Collection

from .atomic import atomic_write
from .errors import ConfigMismatchError, InpaintlabError

#: Packages whose versions can change a result; recorded with every run.
RECORDED_PACKAGES = ("inpaintlab", "torch", "numpy", "opencv-contrib-python-headless", "scikit-image", "pillow",
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


def result_view(record: dict[str, Any], runtime_keys: Collection[str], inputs_key: str,
                unordered: Collection[str] = ()) -> dict[str, Any]:
    """What must match for a resume, flat: the config minus run-time keys, the inputs, their fingerprints, the versions.

    Values pass through JSON (as a saved record did), lists under ``unordered`` keys are sorted
    (the order of ``--metrics`` or ``--mask-sizes`` never changes a result), and nested options
    are flattened so that a difference names the option (``config.model_options.radius``).
    """
    data = json.loads(json.dumps(record))
    view: dict[str, Any] = {}
    for k, v in data.get("config", {}).items():
        if k in runtime_keys:
            continue
        if k in unordered and isinstance(v, list):
            v = sorted(v, key=json.dumps)
        if isinstance(v, dict):
            view |= {f"config.{k}.{kk}": vv for kk, vv in v.items()}
        else:
            view[f"config.{k}"] = v
    view[f"{inputs_key} (resolved files)"] = data.get(inputs_key)
    view |= data.get("fingerprints", {})  # inputs named by path whose content matters (e.g. a model trained from)
    first = data.get("versions_first_run") or data.get("versions") or {}
    view |= {f"versions.{k}": v for k, v in first.items()}
    return view


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_compatible(saved: dict[str, Any], new: dict[str, Any], out: Path, *, runtime_keys: Collection[str],
                     inputs_key: str, what: str = "a run", unordered: Collection[str] = ()) -> None:
    """Refuse to resume into ``out`` with a different configuration or package versions, naming what differs."""
    a, b = (result_view(r, runtime_keys, inputs_key, unordered) for r in (saved, new))
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if diff:
        shown = ", ".join(k if k.endswith("(resolved files)") else f"{k} ({_short(a.get(k))} -> {_short(b.get(k))})"
                          for k in diff[:6]) + (f" and {len(diff) - 6} more" if len(diff) > 6 else "")
        versions_only = all(k.startswith("versions.") for k in diff)
        hint = ("reinstall the versions it started with to resume, or use another --out" if versions_only else
                "use another --out, or delete that folder to start over")
        raise ConfigMismatchError(f"{out} holds {what} made with a different "
                                  f"{'set of package versions' if versions_only else 'configuration'} "
                                  f"(differs in: {shown}); {hint}")


def read_record(path: Path) -> dict[str, Any] | None:
    """A saved ``config.json``, or None when there is none yet; a damaged one is one line naming it."""
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InpaintlabError(f"{path} is not a readable run configuration ({e}); restore it, or use another "
                              f"--out") from None
    if not isinstance(record, dict) or not isinstance(record.get("config", {}), dict):
        raise InpaintlabError(f"{path} is not an inpaintlab run configuration (no 'config' object); "
                              f"use another --out")
    return record


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


LOCK_NAME = ".inpaintlab.lock"


class RunFolderLock:
    """An exclusive lock on a run folder for the whole run (``flock`` on ``OUT/.inpaintlab.lock``).

    Two processes writing one run folder would both do all the work and mix their checkpoints;
    the second one is refused at once, naming the first one's PID. The kernel drops the lock when
    its process ends, however it ends (SIGKILL included), so a stale lock file never blocks a resume.
    """

    def __init__(self, out: Path, what: str):
        self.out, self.what = Path(out), what
        self._file = None

    def acquire(self) -> "RunFolderLock":
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock, as before
            return self
        path = self.out / LOCK_NAME
        f = open(path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            f.close()
            raise InpaintlabError(f"{self.out} is in use by another inpaintlab process (PID {holder}) running "
                                  f"{self.what}; wait for it to finish, or use another --out") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None


def open_run_folder(out: Path, what: str) -> RunFolderLock:
    """Create the run folder ``out`` (or reuse it) and lock it; a file in the way or no permission is one line."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InpaintlabError(f"--out {out} is a file, not a folder; give a folder for the run")
    try:
        out.mkdir(parents=True, exist_ok=True)
        return RunFolderLock(out, what).acquire()
    except PermissionError:
        raise InpaintlabError(f"cannot write into --out {out}: permission denied; choose a folder you can "
                              f"write to") from None
    except FileExistsError:  # a parent is a file
        raise InpaintlabError(f"cannot create --out {out}: a parent of it is a file") from None
    except OSError as e:
        raise InpaintlabError(f"cannot create --out {out}: {e.strerror or e}") from None


def start_run(out: Path, record: dict[str, Any], *, what: str, inputs_key: str, runtime_keys: Collection[str],
              unordered: Collection[str], requested_metrics: list[str], load_metrics: Loader,
              log: Callable[[str], None]) -> tuple[RunFolderLock, dict[str, Any], dict[str, str]]:
    """Open and lock the run folder, check a saved run against ``record``, load the metrics, write ``config.json``.

    Called once everything else about the input was checked. Returns the held lock (release it
    when the run ends), the metrics and the skipped ones; on any failure the lock is released.
    """
    lock = open_run_folder(out, what)
    try:
        path = out / "config.json"
        saved = read_record(path)
        if saved is not None:
            check_compatible(saved, record, out, runtime_keys=runtime_keys, inputs_key=inputs_key, what=what,
                             unordered=unordered)
        metrics, skipped = metrics_for_run(record, saved, requested_metrics, load_metrics, out)
        for name, why in skipped.items():
            log(f"skipping metric {name}: {why}")
        write_record(path, record)
    except BaseException:
        lock.release()
        raise
    return lock, metrics, skipped
