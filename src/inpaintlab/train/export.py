"""Exported generators: safetensors weights plus a JSON of the architecture, loadable without Lightning.

An export is a folder with ``generator.safetensors`` (tensors only: loading it runs no code) and
``generator.json`` (``format``, ``method``, the generator's architecture as plain values, the
steps trained, whether the weights are the EMA). :func:`read_trained` finds the weights behind
what a user passes as ``--option checkpoint=...``: an export folder or file, a training run folder
(its ``export/``, or its last checkpoint when the run stopped before exporting).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write
from ..errors import InpaintlabError

FORMAT = "inpaintlab-generator"
WEIGHTS, META = "generator.safetensors", "generator.json"


def export_generator(generator: torch.nn.Module, meta: dict[str, Any], folder: str | Path) -> Path:
    """Write ``generator``'s state dict and ``meta`` (method, architecture, ...) into ``folder``; return it."""
    return export_state(generator.state_dict(), meta, folder)


def export_state(state: dict[str, torch.Tensor], meta: dict[str, Any], folder: str | Path) -> Path:
    """Write a generator state dict (safetensors) and ``meta`` (JSON) into ``folder``, atomically; return it."""
    from safetensors.torch import save

    folder = Path(folder)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    data = save(state)
    atomic_write(folder / WEIGHTS, lambda f: f.write(data))
    text = json.dumps({**meta, "format": FORMAT}, indent=2, sort_keys=True).encode()
    atomic_write(folder / META, lambda f: f.write(text))
    return folder


def _from_export(folder: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    try:
        meta = json.loads((folder / META).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InpaintlabError(f"cannot read {folder / META}: {e}") from None
    if meta.get("format") != FORMAT:
        raise InpaintlabError(f"{folder / META} is not an inpaintlab generator export")
    try:
        return meta, load_file(str(folder / WEIGHTS))
    except Exception as e:  # safetensors raises its own error types on damaged files
        raise InpaintlabError(f"cannot read {folder / WEIGHTS}: {e}") from None


def state_fingerprint(state: dict[str, torch.Tensor]) -> str:
    """sha256 over a state dict's names and tensor bytes: what a run records of a network it was trained from."""
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def samples_per_step(config: dict[str, Any]) -> int:
    """Samples one training step consumes over all processes (batch x devices x nodes)."""
    return max(1, config["batch_size"] * config.get("devices", 1) * config.get("num_nodes", 1))


def checkpoint_generator(run: Path, ckpt: Path | None = None) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The generator of a run's last checkpoint, or of ``ckpt`` (``weights_only``: tensors and plain values
    only); with EMA on, the averaged weights the run validated with."""
    from ..runs import read_record

    ckpt = ckpt or run / "checkpoints" / "last.ckpt"
    record = read_record(run / "config.json") or {}
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InpaintlabError(f"cannot read the checkpoint {ckpt} (tensors only): {str(e).splitlines()[0]}") from None
    # with EMA on, Lightning's WeightAveraging saves the averaged weights as the state dict (the current
    # ones go to current_model_state): the weights the run validated with
    averaged = "current_model_state" in state
    weights = {k.removeprefix("net_g."): v for k, v in state.get("state_dict", {}).items() if k.startswith("net_g.")}
    if not weights or "generator" not in record:
        raise InpaintlabError(f"{ckpt} holds no generator of a known architecture")
    meta = {"format": FORMAT, "method": record["config"]["method"], "generator": record["generator"],
            "steps": state.get("inpaintlab", {}).get("samples_seen", 0) // samples_per_step(record["config"]),
            "ema": bool(averaged), "source": str(ckpt), "options": record["config"].get("options", {})}
    return meta, weights


def is_run_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a checkpoint file inside an inpaintlab training run (``RUN/checkpoints/*.ckpt``)."""
    return path.is_file() and path.suffix == ".ckpt" and path.parent.name == "checkpoints" \
        and (path.parent.parent / "config.json").is_file()


def read_trained(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(meta, state_dict)`` of an export folder, its ``.safetensors`` / ``.json`` file, a training run, or one of
    a run's checkpoints (``RUN/checkpoints/step-NNNNNNN.ckpt``)."""
    p = Path(path).expanduser()
    if is_run_checkpoint(p):
        return checkpoint_generator(p.parent.parent, p)
    if p.is_file() and p.name in (WEIGHTS, META):
        p = p.parent
    if (p / META).is_file():
        return _from_export(p)
    if (p / "export" / META).is_file():
        return _from_export(p / "export")
    if (p / "checkpoints" / "last.ckpt").is_file():
        return checkpoint_generator(p)
    raise InpaintlabError(f"{path} is neither an inpaintlab export (generator.json + generator.safetensors) nor a "
                          f"training run folder with an export or a checkpoint, nor a run's checkpoints/*.ckpt")


def read_trained_as(path: str | Path, method: str, *, flag: str = "", command: str | None = None
                    ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """:func:`read_trained` of a path that must hold ``method``'s network; a missing path or another method is one line.

    ``flag`` names the option the path came from (``--vae``); ``command`` is the training command
    that makes such a run (default ``inpaintlab train METHOD``).
    """
    name = f"{flag} {path}" if flag else str(path)
    if not Path(path).expanduser().exists():
        raise InpaintlabError(f"{name}: no such file or folder (a run of `{command or 'inpaintlab train ' + method}` "
                              f"or its export)")
    meta, state = read_trained(path)
    if meta.get("method") != method:
        raise InpaintlabError(f"{name} holds a {meta.get('method')!r} network, not a {method} one")
    return meta, state


__all__ = ["export_generator", "read_trained_as", "export_state", "state_fingerprint", "checkpoint_generator", "read_trained", "is_run_checkpoint", "FORMAT",
           "WEIGHTS", "META"]
