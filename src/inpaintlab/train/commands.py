"""``inpaintlab train METHOD ...`` (one command per registered method) and ``inpaintlab train export RUN``.

The method commands are built when ``train`` is used (``inpaintlab train --help`` lists them,
``inpaintlab train METHOD --help`` shows the method's options with their types and defaults), so
``inpaintlab --help`` never waits for Lightning.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperGroup

from ..cliargs import default
from ..console import note, out, run_with_progress, status
from ..errors import InpaintlabError
from .config import TrainConfig


class MethodCommands(TyperGroup):
    """The ``train`` group: its own commands plus one per registered training method, built on demand."""

    def list_commands(self, ctx) -> list[str]:
        from .method import METHODS

        return [*super().list_commands(ctx), *METHODS.names()]

    def get_command(self, ctx, name: str):
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        from .method import METHODS

        return method_command(name) if name in METHODS else None


app = typer.Typer(cls=MethodCommands, no_args_is_help=True,
                  help="Train a method on any image source; resume with the same command; export its generator.")


def _d(name: str):
    return default(TrainConfig, name)


def read_config_file(path: Path) -> dict[str, Any]:
    """A JSON or YAML mapping of options (keys of the run's settings or of the method's options)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as e:
        raise InpaintlabError(f"cannot read --config {path}: {' '.join(str(e).split())[:200]}") from None
    if not isinstance(data, dict):
        raise InpaintlabError(f"--config {path} must hold a mapping of KEY: VALUE, got {type(data).__name__}")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def train_command(
    ctx: typer.Context,
    data: str = typer.Option(_d("data"), help="Training images: 'builtin', a folder, a glob or hf:NAME?... "
                                              "(as --images elsewhere)."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Run folder: config.json, metrics.csv, samples/, "
                                                          "checkpoints/, export/. The same command resumes it."),
    config: Optional[Path] = typer.Option(None, help="A JSON or YAML file of settings and method options "
                                                     "(overridden by flags and --set)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Method option KEY=VALUE (repeatable; listed "
                                                                 "below with types and defaults)."),
    size: int = typer.Option(_d("size"), help="Side of the square training crops (a multiple of 8)."),
    steps: int = typer.Option(_d("steps"), help="Training steps (batches); a larger value continues a finished run."),
    batch_size: int = typer.Option(_d("batch_size"), help="Samples per step (per device)."),
    masks: str = typer.Option(_d("masks"), help="Mask kind (see `inpaintlab masks generate --help`); LaMa's "
                                                "training mix by default."),
    mask_param: Optional[list[str]] = typer.Option(None, "--mask-param", help="Mask parameter KEY=VALUE."),
    mask_size: Optional[int] = typer.Option(_d("mask_size"), help="Draw the masks at this size, then resize them to "
                                                                  "--size (e.g. 256: LaMa's masks on 128 crops)."),
    foreground: Optional[str] = typer.Option(_d("foreground"), help="A folder of per-image foreground masks "
                                                                    "(<image stem>.png, white = foreground): "
                                                                    "training holes avoid them (Seamless Borders' "
                                                                    "background-only masks)."),
    holdout: str = typer.Option(_d("holdout"), help="Validation: 'right' (train on the left 3/4 of every image, "
                                                    "validate on the right 1/4) or 'images' (hold out whole images)."),
    val_count: int = typer.Option(_d("val_count"), help="Validation pairs (fixed crop + mask)."),
    val_every: int = typer.Option(_d("val_every"), help="Validate and draw a sample grid every this many steps."),
    checkpoint_every: int = typer.Option(_d("checkpoint_every"), help="Save a checkpoint every this many steps."),
    log_every: int = typer.Option(_d("log_every"), help="Log the losses every this many steps."),
    seed: int = typer.Option(_d("seed"), help="Seed of the initial weights, the crops and the masks."),
    precision: str = typer.Option(_d("precision"), help="32-true, bf16-mixed (GPU), 16-mixed."),
    accumulate: int = typer.Option(_d("accumulate"), help="Batches per optimiser step."),
    grad_clip: Optional[float] = typer.Option(_d("grad_clip"), help="Clip the gradient norm to this (off by default)."),
    ema_decay: Optional[float] = typer.Option(_d("ema_decay"), help="EMA of the weights for validation and export "
                                                                    "(e.g. 0.999; 0: off)."),
    ema_every: int = typer.Option(_d("ema_every"), help="Update the EMA every this many optimiser steps."),
    ema_warmup: Optional[int] = typer.Option(_d("ema_warmup"), help="ema_pytorch's schedule: the EMA copies the "
                                                                    "weights for this many steps, then its decay "
                                                                    "ramps as 1 - (1 + n)^(-2/3) up to --ema-decay "
                                                                    "(IR-SDE: 100). Off: a constant decay."),
    deterministic: bool = typer.Option(_d("deterministic"), help="Deterministic algorithms (bit-exact resumes on CPU)."),
    devices: int = typer.Option(_d("devices"), help="Devices per node (Lightning)."),
    num_nodes: int = typer.Option(_d("num_nodes"), help="Nodes (Lightning; launch the same command on each)."),
    accelerator: str = typer.Option(_d("accelerator"), help="auto, cpu, gpu (Lightning)."),
    strategy: str = typer.Option(_d("strategy"), help="auto, ddp, ddp_spawn, ... (Lightning)."),
    num_workers: int = typer.Option(_d("num_workers"), help="Data loader worker processes; never changes a result."),
    max_time: Optional[str] = typer.Option(_d("max_time"), help="Stop after DD:HH:MM:SS (a checkpoint is saved; "
                                                                "the same command continues)."),
):
    from ..cliargs import parse_key_values
    from .loop import TrainRun

    method = ctx.info_name
    flags = dict(size=size, mask_size=mask_size, steps=steps, batch_size=batch_size, masks=masks, foreground=foreground, holdout=holdout, val_count=val_count,
                 val_every=val_every, checkpoint_every=checkpoint_every, log_every=log_every, seed=seed,
                 precision=precision, accumulate=accumulate, grad_clip=grad_clip, ema_decay=ema_decay,
                 ema_every=ema_every, ema_warmup=ema_warmup,
                 deterministic=deterministic, devices=devices, num_nodes=num_nodes, accelerator=accelerator,
                 strategy=strategy,
                 num_workers=num_workers, max_time=max_time, data=data)
    settings: dict[str, Any] = {}
    options: dict[str, Any] = {}
    if config is not None:
        fields = set(TrainConfig.__dataclass_fields__) - {"method"}
        for key, value in read_config_file(config).items():
            (settings if key in fields else options)[key] = value
    for key, value in flags.items():  # a flag on the command line wins over the file
        source = ctx.get_parameter_source(key)  # typer's own click: compare by name
        typed = source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")
        if key not in settings or typed:
            settings[key] = value
    if mask_param:
        settings["mask_params"] = parse_key_values(mask_param, "--mask-param", "max_width=50")
    given = parse_key_values(set_, "--set", "lr_g=0.001")
    named = ctx.meta.get(METHOD_FLAGS, {})  # the method's own flags that were given (see method_command)
    for key, value in named.items():
        if key in given and not same_option_value(method, key, given[key], value):
            raise InpaintlabError(f"--set {key}={given[key]} and --{key.replace('_', '-')} {value} disagree; "
                                  f"give {key} once")
    options |= given | named  # both override the --config file; the raw text goes to the method's parser
    try:
        cfg = TrainConfig(method=method, **settings)
    except TypeError as e:  # an unknown key in --config
        raise InpaintlabError(f"--config {config}: {e}") from None
    run = TrainRun(cfg, options, out_dir, log=note)
    with status(f"loading {cfg.data} and building {method}"):
        run.prepare()
    out_dir = run.out  # a method may train into a sub-folder of --out (strdiffusion's parts)
    summary = run_with_progress(run, f"train {method}", "steps", out_dir)
    val = ", ".join(f"{k.removeprefix('val/')} {v:.4g}" for k, v in sorted(summary.last_validation.items()))
    out.print(f"trained {method} to step {summary.steps} ({summary.resumed_from} resumed) in {summary.seconds:.1f} s"
              f"{'; last validation: ' + val if val else ''}; {out_dir / 'metrics.csv'}", markup=False)
    if summary.export is not None:
        hint = run.method.usage_hint(out_dir)
        out.print(f"exported the generator to {summary.export}{f' ({hint})' if hint else ''}", markup=False)


def same_option_value(method: str, key: str, a: Any, b: Any) -> bool:
    """Whether two command-line values of a method option mean the same (``1e-3`` and ``0.001`` do)."""
    from ..options import convert, specs_of
    from .method import METHODS

    spec = specs_of(METHODS.get(method).Config).get(key)
    try:
        return a == b or (spec is not None and convert(spec, a) == convert(spec, b))
    except ValueError:  # a bad value: the method's parser names it
        return False


#: ``ctx.meta`` key of the method's own flags that were given: {option name: raw text}
METHOD_FLAGS = "inpaintlab.train.method_flags"
#: the method flags' parameter names (``ctx.params`` keys), apart from train_command's
_PREFIX = "method_option_"


@functools.cache
def _shared_flags() -> frozenset[str]:
    """Every flag of ``train_command`` (``--size``, ``-o``, ``--no-deterministic``, ``--help``, ...)."""
    one = typer.Typer(add_completion=False)
    one.command(name="shared")(train_command)
    command = typer.main.get_command(one)
    return frozenset(o for p in command.params for o in (*p.opts, *p.secondary_opts)) | {"--help"}


def _metavar(type_name: str) -> str:
    """``<float>``, ``<choice>``, ...: what the help's second column shows for a method flag."""
    word = type_name.split()[0]
    return f"<{word}>" if word in ("bool", "int", "float", "str") else "<choice>" if word == "one" else "<ints>"


def _with_default(parameter: inspect.Parameter, value: Any) -> inspect.Parameter:
    """A shared flag with a method's own default (typer reads the default from the parameter's ``OptionInfo``)."""
    info = copy.copy(parameter.default)
    info.default = value
    return parameter.replace(default=info)


def method_command(name: str):
    """The click command ``inpaintlab train NAME``: the shared flags plus one flag per method option.

    Each option ``key_name`` of the method's ``Config`` is also the flag ``--key-name TEXT``, shown in
    its own help panel with its accepted values and default. How it is wired: typer builds a command
    from its callback's signature and calls the callback with exactly those parameters, so the
    callback here is a small function whose ``__signature__`` is ``train_command``'s plus one
    ``typer.Option(None, "--key-name")`` per option. typer then makes the flags itself (help panel,
    shown default, parsing) and hands them to ``run``, which moves the given ones into
    ``ctx.meta[METHOD_FLAGS]`` and calls ``train_command`` with its own parameters; ``train_command``
    merges them with ``--set`` and ``--config``. (No click subclass, no typer internals: extra click
    parameters appended to the built command would reach typer's callback wrapper, which rejects
    names it did not see in the signature.)
    """
    from ..options import describe, specs_of
    from .method import METHODS

    cls = METHODS.get(name)
    specs = specs_of(cls.Config)
    shared = _shared_flags()
    flagged, unflagged = [], []
    for (key, takes, default_text, help_line), spec in zip(describe(specs), specs.values()):
        flag = "--" + key.replace("_", "-")
        # a method option named like a shared flag (size, seed, steps, config, ...) gets no flag of its own:
        # it would take the shared flag's place or make the command line ambiguous; --set KEY=VALUE still sets it
        if flag in shared:
            unflagged.append(f"{key} ({takes}; default {default_text}): {help_line}")
            continue
        # text (default None: not given), parsed with --set's values by the method's own parser
        option = typer.Option(None, flag, help=f"{help_line} ({takes}; default {default_text})".strip(),
                              show_default=False, metavar=_metavar(spec.type_name),
                              rich_help_panel="Method options (or --set KEY=VALUE)")
        flagged.append((key, inspect.Parameter(_PREFIX + key, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                               default=option, annotation=Optional[str])))

    def run(ctx, **values):  # typer passes every parameter of run.__signature__
        named = {key: values.pop(_PREFIX + key) for key, _ in flagged}
        ctx.meta[METHOD_FLAGS] = {key: value for key, value in named.items() if value is not None}
        return train_command(ctx, **values)

    own = inspect.signature(train_command, eval_str=True)
    shared_params = [_with_default(p, cls.train_defaults[p.name]) if p.name in cls.train_defaults else p
                     for p in own.parameters.values()]
    run.__signature__ = own.replace(parameters=[*shared_params, *(p for _, p in flagged)])
    doc = (cls.__doc__ or "").strip().splitlines()[0]
    text = f"Train {name}: {doc}\n\nMethod options: their flags (below), --set KEY=VALUE or --config FILE."
    if cls.train_defaults:
        shown = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in cls.train_defaults.items())
        text += f"\n\nThis method's own defaults of shared settings: {shown}."
    if unflagged:
        text += ("\n\nMethod options named like a shared flag (give them with --set KEY=VALUE):\n\n"
                 + "\n\n".join(unflagged))
    one = typer.Typer(add_completion=False)
    one.command(name=name, help=text)(run)
    return typer.main.get_command(one)


@app.command("export")
def export_command(
    run_dir: Path = typer.Argument(..., help="A training run folder."),
    to: Optional[Path] = typer.Option(None, "--to", help="Where to write the export (default RUN_DIR/export)."),
):
    """Export a run's generator from its last checkpoint (EMA weights when EMA was on): safetensors + JSON."""
    from .export import checkpoint_generator, export_state

    if not (run_dir / "checkpoints" / "last.ckpt").is_file():
        raise InpaintlabError(f"{run_dir} holds no checkpoints/last.ckpt; train (or resume) it first")
    meta, state = checkpoint_generator(run_dir)
    folder = export_state(state, meta, to or run_dir / "export")
    out.print(f"exported {meta['method']} (step {meta['steps']}{', EMA' if meta['ema'] else ''}) to {folder}",
              markup=False)
