"""Torch devices named on the command line: checked once, with one line for a wrong or missing one."""

from __future__ import annotations

from .errors import InpaintlabError


def resolve_device(device: str, *, allow_auto: bool = False):
    """``cpu``, ``cuda``, ``cuda:N``, ``mps`` (and ``auto`` where allowed) as a ``torch.device`` that exists here."""
    import torch

    if allow_auto and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    choices = "auto, cpu, cuda or cuda:N" if allow_auto else "cpu, cuda or cuda:N"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InpaintlabError(f"unknown device {device!r}; use {choices}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InpaintlabError(f"device {device!r} asked for, but this torch has no usable CUDA "
                                  f"(torch {torch.__version__}); use cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InpaintlabError(f"device {device!r} asked for, but there are {torch.cuda.device_count()} CUDA "
                                  f"device(s) (cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise InpaintlabError(f"device {device!r} asked for, but MPS is not available here; use cpu")
    elif dev.type != "cpu":
        raise InpaintlabError(f"device {device!r} is not supported; use {choices}")
    return dev
