"""Read LaMa checkpoints (``big-lama/models/best.ckpt``) without running any code from the file.

LaMa's released ``best.ckpt`` is a PyTorch-Lightning 1.x checkpoint: besides tensors it pickles
OmegaConf objects (``hyper_parameters``) and callback states, which ``torch.load(weights_only=True)``
refuses. :func:`load_checkpoint_state` tries ``weights_only=True`` first and, only when that is
refused by the unpickler, loads again with a restricted unpickler: torch's tensor-rebuild functions,
storages, dtypes, ``collections.OrderedDict``, plain builtins and numpy arrays (through
:class:`inpaintlab.weights.convert._NumpyOnlyUnpickler`) are real; every other global becomes an inert
placeholder class (:class:`InertGlobal`) that records what it was built with and has no behaviour.
TorchScript archives are refused (``torch.load`` would hand them to ``torch.jit.load``).

:func:`lama_generator_state` keeps the ``generator.*`` entries of the Lightning ``state_dict``
(LaMa: ``generator.model.N...``) with the prefix stripped and checks every key and shape against
:func:`~.ffc.build_generator`; :func:`read_lama_config` reads the ``generator`` section of LaMa's
``config.yaml`` into a :class:`~.ffc.GeneratorConfig`.
"""

from __future__ import annotations

import _compat_pickle
import functools
import os
import pickle
import re
import types
import zipfile
from pathlib import Path
from typing import Any, Mapping

from ...errors import InpaintlabError, MissingWeightsError
from ...weights import state_dict_problems
from .ffc import GENERATOR_PRESETS, FFCResNetGenerator, GeneratorConfig, build_generator, config_from_dict

__all__ = [
    "InertGlobal",
    "load_checkpoint_state",
    "lama_generator_state",
    "lama_key_to_ours",
    "read_lama_config",
    "find_lama_checkpoint",
    "load_lama_generator",
]

GENERATOR_PREFIX = "generator."
#: LaMa generator key (prefix stripped) -> ours. Our module tree is LaMa's, so every key maps to itself;
#: a rename would go here (checked by lama_generator_state against the keys build_generator makes).
KEY_RENAMES: dict[str, str] = {}


# -- the restricted unpickler -----------------------------------------------------------------------


class InertGlobal:
    """Stands in for a global the restricted unpickler refused: records how pickle built it, does nothing.

    ``pickled_global`` names what the file referred to (``omegaconf.dictconfig.DictConfig``); an
    instance keeps its constructor ``args``/``kwargs``, its ``state`` (``__setstate__``) and the
    ``items``/``entries`` pickle appended or set on it.
    """

    pickled_global = "?"

    def __new__(cls, *args: Any, **kwargs: Any):
        self = object.__new__(cls)
        self.args, self.kwargs, self.state, self.items, self.entries = args, kwargs, None, [], {}
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # no behaviour: __new__ recorded everything
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def append(self, item: Any) -> None:
        self.items.append(item)

    def extend(self, items: Any) -> None:
        self.items.extend(items)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.entries[key] = value

    def __call__(self, *args: Any, **kwargs: Any) -> "InertGlobal":
        """A call on a placeholder (e.g. a pickled ``getattr(obj, name)(...)``) is recorded too."""
        return _inert("<call>", f"{self.pickled_global}(...)")(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<inert {self.pickled_global}>"


@functools.lru_cache(maxsize=None)
def _inert(module: str, name: str) -> type:
    qualname = f"{module}.{name}"
    return type(re.sub(r"\W", "_", name) or "Inert", (InertGlobal,), {"pickled_global": qualname,
                                                                       "__module__": __name__})


_BUILTINS = ("set", "frozenset", "bytearray", "bytes", "complex", "slice", "list", "dict", "tuple", "int", "float",
             "bool", "str")
_REBUILD = ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
            "_rebuild_parameter_with_state", "_rebuild_qtensor", "_rebuild_sparse_tensor", "_rebuild_nested_tensor",
            "_rebuild_meta_tensor_no_storage", "_rebuild_device_tensor_from_cpu_tensor",
            "_rebuild_device_tensor_from_numpy")


@functools.lru_cache(maxsize=1)
def _allowed_globals() -> dict[tuple[str, str], Any]:
    import builtins
    import codecs
    import collections

    import torch
    import torch._utils

    allowed: dict[tuple[str, str], Any] = {("collections", "OrderedDict"): collections.OrderedDict,
                                           ("_codecs", "encode"): codecs.encode}  # protocol-2 bytes
    allowed.update({("builtins", n): getattr(builtins, n) for n in _BUILTINS})
    allowed.update({("torch._utils", n): getattr(torch._utils, n) for n in _REBUILD if hasattr(torch._utils, n)})
    allowed[("torch._tensor", "_rebuild_from_type_v2")] = torch._tensor._rebuild_from_type_v2
    allowed.update({("torch", "Size"): torch.Size, ("torch", "device"): torch.device, ("torch", "Tensor"): torch.Tensor,
                    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
                    ("torch.serialization", "_get_layout"): torch.serialization._get_layout})
    allowed.update({("torch", n): v for n, v in vars(torch).items() if isinstance(v, (torch.dtype, torch.layout))})
    for storage in (torch.UntypedStorage, torch.storage.TypedStorage):  # legacy *Storage names: torch.load maps them
        allowed[(storage.__module__, storage.__name__)] = storage
        allowed[("torch", storage.__name__)] = storage
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """``find_class`` gives real objects only for tensors/storages/plain data; everything else is inert."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _compat_pickle.NAME_MAPPING:  # Python 2 / protocol < 3 names
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        real = _allowed_globals().get((module, name))
        if real is not None:
            return real
        if module.split(".", 1)[0] == "numpy":
            from ...weights.convert import _NumpyOnlyUnpickler

            try:
                return _NumpyOnlyUnpickler.find_class(self, module, name)
            except pickle.UnpicklingError:
                pass
        return _inert(module, name)


def _restricted_load(file: Any, **kwargs: Any) -> Any:
    return _RestrictedUnpickler(file, **kwargs).load()


#: a ``pickle_module`` for ``torch.load``: Unpickler and load, both restricted
restricted_pickle = types.ModuleType("inpaintlab_restricted_pickle")
restricted_pickle.Unpickler = _RestrictedUnpickler  # type: ignore[attr-defined]
restricted_pickle.load = _restricted_load  # type: ignore[attr-defined]
restricted_pickle.UnpicklingError = pickle.UnpicklingError  # type: ignore[attr-defined]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist())


def find_lama_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file: ``path`` itself, or ``path/models/best.ckpt`` for a LaMa model folder."""
    p = Path(path).expanduser()
    if p.is_dir():
        for candidate in (p / "models" / "best.ckpt", p / "best.ckpt"):
            if candidate.is_file():
                return candidate
        raise MissingWeightsError(f"{p} holds no LaMa checkpoint (expected models/best.ckpt, as in big-lama.zip)")
    if not p.is_file():
        raise MissingWeightsError(f"LaMa checkpoint {p} does not exist")
    return p


def load_checkpoint_state(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint dict in ``path`` (a file, or a LaMa folder), loaded on the CPU without running its code.

    Tensors come back as tensors; objects the restricted unpickler refused come back as
    :class:`InertGlobal` placeholders. A file that is not a checkpoint is one :class:`InpaintlabError` line.
    """
    import torch

    p = find_lama_checkpoint(path)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # weights-only refused a global (LaMa: OmegaConf in hyper_parameters): the restricted unpickler
        if _is_torchscript(p):
            raise InpaintlabError(f"{p} is a TorchScript archive, not a checkpoint; inpaintlab does not run "
                                  "code from weight files") from None
        try:
            obj = torch.load(p, map_location="cpu", weights_only=False, pickle_module=restricted_pickle)
        except Exception as exc:
            hint = (" (TORCH_FORCE_WEIGHTS_ONLY_LOAD is set: unset it to read checkpoints that hold non-tensor "
                    "objects; inpaintlab reads them with a restricted unpickler)"
                    if "explicit pickle_module" in str(exc) else "")
            raise InpaintlabError(f"{p} is not a readable PyTorch checkpoint ({_first_line(exc)}){hint}") from None
    except Exception as exc:  # not a torch file, truncated, TorchScript, ...
        raise InpaintlabError(f"{p} is not a readable PyTorch checkpoint ({_first_line(exc)})") from None
    if not isinstance(obj, Mapping):
        raise InpaintlabError(f"{p} holds a {type(obj).__name__}, not a checkpoint dict")
    return dict(obj)


# -- the generator's weights ------------------------------------------------------------------------


def lama_key_to_ours(key: str) -> str:
    """LaMa generator key (``model.5.conv1.ffc.convl2l.weight``, prefix stripped) -> our key (the same)."""
    return KEY_RENAMES.get(key, key)


def _few(keys: list[str], n: int = 3) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")


def expected_generator_shapes(cfg: GeneratorConfig) -> dict[str, tuple[int, ...]]:
    """Every state-dict key of ``build_generator(cfg)`` and its shape (built on the meta device: no memory)."""
    import torch

    with torch.device("meta"):
        gen = build_generator(cfg)
    return {k: tuple(v.shape) for k, v in gen.state_dict().items()}


def lama_generator_state(ckpt: Mapping[str, Any], cfg: GeneratorConfig | None = None) -> dict[str, Any]:
    """The generator's state dict from a LaMa / Lightning checkpoint, keys as :func:`build_generator` names them.

    ``ckpt`` is what :func:`load_checkpoint_state` returns (its ``state_dict`` entry is used) or a
    bare state dict. Keys ``generator.*`` are kept, the prefix stripped and mapped with
    :func:`lama_key_to_ours`; missing or unexpected keys and wrong shapes are one :class:`InpaintlabError`
    line. ``cfg`` defaults to the big-lama preset.
    """
    import torch

    cfg = cfg or GENERATOR_PRESETS["big-lama"]
    if not isinstance(ckpt, Mapping):
        raise InpaintlabError(f"not a checkpoint: got a {type(ckpt).__name__}, expected a dict")
    state = ckpt["state_dict"] if "state_dict" in ckpt else ckpt
    if not isinstance(state, Mapping):
        raise InpaintlabError(f"the checkpoint's state_dict is a {type(state).__name__}, not a dict of tensors")
    gen = {k[len(GENERATOR_PREFIX):]: v for k, v in state.items()
           if isinstance(k, str) and k.startswith(GENERATOR_PREFIX)}
    if not gen:
        found = _few([str(k) for k in state]) or "nothing"
        raise InpaintlabError(f"the checkpoint holds no LaMa generator (no {GENERATOR_PREFIX}* keys; found {found})")
    not_tensors = [k for k, v in gen.items() if not torch.is_tensor(v)]
    if not_tensors:
        raise InpaintlabError(f"the checkpoint's generator entries {_few(not_tensors)} are not tensors")
    ours = {lama_key_to_ours(k): v for k, v in gen.items()}
    expected = expected_generator_shapes(cfg)
    problems = state_dict_problems(expected, ours)
    if problems:
        raise InpaintlabError(f"the checkpoint's generator does not fit the LaMa generator (ngf {cfg.ngf}, "
                              f"{cfg.n_blocks} blocks): " + "; ".join(problems) + " — check config.yaml")
    return {k: ours[k] for k in expected}


# -- LaMa's config.yaml -----------------------------------------------------------------------------

_REF = re.compile(r"^\$\{([A-Za-z_][\w.]*)\}$")


def _resolve(value: Any, root: Mapping[str, Any], path: str, seen: frozenset[str] = frozenset()) -> Any:
    """OmegaConf's ``${a.b.c}`` references (whole-value only), resolved against the document."""
    if isinstance(value, Mapping):
        return {k: _resolve(v, root, f"{path}.{k}", seen) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, root, f"{path}[{i}]", seen) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        m = _REF.match(value.strip())
        if m is None:
            raise InpaintlabError(f"config.yaml: {path} = {value!r} uses an OmegaConf feature inpaintlab does not "
                                  "resolve (only ${a.b.c} references)")
        ref = m.group(1)
        if ref in seen:
            raise InpaintlabError(f"config.yaml: {path} refers to itself through {ref}")
        target: Any = root
        for part in ref.split("."):
            if not isinstance(target, Mapping) or part not in target:
                raise InpaintlabError(f"config.yaml: {path} refers to {ref}, which is not in the file")
            target = target[part]
        return _resolve(target, root, ref, seen | {ref})
    return value


def _config_path(path: Path) -> Path | None:
    if path.is_dir():
        candidates = [path / "config.yaml"]
    elif path.suffix in (".yaml", ".yml"):
        return path
    else:  # a checkpoint: big-lama/models/best.ckpt -> big-lama/config.yaml
        candidates = [path.parent / "config.yaml", path.parent.parent / "config.yaml"]
    return next((c for c in candidates if c.is_file()), None)


def read_lama_config(folder: str | os.PathLike) -> GeneratorConfig:
    """The generator config of a LaMa model folder (``config.yaml`` next to ``models/best.ckpt``).

    ``folder`` may also be the checkpoint or the YAML file. Without a ``config.yaml`` the big-lama
    preset is returned (the released ``big-lama`` model). Read with ``yaml.safe_load``; OmegaConf's
    ``${generator....}`` references are resolved.
    """
    p = Path(folder).expanduser()
    if not p.exists():
        raise MissingWeightsError(f"LaMa model {p} does not exist")
    cfg_path = _config_path(p)
    if cfg_path is None:
        return GENERATOR_PRESETS["big-lama"]
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML comes with datasets / transformers / lightning
        raise InpaintlabError("reading LaMa's config.yaml needs PyYAML: pip install pyyaml") from None
    try:
        doc = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InpaintlabError(f"{cfg_path} is not a readable YAML file ({_first_line(exc)})") from None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("generator"), Mapping):
        raise InpaintlabError(f"{cfg_path} has no generator section; is it LaMa's training config.yaml?")
    section = dict(_resolve(doc["generator"], doc, "generator"))
    kind = section.pop("kind", "ffc_resnet")
    if kind != "ffc_resnet":
        raise InpaintlabError(f"{cfg_path}: generator kind {kind!r} is not LaMa's FFC generator (ffc_resnet)")
    try:
        return config_from_dict(section)
    except (ValueError, TypeError) as exc:
        raise InpaintlabError(f"{cfg_path}: {exc}") from None


def load_lama_generator(path: str | os.PathLike, cfg: GeneratorConfig | None = None) -> FFCResNetGenerator:
    """A LaMa generator with the weights of ``path`` (a model folder or a checkpoint), in eval mode."""
    ckpt_path = find_lama_checkpoint(path)
    cfg = cfg or read_lama_config(path)
    state = lama_generator_state(load_checkpoint_state(ckpt_path), cfg)
    gen = build_generator(cfg)
    gen.load_state_dict(state, strict=True)
    return gen.eval()
