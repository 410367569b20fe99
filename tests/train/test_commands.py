"""``inpaintlab train``: the method commands and their help, --config and its precedence, the method
options' own flags, train export."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch

from inpaintlab.options import option
from inpaintlab.testing import toy_method_class
from inpaintlab.train.export import read_trained
from inpaintlab.train.method import METHODS

from ..test_cli import run_cli


@pytest.fixture(autouse=True)
def toy():
    METHODS.register("toy", toy_method_class())
    yield
    METHODS.unregister("toy")


def test_train_help_lists_the_methods_and_each_methods_options(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_cli(monkeypatch, capsys, "train", "--help")
    assert code == 0 and "lama" in out and "toy" in out and "export" in out
    code, out, _ = run_cli(monkeypatch, capsys, "train", "lama", "--help")
    assert code == 0
    assert "--generator" in out and "(one of big-lama|lama-fourier|small; default big-lama)" in out
    assert "--lr-d" in out and "(float, > 0; default 0.0001)" in out and "--max-time" in out


def test_config_file_then_flags_then_set(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("size: 40\nsteps: 2\nval-every: 2\nlr: 0.02\nwidth: 5\nmasks: rectangle\nval_count: 3\n")
    out = tmp_path / "run"
    code, _, err = run_cli(monkeypatch, capsys, "train", "toy", "--out", str(out), "--config", str(cfg),
                           "--size", "32", "--set", "width=4")
    assert code == 0, err
    record = json.loads((out / "config.json").read_text())
    c = record["config"]
    assert (c["size"], c["steps"], c["val_every"], c["masks"], c["val_count"]) == (32, 2, 2, "rectangle", 3)
    assert c["options"] == {"lr": 0.02, "width": 4}
    code, stdout, err = run_cli(monkeypatch, capsys, "train", "export", str(out), "--to", str(tmp_path / "again"))
    assert code == 0, err
    meta, state = read_trained(tmp_path / "again")
    _, exported = read_trained(out)
    assert meta["method"] == "toy" and meta["steps"] == 2 and all(torch.equal(state[k], exported[k]) for k in state)


def test_method_options_are_flags_too_over_the_config_file(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("lr: 0.03\nwidth: 5\n")
    out = tmp_path / "run"
    code, _, err = run_cli(monkeypatch, capsys, "train", "toy", "--out", str(out), "--config", str(cfg),
                           "--size", "16", "--steps", "1", "--val-every", "1", "--val-count", "2", "--masks", "rectangle",
                           "--lr", "0.02", "--width", "4", "--set", "width=4")  # the same value twice is no conflict
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["config"]["options"] == {"lr": 0.02, "width": 4}


def test_method_flags_in_help_with_type_and_default(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_cli(monkeypatch, capsys, "train", "toy", "--help")
    assert code == 0 and "Method options" in out
    assert "--lr " in out and "learning rate (Adam) (float, > 0; default 0.01)" in out
    assert "--width " in out and "hidden channels (int, >= 1; default 8)" in out


def test_a_bad_flag_value_is_the_same_one_line_error_as_set(tmp_path, monkeypatch, capsys):
    errors = []
    for given in (["--set", "width=zero"], ["--width", "zero"]):
        code, _, err = run_cli(monkeypatch, capsys, "train", "toy", "--out", str(tmp_path / "run"), *given)
        assert code == 2 and err.count("\n") == 1
        errors.append(err)
    assert errors[0] == errors[1] and "width=zero" in errors[0] and "whole number" in errors[0]
    assert not (tmp_path / "run").exists()


def test_set_and_flag_disagreeing_is_one_line(tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "train", "toy", "--out", str(tmp_path / "run"),
                           "--set", "width=4", "--width", "5")
    assert code == 2 and err.count("\n") == 1
    assert "--set width=4" in err and "--width 5" in err
    assert not (tmp_path / "run").exists()
    # the same value written two ways is no disagreement
    code, _, err = run_cli(monkeypatch, capsys, "train", "toy", "--out", str(tmp_path / "run"), "--size", "16",
                           "--steps", "1", "--val-every", "1", "--checkpoint-every", "1", "--val-count", "2",
                           "--batch-size", "2", "--masks", "rectangle", "--set", "lr=0.001", "--lr", "1e-3")
    assert code == 0, err


def test_an_option_named_like_a_shared_flag_has_no_flag_of_its_own(tmp_path, monkeypatch, capsys):
    @dataclass(frozen=True)
    class SizedOptions:
        size: int = option(3, "kernel size", ge=1)
        lr: float = option(1e-2, "learning rate (Adam)", gt=0)
        width: int = option(8, "hidden channels", ge=1)

    class Sized(toy_method_class()):
        """The toy method with an option named like --size."""

        Config = SizedOptions

    METHODS.register("toy-sized", Sized)
    try:
        monkeypatch.setenv("COLUMNS", "200")
        code, out, _ = run_cli(monkeypatch, capsys, "train", "toy-sized", "--help")
        assert code == 0
        rows = [line.strip("│ *") for line in out.splitlines()]
        flags = [row.split()[0] for row in rows if row.startswith("--")]
        assert flags.count("--size") == 1 and "--width" in flags  # --size stays the shared flag
        assert "size (int, >= 1; default 3): kernel size" in out  # listed for --set
        code, _, err = run_cli(monkeypatch, capsys, "train", "toy-sized", "--out", str(tmp_path / "run"),
                               "--size", "16", "--steps", "1", "--val-every", "1", "--val-count", "2",
                               "--masks", "rectangle", "--set", "size=5", "--width", "2")
        assert code == 0, err
    finally:
        METHODS.unregister("toy-sized")
    c = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert c["size"] == 16 and c["options"] == {"size": 5, "lr": 0.01, "width": 2}
